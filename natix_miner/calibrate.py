"""`natix-miner calibrate`: fit a classifier folder's threshold and temperature on labelled
validator-style challenges, and store them in its manifest (see cascade/calibration.py)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from cascade.calibration import calibrate
from cascade.tiers.classifier import MANIFEST, ClassifierTier

from .evaluate import build_cases

# Challenge seeds for calibration; `natix-miner eval` defaults to seed 0, so the two never share images.
CALIBRATION_SEED = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", type=Path, required=True, help="classifier folder to calibrate in place")
    parser.add_argument("--data", default="scenes", help="'scenes', or labelled images (folder, labels .csv, saved Hugging Face dataset)")
    parser.add_argument("--count", type=int, default=800, help="challenges to fit on")
    parser.add_argument("--seed", type=int, default=CALIBRATION_SEED)
    parser.add_argument("--split", choices=("heldout", "all"), default="heldout", help="of your --data: 'heldout' is what `train` kept out")


def run_calibrate(args: argparse.Namespace) -> dict:
    tier = ClassifierTier(args.model_dir)
    cases = build_cases(args.count, args.seed, args.data, args.split)
    logits: list[float] = []
    for start in range(0, len(cases), 32):
        images = [Image.open(io.BytesIO(c.jpeg)).convert("RGB") for c in cases[start : start + 32]]
        logits += tier.logits(images)
        print(f"  scored {len(logits)}/{len(cases)}", end="\r", flush=True)
    print()
    labels = np.array([c.label for c in cases])
    calibration, mcc = calibrate(np.array(logits), labels)
    manifest_path = args.model_dir / MANIFEST
    manifest = yaml.safe_load(manifest_path.read_text())
    manifest["calibration"] = {"threshold": round(calibration.threshold, 6), "temperature": round(calibration.temperature, 6)}
    manifest.setdefault("metrics", {})["calibration_mcc"] = round(mcc, 4)
    manifest_path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    print(f"threshold logit {calibration.threshold:+.3f}, temperature {calibration.temperature:.3f}, "
          f"MCC at 0.5 on {len(cases)} challenges {mcc:.3f}; written to {manifest_path}")
    return manifest["calibration"]
