"""A whole-image classifier tier: a timm backbone plus a binary roadwork head.

A model is a folder (see `ClassifierManifest`): `manifest.yaml` names the architecture and how to
feed it, `backbone.safetensors` and `head.safetensors` hold the weights (`natix-miner train`
writes such folders).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import yaml
from PIL import Image
from pydantic import BaseModel, ConfigDict
from safetensors.torch import load_file, save_file

from ..backbones import build_backbone
from ..image import fit_square
from ..runtimes.onnx_cpu import OnnxCpuModel
from ..tier import Tier, TierOutput
from ..token_pruning import prune_vit_tokens

MANIFEST = "manifest.yaml"
HEAD_FILE = "head.safetensors"
BACKBONE_FILE = "backbone.safetensors"


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


class RoadworkClassifier(torch.nn.Module):
    """Backbone features -> one logit for roadwork."""

    def __init__(self, backbone: torch.nn.Module):
        super().__init__()
        backbone.reset_classifier(0)  # the ImageNet classifier is never used: do not train or ship it
        self.backbone = backbone
        self.head = torch.nn.Linear(backbone.num_features, 1)

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_head(self.backbone.forward_features(pixels), pre_logits=True)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(pixels)).squeeze(-1)


def preprocess(images: Sequence[Image.Image], manifest: ClassifierManifest) -> torch.Tensor:
    """The whole frame to the model's square as the manifest's `fit` says, normalised."""
    size = manifest.input_size
    mean = np.asarray(manifest.mean, dtype=np.float32)
    std = np.asarray(manifest.std, dtype=np.float32)
    batch = np.stack(
        [
            (np.asarray(fit_square(img.convert("RGB"), size, manifest.fit), np.float32) / 255.0 - mean) / std
            for img in images
        ]
    )
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


def save_classifier(model: RoadworkClassifier, manifest: ClassifierManifest, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.head.state_dict().items()}, folder / HEAD_FILE)
    # float16 on disk halves the file; load_state_dict casts back to the model's float32.
    weights = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in model.backbone.state_dict().items()}
    save_file(weights, folder / BACKBONE_FILE)
    (folder / MANIFEST).write_text(yaml.safe_dump(manifest.model_dump(mode="json"), sort_keys=False))


def load_classifier(folder: Path) -> tuple[RoadworkClassifier, ClassifierManifest]:
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"classifier folder {folder} has no {MANIFEST}")
    manifest = ClassifierManifest.model_validate(yaml.safe_load(manifest_path.read_text()))
    model = RoadworkClassifier(build_backbone(manifest.architecture, pretrained=False))
    model.backbone.load_state_dict(load_file(folder / BACKBONE_FILE))
    model.head.load_state_dict(load_file(folder / HEAD_FILE))
    return model.eval(), manifest


class ClassifierTier(Tier):
    def __init__(self, folder: Path, name: str | None = None, device: str = "cpu", token_pruning=None, runtime: str = "torch"):
        self.model, self.manifest = load_classifier(folder)
        if token_pruning is not None:
            prune_vit_tokens(self.model.backbone, token_pruning.keep_ratio, token_pruning.after_layer)
        self.device = torch.device(device)
        self.runtime = runtime
        self._onnx = None
        if runtime == "onnxruntime":
            if self.device.type != "cpu":
                raise ValueError(f"runtime onnxruntime runs on the CPU; for {device} use runtime torch")
            self._onnx = OnnxCpuModel(self.model, self.manifest.input_size)
        else:
            # channels_last: 1.3x faster for EfficientNet-Lite0 on 2 CPU cores (measured side by side), same answers
            self.model.to(self.device, memory_format=torch.channels_last)
        self.name = name or self.manifest.name
        # One forward at a time per model: torch's intra-op threads already use every core, and
        # interleaved CPU forwards only thrash the caches.
        self._lock = threading.Lock()

    def logits(self, images: Sequence[Image.Image]) -> list[float]:
        """Raw head outputs, before calibration (what `calibrate` fits)."""
        pixels = preprocess(images, self.manifest)
        if self._onnx is not None:
            with self._lock:
                return self._onnx(pixels.numpy()).tolist()
        pixels = pixels.to(self.device, memory_format=torch.channels_last)
        with self._lock, torch.inference_mode():
            return self.model(pixels).float().cpu().tolist()

    def predict(self, images: Sequence[Image.Image]) -> list[TierOutput]:
        logits = torch.tensor(self.logits(images), dtype=torch.float64)
        calibration = self.manifest.calibration
        if calibration:
            logits = (logits - calibration["threshold"]) / calibration["temperature"]
        return [TierOutput(probability=p) for p in torch.sigmoid(logits).tolist()]

    def describe(self) -> str:
        m = self.manifest
        return f"{self.name}: {m.architecture} classifier v{m.version} on {self.device} ({self.runtime})"
