"""A Hugging Face image-classification checkpoint from a local folder: the format of the SN72
reference miner's ViT (labels "Roadwork" and "None"), so operators' existing models serve as-is.
Unlike the reference, which runs a pipeline on one image at a time, this scores batches."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from ..tier import Tier, TierOutput
from ..token_pruning import prune_vit_tokens


class HFClassifierTier(Tier):
    def __init__(self, folder: Path, name: str, device: str = "cpu", positive_label: str = "Roadwork", token_pruning=None):
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        self.name, self.device = name, device
        self.processor = AutoImageProcessor.from_pretrained(str(folder))
        self.model = AutoModelForImageClassification.from_pretrained(str(folder)).to(device).eval()
        if token_pruning is not None:
            prune_vit_tokens(self.model, token_pruning.keep_ratio, token_pruning.after_layer)
        labels = {str(label).lower(): int(index) for index, label in self.model.config.id2label.items()}
        if positive_label.lower() not in labels:
            raise ValueError(f"{folder}: no label {positive_label!r} among {sorted(self.model.config.id2label.values())}")
        self.positive_index = labels[positive_label.lower()]
        self.architecture = type(self.model).__name__
        self._lock = threading.Lock()

    def predict(self, images: Sequence[Image.Image]) -> list[TierOutput]:
        inputs = self.processor(images=[image.convert("RGB") for image in images], return_tensors="pt").to(self.device)
        with self._lock, torch.inference_mode():
            logits = self.model(**inputs).logits.float()
        if logits.shape[-1] == 1:  # a single-logit head is P(positive) through a sigmoid
            probabilities = torch.sigmoid(logits[:, 0])
        else:
            probabilities = torch.softmax(logits, dim=-1)[:, self.positive_index]
        return [TierOutput(float(p)) for p in probabilities.cpu()]

    def describe(self) -> str:
        return f"{self.name}: {self.architecture} (Hugging Face image classification) on {self.device}"
