"""A whole-image classifier tier: a timm backbone plus a binary roadwork head.

A model is a folder (see `ClassifierManifest`): `manifest.yaml` names the architecture and how to
feed it, `backbone.safetensors` and `head.safetensors` hold the weights (`natix-miner train`
writes such folders), and `classifier.onnx` beside them (`natix-miner export-onnx FOLDER`) is what
`runtime: onnxruntime` serves with numpy preprocessing and no torch. The torch model itself lives
in classifier_torch.py (the `train` extra).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from PIL import Image
from pydantic import BaseModel, ConfigDict

from ..extras import require_extra
from ..image import fit_square
from ..runtimes.onnx_cpu import cpu_session, file_sha256
from ..tier import Tier, TierOutput

MANIFEST = "manifest.yaml"
HEAD_FILE = "head.safetensors"
BACKBONE_FILE = "backbone.safetensors"
ONNX_FILE = "classifier.onnx"  # beside them, from `natix-miner export-onnx FOLDER`
WEIGHT_FILES = (BACKBONE_FILE, HEAD_FILE)
BUILTIN_DIR = Path(__file__).resolve().parent.parent / "builtin"


class OnnxExport(BaseModel):
    """How `classifier.onnx` was made (written by `natix-miner export-onnx`): the tier refuses a file
    whose recorded weights are not the ones beside it."""

    model_config = ConfigDict(extra="forbid")

    file: str = ONNX_FILE
    sha256: str
    sources: dict[str, str]  # weight file -> its sha256 when exported
    opset: int
    input_size: int
    dynamic_axes: list[str] = ["batch"]
    exported_with: str
    command: str


class ClassifierManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["natix-classifier/1"] = "natix-classifier/1"
    name: str
    version: str
    architecture: str
    input_size: int = 224
    # How a frame that is not square becomes the model's square input (cascade/image.py fit_square).
    fit: Literal["squash", "letterbox", "crop"] = "squash"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    description: str = ""
    trained_on: str = ""
    metrics: dict[str, float] = {}
    # Written by `natix-miner calibrate`: P = sigmoid((logit - threshold) / temperature).
    calibration: dict[str, float] | None = None
    onnx: OnnxExport | None = None


def read_manifest(folder: Path) -> ClassifierManifest:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"classifier folder {folder} has no {MANIFEST}")
    return ClassifierManifest.model_validate(yaml.safe_load(path.read_text()))


def pixels(images: Sequence[Image.Image], manifest: ClassifierManifest) -> np.ndarray:
    """The whole frame to the model's square as the manifest's `fit` says, normalised: float32 NCHW."""
    size = manifest.input_size
    mean = np.asarray(manifest.mean, dtype=np.float32)
    std = np.asarray(manifest.std, dtype=np.float32)
    batch = np.stack(
        [
            (np.asarray(fit_square(img.convert("RGB"), size, manifest.fit), np.float32) / 255.0 - mean) / std
            for img in images
        ]
    )
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


def export_command(folder: Path) -> str:
    """The command that (re)writes the folder's classifier.onnx, naming a builtin model as builtin:NAME."""
    folder = Path(folder).resolve()
    reference = f"builtin:{folder.name}" if folder.parent == BUILTIN_DIR else str(folder)
    return f"natix-miner export-onnx {reference}"


def current_onnx(folder: Path, manifest: ClassifierManifest) -> Path | None:
    """The folder's classifier.onnx when it was exported from the weights beside it; None when there
    is none; an error naming the command to run when it is stale or unrecorded."""
    path = Path(folder) / ONNX_FILE
    if not path.is_file():
        return None
    record = manifest.onnx
    if record is None or record.file != ONNX_FILE:
        raise ValueError(f"{path} is not recorded in {folder / MANIFEST} (exported before these weights?): "
                         f"re-export it with `{export_command(folder)}`")
    changed = [name for name in WEIGHT_FILES if file_sha256(Path(folder) / name) != record.sources.get(name)]
    if changed:
        raise ValueError(f"{path} was exported from other weights than the {' and '.join(changed)} beside it: "
                         f"re-export it with `{export_command(folder)}`")
    if record.input_size != manifest.input_size:
        raise ValueError(f"{path} takes {record.input_size} px but the manifest says {manifest.input_size}: "
                         f"re-export it with `{export_command(folder)}`")
    return path


class OnnxClassifier:
    """classifier.onnx in an ONNX Runtime CPU session; without one (a folder `train` just wrote), the
    torch model exported in memory at load, which needs the train extra."""

    def __init__(self, folder: Path, manifest: ClassifierManifest, threads: int | None = None):
        path = current_onnx(folder, manifest)
        if path is not None:
            self.session, self.source = cpu_session(str(path), threads), ONNX_FILE
            return
        with require_extra(f"{folder} has no {ONNX_FILE} (`{export_command(folder)}` writes it); exporting it at load"):
            from ..runtimes.onnx_cpu import torch_to_onnx
            from .classifier_torch import load_classifier

            model, _ = load_classifier(folder)
        self.session, self.source = cpu_session(torch_to_onnx(model, manifest.input_size), threads), "exported at load"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        # ONNX Runtime releases the GIL while it runs: the event loop keeps decoding meanwhile.
        return self.session.run(None, {"pixels": batch})[0]


class ClassifierTier(Tier):
    def __init__(self, folder: Path, name: str | None = None, device: str = "cpu", token_pruning=None, runtime: str = "torch"):
        folder = Path(folder)
        self.manifest = read_manifest(folder)
        self.device, self.runtime = device, runtime
        if runtime == "onnxruntime":
            if device != "cpu":
                raise ValueError(f"runtime onnxruntime runs on the CPU; for {device} use runtime torch")
            if token_pruning is not None:
                raise ValueError("token_pruning runs in torch: use runtime torch with it")
            self._run = OnnxClassifier(folder, self.manifest)
        else:
            from .classifier_torch import TorchClassifier  # the train extra (build_tier names it when missing)

            self._run = TorchClassifier(folder, device, token_pruning)
        self.name = name or self.manifest.name
        # One forward at a time per model: the runtime's intra-op threads already use every core, and
        # interleaved CPU forwards only thrash the caches.
        self._lock = threading.Lock()

    @property
    def model(self):
        """The torch module (runtime torch only): what token pruning and the training tests reach into."""
        return self._run.model

    def logits(self, images: Sequence[Image.Image]) -> list[float]:
        """Raw head outputs, before calibration (what `calibrate` fits)."""
        batch = pixels(images, self.manifest)
        with self._lock:
            return np.asarray(self._run(batch), dtype=np.float32).reshape(-1).tolist()

    def predict(self, images: Sequence[Image.Image]) -> list[TierOutput]:
        logits = np.asarray(self.logits(images), dtype=np.float64)
        calibration = self.manifest.calibration
        if calibration:
            logits = (logits - calibration["threshold"]) / calibration["temperature"]
        return [TierOutput(probability=float(p)) for p in 1.0 / (1.0 + np.exp(-logits))]

    def describe(self) -> str:
        m = self.manifest
        return f"{self.name}: {m.architecture} classifier v{m.version} on {self.device} ({self.runtime})"
