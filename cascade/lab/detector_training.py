"""Train the roadwork detector tier (ultralytics YOLO) on procedural scenes and real photos, offline.

The training images are validator challenges under the v0.2 pipeline (levels 0-3: rotation,
crops, distortions, JPEG at 224 px) of generated street scenes, half of them with roadwork.
Each object's box is carried through the same augmentation as a mask, so the labels say where the
object is in the challenge, and objects the crop cut out are not labelled. The model is built from
ultralytics' own architecture YAML (no weights are downloaded), or starts from a detector you have
(`--init builtin:yolo11n-roadwork`).

With `--photos POOL` (a pool from `natix-miner photos build`) a share of the images are crops of
the pool's TRAINING photos, sent as a v0.4 validator does: half with roadwork in the training
styles pasted on (labelled), half bare or with non-roadwork objects pasted on, unlabelled: the hard
negatives a drawing-trained detector has never seen. Held-out photos are never used.

    natix-miner train-detector --out runs/detector --images 2000 --epochs 30
    natix-miner train-detector --out runs/detector-photos --init builtin:yolo11n-roadwork \
        --photos runs/photos --photo-share 0.5 --images 2000 --epochs 8

A run resumes where it stopped (the dataset is written once, by seed; ultralytics resumes from its
last checkpoint), and ends with `detector.pt`, a `manifest.yaml` (how it was trained, held-out mAP)
and a `tier.yaml` to paste into a cascade preset.
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw

from .challenge import TARGET_SIZE, make_challenge
from .composite import training_frame
from ..scenes import ROADWORK_KINDS, generate_scene
from ..tiers.detector import WEIGHTS_FILE as WEIGHTS
from .training import HELDOUT_SCENE_SEED, SCENE_SIZE

CLASSES = ROADWORK_KINDS  # class id = index
MIN_BOX_PIXELS = 12  # smaller remnants of an object after the crop are not labelled
DATASET = "dataset"
RUN = "yolo"
MANIFEST = "manifest.yaml"


@dataclass
class DetectorConfig:
    out: str
    images: int = 2000
    val_fraction: float = 0.1
    epochs: int = 30
    batch: int = 32
    architecture: str = "yolo11n.yaml"  # an ultralytics model YAML: built untrained, nothing downloaded
    image_size: int = TARGET_SIZE
    device: str = "cpu"
    workers: int = 2
    seed: int = 0
    init: str | None = None  # weights to start from (a .pt, a model folder or builtin:NAME); None: untrained
    photos: str | None = None  # a photo pool: its training photos become a share of the images
    photo_share: float = 0.5


def yolo_labels(masks: list[np.ndarray], kinds: list[str]) -> list[str]:
    """`cls x_centre y_centre width height` (fractions of the image) for each object still visible."""
    lines = []
    for mask, kind in zip(masks, kinds):
        if mask.sum() < MIN_BOX_PIXELS:
            continue
        rows, cols = np.nonzero(mask)
        height, width = mask.shape
        x0, x1, y0, y1 = cols.min(), cols.max() + 1, rows.min(), rows.max() + 1
        lines.append(f"{CLASSES.index(kind)} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} {(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}")
    return lines


def _box_masks(size: tuple[int, int], boxes: list) -> list[Image.Image]:
    masks = []
    for _, box in boxes:
        mask = Image.new("L", size, 0)
        ImageDraw.Draw(mask).rectangle(box, fill=255)
        masks.append(mask)
    return masks


def photo_challenge(photo: Image.Image, rng: np.random.Generator):
    """A training photo's crop (composite.training_frame) as a v0.4 validator sends it, with the
    pasted roadwork's objects as masks (none for bare photos and distractors: hard negatives)."""
    image, _, boxes = training_frame(photo, random.Random(int(rng.integers(2**63))))
    return make_challenge(image, rng, pipeline="v0.4", masks=_box_masks(image.size, boxes)), [kind for kind, _ in boxes]


