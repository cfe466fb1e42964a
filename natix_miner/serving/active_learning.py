"""Keep validator images on disk for labelling and retraining, bounded in count and bytes.

Two uses of one store:
- `UncertainStore`: an answer within `margin` of 0.5 keeps its image in `folder`, named
  `<unix ms>-<seq>-<prediction>.jpg`. To use them: move each into `roadwork/` or `none/` of a
  labelled folder and `natix-miner train --data` it.
- `HarvestStore` (testnet): validators send the true label with each image (`testnet_label`), so
  every such image goes straight into `folder/roadwork/` or `folder/none/`: the layout
  `natix-miner train --data` reads.

What is kept is the image as the miner decoded it (cascade.image: limits checked, large JPEGs at
reduced scale, at least 512 px a side), re-encoded as JPEG: never the caller's bytes, so data
padded after an image's end costs nothing. Beyond the image or byte budget the oldest go first.
"""

from __future__ import annotations

import io
import itertools
import os
import threading
import time
from collections import deque
from pathlib import Path

from cascade.image import ImageLimits, ImageRejected, decode_base64_image

JPEG_QUALITY = 90
LABEL_FOLDERS = {1: "roadwork", 0: "none"}


class ImageStore:
    def __init__(self, folder: Path, max_images: int, max_bytes: int, limits: ImageLimits = ImageLimits()):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.max_images, self.max_bytes, self.limits = folder, max_images, max_bytes, limits
        found = sorted((p.name, p) for p in folder.rglob("*.jpg"))  # names sort by time
        self._kept = deque((path, path.stat().st_size) for _, path in found)
        self.bytes = sum(size for _, size in self._kept)
        self._sequence = itertools.count()
        self._lock = threading.Lock()
        with self._lock:
            self._evict()

    def __len__(self) -> int:
        return len(self._kept)

    def keep(self, payload: str, subfolder: str, tag: str, now: float | None = None) -> Path | None:
        """Decode, re-encode and keep the image; None when it is no image or alone exceeds the budget."""
        if self.max_images <= 0 or self.max_bytes <= 0:
            return None
        try:
            image = decode_base64_image(payload, self.limits)
        except ImageRejected:
            return None
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        data = buffer.getvalue()
        if len(data) > self.max_bytes:
            return None
        name = f"{int((time.time() if now is None else now) * 1000):015d}-{next(self._sequence) % 1_000_000:06d}-{tag}.jpg"
        path = self.folder / subfolder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)
        with self._lock:
            self._kept.append((path, len(data)))
            self.bytes += len(data)
            self._evict()
        return path

    def _evict(self) -> None:
        while self._kept and (len(self._kept) > self.max_images or self.bytes > self.max_bytes):
            path, size = self._kept.popleft()
            path.unlink(missing_ok=True)
            self.bytes -= size


class UncertainStore:
    def __init__(self, folder: Path, margin: float = 0.15, max_images: int = 5000, max_bytes: int = 500 * 1024**2,
                 limits: ImageLimits = ImageLimits()):
        self.margin = margin
        self.store = ImageStore(folder, max_images, max_bytes, limits)

    def offer(self, payload: str, prediction: float, now: float | None = None) -> Path | None:
        """Keep the image if the prediction was unsure; returns where it went, or None."""
        if abs(prediction - 0.5) >= self.margin:
            return None
        return self.store.keep(payload, "", f"{prediction:.3f}", now)


class HarvestStore:
    def __init__(self, folder: Path, max_bytes: int, max_images: int = 1_000_000, limits: ImageLimits = ImageLimits()):
        self.store = ImageStore(folder, max_images, max_bytes, limits)

    def offer(self, payload: str, label: int, prediction: float, now: float | None = None) -> Path | None:
        """Keep a labelled image (label 1 roadwork, 0 none; anything else is no testnet label)."""
        if label not in LABEL_FOLDERS:
            return None
        return self.store.keep(payload, LABEL_FOLDERS[label], f"{prediction:.3f}", now)
