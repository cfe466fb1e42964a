"""A new operator's install: a fresh venv, `pip install .` (not editable, no extra), and the miner
started from it in local mode answers a bittensor 9.12.2 dendrite; torch is not even installed.

Packages come from PyPI (or the machine's pip cache and wheelhouse), never from a model hub. About
a minute on 2 cores with a warm pip cache, most of it pip.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import bittensor as bt
import pytest

from cascade.config import build_cascade, load_config
from cascade.image import decode_base64_image
from tests.payloads import b64, jpeg_bytes
from tests.wire.harness import CLIENT, client_python, client_reply, free_port

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ("pyproject.toml", "README.md", "natix_miner", "cascade", "compression")
MAX_VENV_BYTES = 600 * 1024 * 1024


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory) -> Path:
    """The package copied out of the checkout (so the build leaves nothing in it), installed into a
    new venv by this interpreter's pip (pip --python: the venv needs no pip of its own)."""
    tmp = tmp_path_factory.mktemp("base-install")
    source = tmp / "source"
    source.mkdir()
    for name in PACKAGE:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-compile",
         "--disable-pip-version-check", "--progress-bar", "off", str(source)],
        capture_output=True, text=True, timeout=900, cwd=tmp,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(f"pip install . into a fresh venv: {time.perf_counter() - started:.0f} s, {folder_bytes(venv) / 1e6:.0f} MB")
    return venv


def clean_env() -> dict:
    """No PYTHONPATH: the installed package must be what runs, not this checkout."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def test_the_base_install_holds_no_model_library_and_stays_small(base_venv):
    probe = ("import importlib.util, json, natix_miner\n"
             "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in "
             "('torch', 'torchvision', 'timm', 'ultralytics', 'transformers', 'onnx', 'matplotlib', 'onnxruntime', 'bittensor')}"
             " | {'where': natix_miner.__file__}))")
    done = subprocess.run([str(base_venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, env=clean_env(), cwd=base_venv, timeout=60)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert "site-packages" in found.pop("where")
    assert found == {"torch": False, "torchvision": False, "timm": False, "ultralytics": False, "transformers": False,
                     "onnx": False, "matplotlib": False, "onnxruntime": True, "bittensor": True}
    assert folder_bytes(base_venv) <= MAX_VENV_BYTES


def test_the_installed_miner_answers_a_912_dendrite_in_local_mode(base_venv, tmp_path):
    validator = bt.Keypair.create_from_uri("//Alice").ss58_address
    ready = tmp_path / "ready.json"
    port = free_port()
    log = (tmp_path / "miner.log").open("w")
    miner = subprocess.Popen(
        [str(base_venv / "bin" / "natix-miner"), "run", "--local", "--wallet.path", str(tmp_path / "wallets"),
         "--neuron.state_dir", str(tmp_path / "state"), "--axon.ip", "127.0.0.1", "--axon.port", str(port),
         "--local.ready_file", str(ready), "--local.validator_hotkey", validator],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=clean_env(),
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert miner.poll() is None, (tmp_path / "miner.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "miner.log").read_text()
            time.sleep(0.2)
        info = json.loads(ready.read_text())
        images = [b64(jpeg_bytes(seed, roadwork, size=(1024, 768))) for seed, roadwork in ((1, True), (2, False))]
        job = {"axon": {"ip": info["ip"], "port": info["port"], "hotkey": info["hotkey"]}, "signer": {"uri": "//Alice"},
               "requests": [{"synapse": "ImageSynapse", "image": image} for image in images], "concurrency": 1, "timeout": 9}
        done = subprocess.run([client_python(), str(CLIENT), "--job", "-"], input=json.dumps(job), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        reply = client_reply(done.stdout)
    finally:
        miner.terminate()
        miner.wait(30)
        log.close()
    assert reply["bittensor"] == "9.12.2" or not os.environ.get("NATIX_FULL_TEST_ENV")
    assert [r["status_code"] for r in reply["results"]] == [200, 200], reply
    # The same answers as this checkout's cascade in this (full) install, in-process.
    config = load_config("cpu-default")
    cascade = build_cascade(config)
    try:
        expected = [cascade.predict(decode_base64_image(image, config.image.limits())).probability for image in images]
    finally:
        cascade.close()
    assert [r["prediction"] for r in reply["results"]] == pytest.approx(expected, abs=1e-4)
    text = (tmp_path / "miner.log").read_text()
    assert text.count("(onnxruntime)") >= 2 and "Traceback" not in text
