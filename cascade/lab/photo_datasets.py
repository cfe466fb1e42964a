"""Labelled sets made from the real-photo pool, in the folder layout cascade/lab/datasets.py reads
(roadwork/ and none/ sub-folders):

  train/               training photos as negatives (half with non-roadwork objects pasted on
                       them), and roadwork in TRAIN_STYLES pasted on them
  heldout-negatives/   held-out photos (packages training never saw), no roadwork: false alarms
  heldout-recall/      roadwork in HELDOUT_STYLES pasted on held-out photos: a proxy for recall

Every image is a fresh random crop of a pool photo, so one photo gives several different frames.
Each pasted image's roadwork mask is kept in masks/NAME.png beside roadwork/ (white where roadwork
is), so an evaluation can tell when the validator's crop removed all of it.
The same pool and seed give the same files.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from .composite import HELDOUT_STYLES, TRAIN_STYLES, composite_distractors, composite_roadwork, crop_background, training_frame
from .photo_pool import load_pool
from ..scenes import generate_scene
from .training import HELDOUT_SCENE_SEED, SCENE_SIZE

SETS = ("train", "heldout-negatives", "heldout-recall")


def _save(image: Image.Image, path: Path, rng: random.Random) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=rng.randint(80, 95))


def write_datasets(pool: Path, out: Path, size: tuple[int, int] = (512, 384), per_photo: int = 4, seed: int = 0,
                   distractor_share: float = 0.5, scenes: int = 0,
                   log: Callable[[str], None] = print) -> dict[str, dict[str, int]]:
    """Write the three sets under `out` (replacing earlier ones); returns their counts per label.
    `distractor_share` of the training negatives get non-roadwork objects pasted on them the way
    roadwork is pasted on the positives, so that paste marks alone do not mean roadwork. `scenes`
    procedural scenes (half with roadwork) join the training set, as `train --data` reads one source."""
    out = Path(out)
    plan = {  # set -> (pool split, [(label folder, styles or None for the bare photo)])
        "train": ("train", [("none", None), ("roadwork", TRAIN_STYLES)]),
        "heldout-negatives": ("heldout", [("none", None)]),
        "heldout-recall": ("heldout", [("roadwork", HELDOUT_STYLES)]),
    }
    counts: dict[str, dict[str, int]] = {}
    for name, (split, kinds) in plan.items():
        folder = out / name
        shutil.rmtree(folder, ignore_errors=True)
        for label in ("roadwork", "none"):  # both must exist for cascade/lab/datasets.py, even if empty
            (folder / label).mkdir(parents=True)
        entries = load_pool(pool, split)
        if not entries:
            raise FileNotFoundError(f"{pool} has no {split} photos: build the pool again")
        counts[name] = {"roadwork": 0, "none": 0}
        for entry in entries:
            with Image.open(entry["image"]) as photo:
                photo = photo.convert("RGB")
            stem = Path(entry["file"]).stem
            for label, styles in kinds:
                for k in range(per_photo):
                    rng = random.Random(f"{seed}:{name}:{entry['file']}:{label}:{k}")
                    frame = crop_background(photo, rng, size)
                    file_name = f"{entry['package']}--{stem}--{k}"
                    if styles is not None:
                        pasted = composite_roadwork(frame, rng, rng.choice(styles))
                        frame = pasted.image
                        (folder / "masks").mkdir(exist_ok=True)
                        pasted.mask.save(folder / "masks" / f"{file_name}.png")
                    elif name == "train" and rng.random() < distractor_share:
                        frame = composite_distractors(frame, rng).image
                    _save(frame, folder / label / f"{file_name}.jpg", rng)
                    counts[name][label] += 1
        log(f"{name}: {counts[name]['roadwork']} roadwork, {counts[name]['none']} none"
            f" from {len(entries)} {split} photos of {len({e['package'] for e in entries})} packages")
    for i in range(scenes):  # procedural scenes beside the photos, so the drawings are not forgotten
        rng = random.Random(f"{seed}:scene:{i}")
        label = "roadwork" if i % 2 == 0 else "none"
        scene = generate_scene(seed * 1_000_003 + i, roadwork=label == "roadwork", size=SCENE_SIZE)
        _save(scene.image, out / "train" / label / f"scene--{i}.jpg", rng)
        counts["train"][label] += 1
    if scenes:
        log(f"train: {scenes} procedural scenes added (seeds below {HELDOUT_SCENE_SEED}, never evaluated on)")
    (out / "datasets.json").write_text(json.dumps({
        "pool": str(pool), "size": list(size), "per_photo": per_photo, "seed": seed, "distractor_share": distractor_share, "scenes": scenes, "counts": counts,
        "train_styles": list(TRAIN_STYLES), "heldout_styles": list(HELDOUT_STYLES)}, indent=1))
    return counts


def is_pool(path: str | Path) -> bool:
    return (Path(path) / "pool.json").is_file()


def pool_sampler(pool: Path, distractor_share: float = 0.5, cached_photos: int = 512):
    """Endless (image, target) pairs from the pool's TRAINING photos for `train --data POOL`: each a
    fresh crop, half with roadwork in a training style pasted on (target 1), the rest bare or with
    non-roadwork objects pasted on (target 0). Unlike the written sets, no crop is ever seen twice."""
    photos = [entry["image"] for entry in load_pool(pool, "train")]
    if not photos:
        raise FileNotFoundError(f"{pool} has no training photos: build the pool again")
    opened: dict[Path, Image.Image] = {}

    def photo(path: Path) -> Image.Image:
        if path not in opened:
            if len(opened) >= cached_photos:
                opened.pop(next(iter(opened)))
            with Image.open(path) as image:
                opened[path] = image.convert("RGB")
        return opened[path]

    def sample(rng: np.random.Generator) -> tuple[Image.Image, float]:
        paste = random.Random(int(rng.integers(2**63)))
        image, roadwork, _ = training_frame(photo(photos[paste.randrange(len(photos))]), paste, distractor_share)
        return image, float(roadwork)

    return sample
