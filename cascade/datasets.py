"""Operators' labelled images, in the forms they come in, split into training and held-out.

  a folder with roadwork/ and none/ sub-folders;
  a CSV labels file: rows `path,label` (label 1/0, roadwork/none, true/false; paths relative to it);
  a Hugging Face dataset saved with `save_to_disk` (e.g. the NATIX roadwork set), with an image
  column and a label column.
Held-out membership is a stable hash of each item's id, so it never changes between runs.
"""

from __future__ import annotations

import csv
import hashlib
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


class LabelledImages:
    def __init__(self, items: list[tuple[Callable[[], Image.Image], float]], source: str):
        if not items:
            raise FileNotFoundError(f"no images for this split in {source}")
        self.items, self.source = items, source

    def __len__(self) -> int:
        return len(self.items)

    def sample(self, rng: np.random.Generator) -> tuple[Image.Image, float]:
        load, label = self.items[int(rng.integers(len(self.items)))]
        return load(), label


def open_labelled(data: str, heldout_fraction: float = 0.1, split: Split = "train",
                  image_column: str = "image", label_column: str = "label") -> LabelledImages:
    path = Path(data).expanduser()
    items: list[tuple[Callable[[], Image.Image], float]] = []
    if path.suffix.lower() == ".csv":
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
        for folder_name, label in (("roadwork", 1.0), ("none", 0.0)):
            folder = path / folder_name
            if not folder.is_dir():
                raise FileNotFoundError(f"{path} needs a {folder_name}/ sub-folder of images (or give a labels .csv)")
            for file in sorted(folder.rglob("*")):
                if file.suffix.lower() in IMAGE_SUFFIXES and in_split(f"{folder_name}/{file.name}", heldout_fraction, split):
                    items.append((lambda p=file: _open_file(p), label))
    else:
        raise FileNotFoundError(f"{data}: not a folder, a labels .csv or a saved Hugging Face dataset")
    return LabelledImages(items, str(path))
