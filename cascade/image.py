"""Decode untrusted base64 images with hard limits, before any model sees them.

Everything here assumes the payload is hostile: size is checked before decoding, the pixel count
is read from the header before the pixels are, and only whitelisted formats are opened.

Since v0.4 validators send images at their stored size (1024 px SDXL renders, photographs up to
1920 px and more), so a JPEG is decoded straight to a small scale: libjpeg's DCT scaling (PIL's
draft mode) gives 1/2, 1/4 or 1/8 of the size for a fraction of the work, and the model's
preprocessing does the one resize left.
"""

from __future__ import annotations

import base64
import binascii
import io
import threading
import warnings
from dataclasses import dataclass

from PIL import Image

# v0.4 validators send images at their stored size (2 MP dashcam frames are 0.2-1 MB of JPEG).
DEFAULT_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024  # base64 characters, about 6 MiB of file
DEFAULT_MAX_PIXELS = 4096 * 4096
DEFAULT_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
# No camera or renderer makes frames longer than this per unit of height (panoramas reach ~4:1);
# a 16,000,000 x 1 image fits the pixel limit but is only ever an attack on the resize.
DEFAULT_MAX_ASPECT_RATIO = 8.0
# JPEGs are decoded at the smallest DCT scale that keeps both sides at least this: the models take 224 px.
DEFAULT_DECODE_PX = 224
# Images still this large after any draft (a 12 MP PNG, not a drafted 12 MP JPEG) decode one at a time
# and come out reduced: a validator sending 16 MP PNGs at its rate limit must leave a core for others.
HEAVY_DECODE_PIXELS = 4_000_000
_heavy_decodes = threading.BoundedSemaphore(1)


@dataclass(frozen=True)
class ImageLimits:
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    formats: tuple[str, ...] = DEFAULT_FORMATS
    max_aspect_ratio: float = DEFAULT_MAX_ASPECT_RATIO
    decode_px: int = DEFAULT_DECODE_PX


class ImageRejected(ValueError):
    """The payload is not an image we will process. `reason` is a short stable code for metrics."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def decode_base64_image(payload: str | bytes, limits: ImageLimits = ImageLimits()) -> Image.Image:
    """Return the payload as an RGB PIL image, or raise ImageRejected saying why not."""
    if not payload:
        raise ImageRejected("empty", "no image in the request")
    if len(payload) > limits.max_payload_bytes:
        raise ImageRejected(
            "too_large", f"payload is {len(payload)} bytes, limit is {limits.max_payload_bytes}"
        )
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageRejected("bad_base64", str(exc)) from None
    return decode_image_bytes(raw, limits)


def decode_image_bytes(raw: bytes, limits: ImageLimits = ImageLimits()) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # PIL warns (and at 2x raises) on huge images; we enforce our own, lower limit below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw), formats=list(limits.formats))
    except Image.DecompressionBombError as exc:
        raise ImageRejected("too_many_pixels", str(exc)) from None
    except Exception as exc:  # PIL raises UnidentifiedImageError, SyntaxError, OSError ...
        raise ImageRejected("not_an_image", f"{type(exc).__name__}: {exc}") from None

    width, height = image.size
    if width <= 0 or height <= 0 or width * height > limits.max_pixels:
        raise ImageRejected(
            "too_many_pixels", f"{width}x{height} exceeds the limit of {limits.max_pixels} pixels"
        )
    if max(width, height) > limits.max_aspect_ratio * min(width, height):
        raise ImageRejected(
            "bad_shape", f"{width}x{height} is longer than {limits.max_aspect_ratio:g}:1; no camera sends such frames"
        )
    try:
        if image.format == "JPEG":
            # Only the header has been read: ask libjpeg for a reduced scale before any pixel is decoded.
            image.draft("RGB", (limits.decode_px, limits.decode_px))
        if image.size[0] * image.size[1] > HEAVY_DECODE_PIXELS:
            with _heavy_decodes:  # one at a time: one caller's 16 MP PNGs take one core, never all of them
                image.load()
                image = _reduced(image.convert("RGB") if image.mode != "RGB" else image, limits.decode_px)
        else:
            image.load()
    except Exception as exc:  # truncated or corrupt data surfaces only when pixels are read
        raise ImageRejected("corrupt_image", f"{type(exc).__name__}: {exc}") from None
    return image.convert("RGB") if image.mode != "RGB" else image


def _reduced(image: Image.Image, min_side: int) -> Image.Image:
    """Box-reduced by a whole factor keeping both sides >= min_side: what JPEG draft does for JPEGs,
    for the formats that have no reduced decode (PNG, WEBP, BMP), before the tiers resize it again."""
    factor = max(1, min(image.size) // min_side)
    return image.reduce(factor) if factor > 1 else image


FITS = ("squash", "letterbox", "crop")


def fit_square(image: Image.Image, size: int, fit: str = "squash", resample: int = Image.BICUBIC) -> Image.Image:
    """A size x size view of the whole frame (squash: stretch it; letterbox: scale to fit, centred
    on black bars, as the v0.3 validator does; crop: the centre square) in one resize."""
    width, height = image.size
    if fit == "squash":
        return image.resize((size, size), resample)
    if fit == "crop":
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        return image.resize((size, size), resample, box=(left, top, left + side, top + side))
    if fit != "letterbox":
        raise ValueError(f"fit {fit!r}: choose one of {', '.join(FITS)}")
    scale = min(size / width, size / height)
    inner = (max(1, int(width * scale)), max(1, int(height * scale)))
    canvas = Image.new(image.mode, (size, size))
    canvas.paste(image.resize(inner, resample), ((size - inner[0]) // 2, (size - inner[1]) // 2))
    return canvas
