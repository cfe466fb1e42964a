"""Zero-shot roadwork from an image-text model trained on web photographs (CLIP, SigLIP), from a
local folder: the image is compared with prompts that describe roadwork and prompts that describe
streets without it, so the tier knows real photographs without any training of ours.

    P(roadwork) = sigmoid(logsumexp(s_roadwork) - logsumexp(s_street))

where s are the image's similarities to each prompt, scaled by the model's own learnt temperature:
the softmax over all prompts, summed over the roadwork ones. Equal evidence for both groups sits
exactly on 0.5, where validators round. A `calibration:` section fitted on labelled photographs
(`natix-miner calibrate`) moves the threshold to where the data put it. The prompts are embedded
once at load; each image then costs one forward of the vision tower, on the whole image
resized to the tower's square (no centre crop).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from ..model_folder import check_model_folder
from ..tier import Tier, TierOutput

ROADWORK_PROMPTS = (
    "a photo of road construction, roadwork with traffic cones and barriers",
    "a photo of a road work zone with construction workers and machinery",
    "a photo of a street with roadwork signs, detour signs and a closed lane",
)
STREET_PROMPTS = (
    "a photo of an ordinary street without roadwork",
    "a photo of a road with normal traffic and no construction",
    "a photo of buildings, cars or people in a town",
)
# Text towers trained on fixed-length padded prompts read them that way (SigLIP); CLIP pads to the longest.
MAX_LENGTH_PADDING = ("siglip", "siglip2")


def _embedding(output) -> torch.Tensor:
    """get_*_features returns the projected embedding, or (transformers 5) an output holding it."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class ZeroShotTier(Tier):
    def __init__(self, folder: Path, name: str, device: str = "cpu",
                 roadwork_prompts: Sequence[str] | None = None, street_prompts: Sequence[str] | None = None):
        from transformers import AutoModel, AutoProcessor  # imported when a config asks for this tier

        check_model_folder(Path(folder))  # a half-copied folder is named here, not deep inside transformers
        self.name, self.device = name, device
        self.processor = AutoProcessor.from_pretrained(str(folder))
        self.model = AutoModel.from_pretrained(str(folder)).to(device).eval()
        if not (hasattr(self.model, "get_image_features") and hasattr(self.model, "logit_scale")):
            raise ValueError(f"{folder}: {type(self.model).__name__} is not an image-text model such as CLIP or SigLIP")
        self.roadwork_prompts = tuple(roadwork_prompts or ROADWORK_PROMPTS)
        self.street_prompts = tuple(street_prompts or STREET_PROMPTS)
        self.architecture = type(self.model).__name__
        self.image_size = int(self.model.config.vision_config.image_size)
        self.text = self._embed_prompts(self.roadwork_prompts + self.street_prompts)  # (prompts, dim), unit length
        self.scale = float(self.model.logit_scale.detach().exp())
        self._lock = threading.Lock()

    def _embed_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        padding = "max_length" if self.model.config.model_type in MAX_LENGTH_PADDING else True
        tokens = self.processor(text=list(prompts), padding=padding, truncation=True, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            text = _embedding(self.model.get_text_features(**tokens)).float()
        return torch.nn.functional.normalize(text, dim=-1)

    def roadwork_margin(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Per image: logsumexp of the scaled roadwork similarities minus the street ones (the log-odds)."""
        # The whole image, squeezed to the tower's square, as the classifier tier does: the processor's
        # centre crop could cut roadwork at the sides out, and its aspect-keeping resize would blow a
        # 4000x4 image up to millions of pixels.
        size = (self.image_size, self.image_size)
        squares = [image.convert("RGB").resize(size, Image.BICUBIC) for image in images]
        pixels = self.processor(images=squares, return_tensors="pt")["pixel_values"]
        with self._lock, torch.inference_mode():
            features = _embedding(self.model.get_image_features(pixel_values=pixels.to(self.device))).float()
        similarities = self.scale * torch.nn.functional.normalize(features, dim=-1) @ self.text.T
        split = len(self.roadwork_prompts)
        return (torch.logsumexp(similarities[:, :split], dim=-1) - torch.logsumexp(similarities[:, split:], dim=-1)).cpu()

    def predict(self, images: Sequence[Image.Image]) -> list[TierOutput]:
        return [TierOutput(float(p)) for p in torch.sigmoid(self.roadwork_margin(images))]

    def describe(self) -> str:
        return (f"{self.name}: {self.architecture} zero-shot ({len(self.roadwork_prompts)} roadwork / "
                f"{len(self.street_prompts)} street prompts) on {self.device}")
