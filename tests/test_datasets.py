import numpy as np
import pytest

from cascade.datasets import open_labelled, parse_label
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
