"""A classifier tier in eager torch against ONNX Runtime: images per second and agreement, side by
side in one run, on held-out validator-style challenges (natix-miner eval's).

    .venv/bin/python benchmarks/classifier_runtimes.py --model builtin:efficientnet-lite0-roadwork \
        --batch 1,8 --count 256 --threads 2

Timing rounds alternate between the runtimes so drift on the machine falls on both alike. The
whole tier is timed, preprocessing included, as the miner calls it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cascade.config import BUILTIN_PREFIX, builtin_model_folder  # noqa: E402
from benchmarks.timing import batches, timed_pass  # noqa: E402
from cascade.tiers.classifier import ClassifierTier  # noqa: E402
from natix_miner.evaluate import build_cases  # noqa: E402

RUNTIMES = ("torch", "onnxruntime")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="builtin:efficientnet-lite0-roadwork", help="classifier folder or builtin:NAME")
    parser.add_argument("--batch", default="1,8", help="batch sizes, comma-separated")
    parser.add_argument("--count", type=int, default=256, help="challenges")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = builtin_model_folder(args.model) if args.model.startswith(BUILTIN_PREFIX) else Path(args.model)
    cases = build_cases(args.count, seed=0)
    images = [c.decoded() for c in cases]
    tiers = {name: ClassifierTier(folder, runtime=name) for name in RUNTIMES}
    logits = {name: np.array(tier.logits(images[:64])) for name, tier in tiers.items()}
    print(f"{tiers['torch'].describe()}; {args.count} challenges, {args.threads} threads")
    print(f"max |logit difference| onnxruntime vs torch: {np.abs(logits['onnxruntime'] - logits['torch']).max():.2e}, "
          f"same decision on {np.mean((logits['onnxruntime'] > 0) == (logits['torch'] > 0)):.3f} of 64")
    for batch in (int(b) for b in args.batch.split(",")):
        chunks = batches(images, batch)
        seconds = {name: [] for name in RUNTIMES}
        for _ in range(args.rounds):
            for name, tier in tiers.items():
                seconds[name].append(timed_pass(tier.logits, chunks))
        rate = {name: len(images) / min(s) for name, s in seconds.items()}
        print(f"batch {batch:>3}: torch {rate['torch']:7.1f} img/s   onnxruntime {rate['onnxruntime']:7.1f} img/s   "
              f"ratio {rate['onnxruntime'] / rate['torch']:.2f}x")


if __name__ == "__main__":
    main()
