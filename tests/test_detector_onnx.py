"""The detector tier served from detector.onnx by ONNX Runtime, with numpy around the graph: the same
boxes as ultralytics' torch predictor, no torch in the process, a shipped file that is current."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from cascade.config import builtin_model_folder
from cascade.scenes import generate_scene
from cascade.runtimes.onnx_cpu import file_sha256
from cascade.tiers.detector import DetectorTier
from natix_miner.tools.cli import main as cli

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = builtin_model_folder("builtin:yolo11n-roadwork")


@pytest.fixture(scope="module")
def shipped_tiers():
    return DetectorTier(SHIPPED, "detector", runtime="onnxruntime"), DetectorTier(SHIPPED, "detector")


def scenes():
    """Whole 224 px scenes (the challenges' size: no resize, no padding), with and without roadwork;
    larger ones (resized); a wide crop (padded to a 224 x 128 rectangle)."""
    square = [generate_scene(seed, roadwork=seed % 3 != 0).image for seed in range(6)]
    resized = [generate_scene(seed, roadwork=True, size=(640, 360)).image for seed in (0, 2)]
    return square + resized + [generate_scene(7, roadwork=True).image.resize((224, 126))]


def assert_same_detections(onnx_found, torch_found, confidence_tolerance, box_tolerance, relative=False):
    assert [d.class_id for d in onnx_found] == [d.class_id for d in torch_found]
    for ours, theirs in zip(onnx_found, torch_found):
        tolerance = {"rel": confidence_tolerance} if relative else {"abs": confidence_tolerance}
        assert ours.confidence == pytest.approx(theirs.confidence, **tolerance)
        assert np.allclose(ours.box, theirs.box, atol=box_tolerance)


def test_onnx_and_torch_find_the_same_boxes_with_the_shipped_weights(shipped_tiers):
    """The tier squashes every frame to its 224 px square, so both graphs see the same pixels: equal
    to float noise, the same explanations."""
    onnx_tier, torch_tier = shipped_tiers
    images = scenes()
    onnx_found, torch_found = onnx_tier.detections(images), torch_tier.detections(images)  # one batch each
    assert sum(len(found) for found in onnx_found) >= 20  # enough boxes for the comparison to mean something
    for ours, theirs in zip(onnx_found, torch_found):
        assert_same_detections(ours, theirs, 1e-4, 0.01)
    for ours, theirs in zip(onnx_tier.predict(images), torch_tier.predict(images)):
        assert ours.evidence == theirs.evidence
        assert ours.probability == pytest.approx(theirs.probability, abs=1e-4)
    assert any(output.evidence == "" for output in onnx_tier.predict(images[:6]))  # a scene without roadwork


def test_the_onnx_runtime_letterboxes_other_shapes_as_ultralytics_does(shipped_tiers):
    """Below the tier, each runtime on its own takes any shape and letterboxes it. Resized frames
    differ by at most one grey level on a few per cent of pixels (numpy vs OpenCV rounding):
    confidences within 5e-3, boxes within a pixel of the frame's own."""
    onnx_tier, torch_tier = shipped_tiers
    right_edges = []
    for image in scenes()[6:]:  # one at a time: ultralytics pads a batch of mixed shapes to a square
        ours, theirs = onnx_tier.model.detect([image])[0], torch_tier.model.detect([image])[0]
        assert_same_detections(ours, theirs, 5e-3, 1.0)
        right_edges += [d.box[2] for d in ours]
    assert len(right_edges) >= 5 and max(right_edges) > 224  # boxes in the 640 px frame's own pixels


def test_an_onnx_answer_does_not_depend_on_the_batch_it_came_in(shipped_tiers):
    onnx_tier, _ = shipped_tiers
    images = scenes()
    alone = [onnx_tier.predict([image])[0] for image in images]
    assert onnx_tier.predict(images[::-1])[::-1] == alone


def test_serving_the_onnx_detector_imports_neither_torch_nor_ultralytics(tmp_path):
    """The tier built from a YAML with runtime onnxruntime, as the miner builds it, in a fresh process."""
    config = tmp_path / "detector.yaml"
    config.write_text(yaml.safe_dump({"tiers": [
        {"name": "detector", "kind": "detector", "model": "builtin:yolo11n-roadwork", "runtime": "onnxruntime"},
    ]}))
    image = tmp_path / "scene.png"
    generate_scene(1, roadwork=True).image.save(image)
    script = (
        "import json, sys\n"
        "from PIL import Image\n"
        "from cascade.config import build_tier, load_config\n"
        f"config = load_config({str(config)!r})\n"
        "tier = build_tier(config, config.tiers[0])\n"
        f"output = tier.predict([Image.open({str(image)!r})])[0]\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'ultralytics', 'cv2'))\n"
        "print(json.dumps({'evidence': output.evidence, 'describe': tier.describe(), 'heavy': heavy}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["evidence"] and "(onnxruntime)" in result["describe"]


def test_the_shipped_onnx_file_is_current_and_recorded():
    recorded = yaml.safe_load((SHIPPED / "manifest.yaml").read_text())["onnx"]
    assert recorded["source_sha256"] == file_sha256(SHIPPED / "detector.pt")
    assert recorded["sha256"] == file_sha256(SHIPPED / "detector.onnx")
    assert recorded["opset"] == 17 and recorded["image_size"] == 224
    assert recorded["command"] == "natix-miner export-onnx builtin:yolo11n-roadwork"


def test_export_onnx_rebuilds_the_shipped_file_byte_for_byte(tmp_path, capsys):
    """The one command, on a copy of the builtin folder: same bytes when the recorded torch, onnx and
    ultralytics versions are the ones installed (another version may trace an equivalent graph)."""
    import onnx
    import torch
    import ultralytics

    folder = tmp_path / "yolo"
    folder.mkdir()
    for name in ("detector.pt", "manifest.yaml"):
        shutil.copyfile(SHIPPED / name, folder / name)
    assert cli(["export-onnx", str(folder)]) == 0
    assert "exported" in capsys.readouterr().out
    recorded = yaml.safe_load((folder / "manifest.yaml").read_text())["onnx"]
    shipped = yaml.safe_load((SHIPPED / "manifest.yaml").read_text())["onnx"]
    assert recorded["source_sha256"] == shipped["source_sha256"] and recorded["command"] == f"natix-miner export-onnx {folder}"
    assert recorded["sha256"] == file_sha256(folder / "detector.onnx")
    installed = f"ultralytics {ultralytics.__version__}, torch {torch.__version__.split('+')[0]}, onnx {onnx.__version__}"
    if installed != shipped["exported_with"]:
        pytest.skip(f"shipped file exported with {shipped['exported_with']}, this is {installed}")
    assert (folder / "detector.onnx").read_bytes() == (SHIPPED / "detector.onnx").read_bytes()


def test_nms_matches_ultralytics_on_a_crowd_of_boxes(tmp_path):
    """Random weights at a tiny threshold fire everywhere: hundreds of candidates, large overlapping
    boxes, dozens kept, so the numpy NMS is compared with torchvision's on many suppressions."""
    from ultralytics import YOLO

    folder = tmp_path / "random"
    folder.mkdir()
    YOLO("yolo11n.yaml", task="detect").save(str(folder / "detector.pt"))
    assert cli(["export-onnx", str(folder)]) == 0
    settings = dict(min_confidence=1e-5, classes={"0": "cone", "1": "barrier", "2": "sign"})
    onnx_tier = DetectorTier(folder, "random", runtime="onnxruntime", **settings)
    torch_tier = DetectorTier(folder, "random", **settings)
    images = [generate_scene(seed, roadwork=True).image for seed in range(2)]
    onnx_found, torch_found = onnx_tier.detections(images), torch_tier.detections(images)
    assert min(len(found) for found in torch_found) >= 20
    for ours, theirs in zip(onnx_found, torch_found):
        assert_same_detections(ours, theirs, 1e-3, 0.01, relative=True)  # confidences here are ~1e-4
    for ours, theirs in zip(onnx_tier.predict(images), torch_tier.predict(images)):
        assert ours.evidence == theirs.evidence and ours.probability == pytest.approx(theirs.probability, abs=1e-6)


def test_a_missing_or_stale_onnx_file_names_the_command_that_fixes_it(tmp_path):
    folder = tmp_path / "yolo"
    folder.mkdir()
    shutil.copyfile(SHIPPED / "detector.pt", folder / "detector.pt")
    with pytest.raises(FileNotFoundError, match=f"natix-miner export-onnx {folder}"):
        DetectorTier(folder, "detector", runtime="onnxruntime")
    for name in ("detector.onnx", "manifest.yaml"):
        shutil.copyfile(SHIPPED / name, folder / name)
    assert DetectorTier(folder, "detector", runtime="onnxruntime").runtime == "onnxruntime"
    assert DetectorTier(folder / "detector.pt", "detector", runtime="onnxruntime").model.names[0] == "cone"  # the .onnx beside it
    with (folder / "detector.pt").open("ab") as weights:
        weights.write(b"retrained")  # a new checkpoint, not yet exported
    with pytest.raises(ValueError, match=f"re-export it with `natix-miner export-onnx {folder}`"):
        DetectorTier(folder, "detector", runtime="onnxruntime")
    with pytest.raises(ValueError, match="runs on the CPU"):
        DetectorTier(SHIPPED, "detector", device="cuda", runtime="onnxruntime")
