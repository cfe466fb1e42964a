"""Decode untrusted base64 images with hard limits, before any model sees them.

Everything here assumes the payload is hostile: size is checked before decoding, the pixel count
is read from the header before the pixels are, and only whitelisted formats are opened.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass

from PIL import Image

# The largest image a validator sends is 224x224; anything far beyond that is not a challenge.
DEFAULT_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024  # base64 characters, about 6 MiB of file
DEFAULT_MAX_PIXELS = 4096 * 4096
DEFAULT_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")


@dataclass(frozen=True)
class ImageLimits:
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    formats: tuple[str, ...] = DEFAULT_FORMATS


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
    try:
        if image.format == "JPEG":
            # Decode large JPEGs at reduced scale: the models only need a few hundred pixels.
            image.draft("RGB", (512, 512))
        image.load()
    except Exception as exc:  # truncated or corrupt data surfaces only when pixels are read
        raise ImageRejected("corrupt_image", f"{type(exc).__name__}: {exc}") from None
    return image.convert("RGB") if image.mode != "RGB" else image
