"""A command or a tier that needs an install extra this install lacks says which, in one line, and
exits 2 without a traceback. Each case runs in a fresh process where the extra's libraries cannot be
imported, as on a base install (`pip install natix-miner`)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cascade.config import list_presets, load_config
from cascade.extras import MissingExtra, missing_extras, require_extra, tier_extra
from tests.wire.harness import free_port

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ("torch", "torchvision", "timm", "ultralytics", "onnx", "safetensors")
VLM = ("torch", "torchvision", "transformers", "huggingface_hub")


def run_without(modules, code: str, timeout=120) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter in which importing any of `modules` fails as if not installed."""
    prelude = f"import sys\nsys.modules.update(dict.fromkeys({list(modules)!r}))\n"
    return subprocess.run([sys.executable, "-c", prelude + code], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def cli_without(modules, *argv) -> subprocess.CompletedProcess:
    return run_without(modules, f"from natix_miner.tools.cli import main\nsys.exit(main({list(argv)!r}))")


@pytest.mark.parametrize("argv, blocked, said", [
    (["train", "--out", "runs/x"], TRAIN, "natix-miner train needs the train extra (timm is not installed): pip install 'natix-miner[train]'"),
    (["train", "--help"], TRAIN, "natix-miner train needs the train extra (timm is not installed): pip install 'natix-miner[train]'"),
    (["eval", "--count", "4"], TRAIN, "natix-miner eval needs the train extra (torch is not installed): pip install 'natix-miner[train]'"),
    (["export-onnx", "builtin:efficientnet-lite0-roadwork"], TRAIN,
     "natix-miner export-onnx needs the train extra (onnx is not installed): pip install 'natix-miner[train]'"),
    (["report", "--journal", "nowhere.sqlite"], ("matplotlib",),
     "natix-miner report needs the report extra (matplotlib is not installed): pip install 'natix-miner[report]'"),
    (["fetch-model", "openai/clip-vit-base-patch32", "--out", "artifacts/clip"], VLM,
     "fetching a model from the hub needs the vlm extra (huggingface_hub is not installed): pip install 'natix-miner[vlm]'"),
])
def test_a_command_names_the_extra_it_lacks_in_one_line(argv, blocked, said):
    done = cli_without(blocked, *argv)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == said and done.stdout == ""


def test_the_top_level_help_says_which_commands_need_an_extra():
    done = cli_without(TRAIN + VLM + ("matplotlib", "sglang", "modelopt"), "--help")
    assert done.returncode == 0, done.stderr
    assert "train the YOLO detector tier on procedural challenges [needs the train extra]" in " ".join(done.stdout.split())
    assert "quantize and export a VLM judge from a recipe (compression/recipes/) [needs the gpu extra]" in " ".join(done.stdout.split())


def test_the_miner_names_the_extra_a_tier_of_its_cascade_needs(tmp_path):
    """A classifier tier with runtime torch on a base install: the miner stops at the cascade with
    one line and exit 2, as for any other configuration problem."""
    config = tmp_path / "torch-tier.yaml"
    config.write_text(yaml.safe_dump({"tiers": [{"name": "lite0", "kind": "classifier", "model": "builtin:efficientnet-lite0-roadwork"}]}))
    argv = ["neurons/miner.py", "--local", "--wallet.path", str(tmp_path / "w"), "--neuron.state_dir", str(tmp_path / "state"),
            "--axon.ip", "127.0.0.1", "--axon.port", str(free_port()), "--config", str(config)]
    done = run_without(TRAIN, f"import runpy\nsys.argv = {argv!r}\nrunpy.run_path('neurons/miner.py', run_name='__main__')\n")
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    assert (f"natix-miner: cannot load the cascade from {config}: tier 'lite0' (classifier) needs the train extra "
            "(torch is not installed): pip install 'natix-miner[train]'") in output


def test_a_vlm_tier_names_the_vlm_extra_not_train():
    config = {"tiers": [{"name": "vit", "kind": "hf_classifier", "model": "/nowhere"}]}
    code = (
        "from cascade.config import CascadeConfig, build_tier\n"
        "from cascade.extras import MissingExtra\n"
        f"config = CascadeConfig.model_validate({json.dumps(config)})\n"
        "try:\n"
        "    build_tier(config, config.tiers[0])\n"
        "except MissingExtra as exc:\n"
        "    print(exc)\n"
    )
    done = run_without(VLM, code)
    assert done.stdout.strip() == "tier 'vit' (hf_classifier) needs the vlm extra (torch is not installed): pip install 'natix-miner[vlm]'", done.stderr


def test_an_import_error_of_something_else_is_not_dressed_as_an_extra():
    with pytest.raises(ModuleNotFoundError, match="no_such_library"):
        with require_extra("natix-miner train", "train"):
            import no_such_library  # noqa: F401
    with pytest.raises(MissingExtra, match="needs the gpu extra \\(sglang is not installed\\)"):
        with require_extra("natix-miner build", "gpu"):
            raise ModuleNotFoundError("No module named 'sglang'", name="sglang")


@pytest.mark.parametrize("preset", list_presets())
def test_each_preset_declares_the_extras_its_tiers_need(preset):
    """run_miner.sh installs what `requires:` lists; the tiers are what the miner will import."""
    config = load_config(preset, check_models=False)
    needed = {tier_extra(t.kind, t.runtime) for t in config.tiers} - {None}
    assert set(config.requires) == needed
    assert missing_extras(config.tiers, lambda module: False).keys() == needed
