"""Run the compression recipes on a CUDA machine at a realistic size and print what happened.

A random-weight LLaVA with a CLIP ViT-L/14 tower and a Llama-3.2-1B-shaped language model
(compression/tiny.py, size "1b") goes through `compression.build` three times:
  1. FP8 weights + FP8 KV cache (the Hopper recipe);
  2. NVFP4 weights + NVFP4 KV cache without --cross-build (must be refused on a pre-Blackwell GPU);
  3. FP8 weights + NVFP4 KV cache, and 4. NVFP4 weights + NVFP4 KV cache, with --cross-build
     (NVFP4 calibrated on CUDA, checkpoint for Blackwell).
Random weights make the accuracy figures a smoke test, not a quality claim: tolerances are loose
(random weights amplify quantization noise far beyond what a trained model shows).

  python benchmarks/compression_gpu.py --work /tmp/gpu-build [--size 1b]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import yaml
from safetensors import safe_open

from compression.build import AccuracyCheckFailed, build
from compression.hardware import BuildRefused
from compression.recipe import load_recipe
from compression.tiny import build_tiny_vlm


def _recipe(work: Path, source: Path, weights: str, kv: str) -> Path:
    path = work / f"{weights}-{kv}.yaml"
    path.write_text(yaml.safe_dump({
        "name": f"llava-{weights}-{kv}", "model": str(source), "device": "cuda", "weights": weights, "kv_cache": kv,
        "out": str(work / f"llava-{weights}-{kv}"),
        "calibration": {"images": "scenes", "count": 64, "batch_size": 16},
        "accuracy": {"heldout": 32, "max_relative_logit_error": 1.0 if "nvfp4" in (weights, kv) else 0.5, "min_agreement": 0.5},
    }))
    return path


def _stored_dtypes(folder: Path) -> dict[str, int]:
    counts: Counter = Counter()
    for file in folder.glob("*.safetensors"):
        with safe_open(str(file), "pt") as weights:
            for name in weights.keys():
                counts[str(weights.get_slice(name).get_dtype())] += 1
    return dict(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/gpu-build")
    parser.add_argument("--size", default="1b", choices=["tiny", "1b"])
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    source = build_tiny_vlm(work / f"source-{args.size}", size=args.size, device="cuda")
    print(f"source model ({args.size}) written in {time.perf_counter() - started:.1f} s")
    results = {}
    for weights, kv, cross in (("fp8", "fp8", False), ("nvfp4", "nvfp4", False), ("fp8", "nvfp4", True), ("nvfp4", "nvfp4", True)):
        label = f"{weights}/{kv}{' --cross-build' if cross else ''}"
        recipe = load_recipe(str(_recipe(work, source, weights, kv)))
        try:
            out = build(recipe, cross_build=cross)
        except (BuildRefused, AccuracyCheckFailed) as exc:
            results[label] = {"outcome": f"{type(exc).__name__}: {exc}"}
            print(f"== {label}: {results[label]['outcome']}")
            continue
        manifest = json.loads((out / "build-manifest.json").read_text())
        size = sum(f.stat().st_size for f in out.glob("*.safetensors"))
        results[label] = {"outcome": "built", "seconds": manifest["build_seconds"], "checkpoint_gib": round(size / 2**30, 3),
                          "stored_dtypes": _stored_dtypes(out), "kv_cache": manifest["kv_cache"],
                          "accuracy_check": manifest["accuracy_check"], "device": manifest["device"],
                          "hf_quant_config": manifest["formats"]["hf_quant_config"]["quantization"]}
        print(f"== {label}: {json.dumps(results[label])}")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
