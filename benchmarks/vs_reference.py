"""Our miner against the reference miner's inference path, same model, same load, one run.

The model is the reference's architecture, ViT-base image classification (labels None/Roadwork),
built from its config with random weights: the speed of a model does not depend on its weights.
Ours serves it as an hf_classifier tier (batched, off the event loop); the reference calls a
transformers pipeline inside the forward, one image at a time (benchmarks/reference_miner.py).

    .venv/bin/python benchmarks/vs_reference.py --validators 4 --concurrency 16 --duration 30
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.load import challenge_payloads, run_load  # noqa: E402


def build_vit_base(folder: Path) -> Path:
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ViTConfig(id2label={0: "None", 1: "Roadwork"}, label2id={"None": 0, "Roadwork": 1})
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 224, "width": 224}).save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--max-batch", type=int, default=8)
    args = parser.parse_args()
    payloads = challenge_payloads(64)
    with tempfile.TemporaryDirectory() as tmp:
        model = build_vit_base(Path(tmp) / "vit-base-roadwork")
        ours_config = Path(tmp) / "vit.yaml"
        ours_config.write_text(yaml.safe_dump({"cache_size": 0, "workers": 32, "tiers": [
            {"name": "vit", "kind": "hf_classifier", "model": str(model), "max_batch": args.max_batch, "max_wait_ms": 5}]}))
        shape = f"{args.validators} validators, concurrency {args.concurrency}"
        ours = run_load(f"ours, ViT-base, {shape}", ["--config", str(ours_config)], args.validators,
                        args.concurrency, args.duration, payloads)
        print(ours.lines(), flush=True)
        reference = run_load(f"reference path, ViT-base, {shape}", ["--reference-model", str(model)], args.validators,
                             args.concurrency, args.duration, payloads, script=Path(__file__).with_name("reference_miner.py"))
        print(reference.lines())
    print(f"throughput ours / reference: {ours.throughput / reference.throughput:.2f}x;  "
          f"p99 {ours.percentile(0.99) * 1000:.0f} ms vs {reference.percentile(0.99) * 1000:.0f} ms;  "
          f"later than 9 s: {ours.late} vs {reference.late}")


if __name__ == "__main__":
    main()
