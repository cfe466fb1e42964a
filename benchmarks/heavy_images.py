"""Does one validator sending pixel-heavy images starve another? (issue 17, item 5)

Two runs side by side, each on a fresh local-mode miner: a quiet validator sends v0.4 frames at a
steady rate, alone; then the same while a second registered validator sends 4096x4096 PNGs (16.8
megapixels, the most the image limits allow, about 50 KB each: flat images compress to nothing) at
its rate limit, 8 at a time. The quiet validator's latency should barely move: no caller holds
more than half the cascade's workers (natix_miner/serving/forward.py), and JPEGs decode drafted.

    .venv/bin/python benchmarks/heavy_images.py --duration 30 --quiet-rate 2 --heavy-rate 5
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bittensor as bt  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.load import VALIDATOR_TIMEOUT_S, challenge_payloads, percentile, run_load, uncached_copy  # noqa: E402
from natix_miner.serving.protocol import ImageSynapse  # noqa: E402

HEAVY = bt.Keypair.create_from_uri("//HeavyValidator")


def heavy_png(side: int = 4096) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (120, 124, 118)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@contextlib.contextmanager
def heavy_sender(info: dict, rate: float, concurrency: int, results: list):
    """A registered validator sending heavy PNGs at `rate` per second, `concurrency` at a time."""
    stop = threading.Event()
    payload = heavy_png()
    axon = bt.AxonInfo(version=1, ip=info["ip"], port=info["port"], ip_type=4, hotkey=info["hotkey"], coldkey=info["hotkey"])

    async def send() -> None:
        dendrite = bt.Dendrite(wallet=HEAVY)
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                started = time.perf_counter()
                response = (await dendrite.forward([axon], ImageSynapse(image=payload), timeout=VALIDATOR_TIMEOUT_S, deserialize=False))[0]
                results.append((time.perf_counter() - started, response.dendrite.status_code or 0))

        tasks = []
        while not stop.is_set():
            tasks.append(asyncio.create_task(one()))
            await asyncio.sleep(1.0 / rate)
        await asyncio.gather(*tasks)
        await dendrite.aclose_session()

    thread = threading.Thread(target=lambda: asyncio.run(send()), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="cpu-default")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--quiet-rate", type=float, default=2.0, help="the quiet validator's requests per second")
    parser.add_argument("--heavy-rate", type=float, default=5.0, help="the heavy validator's (a real validator's limit is 5/s)")
    parser.add_argument("--heavy-concurrency", type=int, default=8)
    args = parser.parse_args()
    payloads = challenge_payloads(16, pipeline="v0.4")
    with tempfile.TemporaryDirectory() as tmp:
        config = uncached_copy(args.config, Path(tmp))
        miner_args = ["--config", str(config), "--local.validator_hotkey", HEAVY.ss58_address]
        alone = run_load("quiet validator alone", miner_args, 1, 2, args.duration, payloads, rate=args.quiet_rate)
        heavy: list[tuple[float, int]] = []
        beside = run_load(
            f"quiet validator beside {args.heavy_rate:g}/s of 4096x4096 PNGs", miner_args, 1, 2, args.duration, payloads,
            rate=args.quiet_rate, side_load=lambda info: heavy_sender(info, args.heavy_rate, args.heavy_concurrency, heavy),
        )
    print(alone.lines())
    print(beside.lines())
    heavy_latencies = sorted(t for t, _ in heavy)
    print(f"heavy validator: {len(heavy)} requests, non-200 {sum(s != 200 for _, s in heavy)}, "
          f"p50 {percentile(heavy_latencies, 0.5) * 1000:.0f} ms, p99 {percentile(heavy_latencies, 0.99) * 1000:.0f} ms")
    print(f"quiet validator's p99 beside the heavy one / alone: {beside.percentile(0.99) / alone.percentile(0.99):.2f}x "
          f"({beside.percentile(0.99) * 1000:.0f} ms vs {alone.percentile(0.99) * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
