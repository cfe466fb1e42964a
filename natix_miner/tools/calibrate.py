"""`natix-miner calibrate`: put decisions on 0.5, where validators round, from labelled
validator-style challenges (see cascade/lab/calibration_fit.py).

  --model-dir DIR    a classifier folder: its threshold and temperature go into its manifest;
  --config FILE      a cascade YAML of yours: each tier's calibration, then the fused answer's,
                     go into the YAML (comments in it are not kept).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from cascade.calibration import logit
from cascade.lab.calibration_fit import calibrate
from cascade.config import PRESETS_DIR, build_cascade, build_tier, load_config, read_yaml, resolve_config_path
from cascade.tiers.classifier import MANIFEST, ClassifierTier

from cascade.lab.training import DEFAULT_PIPELINE_MIX

from .evaluate import build_cases

# Challenge seeds for calibration; `natix-miner eval` defaults to seed 0, so the two never share images.
CALIBRATION_SEED = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--model-dir", type=Path, help="classifier folder to calibrate in place")
    target.add_argument("--config", help="your cascade YAML to calibrate in place (not a built-in preset)")
    parser.add_argument("--data", default="scenes", help="'scenes', or labelled images (folder, labels .csv, saved Hugging Face dataset)")
    parser.add_argument("--split", choices=("heldout", "all"), default="heldout", help="of your --data: 'heldout' is what `train` kept out")
    parser.add_argument("--count", type=int, default=800, help="challenges to fit on")
    parser.add_argument("--seed", type=int, default=CALIBRATION_SEED)
    parser.add_argument("--pipeline", default=DEFAULT_PIPELINE_MIX,
                        help="validator challenge pipelines to fit on, with weights (as train --pipelines), or one name, e.g. v0.4")


def _images(cases) -> list[Image.Image]:
    return [c.decoded() for c in cases]  # as the miner decodes them


def _section(fitted) -> dict:
    return {"threshold": round(fitted.threshold, 6), "temperature": round(fitted.temperature, 6)}


def calibrate_model_dir(folder: Path, cases) -> dict:
    tier = ClassifierTier(folder)
    logits: list[float] = []
    images = _images(cases)
    for start in range(0, len(images), 32):
        logits += tier.logits(images[start : start + 32])
    fitted, mcc = calibrate(np.array(logits), np.array([c.label for c in cases]))
    manifest_path = folder / MANIFEST
    manifest = read_yaml(manifest_path)
    manifest["calibration"] = _section(fitted)
    manifest.setdefault("metrics", {})["calibration_mcc"] = round(mcc, 4)
    manifest_path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    print(f"threshold logit {fitted.threshold:+.3f}, temperature {fitted.temperature:.3f}, "
          f"MCC at 0.5 on {len(cases)} challenges {mcc:.3f}; written to {manifest_path}")
    return manifest["calibration"]


def calibrate_config(name: str, cases) -> dict:
    path = resolve_config_path(name)
    if path.resolve().parent == PRESETS_DIR.resolve():
        raise ValueError(f"{path} is a built-in preset: copy it (cp {path} my-cascade.yaml) and calibrate the copy")
    raw = read_yaml(path)
    labels = np.array([c.label for c in cases])
    images = _images(cases)
    config = load_config(str(path))
    for index, tier in enumerate(config.tiers):  # each tier alone, on every image
        tier = tier.model_copy(update={"calibration": None})
        built = build_tier(config, tier)
        probabilities = [o.probability for start in range(0, len(images), 16) for o in built.predict(images[start : start + 16])]
        fitted, mcc = calibrate(np.array([logit(p) for p in probabilities]), labels)
        raw["tiers"][index]["calibration"] = _section(fitted)
        print(f"tier {tier.name}: threshold {fitted.threshold:+.3f}, temperature {fitted.temperature:.3f}, MCC alone {mcc:.3f}")
    raw.pop("calibration", None)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    cascade = build_cascade(load_config(str(path)))  # the fused answer, with the tiers calibrated
    fused = [cascade.predict(image).probability for image in images]
    cascade.close()
    fitted, mcc = calibrate(np.array([logit(p) for p in fused]), labels)
    raw["calibration"] = _section(fitted)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    print(f"cascade: threshold {fitted.threshold:+.3f}, temperature {fitted.temperature:.3f}, MCC {mcc:.3f}; written to {path}")
    return raw["calibration"]


def run_calibrate(args: argparse.Namespace) -> dict:
    cases = build_cases(args.count, args.seed, args.data, args.split, args.pipeline)
    if args.model_dir is not None:
        return calibrate_model_dir(args.model_dir, cases)
    return calibrate_config(args.config, cases)
