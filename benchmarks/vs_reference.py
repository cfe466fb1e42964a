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

from benchmarks.load import challenge_payloads, run_load, uncached_copy  # noqa: E402


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
    parser.add_argument("--token-keep", default="1.0",
                        help="comma list: one run of ours per value, tokens pruned to that share (cascade/token_pruning.py); 1.0: off")
    parser.add_argument("--token-after", type=int, default=3, help="block after which ours prunes")
    parser.add_argument("--ours-config", default=None,
                        help="serve this cascade preset or YAML instead of the ViT (e.g. cpu-default against the reference's default set-up)")
    args = parser.parse_args()
    payloads = challenge_payloads(64)
    shape = f"{args.validators} validators, concurrency {args.concurrency}"
    ours: list = []
    with tempfile.TemporaryDirectory() as tmp:
        model = build_vit_base(Path(tmp) / "vit-base-roadwork")

        def run_ours(keep: float) -> None:
            if args.ours_config:  # served with its answer cache off: the load cycles a few dozen images
                config, label = uncached_copy(args.ours_config, Path(tmp)), args.ours_config
            else:
                tier = {"name": "vit", "kind": "hf_classifier", "model": str(model), "max_batch": args.max_batch, "max_wait_ms": 5}
                label = "ViT-base"
                if keep < 1.0:
                    tier["token_pruning"] = {"keep_ratio": keep, "after_layer": args.token_after}
                    label += f", tokens kept {keep} after block {args.token_after}"
                config = Path(tmp) / f"vit-{keep}.yaml"
                config.write_text(yaml.safe_dump({"cache_size": 0, "workers": 32, "tiers": [tier]}))
            ours.append(run_load(f"ours, {label}, {shape}", ["--config", str(config)], args.validators,
                                 args.concurrency, args.duration, payloads))
            print(ours[-1].lines(), flush=True)

        keeps = [float(k) for k in args.token_keep.split(",")]
        run_ours(keeps[0])
        reference = run_load(f"reference path, ViT-base, {shape}", ["--reference-model", str(model)], args.validators,
                             args.concurrency, args.duration, payloads, script=Path(__file__).with_name("reference_miner.py"))
        print(reference.lines(), flush=True)
        for keep in keeps[1:]:  # the reference runs between ours, so drift on the machine falls on both sides
            run_ours(keep)
    for report in ours:
        print(f"{report.label.split(', ' + shape)[0]}: throughput / reference {report.throughput / reference.throughput:.2f}x;  "
              f"p99 {report.percentile(0.99) * 1000:.0f} ms vs {reference.percentile(0.99) * 1000:.0f} ms;  "
              f"later than 9 s: {report.late} vs {reference.late};  non-200 {report.failed} vs {reference.failed}")

if __name__ == "__main__":
    main()
