"""Drive a local-mode miner the way validators do, and measure it.

Starts the miner (local mode, N validator hotkeys //Validator0.. registered), then N validators
send validator-style challenges through real signed dendrites at a fixed total concurrency for a
fixed time. `--pipeline v0.4` (the default: what validators send since May 2026) sends whole
frames at their stored size (1024 px squares, 16:9 and 4:3 frames up to 1920 px); v0.2 / v0.3
send 224 px augmented challenges. The miner's decode of the payloads is timed here, with its own
code and limits, and reported per request. Reports latency percentiles, throughput,
answers later than 9 s, non-200 answers, and the miner's CPU and resident memory over the run.

    .venv/bin/python benchmarks/load.py --config cpu-default --validators 4 --concurrency 16 --duration 30
    .venv/bin/python benchmarks/load.py ... --max-batch 1      # the same without micro-batching
    .venv/bin/python benchmarks/load.py --config cpu-zeroshot --random-weights   # before fetching CLIP
    .venv/bin/python benchmarks/load.py --validators 32 --concurrency 32 --duration 30 --pipeline v0.4
    # another install and checkout (benchmarks/install.py --keep leaves both): its python, its entry point, its preset
    .venv/bin/python benchmarks/load.py --python /tmp/old-venv/bin/python --miner-script /tmp/old-src/neurons/miner.py \
        --config /tmp/old-src/configs/cpu-default.yaml --validators 32 --concurrency 32

The client shares this machine with the miner: on 2 cores both compete, so compare runs made
side by side, never figures from different machines.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bittensor as bt  # noqa: E402
import yaml  # noqa: E402

from cascade.config import BUILTIN_PREFIX, load_config, read_yaml  # noqa: E402
from cascade.image import decode_base64_image  # noqa: E402
from natix_miner.tools import client  # noqa: E402,F401  (patches the dendrite's external-IP lookup)
from natix_miner.tools.evaluate import build_cases  # noqa: E402
from natix_miner.serving.protocol import ImageSynapse  # noqa: E402
from tests.wire.harness import REPO, MinerProcess  # noqa: E402

VALIDATOR_TIMEOUT_S = 9.0


def percentile(values: list[float], q: float) -> float:
    """The q-quantile of `values`, nearest rank (every benchmark here reports it this way)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@dataclass
class LoadReport:
    label: str
    requests: int
    seconds: float
    latencies: list[float]
    failed: int
    late: int
    cpu_percent: list[float]
    rss_mib: list[float]
    stood: dict[str, int] = field(default_factory=dict)  # the miner's journal: answers by the tier whose answer stood

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)

    def lines(self) -> str:
        cpu = self.cpu_percent or [0.0]
        rss = self.rss_mib or [0.0]
        return "\n".join([
            f"{self.label}: {self.requests} requests in {self.seconds:.0f} s",
            f"  throughput {self.throughput:.1f} req/s   non-200 {self.failed}   later than 9 s {self.late}",
            f"  latency ms: p50 {self.percentile(0.5) * 1000:.0f}  p95 {self.percentile(0.95) * 1000:.0f}  "
            f"p99 {self.percentile(0.99) * 1000:.0f}  max {self.latencies[-1] * 1000:.0f}",
            f"  miner CPU mean {statistics.mean(cpu):.0f}% (100% = one core)   RSS MiB first {rss[0]:.0f} last {rss[-1]:.0f} max {max(rss):.0f}",
            "  answers by the tier that settled them (the last tier run): "
            + ", ".join(f"{tier} {count}" for tier, count in sorted(self.stood.items(), key=lambda kv: -kv[1])),
        ])


