"""Roadwork pasted on real photos, and the labelled sets written from a pool."""

import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from cascade.lab import composite, photo_datasets
from cascade.lab.composite import HELDOUT_STYLES, MAX_OBJECT_HEIGHT, MIN_COVER, TRAIN_STYLES, composite_roadwork, crop_background
from cascade.lab.datasets import open_labelled


def _photo(seed: int, size=(320, 240)) -> Image.Image:
    """A stand-in photograph: a sky-to-ground gradient with texture (not flat, so blur and noise show)."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(200, 60, size[1], dtype=np.float32)[:, None, None]
    pixels = rows * np.array([0.8, 0.9, 1.0]) + rng.normal(0, 12, (size[1], size[0], 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.7))


def test_styles_kept_for_recall_are_not_trained_on():
    assert TRAIN_STYLES and HELDOUT_STYLES and not set(TRAIN_STYLES) & set(HELDOUT_STYLES)
    with pytest.raises(ValueError, match="unknown style"):
        composite_roadwork(_photo(0), random.Random(0), "purple")


@pytest.mark.parametrize("style", TRAIN_STYLES + HELDOUT_STYLES)
def test_composites_stand_on_the_ground_at_a_bounded_size_and_masks_match(style):
    for seed in range(6):
        background = _photo(seed)
        result = composite_roadwork(background, random.Random(seed), style)
        w, h = background.size
        assert result.image.mode == "RGB" and result.image.size == (w, h) and result.mask.size == (w, h)
        pixels = np.asarray(result.image, dtype=np.float32) / 255.0
        assert np.isfinite(pixels).all() and pixels.min() >= 0.0 and pixels.max() <= 1.0
        assert 0.3 * h <= result.horizon <= 0.5 * h
        assert result.boxes
        for _, (x0, y0, x1, y1) in result.boxes:
            assert y1 > result.horizon  # stands below the horizon: the lower part of the frame
            assert y1 - y0 <= MAX_OBJECT_HEIGHT * h
        mask = np.asarray(result.mask) > 0
        assert mask.sum() >= MIN_COVER * w * h
        near_boxes = np.zeros_like(mask)  # where objects, their soft edges and shadows may be
        for _, (x0, y0, x1, y1) in result.boxes:
            pad = max(4, (x1 - x0) // 4)
            near_boxes[max(0, y0 - pad):y1 + pad, max(0, x0 - pad):x1 + pad] = True
        assert not (mask & ~near_boxes).any()  # the mask is where the objects are
        change = np.abs(np.asarray(result.image, dtype=np.float32) - np.asarray(background, dtype=np.float32)).mean(axis=2)
        assert change[mask].mean() > 15  # the pasted objects changed the photo
        assert change[~near_boxes].mean() < 4  # elsewhere only sensor noise
        assert np.mean(np.nonzero(mask)[0]) > result.horizon


def test_objects_shrink_towards_the_horizon():
    sizes = []
    for seed in range(12):
        result = composite_roadwork(_photo(seed), random.Random(seed), "drums")  # one kind, so sizes compare
        for _, (x0, y0, x1, y1) in result.boxes:
            sizes.append(((y1 - result.horizon) / (240 - result.horizon), y1 - y0))
    depth, height = np.array(sizes).T
    assert len(sizes) > 20 and np.corrcoef(depth, height)[0, 1] > 0.5


def test_distractors_are_pasted_like_roadwork():
    for seed in range(4):
        background = _photo(seed)
        result = composite.composite_distractors(background, random.Random(seed))
        assert result.image.size == background.size and result.boxes
        mask = np.asarray(result.mask) > 0
        change = np.abs(np.asarray(result.image, dtype=np.float32) - np.asarray(background, dtype=np.float32)).mean(axis=2)
        assert mask.any() and change[mask].mean() > change[~mask].mean() + 5


def test_photo_texture_shades_flat_drawn_objects_and_keeps_their_outline():
    layer = Image.new("RGBA", (200, 150), (0, 0, 0, 0))
    ImageDraw.Draw(layer).rectangle([60, 40, 139, 129], fill=(245, 110, 10, 255))  # a flat orange object
    inside = np.zeros((150, 200), bool)
    inside[40:130, 60:140] = True
    for seed in range(4):
        out = composite.photo_texture(layer, [("cone", (60, 40, 140, 130))], _photo(seed, (320, 240)), random.Random(seed))
        assert out.size == layer.size and out.mode == "RGBA"
        assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(layer.getchannel("A")))  # the mask is unchanged
        rgb = np.asarray(out, dtype=np.float32)[..., :3]
        assert (rgb[~inside] == 0).all()  # nothing painted outside the object
        assert rgb[inside].std(axis=0).mean() > 3  # no longer one flat colour
        red, green, blue = rgb[inside].mean(axis=0)
        assert red > green > blue  # still orange


def test_training_frames_texture_roadwork_and_distractors_alike(monkeypatch):
    textured_flags: dict[str, list[bool]] = {"roadwork": [], "distractors": []}

    def recording(kind, make):
        def wrapper(*args, textured=False, **kwargs):
            textured_flags[kind].append(textured)
            return make(*args, textured=textured, **kwargs)
        return wrapper

    monkeypatch.setattr(composite, "composite_roadwork", recording("roadwork", composite.composite_roadwork))
    monkeypatch.setattr(composite, "composite_distractors", recording("distractors", composite.composite_distractors))
    rng = random.Random(3)
    for _ in range(160):
        composite.training_frame(_photo(rng.randrange(4)), rng, distractor_share=1.0)
    for kind, flags in textured_flags.items():  # both kinds about TEXTURED_SHARE textured: texture alone tells nothing
        assert len(flags) > 50 and abs(np.mean(flags) - composite.TEXTURED_SHARE) < 0.15, kind


def test_crop_background_keeps_the_frame_size():
    rng = random.Random(1)
    for size in ((512, 384), (200, 300)):
        assert crop_background(_photo(1, (640, 360)), rng, size).size == size


def _pool(root: Path) -> Path:
    entries = []
    for split, packages in (("train", ("pkg-a", "pkg-b")), ("heldout", ("pkg-c",))):
        for package in packages:
            for i in range(2):
                file = Path(split) / package / f"p{i}.jpg"
                (root / file).parent.mkdir(parents=True, exist_ok=True)
                _photo(len(entries), (300, 200)).save(root / file)
                entries.append({"file": str(file), "split": split, "package": package, "version": "1", "source": "deb",
                                "path": f"p{i}.jpg", "sha256": f"{len(entries):064x}", "licence": "CC0-1.0"})
    (root / "pool.json").write_text(json.dumps({"photos": entries}))
    return root


def test_datasets_layout_is_read_back_by_cascade_datasets(tmp_path, monkeypatch):
    pool = _pool(tmp_path / "pool")
    used = []
    real = composite.composite_roadwork

    def spy(background, rng, style):
        used.append(style)
        return real(background, rng, style)

    monkeypatch.setattr(photo_datasets, "composite_roadwork", spy)
    pasted = []
    monkeypatch.setattr(photo_datasets, "composite_distractors", lambda b, r: pasted.append(1) or composite.composite_distractors(b, r))
    counts = photo_datasets.write_datasets(pool, tmp_path / "sets", size=(128, 96), per_photo=2, distractor_share=1.0, log=lambda _: None)
    assert len(pasted) == 8  # every training negative, and no held-out one
    assert counts == {"train": {"roadwork": 8, "none": 8}, "heldout-negatives": {"roadwork": 0, "none": 4},
                      "heldout-recall": {"roadwork": 4, "none": 0}}
    assert set(used[:8]) <= set(TRAIN_STYLES) and set(used[8:]) <= set(HELDOUT_STYLES)
    train = open_labelled(str(tmp_path / "sets" / "train"), split="all")
    assert sorted(label for _, label in train.items) == [0.0] * 8 + [1.0] * 8
    image, _ = train.sample(np.random.default_rng(0))
    assert image.size == (128, 96)
    assert {label for _, label in open_labelled(str(tmp_path / "sets" / "heldout-negatives"), split="all").items} == {0.0}
    assert {label for _, label in open_labelled(str(tmp_path / "sets" / "heldout-recall"), split="all").items} == {1.0}
    assert not list((tmp_path / "sets" / "train").rglob("pkg-c*"))  # held-out packages never reach training
    for name in ("train", "heldout-recall"):  # a mask for every pasted image, where its roadwork is
        images = sorted(p.stem for p in (tmp_path / "sets" / name / "roadwork").glob("*.jpg"))
        assert sorted(p.stem for p in (tmp_path / "sets" / name / "masks").glob("*.png")) == images
        with Image.open(tmp_path / "sets" / name / "masks" / f"{images[0]}.png") as mask:
            assert mask.size == (128, 96) and mask.getextrema()[1] == 255
    assert all(f.name.startswith("pkg-c") for f in (tmp_path / "sets" / "heldout-recall").rglob("*.jpg"))
    photo_datasets.write_datasets(pool, tmp_path / "sets", size=(128, 96), per_photo=2, log=lambda _: None)
    first = sorted(p.read_bytes() for p in (tmp_path / "sets").rglob("*.jpg"))
    photo_datasets.write_datasets(pool, tmp_path / "sets", size=(128, 96), per_photo=2, log=lambda _: None)
    assert sorted(p.read_bytes() for p in (tmp_path / "sets").rglob("*.jpg")) == first  # same seed, same files


def test_photos_datasets_command_writes_the_sets(tmp_path, capsys):
    from natix_miner.tools.cli import main as cli

    pool = _pool(tmp_path / "pool")
    assert cli(["photos", "datasets", "--pool", str(pool), "--out", str(tmp_path / "sets"), "--per-photo", "1",
                "--width", "64", "--height", "48", "--scenes", "4"]) == 0
    assert "heldout-recall: 2 roadwork, 0 none" in capsys.readouterr().out
    assert json.loads((tmp_path / "sets" / "datasets.json").read_text())["counts"]["train"] == {"roadwork": 6, "none": 6}
    assert len(list((tmp_path / "sets" / "train" / "roadwork").glob("scene--*.jpg"))) == 2
    assert not list((tmp_path / "sets" / "heldout-recall").rglob("scene--*"))  # scenes only join training
    assert cli(["photos", "datasets", "--pool", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2  # no pool.json
