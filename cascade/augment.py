"""Geometric augmentation in the spirit of the validator's level-1 challenges (FACTS.md):
rotation up to 20 degrees, a random resized square crop (scale 0.2..1), horizontal and vertical
flips, then JPEG re-encoding. The full challenge pipeline (levels 0-3 with distortions) belongs to
the eval; this is what training the first head needs.
"""

from __future__ import annotations

import io
import random

from PIL import Image
from torchvision import transforms

_GEOMETRY = transforms.Compose(
    [
        transforms.RandomRotation(20),
        transforms.RandomResizedCrop(224, scale=(0.2, 1.0), ratio=(1.0, 1.0)),
        transforms.RandomHorizontalFlip(),
        transforms.RandomVerticalFlip(),
    ]
)


def augment(image: Image.Image, rng: random.Random) -> Image.Image:
    """Half the time the level-0 centre view, else level-1 geometry; always JPEG round-tripped."""
    if rng.random() < 0.5:
        image = image.resize((224, 224), Image.BICUBIC)
    else:
        image = _GEOMETRY(image)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=rng.randint(60, 95))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
