"""One timed pass of a tier over a set of images, batch by batch, as the micro-batcher hands them
over: what runtimes.py and tier_throughput.py both measure."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence


def batches(images: Sequence, batch: int) -> list[Sequence]:
    return [images[i:i + batch] for i in range(0, len(images), batch)]


def timed_pass(call: Callable[[Sequence], object], chunks: list[Sequence], synchronize: Callable[[], None] | None = None) -> float:
    """Seconds for `call` over every chunk, after one warm-up call (allocation, kernels, autotuning);
    `synchronize` (e.g. torch.cuda.synchronize) runs before the clock stops."""
    call(chunks[0])
    started = time.perf_counter()
    for chunk in chunks:
        call(chunk)
    if synchronize is not None:
        synchronize()
    return time.perf_counter() - started
