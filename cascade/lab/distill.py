"""Distil a slow tier, or a whole cascade, into a fast classifier tier: `natix-miner distill`.

The teacher (a cascade preset or YAML, or one tier of it, built as the miner builds it) scores each
unlabelled image once, in this process. Its P(roadwork) goes into an SQLite cache keyed by the
teacher and the image's content, committed batch by batch, so an interrupted run never asks the
slow teacher again for what it already answered. The student is then `cascade.lab.training.train`:
the same resumable loop, checkpoints and model folder, with the teacher's probabilities as soft
targets of the binary cross-entropy instead of labels.

Which image the teacher sees: the image as given, not the student's augmented view. Validators
score a miner against the label of the image they drew, before they cropped, rotated and degraded
it, so the student must learn to answer, for what validators send, what is true of the original.
The teacher's judgement of the original is the best estimate of that label it can give (a crop
may cut the roadwork out, a blur may hide it; the label stays). It also means one teacher call per
image, cached for every augmented view of it in every step, instead of one per view.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, ClassVar, NamedTuple

from PIL import Image

from . import training
from ..config import build_cascade, build_tier, load_config
from ..calibration import CalibratedTier
from .datasets import IMAGE_SUFFIXES, LabelledImages, _open_file
from ..scenes import generate_scene
from .training import SCENE_SIZE, TrainConfig

TEACHER_CACHE = "teacher.sqlite"


@dataclass
class DistillConfig(TrainConfig):
    """TrainConfig, with `data` the unlabelled images: a folder, or "scenes" (labels ignored)."""

    teacher: str = ""  # cascade preset or YAML
    teacher_tier: str | None = None  # one tier of it; None: the whole cascade
    teacher_device: str | None = None  # overrides the YAML's tier devices
    teacher_batch: int = 16  # images per teacher call (a whole cascade: images in flight)
    teacher_cache: str = ""  # "": <out>/teacher.sqlite
    scene_count: int = 2000  # with data "scenes": how many scenes the teacher labels

    runtime_fields: ClassVar[frozenset[str]] = TrainConfig.runtime_fields | {"teacher_device", "teacher_batch", "teacher_cache"}

    def teacher_name(self) -> str:
        return self.teacher + (f" (tier {self.teacher_tier})" if self.teacher_tier else "")

    def description(self) -> str:
        return f"{self.arch} ({self.init} init) distilled from {self.teacher_name()} under the SN72 challenge augmentation."

    def trained_on(self) -> str:
        images = f"{self.scene_count} scenes" if self.data == "scenes" else self.data
        return f"soft labels of {self.teacher_name()} on {images}: {self.steps} steps x {self.batch_size} images, seed {self.seed}"


class Unlabelled(NamedTuple):
    key: str  # what the cache knows the image by: its content, or its scene seed
    where: str  # for messages
    load: Callable[[], Image.Image]


def _scene(seed: int) -> Image.Image:
    return generate_scene(seed, size=SCENE_SIZE).image


def _content_key(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def list_images(config: DistillConfig) -> list[Unlabelled]:
    if config.data == "scenes":
        size = "x".join(map(str, SCENE_SIZE))
        return [Unlabelled(f"scene:{seed}:{size}", f"scene {seed}", partial(_scene, seed)) for seed in range(config.scene_count)]
    folder = Path(config.data).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"--images {config.data}: not a folder of images (nor 'scenes')")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    with ThreadPoolExecutor(8) as pool:  # hashing reads every file once; the disk, not Python, is the limit
        keys = list(pool.map(_content_key, files))
    return [Unlabelled(key, str(path), partial(_open_file, path)) for key, path in zip(keys, files)]


def _tier_section(cascade_config, name: str):
    for section in cascade_config.tiers:
        if section.name == name:
            return section
    raise ValueError(f"--teacher-tier {name}: the cascade has tiers {', '.join(t.name for t in cascade_config.tiers)}")


def teacher_identity(config: DistillConfig) -> str:
    """The teacher as the cache knows it: a digest of its config (devices aside) and of where its models are.

    A model retrained in place under the same folder is not noticed: use another --teacher-cache.
    """
    cascade_config = load_config(config.teacher, check_models=False)
    sections = [_tier_section(cascade_config, config.teacher_tier)] if config.teacher_tier else cascade_config.tiers
    described = {
        "tiers": [{**s.model_dump(mode="json", exclude={"device"}), "folder": str(cascade_config.model_folder(s))} for s in sections],
        "cascade": None if config.teacher_tier else cascade_config.model_dump(mode="json", exclude={"tiers"}),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


class Teacher:
    """The teacher in this process: P(roadwork) for each image of a batch, as given."""

    def __init__(self, config: DistillConfig):
        cascade_config = load_config(config.teacher, device_override=config.teacher_device)
        self._pool = None
        if config.teacher_tier:
            section = _tier_section(cascade_config, config.teacher_tier)
            tier = build_tier(cascade_config, section)
            self._tier = CalibratedTier(tier, section.calibration.build()) if section.calibration else tier
        else:  # the whole cascade, early exits and fusion included; concurrent images batch per tier
            self._tier = build_cascade(cascade_config)
            self._pool = ThreadPoolExecutor(max(config.teacher_batch, 1), thread_name_prefix="teacher")

    def __call__(self, images: list[Image.Image]) -> list[float]:
        if self._pool is None:
            return [output.probability for output in self._tier.predict(images)]
        return [result.probability for result in self._pool.map(self._tier.predict, images)]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._tier.close()


class TeacherCache:
    """The teacher's answers by (teacher, image key); NULL marks an image that could not be read."""

    def __init__(self, path: Path):
        self._db = sqlite3.connect(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (teacher TEXT, image TEXT, probability REAL, PRIMARY KEY (teacher, image))"
        )

    def answers(self, teacher: str) -> dict[str, float | None]:
        return dict(self._db.execute("SELECT image, probability FROM answers WHERE teacher = ?", (teacher,)))

    def add(self, teacher: str, answers: dict[str, float | None]) -> None:
        with self._db:  # one transaction: a batch is either all in or not at all
            self._db.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?, ?)", [(teacher, k, p) for k, p in answers.items()])

    def close(self) -> None:
        self._db.close()