def write_dataset(config: DetectorConfig, log=print) -> Path:
    """Challenges and their labels in ultralytics' layout; images already written are kept."""
    root = Path(config.out) / DATASET
    if not 0.0 <= config.photo_share <= 1.0:
        raise ValueError(f"--photo-share {config.photo_share}: give a share between 0 and 1")
    photos = []
    if config.photos:
        from .photo_pool import load_pool

        photos = [entry["image"] for entry in load_pool(Path(config.photos), "train")]  # never the held-out split
        if not photos:
            raise FileNotFoundError(f"{config.photos} has no training photos: build it with `natix-miner photos build`")
    validation = int(round(config.images * config.val_fraction))
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    for i in range(config.images):
        split = "val" if i < validation else "train"
        image_path, label_path = root / "images" / split / f"{i:06d}.jpg", root / "labels" / split / f"{i:06d}.txt"
        if image_path.exists() and label_path.exists():
            continue
        rng = np.random.default_rng([config.seed, i])  # one stream per image: any subset rebuilds alike
        if photos and rng.random() < config.photo_share:
            with Image.open(photos[int(rng.integers(len(photos)))]) as photo:
                challenge, kinds = photo_challenge(photo.convert("RGB"), rng)
        else:
            offset = HELDOUT_SCENE_SEED + 500_000_000 if split == "val" else 0  # validation scenes are never trained on
            scene = generate_scene(offset + config.seed * 1_000_003 + i, roadwork=bool(rng.random() < 0.5), size=SCENE_SIZE)
            challenge = make_challenge(scene.image, rng, pipeline="v0.2", masks=scene.object_masks())
            kinds = [kind for kind, _ in scene.boxes]
        label_path.write_text("\n".join(yolo_labels(challenge.masks, kinds)))
        image_path.write_bytes(challenge.jpeg)  # last: its presence marks the pair complete
        if (i + 1) % 500 == 0:
            log(f"dataset: {i + 1}/{config.images} challenges written")
    data = root / "data.yaml"
    data.write_text(yaml.safe_dump({"path": str(root.resolve()), "train": "images/train", "val": "images/val", "names": dict(enumerate(CLASSES))}))
    return data


def train_detector(config: DetectorConfig, log=print) -> Path:
    """Write the dataset, train (or resume), and export `detector.pt` + `tier.yaml` into `out`."""
    from ultralytics import YOLO

    out = Path(config.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "detector-config.yaml"
    if saved.exists() and yaml.safe_load(saved.read_text()) != {**asdict(config), "out": str(out)}:
        raise ValueError(f"{out} holds a run with other settings ({saved}); use another --out")
    saved.write_text(yaml.safe_dump({**asdict(config), "out": str(out)}))
    if (out / WEIGHTS).exists():
        log(f"{out / WEIGHTS} is already trained with these settings")
        return out / WEIGHTS
    data = write_dataset(config, log)
    last = out / RUN / "weights" / "last.pt"
    settings = dict(
        data=str(data), epochs=config.epochs, batch=config.batch, imgsz=config.image_size, device=config.device,
        workers=config.workers, seed=config.seed, project=str(out), name=RUN, exist_ok=True, pretrained=False,
        amp=False, plots=False, verbose=False,
        # the validator already rotated, cropped and distorted these; it never flips them (its flip
        # transforms never fire), so nothing arrives upside down; a mirrored street is still a street
        flipud=0.0, fliplr=0.5, degrees=0.0, mosaic=0.5,
    )
    if last.exists():
        log(f"resuming from {last}")
        YOLO(str(last)).train(resume=True)
    elif config.init:
        YOLO(str(initial_weights(config.init)), task="detect").train(**{**settings, "pretrained": True})
    else:
        YOLO(config.architecture, task="detect").train(**settings)
    best = out / RUN / "weights" / "best.pt"
    shutil.copyfile(best if best.exists() else last, out / WEIGHTS)
    (out / MANIFEST).write_text(yaml.safe_dump(detector_manifest(config, out / RUN / "results.csv"), sort_keys=False))
    tier = {"name": "detector", "kind": "detector", "model": str(out), "image_size": config.image_size,
            "classes": {kind: kind for kind in CLASSES}}
    (out / "tier.yaml").write_text(yaml.safe_dump([tier], sort_keys=False))
    log(f"exported {out / WEIGHTS}, {out / MANIFEST} and {out / 'tier.yaml'}")
    return out / WEIGHTS


def initial_weights(reference: str) -> Path:
    """The .pt that `--init` names: a file, a model folder holding detector.pt, or builtin:NAME."""
    from ..config import BUILTIN_PREFIX, builtin_model_folder

    path = builtin_model_folder(reference) if reference.startswith(BUILTIN_PREFIX) else Path(reference)
    if path.is_dir():
        path = path / WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"--init {reference}: no detector weights at {path}")
    return path


