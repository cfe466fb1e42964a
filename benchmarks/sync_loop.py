"""Does the chain-sync loop cost the axon any responsiveness? Forward latency with it off and on.

The loop (Miner.run_until_stopped -> Miner.sync) refreshes the metagraph, swaps the guard's view,
records the chain figures in the journal, prunes the journal and publishes metrics, every
--neuron.sync_interval seconds. In ONE run this starts a local-mode miner again and again, with the
loop effectively off (an interval longer than the run) or running every `--on-interval` seconds
(production: every 120 s), and drives the same validator-like load against each (benchmarks/load.py:
real signed dendrites, unique challenges, the miner's cache off). Rounds go off, on, on, off, off,
on, ... so that drift of a busy machine falls on both sides alike.

To make the loop's work realistic in size, the subnet holds 256 neurons (subnet_sized_miner.py)
and each round's journal starts with `--journal-rows` requests already in it (pruning scans it).

Reported: p50/p99 of the latency the validator sees and of the miner's own forward latency (from
the journal), per round and pooled per condition, the ratio on/off, and the noise: the same
ratio between the two halves of the off rounds (and of the on rounds).

    .venv/bin/python benchmarks/sync_loop.py                      # 8 pairs of 15 s rounds
    .venv/bin/python benchmarks/sync_loop.py --on-noop --journal-rows 0   # A/A: the loop wakes, does nothing
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.load import challenge_payloads, percentile, run_load, uncached_copy  # noqa: E402
from natix_miner.serving.config import build_parser, settings_from_args  # noqa: E402
from natix_miner.serving.journal import RequestJournal  # noqa: E402
from natix_miner.serving.neuron import state_name  # noqa: E402

OFF_INTERVAL_S = 10_000_000.0  # about 4 months: the loop never wakes during a round
MINER = Path(__file__).resolve().parent / "subnet_sized_miner.py"


@dataclass
class Round:
    condition: str  # "off" or "on"
    client_s: list[float]  # latency as the validator's dendrite saw it
    forward_ms: list[float]  # the miner's own forward latency, from its journal
    syncs: int  # chain-figure rows the miner recorded (one at start, one per sync)
    failed: int
    late: int
    throughput: float


def journal_name() -> str:
    """The journal file the miner opens with the benchmark's flags (local mode, default wallet)."""
    settings = settings_from_args(build_parser().parse_args(["--local"]))
    return f"journal-{state_name(settings)}.sqlite"


