from pathlib import Path

import numpy as np
import pytest
import yaml

from cascade.config import build_cascade, load_config
from cascade.lab.detector_training import CLASSES, DetectorConfig, train_detector, write_dataset, yolo_labels
from cascade.scenes import generate_scene


def test_labels_are_the_boxes_of_what_is_left():
    mask = np.zeros((100, 200), bool)
    mask[10:30, 50:90] = True  # rows 10-29, columns 50-89
    speck = np.zeros((100, 200), bool)
    speck[0:2, 0:3] = True  # 6 pixels: what a crop left of an object is not worth a label
    assert yolo_labels([mask, speck], ["barrier", "cone"]) == [f"{CLASSES.index('barrier')} 0.350000 0.200000 0.200000 0.200000"]


def test_the_dataset_is_rebuilt_identically_and_labels_only_positives(tmp_path):
    config = DetectorConfig(out=str(tmp_path), images=20, val_fraction=0.25)
    data = yaml.safe_load(write_dataset(config).read_text())
    root = tmp_path / "dataset"
    assert data["names"] == dict(enumerate(CLASSES))
    assert len(list((root / "images" / "val").glob("*.jpg"))) == 5 and len(list((root / "images" / "train").glob("*.jpg"))) == 15
    image, label = root / "images" / "train" / "000007.jpg", root / "labels" / "train" / "000007.txt"
    before = image.read_bytes(), label.read_text()
    image.unlink()
    write_dataset(config)
    assert (image.read_bytes(), label.read_text()) == before
    labelled = [p for p in (root / "labels").rglob("*.txt") if p.read_text()]
    assert 3 <= len(labelled) <= 17  # about half the challenges show roadwork
    for path in labelled:
        for line in path.read_text().splitlines():
            cls, *box = line.split()
            assert 0 <= int(cls) < len(CLASSES) and all(0.0 <= float(v) <= 1.0 for v in box)


def test_a_tiny_run_gives_a_detector_tier_a_preset_can_load(tmp_path):
    weights = train_detector(DetectorConfig(out=str(tmp_path), images=12, epochs=1, batch=4, image_size=64, workers=0), log=lambda line: None)
    tier = yaml.safe_load((tmp_path / "tier.yaml").read_text())
    preset = tmp_path / "with-detector.yaml"
    preset.write_text(yaml.safe_dump({"tiers": tier}))
    result = build_cascade(load_config(str(preset))).predict(generate_scene(4, roadwork=True).image)
    assert 0.0 <= result.probability <= 1.0
    manifest = yaml.safe_load((tmp_path / "manifest.yaml").read_text())
    assert manifest["classes"] == list(CLASSES) and manifest["metrics"]["best_epoch"] == 1
    assert 0.0 <= manifest["metrics"]["heldout_map50"] <= 1.0
    messages = []
    assert train_detector(DetectorConfig(out=str(tmp_path), images=12, epochs=1, batch=4, image_size=64, workers=0), log=messages.append) == weights
    assert "already trained" in messages[0]
    with pytest.raises(ValueError, match="other settings"):
        train_detector(DetectorConfig(out=str(tmp_path), images=12, epochs=2, batch=4, image_size=64, workers=0))


def test_photo_share_uses_training_photos_only_and_labels_pasted_roadwork(tmp_path, monkeypatch):
    """Photo images are crops of the pool's TRAINING photos (never held-out ones) at the size a v0.4
    validator sends; pasted roadwork is labelled with its objects, bare photos are hard negatives."""
    from PIL import Image

    from cascade.lab import detector_training
    from cascade.lab.composite import FRAME_SIZES
    from tests.test_photo_composites import _pool

    pool = _pool(tmp_path / "pool")
    opened = []
    real_open = Image.open
    monkeypatch.setattr(detector_training.Image, "open", lambda path, *a, **k: opened.append(Path(path)) or real_open(path, *a, **k))
    config = DetectorConfig(out=str(tmp_path / "run"), images=24, val_fraction=0.25, photos=str(pool), photo_share=1.0)
    write_dataset(config)
    assert opened and all(path.parent.parent.name == "train" for path in opened)  # pool/train/PKG/p.jpg
    root = tmp_path / "run" / "dataset"
    sizes = {real_open(p).size for p in (root / "images").rglob("*.jpg")}
    assert sizes <= set(FRAME_SIZES)  # stored size: v0.4, not squeezed to 224
    labels = [p.read_text() for p in (root / "labels").rglob("*.txt")]
    labelled = [text for text in labels if text]
    assert 4 <= len(labelled) <= 20 and len(labels) == 24  # about half carry roadwork
    assert {CLASSES[int(line.split()[0])] for text in labelled for line in text.splitlines()} <= {"cone", "barrier", "fence", "sign", "worker", "machine"}
    with pytest.raises(ValueError, match="--photo-share 1.5"):
        write_dataset(DetectorConfig(out=str(tmp_path / "bad"), images=2, photos=str(pool), photo_share=1.5))