def label_images(images: list[Unlabelled], cache: TeacherCache, teacher: str, make_teacher, batch: int, log=print):
    """(load, P) for every readable image, asking the teacher only for images it has not answered."""
    known = cache.answers(teacher)
    missing = list({image.key: image for image in images if image.key not in known}.values())  # duplicates once
    if missing:
        log(f"{len(images) - len(missing)} of {len(images)} images already answered by this teacher ({teacher}), asking for {len(missing)}")
        model = make_teacher()
        started = last_log = time.perf_counter()
        try:
            for start in range(0, len(missing), batch):
                answers, readable, loaded = {}, [], []
                for image in missing[start:start + batch]:
                    try:
                        loaded.append(image.load())
                        readable.append(image.key)
                    except OSError as exc:
                        log(f"skipping {image.where}: {exc}")
                        answers[image.key] = None
                answers.update(zip(readable, model(loaded) if loaded else []))
                cache.add(teacher, answers)
                known.update(answers)
                done, now = min(start + batch, len(missing)), time.perf_counter()
                if now - last_log >= 10 or done == len(missing):
                    rate = done / (now - started)
                    log(f"teacher {done}/{len(missing)} {rate:.1f} img/s eta {(len(missing) - done) / rate / 60:.0f} min")
                    last_log = now
        finally:
            model.close()
    return [(image.load, known[image.key]) for image in images if known[image.key] is not None]


def distill(config: DistillConfig, stop_after: int | None = None, log=print, make_teacher=None) -> Path | None:
    """Label the images with the teacher (cached), then train the student on those soft labels.

    `make_teacher` builds the teacher when one is needed (default: `Teacher(config)`; never when
    every image is already in the cache). The rest is as `training.train`.
    """
    if not config.teacher:
        raise ValueError("--teacher: name the cascade preset or YAML whose answers the student learns")
    teacher = teacher_identity(config)
    log(f"teacher: {config.teacher_name()}")
    images = list_images(config)
    cache_path = Path(config.teacher_cache) if config.teacher_cache else Path(config.out) / TEACHER_CACHE
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    with closing(TeacherCache(cache_path)) as cache:
        targets = label_images(images, cache, teacher, make_teacher or partial(Teacher, config), max(config.teacher_batch, 1), log)
    if not targets:
        raise ValueError(f"the teacher answered for none of the {len(images)} images")
    probabilities = [p for _, p in targets]
    log(f"teacher's answers on {len(targets)} images: mean P {sum(probabilities) / len(targets):.3f}, "
        f"{sum(p > 0.5 for p in probabilities) / len(targets):.0%} above 0.5")
    return training.train(config, stop_after=stop_after, log=log, sampler=LabelledImages(targets, config.data).sample)


def add_arguments(parser) -> None:
    """The `distill` command's flags: the teacher's, the images', and `train`'s for the student."""
    defaults = DistillConfig(out="")
    parser.description = (
        "Label unlabelled images with a teacher (a cascade, or one tier of it, run here; its answers are cached), "
        "then train a classifier tier on those soft labels under the validator's augmentation. Resumable, as train."
    )
    parser.add_argument("--teacher", required=True, metavar="CONFIG", help="cascade preset or YAML whose answers the student learns")
    parser.add_argument("--teacher-tier", default=None, metavar="NAME", help="only this tier of the cascade is the teacher (None: the whole cascade)")
    parser.add_argument("--teacher-device", default=None, help="device of the teacher's tiers, overriding the YAML")
    parser.add_argument("--teacher-batch", type=int, default=defaults.teacher_batch, help="images per teacher call (whole cascade: images in flight)")
    parser.add_argument("--teacher-cache", default=defaults.teacher_cache, help="SQLite file of the teacher's answers, reusable across runs ('': OUT/teacher.sqlite)")
    parser.add_argument("--images", dest="data", metavar="FOLDER", default=defaults.data, help="folder of unlabelled images (any nesting), or 'scenes' (procedural; their labels are ignored)")
    parser.add_argument("--scene-count", type=int, default=defaults.scene_count, help="with --images scenes: how many scenes the teacher labels")
    training.add_arguments(parser, skip=("data", "heldout_fraction"))


def config_from_args(args) -> DistillConfig:
    return training.config_from_args(args, DistillConfig)
