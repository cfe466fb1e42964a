"""Token pruning on a ViT tier: speed-up and accuracy change against the same tier unpruned, on
held-out validator-style challenges (natix-miner eval's), side by side in one run.

    .venv/bin/python benchmarks/token_pruning.py --model runs/vit/model --kind classifier \
        --keep 1.0,0.7,0.5,0.4,0.3 --after 2,3 --count 400 --threads 2

Each setting builds the tier afresh and scores every image in batches of --batch; timing rounds
alternate between the settings so drift on the machine falls on all of them alike.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cascade.calibration import matthews  # noqa: E402
from cascade.config import TokenPruningSection  # noqa: E402
from natix_miner.tools.evaluate import build_cases  # noqa: E402


def build(kind: str, model: Path, keep: float, after: int, device: str):
    pruning = None if keep >= 1.0 else TokenPruningSection(keep_ratio=keep, after_layer=after)
    if kind == "classifier":
        from cascade.tiers.classifier import ClassifierTier

        return ClassifierTier(model, device=device, token_pruning=pruning)
    from cascade.tiers.hf_classifier import HFClassifierTier

    return HFClassifierTier(model, "vit", device, token_pruning=pruning)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--kind", default="classifier", choices=["classifier", "hf_classifier"])
    parser.add_argument("--keep", default="1.0,0.7,0.5,0.4,0.3")
    parser.add_argument("--after", default="3")
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="timing rounds per setting, interleaved")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cases = build_cases(args.count, args.seed)
    images = [c.decoded() for c in cases]
    labels = np.array([c.label for c in cases])
    settings = [(1.0, 0)] + [(float(k), int(a)) for a in args.after.split(",") for k in args.keep.split(",") if float(k) < 1.0]
    tiers = {s: build(args.kind, args.model, *s, args.device) for s in settings}
    seconds = {s: [] for s in settings}
    answers = {}
    for tier in tiers.values():
        tier.predict(images[: args.batch])  # warm-up
    for _ in range(args.rounds):
        for setting, tier in tiers.items():
            started = time.perf_counter()
            probabilities = [o.probability for i in range(0, len(images), args.batch) for o in tier.predict(images[i : i + args.batch])]
            seconds[setting].append(time.perf_counter() - started)
            answers[setting] = np.asarray(probabilities)

    base_s = min(seconds[(1.0, 0)])
    base_accuracy = np.mean(np.round(answers[(1.0, 0)]) == labels)
    print(f"{args.count} held-out challenges, batch {args.batch}, {torch.get_num_threads()} threads, {args.device}")
    print("keep  after  ms/image  speed-up  accuracy  change(pts)  MCC    agreement")
    for (keep, after), p in answers.items():
        decided = np.round(p)
        accuracy = np.mean(decided == labels)
        agreement = np.mean(decided == np.round(answers[(1.0, 0)]))
        ms = min(seconds[(keep, after)]) / len(images) * 1000
        print(f"{keep:4.2f}  {after if keep < 1 else '-':>5}  {ms:8.1f}  {base_s / min(seconds[(keep, after)]):7.2f}x"
              f"  {accuracy:8.3f}  {100 * (accuracy - base_accuracy):+10.1f}  {matthews(labels, decided):.3f}  {agreement:.3f}")


if __name__ == "__main__":
    main()
