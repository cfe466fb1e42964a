"""A long run at a steady validator rate: does the miner's resident memory keep growing, and does
any answer fail or come late?

    .venv/bin/python benchmarks/soak.py --minutes 30 --warmup-minutes 5 --rate 10

Memory is sampled every second (benchmarks/load.py). Growth is judged from the end of the warm-up
(allocator pools, caches and the journal's pages filling up) to the end of the run, each taken as
the median of one minute of samples so a single spike does not decide it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.load import challenge_payloads, run_load, uncached_copy  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="cpu-default")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--warmup-minutes", type=float, default=5.0)
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=10.0, help="validator requests per second, in all")
    parser.add_argument("--images", type=int, default=512, help="distinct challenges, cycled (the miner's cache is off)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = uncached_copy(args.config, Path(tmp))
        report = run_load(f"soak {args.minutes:g} min, {args.config}, {args.validators} validators, {args.rate:g} req/s",
                          ["--config", str(config)], args.validators, args.concurrency, args.minutes * 60,
                          challenge_payloads(args.images), rate=args.rate)
    print(report.lines())
    rss = report.rss_mib
    warm = int(args.warmup_minutes * 60)
    after_warmup = statistics.median(rss[max(0, warm - 60) : warm])
    at_end = statistics.median(rss[-60:])
    print(f"RSS after warm-up {after_warmup:.1f} MiB, at the end {at_end:.1f} MiB: growth {100 * (at_end / after_warmup - 1):+.2f}%"
          f" (max {max(rss):.1f} MiB); failed answers {report.failed}, later than 9 s {report.late}")
    per_minute = [statistics.median(rss[i : i + 60]) for i in range(0, len(rss), 60)]
    print("RSS per minute (median, MiB): " + " ".join(f"{v:.0f}" for v in per_minute))


if __name__ == "__main__":
    main()
