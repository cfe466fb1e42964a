"""Keep the images the cascade was least sure about, for labelling and retraining.

An answer within `margin` of 0.5 keeps its image (the JPEG exactly as the validator sent it) in
`folder`, named `<unix ms>-<prediction>.jpg`; beyond `max_images` the oldest go first. To use them:
move each into `roadwork/` or `none/` of a labelled folder and `natix-miner train --data` it.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
import time
from collections import deque
from pathlib import Path


class UncertainStore:
    def __init__(self, folder: Path, margin: float = 0.15, max_images: int = 5000):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.margin, self.max_images = folder, margin, max_images
        self._kept = deque(sorted(p.name for p in folder.glob("*.jpg")))  # names sort by time
        self._lock = threading.Lock()

    def offer(self, payload: str, prediction: float, now: float | None = None) -> Path | None:
        """Keep the image if the prediction was unsure; returns where it went, or None."""
        if self.max_images <= 0 or abs(prediction - 0.5) >= self.margin:
            return None
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return None
        name = f"{int((time.time() if now is None else now) * 1000):015d}-{prediction:.3f}.jpg"
        path = self.folder / name
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)
        with self._lock:
            self._kept.append(name)
            while len(self._kept) > self.max_images:
                (self.folder / self._kept.popleft()).unlink(missing_ok=True)
        return path
