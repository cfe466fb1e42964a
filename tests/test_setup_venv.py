"""scripts/setup_venv.sh installs what the chosen preset declares, and again only when something
changed: a new extra, or a new pyproject.toml. Run on a copy of the scripts and presets, with a
stand-in venv python that records each pip call instead of installing."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def checkout(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "setup_venv.sh", tmp_path / "scripts")
    shutil.copy2(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "cascade" / "presets", tmp_path / "cascade" / "presets")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/../pip-calls"\necho "Successfully installed natix-miner"\n')
    python.chmod(0o755)
    return tmp_path


def setup(checkout, *args) -> str | None:
    """The pip install that `setup_venv.sh args` ran (its requirement), or None when it ran none."""
    calls = checkout / ".venv" / "pip-calls"
    before = calls.read_text().splitlines() if calls.exists() else []
    done = subprocess.run(["bash", "scripts/setup_venv.sh", *args], cwd=checkout, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    after = calls.read_text().splitlines() if calls.exists() else []
    assert len(after) - len(before) <= 1
    return after[-1].split()[-1] if len(after) > len(before) else None


def test_each_preset_installs_what_it_requires_once(checkout):
    assert setup(checkout, "--config", "cpu-default") == "."  # the base: no extra, no torch
    assert setup(checkout, "--config", "cpu-default") is None
    assert setup(checkout) is None
    assert setup(checkout, "--config", "cpu-zeroshot") == ".[vlm]"  # a new extra is noticed
    assert setup(checkout, "--config", "cpu-zeroshot") is None
    assert setup(checkout, "--config", "cpu-default") is None  # the base is still there
    assert setup(checkout, "--config", "h100") == ".[train,gpu]"
    assert setup(checkout, "vlm") is None


def test_dev_covers_the_extras_it_names_and_a_changed_pyproject_installs_again(checkout):
    assert setup(checkout, "dev") == ".[dev]"
    assert setup(checkout, "--config", "cpu-zeroshot") is None  # dev includes vlm ...
    assert setup(checkout, "train") is None  # ... and train
    assert setup(checkout, "gpu") == ".[gpu]"  # but not gpu
    with (checkout / "pyproject.toml").open("a") as pyproject:
        pyproject.write("\n# a new dependency\n")
    assert setup(checkout, "--config", "cpu-default") == "."
    assert setup(checkout, "--config", "cpu-zeroshot") == ".[vlm]"


def test_the_requires_line_is_read_without_python(checkout, tmp_path):
    def extras_of(config):
        done = subprocess.run(["bash", "scripts/setup_venv.sh", "--extras-of", config], cwd=checkout,
                              capture_output=True, text=True, timeout=30)
        return done.stdout.strip()

    assert [extras_of(p) for p in ("cpu-default", "cpu-zeroshot", "h100", "no-such-preset")] == ["", "vlm", "train,gpu", ""]
    block = tmp_path / "mine.yaml"
    block.write_text("requires:\n  - vlm    # CLIP\n  - 'train'\ntiers: []\n")
    assert extras_of(str(block)) == "vlm,train"
