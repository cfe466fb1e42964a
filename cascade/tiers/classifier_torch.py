"""The classifier's torch model (the train extra): what `natix-miner train` builds and saves, what
`export-onnx` exports to classifier.onnx, and the tier's `runtime: torch` (CUDA, token pruning)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file, save_file

from ..backbones import build_backbone
from ..token_pruning import prune_vit_tokens
from .classifier import BACKBONE_FILE, HEAD_FILE, MANIFEST, ClassifierManifest, pixels, read_manifest


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
    """The tier's numpy preprocessing (classifier.pixels) as a torch batch."""
    return torch.from_numpy(pixels(images, manifest))


def save_classifier(model: RoadworkClassifier, manifest: ClassifierManifest, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.head.state_dict().items()}, folder / HEAD_FILE)
    # float16 on disk halves the file; load_state_dict casts back to the model's float32.
    weights = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in model.backbone.state_dict().items()}
    save_file(weights, folder / BACKBONE_FILE)
    (folder / MANIFEST).write_text(yaml.safe_dump(manifest.model_dump(mode="json"), sort_keys=False))


def load_classifier(folder: Path) -> tuple[RoadworkClassifier, ClassifierManifest]:
    manifest = read_manifest(folder)
    model = RoadworkClassifier(build_backbone(manifest.architecture, pretrained=False))
    model.backbone.load_state_dict(load_file(folder / BACKBONE_FILE))
    model.head.load_state_dict(load_file(folder / HEAD_FILE))
    return model.eval(), manifest


class TorchClassifier:
    """The eager model on `device`: numpy pixels in, logits out."""

    def __init__(self, folder: Path, device: str = "cpu", token_pruning=None):
        self.model, _ = load_classifier(Path(folder))
        if token_pruning is not None:
            prune_vit_tokens(self.model.backbone, token_pruning.keep_ratio, token_pruning.after_layer)
        self.device = torch.device(device)
        # channels_last: 1.3x faster for EfficientNet-Lite0 on 2 CPU cores (measured side by side), same answers
        self.model.to(self.device, memory_format=torch.channels_last)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        pixels = torch.from_numpy(batch).to(self.device, memory_format=torch.channels_last)
        with torch.inference_mode():
            return self.model(pixels).float().cpu().numpy()
