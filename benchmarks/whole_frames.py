"""How a whole v0.4 frame should become the classifier's square input: squash, letterbox or crop.

Since May 2026 validators send each image at its stored size (1024 px squares, 16:9 and 4:3
frames up to 1920 px). The classifier takes 224x224, so a frame is either stretched (squash),
scaled to fit on black bars (letterbox) or cut to its centre square (crop). This scores one
classifier on the same held-out v0.4 challenges under each, decoded as the miner decodes them,
and times the decode and the fit per image.

    .venv/bin/python benchmarks/whole_frames.py --model builtin:efficientnet-lite0-roadwork --count 2000 --seed 1
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
from cascade.config import BUILTIN_PREFIX, builtin_model_folder  # noqa: E402
from cascade.image import FITS, ImageLimits, fit_square  # noqa: E402
from cascade.tiers.classifier import ClassifierTier  # noqa: E402
from natix_miner.evaluate import cached_cases  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="builtin:efficientnet-lite0-roadwork", help="classifier folder or builtin:NAME")
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--pipeline", default="v0.4")
    parser.add_argument("--cases-file", type=Path, help="as eval's: reuse challenges already built for these arguments")
    args = parser.parse_args()
    folder = builtin_model_folder(args.model) if args.model.startswith(BUILTIN_PREFIX) else Path(args.model)
    tier = ClassifierTier(folder, runtime="onnxruntime")
    cases = cached_cases(args.cases_file, args.count, args.seed, "scenes", "all", args.pipeline)
    limits = ImageLimits(decode_px=tier.manifest.input_size)
    decode_s, images = [], []
    for case in cases:
        started = time.perf_counter()
        images.append(case.decoded(limits))
        decode_s.append(time.perf_counter() - started)
    labels = np.array([c.label for c in cases])
    print(f"{args.model} ({tier.manifest.fit} in its manifest), {args.count} {args.pipeline} challenges (procedural scenes), seed {args.seed}")
    print(f"decode (draft to >= {limits.decode_px} px): mean {statistics.mean(decode_s) * 1000:.1f} ms, max {max(decode_s) * 1000:.1f} ms")
    for fit in FITS:
        started = time.perf_counter()
        for image in images:
            fit_square(image, tier.manifest.input_size, fit)
        fit_ms = (time.perf_counter() - started) * 1000 / len(images)
        tier.manifest.fit = fit
        decided = np.round([o.probability for start in range(0, len(images), 32) for o in tier.predict(images[start:start + 32])])
        accuracy = float((decided == labels).mean())
        print(f"  {fit:<9}  accuracy {accuracy:.3f}  MCC {matthews(labels, decided):.3f}  fit {fit_ms:.2f} ms/image")


if __name__ == "__main__":
    main()
