import json
import os

import numpy as np
import pytest

from cascade.lab.datasets import open_labelled, parse_label
from cascade.scenes import generate_scene


def make_folder(root, count=6):
    for label, name in ((True, "roadwork"), (False, "none")):
        (root / name).mkdir(parents=True)
        for i in range(count):
            generate_scene(i, roadwork=label, size=64).image.save(root / name / f"{name}-{i}.png")
    return root


def test_folder_splits_are_disjoint_and_stable(tmp_path):
    root = make_folder(tmp_path / "data", count=20)
    train = open_labelled(str(root), 0.3, "train")
    heldout = open_labelled(str(root), 0.3, "heldout")
    assert len(train) + len(heldout) == 40 and len(heldout) > 0
    assert len(open_labelled(str(root), 0.3, "heldout")) == len(heldout)
    image, label = train.sample(np.random.default_rng(0))
    assert image.mode == "RGB" and label in (0.0, 1.0)


def test_labels_csv(tmp_path):
    make_folder(tmp_path / "data")
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\n" + "".join(f"data/roadwork/roadwork-{i}.png,roadwork\n" for i in range(6))
                   + "".join(f"data/none/none-{i}.png,0\n" for i in range(6)))
    items = open_labelled(str(csv), split="all")
    assert sorted(label for _, label in items.items) == [0.0] * 6 + [1.0] * 6
    assert items.items[0][0]().size == (64, 64)


def test_saved_hugging_face_dataset_with_class_names(tmp_path):
    datasets = pytest.importorskip("datasets")
    images = [generate_scene(i, roadwork=bool(i % 2), size=64).image for i in range(8)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["none", "roadwork"])})
    dataset = datasets.Dataset.from_dict({"image": images, "label": [i % 2 for i in range(8)]}, features=features)
    dataset.save_to_disk(str(tmp_path / "hf"))
    items = open_labelled(str(tmp_path / "hf"), split="all")
    assert sorted(label for _, label in items.items) == [0.0] * 4 + [1.0] * 4
    assert items.sample(np.random.default_rng(1))[0].size == (64, 64)


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(ValueError, match="neither roadwork"):
        parse_label("maybe")
    (tmp_path / "roadwork").mkdir()
    with pytest.raises(FileNotFoundError, match="none/"):
        open_labelled(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not a folder"):
        open_labelled(str(tmp_path / "missing.txt"))


def make_roadwork_layout(root, train=4, val=2):
    """ROADWork's layout: scene/images/*.jpg and COCO-style scene/annotations/instances_<split>_gps_split.json."""
    scene = root / "scene"
    (scene / "images").mkdir(parents=True)
    (scene / "annotations").mkdir()
    names = {"train": [f"pgh01_{i:04d}.jpg" for i in range(train)], "val": [f"boston_02_03_{i:04d}.jpg" for i in range(val)]}
    for part, files in names.items():
        for i, name in enumerate(files):
            generate_scene(100 + i + 50 * (part == "val"), roadwork=True, size=64).image.save(scene / "images" / name)
        coco = {"images": [{"id": i, "file_name": name, "width": 64, "height": 64} for i, name in enumerate(files)],
                "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 8, 8]} for i in range(len(files))],
                "categories": [{"id": 1, "name": "cone"}]}
        (scene / "annotations" / f"instances_{part}_gps_split.json").write_text(json.dumps(coco))
    return root, names


def test_roadwork_layout_keeps_its_own_split_and_needs_negatives_from_elsewhere(tmp_path):
    root, names = make_roadwork_layout(tmp_path / "roadwork")
    streets = tmp_path / "streets"
    (streets / "none").mkdir(parents=True)
    for i in range(10):
        generate_scene(i, roadwork=False, size=64).image.save(streets / "none" / f"street-{i}.jpg")
    with pytest.raises(FileNotFoundError, match=f"only roadwork images: add images without roadwork .*'{os.pathsep}'"):
        open_labelled(str(root), split="train")
    assert len(open_labelled(str(root / "scene"), split="heldout")) == len(names["val"])  # the scene folder itself works too

    mixed = f"{root}{os.pathsep}{streets}"
    train, heldout = open_labelled(mixed, 0.3, "train"), open_labelled(mixed, 0.3, "heldout")
    street_heldout = len(open_labelled(str(streets), 0.3, "heldout"))
    assert sorted(label for _, label in train.items) == [0.0] * (10 - street_heldout) + [1.0] * len(names["train"])
    assert sorted(label for _, label in heldout.items) == [0.0] * street_heldout + [1.0] * len(names["val"])
    assert 0 < street_heldout < 10
    # 4 roadwork and ~7 street images in training, yet labels come 50/50, as validators draw them
    rng = np.random.default_rng(0)
    labels = [train.sample(rng)[1] for _ in range(400)]
    assert 0.42 < np.mean(labels) < 0.58
    assert train.sample(rng)[0].size == (64, 64)


def test_roadwork_layout_names_a_missing_image(tmp_path):
    root, names = make_roadwork_layout(tmp_path / "roadwork")
    (root / "scene" / "images" / names["val"][0]).unlink()
    with pytest.raises(FileNotFoundError, match=f"lists {names['val'][0]}, not found .*images.zip"):
        open_labelled(str(root), split="heldout")


def test_training_reads_roadwork_and_street_photos(tmp_path):
    from cascade.lab.training import TrainConfig, train

    root, _ = make_roadwork_layout(tmp_path / "roadwork")
    make_folder(tmp_path / "streets", count=4)
    data = f"{root}{os.pathsep}{tmp_path / 'streets'}"
    config = TrainConfig(out=str(tmp_path / "run"), steps=1, batch_size=2, image_size=64, threads=1, init="random", device="cpu", data=data)
    assert (train(config, log=lambda line: None) / "manifest.yaml").is_file()