def detector_manifest(config: DetectorConfig, results_csv: Path) -> dict:
    """How the detector was made and how it scored on its held-out challenges, at the epoch that
    best.pt holds (ultralytics keeps the best mAP50-95): copying the run folder's detector.pt and
    this file into cascade/builtin/NAME/ is all shipping it takes."""
    with results_csv.open() as handle:
        rows = [{key.strip(): value for key, value in row.items()} for row in csv.DictReader(handle)]
    best = max(rows, key=lambda row: float(row["metrics/mAP50-95(B)"]))
    return {
        "format": "natix-detector/1",
        "architecture": config.architecture,
        "classes": list(CLASSES),
        "image_size": config.image_size,
        "trained_on": trained_on(config),
        "metrics": {
            "best_epoch": int(float(best["epoch"])),
            "heldout_precision": round(float(best["metrics/precision(B)"]), 4),
            "heldout_recall": round(float(best["metrics/recall(B)"]), 4),
            "heldout_map50": round(float(best["metrics/mAP50(B)"]), 4),
            "heldout_map50_95": round(float(best["metrics/mAP50-95(B)"]), 4),
        },
    }


def trained_on(config: DetectorConfig) -> str:
    source = "scenes"
    command = f"natix-miner train-detector --images {config.images} --epochs {config.epochs} --device {config.device}"
    if config.photos:
        source = f"scenes and training photos of a pool ({config.photo_share:g} of the images, v0.4)"
        command += f" --photos POOL --photo-share {config.photo_share:g}"
    if config.init:
        command += f" --init {config.init}"
    return f"{source}: {config.images} challenges ({config.val_fraction:g} held out), {config.epochs} epochs, seed {config.seed} ({command})"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = DetectorConfig(out="")
    parser.add_argument("--out", required=True, help="run folder: dataset/, yolo/ (ultralytics' run), detector.pt, manifest.yaml, tier.yaml")
    parser.add_argument("--images", type=int, default=defaults.images, help="challenges to generate")
    parser.add_argument("--val-fraction", type=float, default=defaults.val_fraction)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch", type=int, default=defaults.batch)
    parser.add_argument("--architecture", default=defaults.architecture, help="ultralytics model YAML (yolo11n.yaml, yolo11s.yaml, ...)")
    parser.add_argument("--image-size", type=int, default=defaults.image_size)
    parser.add_argument("--device", default=defaults.device, help="cpu, or a CUDA index such as 0")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="ultralytics dataloader workers")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--init", default=None, help="start from these weights (a .pt, a model folder, builtin:yolo11n-roadwork) instead of an untrained model")
    parser.add_argument("--photos", default=None, help="a photo pool (natix-miner photos build): its training photos become --photo-share of the images")
    parser.add_argument("--photo-share", type=float, default=defaults.photo_share, help="share of the images made from --photos")


def config_from_args(args: argparse.Namespace) -> DetectorConfig:
    return DetectorConfig(**{name: getattr(args, name) for name in asdict(DetectorConfig(out="")) if hasattr(args, name)})
