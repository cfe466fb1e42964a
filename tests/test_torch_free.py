"""Serving a CPU preset, and the operator's everyday commands, never import a model library: the
base install (no torch) runs them, and they start in a fraction of the time. Each case runs in a
fresh interpreter, where the full dev install could import torch and friends if anything asked."""

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

from cascade.scenes import generate_scene
from natix_miner.serving.journal import RequestJournal
from natix_miner.serving.wallet import load_wallet
from tests.wire.harness import free_port

ROOT = Path(__file__).resolve().parent.parent
MODEL_LIBRARIES = ("torch", "torchvision", "timm", "ultralytics", "transformers", "onnx", "sglang", "modelopt")
REPORT_LOADED = (
    "import json\n"
    f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({MODEL_LIBRARIES!r}))\n"
    "print('LOADED ' + json.dumps(loaded))\n"
)


def loaded_after(code: str) -> tuple[list[str], str]:
    """The model libraries imported by `code` in a fresh interpreter, and what it printed."""
    done = subprocess.run([sys.executable, "-c", "import sys\n" + code + REPORT_LOADED], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("LOADED "), done.stdout
    return json.loads(last[len("LOADED "):]), done.stdout


def test_the_serving_path_answers_with_cpu_default_without_a_model_library():
    """What neurons/miner.py imports (natix_miner.serving.neuron pulls in every serving module), the
    cpu-default cascade built as the miner builds it, and an answer to a decoded JPEG."""
    buffer = io.BytesIO()
    generate_scene(11, roadwork=True, size=(1024, 1024)).image.save(buffer, format="JPEG")
    payload = base64.b64encode(buffer.getvalue()).decode()
    code = (
        "import natix_miner.serving.neuron, natix_miner.tools.client, natix_miner.serving.forward, natix_miner.serving.metrics\n"
        "from cascade.config import build_cascade, load_config\n"
        "from cascade.image import decode_base64_image\n"
        "config = load_config('cpu-default')\n"
        "cascade = build_cascade(config)\n"
        f"answer = cascade.predict(decode_base64_image({payload!r}, config.image.limits()))\n"
        "print('ANSWER', answer.probability, ' | '.join(cascade.describe()))\n"
        "cascade.close()\n"
    )
    loaded, printed = loaded_after(code)
    assert loaded == []
    answer = next(line for line in printed.splitlines() if line.startswith("ANSWER ")).split(" ", 2)
    assert 0.0 <= float(answer[1]) <= 1.0
    assert answer[2].count("(onnxruntime)") == 2  # both tiers in ONNX Runtime


def test_help_status_doctor_and_report_help_load_no_model_library(tmp_path):
    wallets = tmp_path / "wallets"
    load_wallet("miner", "hot", str(wallets), create_missing=True)
    journal = tmp_path / "journal.sqlite"
    RequestJournal(journal).close()
    runs = [
        ["--help"], ["status", "--help"], ["report", "--help"], ["doctor", "--help"],
        ["status", "--journal", str(journal)],
        ["doctor", "--local", "--config", "cpu-default", "--wallet.name", "miner", "--wallet.hotkey", "hot",
         "--wallet.path", str(wallets), "--neuron.state_dir", str(tmp_path / "state"),
         "--axon.ip", "127.0.0.1", "--axon.port", str(free_port())],
    ]
    code = (
        "from natix_miner.tools.cli import main\n"
        f"for argv in {runs!r}:\n"
        "    try:\n"
        "        code = main(argv)\n"
        "    except SystemExit as stop:\n"
        "        code = stop.code\n"
        "    print('EXIT', argv[0], code)\n"
    )
    loaded, printed = loaded_after(code)
    assert loaded == []
    exits = [line for line in printed.splitlines() if line.startswith("EXIT ")]
    assert exits == ["EXIT --help 0", "EXIT status 0", "EXIT report 0", "EXIT doctor 0", "EXIT status 0", "EXIT doctor 0"], printed
    assert "ready to start" in printed  # the doctor ran every check, models and extras included