def prefilled_journal(path: Path, rows: int, days: float = 27.0) -> None:
    """`rows` past answers spread over `days` (inside the 30-day retention: pruning finds nothing to
    drop but still scans, as in steady state)."""
    journal = RequestJournal(path)
    now = time.time()
    batch = 50_000
    for start in range(0, rows, batch):
        values = [
            (now - days * 86400 * (1 - i / rows), f"5Validator{i % 40:02d}", "ImageSynapse", 300.0 + i % 97, "lite0",
             (i % 100) / 100, "ok", 1, -1)
            for i in range(start, min(rows, start + batch))
        ]
        with journal._lock:
            journal._db.execute("BEGIN")
            journal._db.executemany(
                "INSERT INTO requests (ts, hotkey, synapse, latency_ms, tier, prediction, outcome, in_time, testnet_label)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
            journal._db.execute("COMMIT")
    journal.close()


def read_journal(path: Path, since_id: int) -> tuple[list[float], int]:
    db = sqlite3.connect(str(path))
    try:
        forward_ms = [ms for (ms,) in db.execute("SELECT latency_ms FROM requests WHERE id > ?", (since_id,))]
        syncs = db.execute("SELECT COUNT(*) FROM chain_figures").fetchone()[0]
    finally:
        db.close()
    return forward_ms, syncs


def one_round(condition: str, interval_s: float, config: Path, template: Path | None, work: Path, args, payloads) -> Round:
    state = work / f"state-{time.monotonic_ns()}"
    state.mkdir()
    journal = state / journal_name()
    if template is not None:
        shutil.copyfile(template, journal)
    since_id = args.journal_rows if template is not None else 0
    os.environ["NATIX_BENCH_SYNC_NOOP"] = "1" if condition == "on" and args.on_noop else "0"  # the miner inherits it
    report = run_load(
        f"loop {condition}", ["--config", str(config), "--neuron.state_dir", str(state),
                              "--neuron.sync_interval", str(interval_s)],
        args.validators, args.concurrency, args.duration, payloads, script=MINER,
    )
    forward_ms, syncs = read_journal(journal, since_id)
    shutil.rmtree(state, ignore_errors=True)
    return Round(condition, report.latencies, forward_ms, syncs, report.failed, report.late, report.throughput)


def figures(values: list[float], scale: float = 1.0) -> str:
    return f"p50 {percentile(values, 0.5) * scale:6.0f}  p99 {percentile(values, 0.99) * scale:6.0f}"


def pooled(rounds: list[Round], attribute: str) -> list[float]:
    return [value for r in rounds for value in getattr(r, attribute)]


def p99_ratio(a: list[Round], b: list[Round], attribute: str) -> float:
    return percentile(pooled(a, attribute), 0.99) / percentile(pooled(b, attribute), 0.99)


def round_p99(r: Round, attribute: str) -> float:
    return percentile(getattr(r, attribute), 0.99) * (1000.0 if attribute == "client_s" else 1.0)


def median_p99(rounds: list[Round], attribute: str) -> float:
    """Robust to one disturbed round, which the pooled p99 is not."""
    return statistics.median(round_p99(r, attribute) for r in rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="cpu-default")
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load per round")
    parser.add_argument("--pairs", type=int, default=8, help="off/on pairs of rounds (ordered off on, on off, ...)")
    parser.add_argument("--on-interval", type=float, default=1.0, help="--neuron.sync_interval with the loop on (min 1)")
    parser.add_argument("--journal-rows", type=int, default=1_000_000, help="requests already in each round's journal")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--on-noop", action="store_true", help="control: the 'on' rounds wake the loop but skip its work")
    args = parser.parse_args()

    payloads = challenge_payloads(args.images)
    order = [("off", "on"), ("on", "off")]
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = uncached_copy(args.config, work)
        template = None
        if args.journal_rows:
            template = work / "template.sqlite"
            prefilled_journal(template, args.journal_rows)
        for pair in range(args.pairs):
            for condition in order[pair % 2]:
                interval = args.on_interval if condition == "on" else OFF_INTERVAL_S
                result = one_round(condition, interval, config, template, work, args, payloads)
                rounds.append(result)
                print(
                    f"round {len(rounds):2d} loop {condition:3s}: {len(result.client_s):5d} requests "
                    f"{result.throughput:5.1f} req/s  client ms {figures(result.client_s, 1000)}  "
                    f"forward ms {figures(result.forward_ms)}  syncs {result.syncs:3d}  non-200 {result.failed}  "
                    f"> 9 s {result.late}", flush=True,
                )

    off = [r for r in rounds if r.condition == "off"]
    on = [r for r in rounds if r.condition == "on"]
    print(f"\npreset {args.config}, {args.validators} validators, concurrency {args.concurrency}, "
          f"{args.pairs} pairs of {args.duration:.0f} s rounds, loop on = every {args.on_interval:g} s, "
          f"journal starting with {args.journal_rows} rows, 256-neuron subnet{', on = no-op loop (control)' if args.on_noop else ''}")
    for name, group in (("loop off", off), ("loop on", on)):
        print(f"  {name:8s} pooled: client ms {figures(pooled(group, 'client_s'), 1000)}   "
              f"forward ms {figures(pooled(group, 'forward_ms'))}   ({len(pooled(group, 'client_s'))} requests, "
              f"syncs per round {min(r.syncs for r in group)}..{max(r.syncs for r in group)})")
        per_round = ", ".join(f"{round_p99(r, 'client_s'):.0f}" for r in group)
        print(f"  {'':8s} per-round p99 client ms: {per_round}  (median {median_p99(group, 'client_s'):.0f})")
    print(f"  on/off, pooled p99: client {p99_ratio(on, off, 'client_s'):.3f}  forward {p99_ratio(on, off, 'forward_ms'):.3f}"
          f";  median of per-round p99: client {median_p99(on, 'client_s') / median_p99(off, 'client_s'):.3f}"
          f"  forward {median_p99(on, 'forward_ms') / median_p99(off, 'forward_ms'):.3f}")
    for name, group in (("off", off), ("on", on)):
        if len(group) >= 2:
            first, second = group[0::2], group[1::2]
            print(f"  noise, {name} vs {name} (alternate {name} rounds), pooled p99: client "
                  f"{p99_ratio(first, second, 'client_s'):.3f}  forward {p99_ratio(first, second, 'forward_ms'):.3f}"
                  f";  median of per-round p99: client {median_p99(first, 'client_s') / median_p99(second, 'client_s'):.3f}")


if __name__ == "__main__":
    main()
