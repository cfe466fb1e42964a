"""Issue 17 item 6: the uncertain-image store after 10,000 padded near-threshold requests.

Each request is a 224 px procedural-scene JPEG padded after its end marker to ~6.2 MB (inside the
8 MB base64 limit), answered at 0.5: the store keeps every one. Before the fix it kept the
caller's bytes (5,000 x 6.2 MB, about 31 GB); now it keeps the decoded image re-encoded, within
--active.max_images and --active.max_mb. Run: .venv/bin/python benchmarks/uncertain_store_padding.py
"""

import base64
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cascade.scenes import generate_scene  # noqa: E402
from natix_miner.serving.active_learning import UncertainStore  # noqa: E402

REQUEST_BYTES = 6_200_000
REQUESTS = 10_000


def padded(seed: int) -> str:
    buffer = io.BytesIO()
    generate_scene(seed, None, 224).image.save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    return base64.b64encode(data + b"\0" * (REQUEST_BYTES - len(data))).decode()


if __name__ == "__main__":
    payloads = [padded(seed) for seed in range(20)]
    with tempfile.TemporaryDirectory() as folder:
        store = UncertainStore(Path(folder))  # the miner's defaults
        started = time.perf_counter()
        for i in range(REQUESTS):
            store.offer(payloads[i % len(payloads)], 0.5, now=1_000_000 + i)
        files = list(Path(folder).rglob("*.jpg"))
        print(f"{REQUESTS} requests of {REQUEST_BYTES / 1e6:.1f} MB in {time.perf_counter() - started:.0f} s: "
              f"{len(files)} files, {sum(f.stat().st_size for f in files) / 1e6:.1f} MB kept "
              f"(budget {store.store.max_images} images, {store.store.max_bytes / 2**20:.0f} MiB); largest file {max(f.stat().st_size for f in files)} B")
