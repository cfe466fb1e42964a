"""Images per second of each tier of a cascade config on a device, at several batch sizes.

The run a GPU box owes the cascade issue: the classifier and detector tiers' CUDA path.

    .venv/bin/python benchmarks/tier_throughput.py --config my-gpu.yaml --device cuda --batch 1,8,32,128
    .venv/bin/python benchmarks/tier_throughput.py --config cpu-default --batch 1,8      # the same on CPU
    .venv/bin/python benchmarks/tier_throughput.py --config cpu-zeroshot --random-weights   # CLIP's cost, no download

Each tier gets the same validator-style challenges (natix-miner eval's), whole batches through
`Tier.predict` as the micro-batcher hands them over, preprocessing included; CUDA work is
synchronised before the clock stops. The best of --rounds is reported.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.load import uncached_copy  # noqa: E402
from benchmarks.timing import batches, timed_pass  # noqa: E402
from cascade.config import build_tier, load_config  # noqa: E402
from natix_miner.tools.evaluate import build_cases  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="cpu-default", help="cascade preset or YAML")
    parser.add_argument("--device", default=None, help="run every tier here (cpu, cuda, cuda:N); default: as the config says")
    parser.add_argument("--batch", default="1,8,32")
    parser.add_argument("--count", type=int, default=256, help="challenges")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--random-weights", action="store_true", help="tiers with a hub_repo: same architecture, random weights (no download)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config_name = str(uncached_copy(args.config, Path(tmp), random_weights=True)) if args.random_weights else args.config
        measure(args, load_config(config_name, args.device))


def measure(args, config) -> None:
    images = [c.decoded() for c in build_cases(args.count, seed=0)]
    cuda = torch.cuda.is_available()
    print(f"{args.config} on {args.device or 'its devices'}; {len(images)} challenges"
          + (f"; {torch.cuda.get_device_name()}" if cuda else ""))
    for section in config.tiers:
        tier = build_tier(config, section)
        print(tier.describe())
        for batch in (int(b) for b in args.batch.split(",")):
            chunks = batches(images, batch)
            best = min(timed_pass(tier.predict, chunks, torch.cuda.synchronize if cuda else None) for _ in range(args.rounds))
            print(f"  batch {batch:>4}: {len(images) / best:8.1f} img/s   {1000 * best / len(images):7.2f} ms/img")


if __name__ == "__main__":
    main()
