"""How a whole v0.4 frame should become a tier's square input: squash, letterbox or crop.

Since May 2026 validators send each image at its stored size (1024 px squares, 16:9 and 4:3
frames up to 1920 px). The tiers take 224 px squares, so a frame is either stretched (squash),
scaled to fit on black bars (letterbox) or cut to its centre square (crop). This scores one tier
of a cascade preset, alone, on the same held-out v0.4 challenges under each, decoded as the miner
decodes them, and times the decode and the fit per image. (The classifier applies its manifest's
`fit` itself; the detector letterboxes in ultralytics unless handed a square. Here every image is
made square first, so a tier sees exactly the fit named.)

    .venv/bin/python benchmarks/whole_frames.py --tier lite0 --count 2000 --seed 1
    .venv/bin/python benchmarks/whole_frames.py --tier detector --count 2000 --seed 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cascade.calibration import matthews  # noqa: E402
from cascade.config import build_tier, load_config  # noqa: E402
from cascade.image import FITS, ImageLimits, fit_square  # noqa: E402
from natix_miner.tools.evaluate import cached_cases  # noqa: E402

INPUT_PX = 224


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="cpu-default", help="cascade preset or YAML holding the tier")
    parser.add_argument("--tier", default="lite0", help="the tier's name in it")
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--pipeline", default="v0.4")
    parser.add_argument("--cases-file", type=Path, help="as eval's: reuse challenges already built for these arguments")
    args = parser.parse_args()
    config = load_config(args.config)
    sections = {t.name: t for t in config.tiers}
    if args.tier not in sections:
        parser.error(f"--tier {args.tier}: {args.config} has tiers {', '.join(sections)}")
    tier = build_tier(config, sections[args.tier])
    cases = cached_cases(args.cases_file, args.count, args.seed, "scenes", "all", args.pipeline)
    limits = ImageLimits(decode_px=INPUT_PX)
    decode_s, images = [], []
    for case in cases:
        started = time.perf_counter()
        images.append(case.decoded(limits))
        decode_s.append(time.perf_counter() - started)
    labels = np.array([c.label for c in cases])
    print(f"{args.config} tier {args.tier} alone: {tier.describe()}; {args.count} {args.pipeline} challenges (procedural scenes), seed {args.seed}")
    print(f"decode (draft to >= {limits.decode_px} px): mean {statistics.mean(decode_s) * 1000:.1f} ms, max {max(decode_s) * 1000:.1f} ms")
    for fit in FITS:
        started = time.perf_counter()
        squares = [fit_square(image, INPUT_PX, fit) for image in images]
        fit_ms = (time.perf_counter() - started) * 1000 / len(images)
        outputs = [o for start in range(0, len(squares), 32) for o in tier.predict(squares[start:start + 32])]
        decided = np.round([o.probability for o in outputs])
        accuracy = float((decided == labels).mean())
        print(f"  {fit:<9}  accuracy {accuracy:.3f}  MCC {matthews(labels, decided):.3f}  fit {fit_ms:.2f} ms/image")


if __name__ == "__main__":
    main()
