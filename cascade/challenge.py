"""The SN72 validator's challenge pipeline, re-implemented from its description (see FACTS.md).

A challenge picks an augmentation level 0..3 with p = 0.25 each:
  0: centre-crop to a square, resize to 224;
  1: rotation up to 20 degrees (black corners), a random square crop of 20-100% of the area resized
     to 224, horizontal and vertical flips (p = 0.5 each: images can arrive upside down);
  2: level 1, then DeeperForensics distortions CS, CC, JPEG, each at a random severity 0..1;
  3: level 1, then CS, CC, JPEG, GNC, GB, each at a random severity 0..2 (0 = off).
The result is sent as a JPEG (quality 75, PIL's default, as the validator saves it).

The distortions follow the arithmetic of the validator's own functions: CS scales the chroma of
YCbCr, CC multiplies the pixel values, "JPEG" down- and up-samples bilinearly without antialias,
GNC adds Gaussian noise in YCbCr, GB is a Gaussian blur with sigma = kernel / 6.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

TARGET_SIZE = 224
LEVELS = (0, 1, 2, 3)
SEVERITY = {  # index = severity - 1
    "CS": (0.4, 0.3, 0.2, 0.1, 0.0),
    "CC": (0.85, 0.725, 0.6, 0.475, 0.35),
    "JPEG": (2, 3, 4, 5, 6),
    "GNC": (0.001, 0.002, 0.005, 0.01, 0.05),
    "GB": (7, 9, 13, 17, 21),
}
DISTORTIONS_BY_LEVEL = {0: (), 1: (), 2: (("CS", 1), ("CC", 1), ("JPEG", 1)), 3: tuple((d, 2) for d in ("CS", "CC", "JPEG", "GNC", "GB"))}
# BT.601 full range, as OpenCV converts; chroma centred on 0 here.
_TO_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
_FROM_YCBCR = np.linalg.inv(_TO_YCBCR).astype(np.float32)


@dataclass
class Challenge:
    image: Image.Image  # what the miner receives (decoded from the JPEG the validator sends)
    jpeg: bytes
    level: int
    distortions: dict[str, int] = field(default_factory=dict)  # name -> severity applied (> 0)
    masks: list[np.ndarray] = field(default_factory=list)  # the `masks` given, as they arrive: bool, size x size

    @property
    def roadwork_pixels(self) -> int | None:
        """Pixels of the challenge inside any of the masks (None without masks)."""
        return int(np.logical_or.reduce(self.masks).sum()) if self.masks else None


def centre_view(image: Image.Image, size: int = TARGET_SIZE) -> Image.Image:
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)


def _geometric_draw(rng: np.random.Generator, height: int, width: int) -> tuple[float, int, int, int, bool, bool]:
    """Rotation angle, square crop (top, left, side) and flips, drawn as the validator draws them."""
    angle = float(rng.uniform(-20, 20))
    area = height * width
    for _ in range(10):  # as RandomResizedCrop: try for a square of 20-100 % of the area, else centre
        side = int(round(math.sqrt(area * rng.uniform(0.2, 1.0))))
        if 0 < side <= min(height, width):
            top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
            break
    else:
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
    return angle, top, left, side, bool(rng.random() < 0.5), bool(rng.random() < 0.5)


def _geometric(image: Image.Image, draw: tuple[float, int, int, int, bool, bool], size: int) -> torch.Tensor:
    angle, top, left, side, hflip, vflip = draw
    pixels = TF.rotate(TF.to_tensor(image), angle, interpolation=InterpolationMode.BILINEAR)
    pixels = TF.resized_crop(pixels, top, left, side, side, [size, size], antialias=True)
    if hflip:
        pixels = TF.hflip(pixels)
    if vflip:
        pixels = TF.vflip(pixels)
    return pixels


def _to_uint8(pixels: torch.Tensor) -> np.ndarray:
    return (pixels.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).numpy()  # truncates, as ToPILImage


def distort(rgb: np.ndarray, name: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Apply one DeeperForensics distortion to a HxWx3 uint8 image."""
    param = SEVERITY[name][severity - 1]
    if name == "CC":
        return (rgb.astype(np.float32) * param).astype(np.uint8)
    if name == "CS":
        ycc = rgb.astype(np.float32) @ _TO_YCBCR.T
        ycc[..., 1:] *= param
        return np.clip(ycc @ _FROM_YCBCR.T, 0, 255).astype(np.uint8)
    if name == "GNC":
        ycc = rgb.astype(np.float32) @ _TO_YCBCR.T
        # the validator adds N(0, param) in its scaled YCbCr units: 219 (luma) and 224 (chroma) levels per unit
        std = 255.0 * math.sqrt(param) * np.array([255 / 219, 255 / 224, 255 / 224], np.float32)
        ycc += rng.standard_normal(ycc.shape).astype(np.float32) * std
        return np.clip(ycc @ _FROM_YCBCR.T, 0, 255).astype(np.uint8)
    pixels = torch.from_numpy(rgb).permute(2, 0, 1).float().unsqueeze(0)
    if name == "JPEG":  # the validator's "JPEG" is a resolution loss, not an encoder
        height, width = rgb.shape[:2]
        small = F.interpolate(pixels, size=(height // param, width // param), mode="bilinear", align_corners=False)
        pixels = F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)
    elif name == "GB":
        pixels = TF.gaussian_blur(pixels, [param, param], [param / 6.0])
    else:
        raise ValueError(f"unknown distortion {name}")
    return pixels.squeeze(0).clamp(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()


def make_challenge(
    image: Image.Image, rng: np.random.Generator, level: int | None = None, size: int = TARGET_SIZE,
    masks: Sequence[Image.Image] = (),
) -> Challenge:
    """Augment `image` as a validator would, and return what reaches the miner. `masks` of the
    image (white on black, same size: where its roadwork, or each object, is) go through the same
    crop, rotation and flips, without changing the challenge: they say what is left to see."""
    level = int(rng.choice(LEVELS)) if level is None else level
    if level not in LEVELS:
        raise ValueError(f"augmentation level must be one of {LEVELS}, got {level}")
    image = image.convert("RGB")
    applied: dict[str, int] = {}
    if level == 0:
        rgb = np.asarray(centre_view(image, size))
        moved = [TF.to_tensor(centre_view(mask.convert("L"), size)) for mask in masks]
    else:
        draw = _geometric_draw(rng, image.height, image.width)
        rgb = _to_uint8(_geometric(image, draw, size))
        moved = [_geometric(mask.convert("L"), draw, size) for mask in masks]
        for name, max_severity in DISTORTIONS_BY_LEVEL[level]:
            severity = int(rng.integers(0, max_severity + 1))
            if severity:
                rgb = distort(rgb, name, severity, rng)
                applied[name] = severity
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG")  # quality 75, as the validator's PIL default
    jpeg = buffer.getvalue()
    left = [(mask[0] > 0.5).numpy() for mask in moved]
    return Challenge(Image.open(io.BytesIO(jpeg)).convert("RGB"), jpeg, level, applied, left)
