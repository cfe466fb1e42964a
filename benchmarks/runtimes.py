"""A classifier or detector tier in torch against ONNX Runtime: images per second, milliseconds per
image and agreement, side by side in one run, on held-out validator-style challenges (natix-miner
eval's).

    .venv/bin/python benchmarks/runtimes.py --model builtin:efficientnet-lite0-roadwork --batch 1,8 --threads 2
    .venv/bin/python benchmarks/runtimes.py --model builtin:yolo11n-roadwork --batch 1,8 --threads 2

Classifier: eager torch (channels_last) against the model exported in memory at load. Detector:
ultralytics' predictor on detector.pt against detector.onnx with numpy pre- and post-processing.
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
from cascade.tiers.detector import WEIGHTS_FILE, DetectorTier  # noqa: E402
from natix_miner.tools.evaluate import build_cases  # noqa: E402

RUNTIMES = ("torch", "onnxruntime")
AGREEMENT_IMAGES = 64


def classifier_runtimes(folder: Path, threads: int):
    tiers = {name: ClassifierTier(folder, runtime=name) for name in RUNTIMES}

    def agreement(images) -> str:
        logits = {name: np.array(tier.logits(images)) for name, tier in tiers.items()}
        return (f"max |logit difference| onnxruntime vs torch: {np.abs(logits['onnxruntime'] - logits['torch']).max():.2e}, "
                f"same decision on {np.sum((logits['onnxruntime'] > 0) == (logits['torch'] > 0))} of {len(images)}")

    return tiers, {name: tier.logits for name, tier in tiers.items()}, agreement


def detector_runtimes(folder: Path, threads: int):
    tiers = {name: DetectorTier(folder, "detector", runtime=name, threads=threads) for name in RUNTIMES}

    def agreement(images) -> str:
        outputs = {name: tier.predict(images) for name, tier in tiers.items()}
        gap = max(abs(a.probability - b.probability) for a, b in zip(outputs["onnxruntime"], outputs["torch"]))
        same = sum(a.evidence == b.evidence for a, b in zip(outputs["onnxruntime"], outputs["torch"]))
        boxed = sum(bool(o.evidence) for o in outputs["torch"])
        return (f"max |P difference| onnxruntime vs torch: {gap:.2e}, same explanation on {same} of {len(images)} "
                f"({boxed} with roadwork boxes)")

    return tiers, {name: tier.predict for name, tier in tiers.items()}, agreement


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="builtin:efficientnet-lite0-roadwork", help="classifier or detector folder, or builtin:NAME")
    parser.add_argument("--batch", default="1,8", help="batch sizes, comma-separated")
    parser.add_argument("--count", type=int, default=256, help="challenges")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch's and ONNX Runtime's intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = builtin_model_folder(args.model) if args.model.startswith(BUILTIN_PREFIX) else Path(args.model)
    build = detector_runtimes if (folder / WEIGHTS_FILE).is_file() else classifier_runtimes
    tiers, calls, agreement = build(folder, args.threads)
    images = [c.decoded() for c in build_cases(args.count, seed=0)]
    print(f"{tiers['torch'].describe()}; {args.count} challenges, {args.threads} threads")
    print(agreement(images[:AGREEMENT_IMAGES]))
    for batch in (int(b) for b in args.batch.split(",")):
        chunks = batches(images, batch)
        seconds = {name: [] for name in RUNTIMES}
        for _ in range(args.rounds):
            for name, call in calls.items():
                seconds[name].append(timed_pass(call, chunks))
        best = {name: min(s) / len(images) for name, s in seconds.items()}
        print(f"batch {batch:>3}: torch {1 / best['torch']:7.1f} img/s {1000 * best['torch']:6.2f} ms/img   "
              f"onnxruntime {1 / best['onnxruntime']:7.1f} img/s {1000 * best['onnxruntime']:6.2f} ms/img   "
              f"ratio {best['torch'] / best['onnxruntime']:.2f}x")


if __name__ == "__main__":
    main()
