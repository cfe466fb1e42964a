"""The classifier tier served from the shipped classifier.onnx with numpy preprocessing: the same
answers as the torch model on decoded challenges and photographs, a file that is current with the
weights beside it, rebuilt byte for byte by one command, and no torch when torch is not there."""

import base64
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from cascade.config import builtin_model_folder
from cascade.image import decode_base64_image
from cascade.runtimes.onnx_cpu import file_sha256
from cascade.scenes import generate_scene
from cascade.tiers.classifier import BACKBONE_FILE, HEAD_FILE, MANIFEST, ONNX_FILE, ClassifierTier
from natix_miner.tools.cli import main as cli

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = builtin_model_folder("builtin:efficientnet-lite0-roadwork")
REBUILD = "natix-miner export-onnx builtin:efficientnet-lite0-roadwork"
STALE = f"the shipped {ONNX_FILE} does not match the lite0 weights beside it: run `{REBUILD}` and commit both files"


def copy_folder(tmp_path, names=(BACKBONE_FILE, HEAD_FILE, MANIFEST, ONNX_FILE)) -> Path:
    folder = tmp_path / "lite0"
    folder.mkdir()
    for name in names:
        shutil.copyfile(SHIPPED / name, folder / name)
    return folder


def decoded_images() -> list[Image.Image]:
    """What the miner's forward hands the tier: v0.4 challenges (JPEG quality 75 at the stored size,
    procedural scenes at validators' frame sizes) and two photographs scikit-learn ships, each
    base64-decoded under the default limits (drafted to 224 px)."""
    from sklearn.datasets import load_sample_images

    from cascade.lab.challenge import make_challenge

    rng = np.random.default_rng(3)
    frames = [generate_scene(7_000 + i, roadwork=i % 2 == 0, size=size).image
              for i, size in enumerate([(1024, 1024), (1920, 1080), (640, 480), (1280, 720)] * 3)]
    frames += [Image.fromarray(photo) for photo in load_sample_images().images]
    payloads = [make_challenge(frame, rng, pipeline="v0.4").jpeg for frame in frames]
    return [decode_base64_image(base64.b64encode(jpeg).decode()) for jpeg in payloads]


def test_the_shipped_classifier_onnx_is_current_and_recorded():
    manifest = yaml.safe_load((SHIPPED / MANIFEST).read_text())
    recorded = manifest.get("onnx") or pytest.fail(f"{SHIPPED / MANIFEST} records no onnx export: run `{REBUILD}`")
    for name in (BACKBONE_FILE, HEAD_FILE):
        assert recorded["sources"][name] == file_sha256(SHIPPED / name), STALE
    assert recorded["sha256"] == file_sha256(SHIPPED / ONNX_FILE), STALE
    assert (recorded["opset"], recorded["input_size"]) == (17, manifest["input_size"])
    assert recorded["command"] == REBUILD
    assert ClassifierTier(SHIPPED, runtime="onnxruntime")._run.source == ONNX_FILE


def test_the_onnx_file_answers_as_the_torch_model_on_decoded_images():
    """Also what fails first when lite0 is retrained and the file is not re-exported."""
    onnx_tier, torch_tier = ClassifierTier(SHIPPED, runtime="onnxruntime"), ClassifierTier(SHIPPED)
    images = decoded_images()
    ours, theirs = onnx_tier.predict(images), torch_tier.predict(images)
    assert max(abs(a.probability - b.probability) for a, b in zip(ours, theirs)) <= 1e-4, STALE
    assert onnx_tier.logits(images) == pytest.approx(torch_tier.logits(images), abs=1e-4), STALE
    decided = [round(o.probability) for o in ours]
    assert 0 < sum(decided) < len(decided)  # both classes among the answers: the comparison means something


