"""What the cascade saves: cost per image of the cascade against running every tier on every image,
the share of images each tier settles, and the accuracy of each tier alone and of the cascade.

    .venv/bin/python benchmarks/cascade_cost.py --config cpu-default --count 400

Both ways run in this one process on the same validator-style challenges (natix-miner eval's), so
the ratio is measured side by side. Single requests, one at a time: this measures work per image,
not throughput under load.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cascade.config import build_cascade, load_config  # noqa: E402
from natix_miner.tools.evaluate import build_cases  # noqa: E402
from cascade.calibration import matthews  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="cpu-default")
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    config = load_config(args.config)
    config.cache_size = 0  # every image is new to the cascade
    cascade = build_cascade(config)
    cases = build_cases(args.count, args.seed)

    images = [c.decoded() for c in cases]
    labels = np.array([c.label for c in cases])
    cascade.predict(images[0])  # warm-up

    started = time.perf_counter()
    results = [cascade.predict(image) for image in images]
    cascade_s = (time.perf_counter() - started) / len(images)

    every_tier: dict[str, list[float]] = {}
    tier_s: dict[str, float] = {}
    for stage in cascade.stages:
        started = time.perf_counter()
        every_tier[stage.tier.name] = [stage.tier.predict([image])[0].probability for image in images]
        tier_s[stage.tier.name] = (time.perf_counter() - started) / len(images)
    all_tiers_s = sum(tier_s.values())

    def quality(probabilities) -> str:
        decided = np.round(np.asarray(probabilities))
        return f"accuracy {np.mean(decided == labels):.3f}  MCC {matthews(labels, decided):.3f}"

    settled = Counter(r.settled_by for r in results)
    print(f"{len(images)} challenges, preset {args.config}")
    for name, probabilities in every_tier.items():
        print(f"  tier {name:<14} {tier_s[name] * 1000:7.1f} ms/image  settles {settled[name] / len(images):6.1%}  alone: {quality(probabilities)}")
    print(f"  every tier      {all_tiers_s * 1000:7.1f} ms/image")
    print(f"  cascade         {cascade_s * 1000:7.1f} ms/image  {quality([r.probability for r in results])}")
    print(f"  cascade / every tier: {cascade_s / all_tiers_s:.2f}x the cost")
    cascade.close()


if __name__ == "__main__":
    main()
