"""Operators' labelled images, in the forms they come in, split into training and held-out.

  a folder with roadwork/ and none/ sub-folders;
  a CSV labels file: rows `path,label` (label 1/0, roadwork/none, true/false; paths relative to it);
  a Hugging Face dataset saved with `save_to_disk` (e.g. the NATIX roadwork set), with an image
  column and a label column;
  the ROADWork dataset (Carnegie Mellon, ICCV 2025): `scene/images/*.jpg` with COCO-style
  `scene/annotations/instances_<train|val>_gps_split.json`. Every image shows a work zone, so all
  are roadwork; its own geographic split is kept (val is held out), not our hash.
Several sources join with os.pathsep (`ROADWORK:STREETS`), e.g. ROADWork's roadwork with a folder
holding only none/ (street photos without roadwork); a folder may hold one class when another
source brings the other. Draws are class-balanced, 50/50 as validators choose labels.
Held-out membership is a stable hash of each item's id, so it never changes between runs.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
POSITIVE = {"1", "roadwork", "true", "yes"}
NEGATIVE = {"0", "none", "false", "no"}
Split = Literal["train", "heldout", "all"]


def parse_label(value) -> float:
    text = str(value).strip().lower()
    if text in POSITIVE:
        return 1.0
    if text in NEGATIVE:
        return 0.0
    raise ValueError(f"label {value!r} is neither roadwork (1/roadwork/true) nor none (0/none/false)")


def in_split(item_id: str, heldout_fraction: float, split: Split) -> bool:
    if split == "all":
        return True
    bucket = int(hashlib.sha256(item_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return (bucket < heldout_fraction) == (split == "heldout")


def _open_file(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


Item = tuple[Callable[[], Image.Image], float]


class LabelledImages:
    def __init__(self, items: list[Item], source: str):
        if not items:
            raise FileNotFoundError(f"no images for this split in {source}")
        self.items, self.source = items, source
        self.by_label = {label: [item for item in items if item[1] == label] for label in sorted({label for _, label in items})}

    def __len__(self) -> int:
        return len(self.items)

    def sample(self, rng: np.random.Generator) -> tuple[Image.Image, float]:
        """A label 50/50 (when both are present), then one of its images."""
        pool = self.by_label[list(self.by_label)[int(rng.integers(len(self.by_label)))]]
        load, label = pool[int(rng.integers(len(pool)))]
        return load(), label


def open_labelled(data: str, heldout_fraction: float = 0.1, split: Split = "train",
                  image_column: str = "image", label_column: str = "label") -> LabelledImages:
    """`data`: one source, or several joined with os.pathsep (each alone may hold one class)."""
    items: list[Item] = []
    for source in (part for part in str(data).split(os.pathsep) if part):
        items += _source_items(Path(source).expanduser(), heldout_fraction, split, image_column, label_column)
    if not items:
        raise FileNotFoundError(f"no images for this split in {data} (a folder needs images in roadwork/ and none/)")
    labels = {label for _, label in items}
    if split == "train" and len(labels) == 1:  # training needs both; measuring (eval) may not
        missing = "images without roadwork (a none/ folder of street photos)" if labels == {1.0} else "roadwork images"
        raise FileNotFoundError(
            f"{data} holds only {'roadwork' if labels == {1.0} else 'no-roadwork'} images: add {missing} as a second "
            f"source, joined with '{os.pathsep}' (e.g. ROADWORK{os.pathsep}STREETS)"
        )
    return LabelledImages(items, str(data))


def _roadwork_scene_folder(path: Path) -> Path | None:
    """ROADWork's `scene/` folder, given it or the dataset's root; None for any other layout."""
    for folder in (path, path / "scene"):
        if (folder / "images").is_dir() and any((folder / "annotations").glob("instances_*_gps_split.json")):
            return folder
    return None


def _roadwork_items(scene: Path, split: Split) -> list[Item]:
    """Every image ROADWork's COCO files list for this split, as roadwork (its own train/val split)."""
    parts = {"train": ("train",), "heldout": ("val",), "all": ("train", "val")}[split]
    items, seen = [], set()
    for part in parts:
        annotations = scene / "annotations" / f"instances_{part}_gps_split.json"
        if not annotations.is_file():
            raise FileNotFoundError(f"{annotations} is missing: ROADWork's {part} split (unpack annotations.zip into {scene}/annotations)")
        for entry in json.loads(annotations.read_text()).get("images", []):
            file = scene / "images" / entry["file_name"]
            if not file.is_file():
                file = scene / "images" / Path(entry["file_name"]).name
            if not file.is_file():
                raise FileNotFoundError(f"{annotations} lists {entry['file_name']}, not found in {scene / 'images'} (unpack images.zip there)")
            if file not in seen:
                seen.add(file)
                items.append((lambda p=file: _open_file(p), 1.0))
    return items


def _source_items(path: Path, heldout_fraction: float, split: Split, image_column: str, label_column: str) -> list[Item]:
    items: list[Item] = []
    scene = _roadwork_scene_folder(path) if path.is_dir() else None
    if scene is not None:
        items = _roadwork_items(scene, split)
    elif path.suffix.lower() == ".csv":
        with open(path, newline="") as handle:
            for row in csv.reader(handle):
                if not row or row[0].strip().lower() in ("path", "file", "image"):
                    continue  # blank line or header
                image_path = (path.parent / row[0].strip()).resolve()
                if in_split(row[0].strip(), heldout_fraction, split):
                    items.append((lambda p=image_path: _open_file(p), parse_label(row[1])))
    elif (path / "dataset_info.json").is_file() or (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
        try:
            from datasets import load_from_disk
        except ImportError:
            raise ImportError("reading a saved Hugging Face dataset needs `pip install datasets`") from None
        dataset = load_from_disk(str(path))
        if hasattr(dataset, "keys"):  # a DatasetDict: use its train split
            dataset = dataset["train"] if "train" in dataset else dataset[next(iter(dataset.keys()))]
        missing = {image_column, label_column} - set(dataset.column_names)
        if missing:
            raise ValueError(f"{path} has columns {dataset.column_names}; missing {sorted(missing)}")
        names = getattr(dataset.features[label_column], "names", None)
        for index, label in enumerate(dataset[label_column]):
            if in_split(str(index), heldout_fraction, split):
                label = names[label] if names else label
                items.append((lambda i=index: dataset[i][image_column].convert("RGB"), parse_label(label)))
    elif path.is_dir():
        folders = [(path / name, label) for name, label in (("roadwork", 1.0), ("none", 0.0)) if (path / name).is_dir()]
        if not folders:
            raise FileNotFoundError(f"{path} needs roadwork/ and none/ sub-folders of images (or give a labels .csv)")
        for folder, label in folders:
            for file in sorted(folder.rglob("*")):
                if file.suffix.lower() in IMAGE_SUFFIXES and in_split(f"{folder.name}/{file.name}", heldout_fraction, split):
                    items.append((lambda p=file: _open_file(p), label))
    else:
        raise FileNotFoundError(f"{path}: not a folder, a labels .csv, a saved Hugging Face dataset or ROADWork's layout")
    return items
