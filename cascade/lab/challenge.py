"""The SN72 validator's challenge pipelines, re-implemented from their description (FACTS.md).

Validators have run three pipelines, named here by the release that introduced them:

  v0.2 (January 2026): an augmentation level 0..3 with p = 0.25 each:
    0: centre-crop to a square, resize to 224;
    1: rotation up to 20 degrees (black corners), then a random square crop of 20-100% of the area
       resized to 224. The validator's code also names horizontal and vertical flips, but they
       never fire (their transforms start with empty params, so `do_flip` is always False): no flips;
    2: level 1, then DeeperForensics distortions CS, CC, JPEG, each at a random severity 0..1;
    3: level 1, then CS, CC, JPEG, GNC, GB, each at a random severity 0..2 (0 = off).
  v0.3 (April 2026): the same levels, but no crop at all: every level first letterboxes the image
    to 224 (scale to fit, black bars centred on both sides), then rotates and distorts as above.
  v0.4 (May 2026 on): no augmentation. The stored image (SDXL renders 1024x1024, photographs as
    recorded) is sent JPEG-encoded at its own size.

Every challenge is sent as a JPEG at PIL's default quality (75), as the validator saves it.

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

from ..image import fit_square

TARGET_SIZE = 224
LEVELS = (0, 1, 2, 3)
PIPELINES = {
    "v0.2": "Jan 2026: levels 0-3, centre / random resized crops to 224, no flips",
    "v0.3": "Apr 2026: levels 0-3, every level letterboxed to 224 (black bars), no crops, no flips",
    "v0.4": "May 2026 on: no augmentation, the stored image as a JPEG at its own size",
}
DEFAULT_PIPELINE = "v0.4"  # what validators have run since May 2026
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
    jpeg: bytes  # what the validator sends
    pipeline: str
    level: int | None  # None under v0.4 (no augmentation)
    distortions: dict[str, int] = field(default_factory=dict)  # name -> severity applied (> 0)
    masks: list[np.ndarray] = field(default_factory=list)  # the `masks` given, as they arrive: bool, at the sent size

    @property
    def image(self) -> Image.Image:
        """The JPEG decoded at full size (the miner's own decode, cascade/image.py, may draft-decode it smaller)."""
        return Image.open(io.BytesIO(self.jpeg)).convert("RGB")

    @property
    def roadwork_pixels(self) -> int | None:
        """Pixels of the challenge inside any of the masks (None without masks)."""
        return int(np.logical_or.reduce(self.masks).sum()) if self.masks else None


def centre_view(image: Image.Image, size: int = TARGET_SIZE) -> Image.Image:
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)


def letterbox(image: Image.Image, size: int = TARGET_SIZE) -> Image.Image:
    """Scale to fit a size x size square keeping the aspect ratio, centred on black (v0.3), bilinear as the validator."""
    return fit_square(image, size, "letterbox", Image.BILINEAR)


def _crop_draw(rng: np.random.Generator, height: int, width: int) -> tuple[int, int, int]:
    """A square crop (top, left, side) as RandomResizedCrop draws it: 20-100 % of the area, else centre."""
    area = height * width
    for _ in range(10):
        side = int(round(math.sqrt(area * rng.uniform(0.2, 1.0))))
        if 0 < side <= min(height, width):
            return int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1)), side
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side


def _rotate(image: Image.Image, angle: float) -> torch.Tensor:
    return TF.rotate(TF.to_tensor(image), angle, interpolation=InterpolationMode.BILINEAR)


def _rotate_and_crop(image: Image.Image, angle: float, crop: tuple[int, int, int], size: int) -> torch.Tensor:
    top, left, side = crop
    return TF.resized_crop(_rotate(image, angle), top, left, side, side, [size, size], antialias=True)


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


def _encode(rgb: np.ndarray | Image.Image) -> bytes:
    buffer = io.BytesIO()
    image = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)
    image.save(buffer, format="JPEG")  # quality 75, as the validator's PIL default
    return buffer.getvalue()


def make_challenge(
    image: Image.Image, rng: np.random.Generator, *, pipeline: str, level: int | None = None,
    size: int = TARGET_SIZE, masks: Sequence[Image.Image] = (),
) -> Challenge:
    """What a validator running `pipeline` sends for `image`. `masks` of the image (white on black,
    same size: where its roadwork, or each object, is) go through the same geometry without
    changing the challenge: they say what is left to see."""
    if pipeline not in PIPELINES:
        raise ValueError(f"unknown challenge pipeline {pipeline!r}; choose one of {', '.join(PIPELINES)}")
    image = image.convert("RGB")
    if pipeline == "v0.4":
        if level is not None:
            raise ValueError("pipeline v0.4 has no augmentation levels")
        return Challenge(_encode(image), pipeline, None, masks=[np.asarray(m.convert("L")) > 127 for m in masks])
    level = int(rng.choice(LEVELS)) if level is None else level
    if level not in LEVELS:
        raise ValueError(f"augmentation level must be one of {LEVELS}, got {level}")
    if pipeline == "v0.2" and level == 0:
        rgb = np.asarray(centre_view(image, size))
        moved = [TF.to_tensor(centre_view(mask.convert("L"), size)) for mask in masks]
    elif pipeline == "v0.2":
        angle, crop = float(rng.uniform(-20, 20)), _crop_draw(rng, image.height, image.width)
        rgb = _to_uint8(_rotate_and_crop(image, angle, crop, size))
        moved = [_rotate_and_crop(mask.convert("L"), angle, crop, size) for mask in masks]
    else:  # v0.3: letterbox first, then (levels 1-3) rotate the letterboxed square
        angle = None if level == 0 else float(rng.uniform(-20, 20))

        def place(picture: Image.Image) -> torch.Tensor:
            boxed = letterbox(picture, size)
            return TF.to_tensor(boxed) if angle is None else _rotate(boxed, angle)

        rgb = _to_uint8(place(image))
        moved = [place(mask.convert("L")) for mask in masks]
    applied: dict[str, int] = {}
    for name, max_severity in DISTORTIONS_BY_LEVEL[level]:
        severity = int(rng.integers(0, max_severity + 1))
        if severity:
            rgb = distort(rgb, name, severity, rng)
            applied[name] = severity
    return Challenge(_encode(rgb), pipeline, level, applied, [(mask[0] > 0.5).numpy() for mask in moved])


def parse_pipeline_mix(text: str) -> dict[str, float]:
    """'v0.4=0.6,v0.3=0.2,v0.2=0.2' (or a single name) -> normalised weights per pipeline."""
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        if name not in PIPELINES:
            raise ValueError(f"pipeline mix {text!r}: unknown pipeline {name!r}; choose from {', '.join(PIPELINES)}")
        try:
            weights[name] = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"pipeline mix {text!r}: {weight!r} is not a number") from None
        if weights[name] < 0:
            raise ValueError(f"pipeline mix {text!r}: weights must not be negative")
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(f"pipeline mix {text!r}: give at least one pipeline a positive weight, e.g. v0.4=0.6,v0.3=0.2,v0.2=0.2")
    return {name: weight / total for name, weight in weights.items()}


def draw_pipeline(mix: dict[str, float], rng: np.random.Generator) -> str:
    names = sorted(mix)
    return names[int(rng.choice(len(names), p=[mix[n] for n in names]))]