def answers_by_tier(state_dir: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in state_dir.glob("journal-*.sqlite"):
        with contextlib.closing(sqlite3.connect(path)) as db:
            for tier, count in db.execute("SELECT tier, COUNT(*) FROM requests GROUP BY tier"):
                counts[tier] = counts.get(tier, 0) + count
    return counts


def uncached_copy(config_name: str, folder: Path, max_batch: int | None = None, random_weights: bool = False) -> Path:
    """The preset with its result cache off (validators never repeat an image), model paths made
    absolute, and optionally another max_batch for every tier. `random_weights`: tiers fetched
    from the hub (`hub_repo`) get a model of the same architecture with random weights, built
    here (tests/random_models.py), so their cost can be measured without the download."""
    config = load_config(config_name, check_models=not random_weights)
    raw = read_yaml(config.source)
    raw["cache_size"] = 0
    for section, tier in zip(raw["tiers"], config.tiers):
        if max_batch is not None:
            section["max_batch"] = max_batch
        if random_weights and tier.hub_repo:
            from tests.random_models import build_same_architecture

            section["model"] = str(build_same_architecture(folder / tier.name, tier.hub_repo))
        elif tier.model and not tier.model.startswith(BUILTIN_PREFIX):
            section["model"] = str(config.model_folder(tier))
    path = folder / "uncached.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


async def _drive(axon: bt.AxonInfo, validators: int, concurrency: int, duration_s: float, payloads: list[str],
                 rate: float | None = None):
    dendrites = [bt.Dendrite(wallet=bt.Keypair.create_from_uri(f"//Validator{i}")) for i in range(validators)]
    results: list[tuple[float, int]] = []
    stop_at = time.monotonic() + duration_s
    counter = 0

    async def worker(index: int) -> None:
        nonlocal counter
        dendrite = dendrites[index % validators]
        next_at = time.monotonic() + (index / rate if rate else 0.0)
        while time.monotonic() < stop_at:
            if rate:  # a fixed total rate: each worker sends every concurrency / rate seconds
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at += concurrency / rate
            counter += 1
            synapse = ImageSynapse(image=payloads[counter % len(payloads)])
            started = time.perf_counter()
            response = (await dendrite.forward([axon], synapse, timeout=VALIDATOR_TIMEOUT_S, deserialize=False))[0]
            results.append((time.perf_counter() - started, response.dendrite.status_code or 0))

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    for dendrite in dendrites:
        await dendrite.aclose_session()
    return results


def run_load(label: str, miner_args: list[str], validators: int, concurrency: int, duration_s: float,
             payloads: list[str], script: Path = REPO / "neurons" / "miner.py", rate: float | None = None,
             side_load=None, python: str = sys.executable) -> LoadReport:
    """Start a miner with `miner_args` (plus local mode and the validators), load it, stop it.

    `rate`: requests per second in all (else as fast as `concurrency` allows). `side_load`: a
    context manager factory called with the miner's ready info, held open during the load (e.g.
    a flood from other clients)."""
    with tempfile.TemporaryDirectory() as tmp:
        extra = list(miner_args) + ["--blacklist.rate_limit", "1000", "--blacklist.rate_burst", "1000"]
        for i in range(validators):
            extra += ["--local.validator_hotkey", bt.Keypair.create_from_uri(f"//Validator{i}").ss58_address]
        miner = MinerProcess(Path(tmp), *extra, script=script, python=python)
        process = psutil.Process(miner.process.pid)
        samples: list[tuple[float, float]] = []
        done = threading.Event()

        def sample() -> None:
            process.cpu_percent(None)
            while not done.wait(1.0):
                samples.append((process.cpu_percent(None), process.memory_info().rss / 2**20))

        threading.Thread(target=sample, daemon=True).start()
        axon = bt.AxonInfo(version=1, ip=miner.info["ip"], port=miner.info["port"], ip_type=4,
                           hotkey=miner.info["hotkey"], coldkey=miner.info["hotkey"])
        with side_load(miner.info) if side_load else contextlib.nullcontext():
            started = time.monotonic()
            results = asyncio.run(_drive(axon, validators, concurrency, duration_s, payloads, rate))
            elapsed = time.monotonic() - started
        done.set()
        miner.stop()
        stood = answers_by_tier(Path(tmp) / "state")
    latencies = sorted(t for t, _ in results)
    return LoadReport(
        label, len(results), elapsed, latencies,
        failed=sum(1 for _, status in results if status != 200),
        late=sum(1 for t in latencies if t > VALIDATOR_TIMEOUT_S),
        cpu_percent=[c for c, _ in samples], rss_mib=[r for _, r in samples], stood=stood,
    )


def challenge_payloads(count: int, seed: int = 99, pipeline: str = "v0.2") -> list[str]:
    """Base64 challenges; v0.2 (224 px, augmented) unless asked, as the figures recorded before v0.4 were taken."""
    return [base64.b64encode(c.jpeg).decode() for c in build_cases(count, seed, pipeline=pipeline)]


def decode_cost(config_name: str, payloads: list[str]) -> str:
    """The miner's decode of these payloads (its code, its preset's limits), per request, timed here."""
    limits = load_config(config_name).image.limits()
    seconds, sizes = [], []
    for _ in range(3):
        for payload in payloads:
            started = time.perf_counter()
            image = decode_base64_image(payload, limits)
            seconds.append(time.perf_counter() - started)
            sizes.append(len(payload) * 3 // 4)
    return (f"payloads: {len(payloads)} distinct, {statistics.mean(sizes) / 1024:.0f} KiB mean JPEG; miner's decode per request "
            f"(base64 + draft to >= {limits.decode_px} px, e.g. to {image.size[0]}x{image.size[1]}): "
            f"mean {statistics.mean(seconds) * 1000:.2f} ms, p99 {percentile(seconds, 0.99) * 1000:.2f} ms, max {max(seconds) * 1000:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="cpu-default")
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--max-batch", type=int, help="override every tier's max_batch (1: no micro-batching)")
    parser.add_argument("--images", type=int, default=64, help="distinct challenges, cycled (the miner's cache is off)")
    parser.add_argument("--random-weights", action="store_true", help="tiers with a hub_repo: same architecture, random weights (no download)")
    parser.add_argument("--rate", type=float, help="requests per second in all (default: as fast as --concurrency allows)")
    parser.add_argument("--pipeline", default="v0.4", help="validator release whose challenges to send: v0.4 (whole frames), v0.3, v0.2")
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs the miner (another venv's)")
    parser.add_argument("--miner-script", type=Path, default=REPO / "neurons" / "miner.py", help="the miner's entry point (another checkout's: its code)")
    args = parser.parse_args()
    payloads = challenge_payloads(args.images, pipeline=args.pipeline)
    print(decode_cost(args.config, payloads), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        config = uncached_copy(args.config, Path(tmp), args.max_batch, args.random_weights)
        batching = "" if args.max_batch is None else f", max_batch {args.max_batch}"
        batching += ", random weights" if args.random_weights else ""
        pace = f", {args.rate:g} req/s" if args.rate else ""
        label = f"preset {args.config}{batching}, {args.pipeline} payloads, {args.validators} validators, concurrency {args.concurrency}{pace}"
        if args.python != sys.executable or args.miner_script != REPO / "neurons" / "miner.py":
            label += f" (miner: {args.python} {args.miner_script})"
        print(run_load(label, ["--config", str(config)], args.validators, args.concurrency, args.duration, payloads,
                       script=args.miner_script, rate=args.rate, python=args.python).lines())


if __name__ == "__main__":
    main()