def test_export_onnx_rebuilds_the_shipped_file_byte_for_byte(tmp_path, capsys):
    """The one command on a copy of the builtin folder: same bytes when the recorded torch and onnx
    versions are the ones installed (another version may trace an equivalent graph)."""
    import onnx
    import torch

    folder = copy_folder(tmp_path, (BACKBONE_FILE, HEAD_FILE, MANIFEST))
    assert cli(["export-onnx", str(folder)]) == 0
    assert "exported" in capsys.readouterr().out
    recorded = yaml.safe_load((folder / MANIFEST).read_text())["onnx"]
    shipped = yaml.safe_load((SHIPPED / MANIFEST).read_text())["onnx"]
    assert recorded["sources"] == shipped["sources"] and recorded["command"] == f"natix-miner export-onnx {folder}"
    assert recorded["sha256"] == file_sha256(folder / ONNX_FILE)
    assert ClassifierTier(folder, runtime="onnxruntime")._run.source == ONNX_FILE
    installed = f"torch {torch.__version__.split('+')[0]}, onnx {onnx.__version__}"
    if installed != shipped["exported_with"]:
        pytest.skip(f"shipped file exported with {shipped['exported_with']}, this is {installed}")
    assert (folder / ONNX_FILE).read_bytes() == (SHIPPED / ONNX_FILE).read_bytes()


def test_a_stale_or_unrecorded_onnx_file_names_the_command_that_fixes_it(tmp_path):
    folder = copy_folder(tmp_path)
    assert ClassifierTier(folder, runtime="onnxruntime")._run.source == ONNX_FILE
    with (folder / HEAD_FILE).open("ab") as head:
        head.write(b" ")  # retrained weights, not yet exported
    with pytest.raises(ValueError, match=f"other weights than the {HEAD_FILE} beside it: re-export it with `natix-miner export-onnx {folder}`"):
        ClassifierTier(folder, runtime="onnxruntime")
    manifest = yaml.safe_load((folder / MANIFEST).read_text())
    del manifest["onnx"]  # a manifest `train` wrote, copied over an old folder
    (folder / MANIFEST).write_text(yaml.safe_dump(manifest))
    with pytest.raises(ValueError, match=f"not recorded in .*re-export it with `natix-miner export-onnx {folder}`"):
        ClassifierTier(folder, runtime="onnxruntime")


def test_the_builtin_folder_is_named_as_builtin_in_the_fix(tmp_path, monkeypatch):
    from cascade.tiers import classifier

    monkeypatch.setattr(classifier, "BUILTIN_DIR", tmp_path.resolve())
    folder = copy_folder(tmp_path)
    (folder / HEAD_FILE).write_bytes(b"retrained")
    with pytest.raises(ValueError, match="re-export it with `natix-miner export-onnx builtin:lite0`"):
        ClassifierTier(folder, runtime="onnxruntime")


def test_a_folder_without_onnx_exports_at_load_with_torch_and_names_the_extra_without(tmp_path):
    folder = copy_folder(tmp_path, (BACKBONE_FILE, HEAD_FILE, MANIFEST))
    manifest = yaml.safe_load((folder / MANIFEST).read_text())
    del manifest["onnx"]
    (folder / MANIFEST).write_text(yaml.safe_dump(manifest))
    image = generate_scene(1, roadwork=True).image
    exported = ClassifierTier(folder, runtime="onnxruntime")
    assert exported._run.source == "exported at load"
    assert exported.predict([image])[0].probability == pytest.approx(ClassifierTier(SHIPPED, runtime="onnxruntime").predict([image])[0].probability, abs=1e-6)
    script = (
        "import sys\n"
        "sys.modules['torch'] = None  # as in a base install\n"
        "from cascade.extras import MissingExtra\n"
        "from cascade.tiers.classifier import ClassifierTier\n"
        "try:\n"
        f"    ClassifierTier({str(folder)!r}, runtime='onnxruntime')\n"
        "except MissingExtra as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    said = done.stdout.strip()
    assert said == (f"{folder} has no {ONNX_FILE} (`natix-miner export-onnx {folder}` writes it); exporting it at load "
                    "needs the train extra (torch is not installed): pip install 'natix-miner[train]'")
