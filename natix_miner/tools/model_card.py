"""`natix-miner model-card`: the model_card.json SN72 requires beside a published model.

Format (streetvision-subnet docs/Mining.md): {"model_name", "description", "version" (X.Y.Z),
"submitted_by" (the miner's hotkey ss58), "submission_time" (unix seconds)}.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from cascade.tiers.classifier import MANIFEST, ClassifierTier

from ..serving.wallet import load_wallet

CARD = "model_card.json"
VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def check_model_folder(folder: Path) -> list[str]:
    """Problems that would stop the folder from serving as a tier; empty when it is ready."""
    if not folder.is_dir():
        return [f"{folder} is not a folder"]
    if not (folder / MANIFEST).is_file():
        return [f"{folder} has no {MANIFEST}: export it with `natix-miner train`"]
    try:
        ClassifierTier(folder, runtime="onnxruntime")  # as cpu-default serves it: classifier.onnx, else exported at load
    except Exception as exc:
        return [f"{folder} does not load: {type(exc).__name__}: {exc}"]
    return []


def build_card(model_name: str, description: str, version: str, hotkey_ss58: str, now: float | None = None) -> dict:
    if not VERSION.match(version):
        raise ValueError(f"version {version!r} must be X.Y.Z, e.g. 1.0.0")
    if not model_name.strip():
        raise ValueError("model name must not be empty")
    return {
        "model_name": model_name,
        "description": description,
        "version": version,
        "submitted_by": hotkey_ss58,
        "submission_time": int(time.time() if now is None else now),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", type=Path, required=True, help="the model folder you will publish")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--description", default="")
    parser.add_argument("--version", required=True, help="X.Y.Z")
    parser.add_argument("--wallet.name", dest="wallet_name", default="default")
    parser.add_argument("--wallet.hotkey", dest="wallet_hotkey", default="default")
    parser.add_argument("--wallet.path", dest="wallet_path", default="~/.bittensor/wallets/")


def run_model_card(args: argparse.Namespace) -> Path:
    problems = check_model_folder(args.model_dir)
    if problems:
        raise ValueError("; ".join(problems))
    wallet = load_wallet(args.wallet_name, args.wallet_hotkey, args.wallet_path, create_missing=False)
    card = build_card(args.model_name, args.description, args.version, wallet.hotkey.ss58_address)
    path = args.model_dir / CARD
    path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {path} for hotkey {card['submitted_by']}; publish the folder to Hugging Face and pass its repo as --model_url")
    return path
