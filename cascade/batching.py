"""Coalesce concurrent single-image calls to a tier into batches (max size, max wait).

Under load, a CPU or GPU model scores a batch of N in far less than N single calls; idle, the
first image waits at most `max_wait_ms` for company.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future

from PIL import Image

from .tier import Tier, TierOutput

DEFAULT_MAX_BATCH = 8  # concurrent images coalesced into one call
DEFAULT_MAX_WAIT_MS = 5.0  # how long the first image waits for company


class BatchingTier(Tier):
    def __init__(self, inner: Tier, max_batch: int = DEFAULT_MAX_BATCH, max_wait_ms: float = DEFAULT_MAX_WAIT_MS):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.inner, self.name = inner, inner.name
        self.max_batch, self.max_wait_s = max_batch, max_wait_ms / 1000.0
        self._queue: queue.Queue[tuple[Image.Image, Future]] = queue.Queue()
        self.batch_sizes: list[int] = []  # what was actually coalesced, for benchmarks and tests
        threading.Thread(target=self._serve, name=f"batch-{self.name}", daemon=True).start()

    def predict(self, images: Sequence[Image.Image]) -> list[TierOutput]:
        futures = []
        for image in images:
            future: Future = Future()
            self._queue.put((image, future))
            futures.append(future)
        return [future.result() for future in futures]

    def _serve(self) -> None:
        while True:
            batch = [self._queue.get()]
            try:
                while len(batch) < self.max_batch:
                    batch.append(self._queue.get(timeout=self.max_wait_s))
            except queue.Empty:
                pass
            self.batch_sizes.append(len(batch))
            try:
                outputs = self.inner.predict([image for image, _ in batch])
                if len(outputs) != len(batch):
                    raise RuntimeError(f"{self.name} returned {len(outputs)} outputs for {len(batch)} images")
            except Exception as exc:
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), output in zip(batch, outputs):
                future.set_result(output)

    def describe(self) -> str:
        return f"{self.inner.describe()}, batched (max {self.max_batch}, wait {self.max_wait_s * 1000:.0f} ms)"
