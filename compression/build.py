"""`natix-miner build --recipe FILE`: a Hugging Face VLM in, a quantized artifact the cascade serves out.

  hardware check -> ModelOpt PTQ calibrated on roadwork images and the judge prompt -> accuracy
  check against the unquantized model -> export_hf_checkpoint -> manifest -> optional
  TensorRT-LLM warm-up -> the SGLang arguments for the cascade's VLM tier.

The artifact is written to a staging folder and moved into place only when every step passed, so
a failed or interrupted build never leaves a half-written checkpoint where a tier would load it.
Exit codes: 0 built; 2 bad recipe or arguments; 3 refused by the hardware check; 4 accuracy check
failed; 5 a required library (ModelOpt, TensorRT-LLM) is missing.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from cascade.config import ConfigError

from . import hardware
from .export import export_checkpoint, folder_digest, kv_cache_summary
from .hardware import BuildRefused
from .recipe import Recipe, load_recipe

MANIFEST = "build-manifest.json"
EXIT_REFUSED, EXIT_ACCURACY, EXIT_MISSING = 3, 4, 5


class AccuracyCheckFailed(RuntimeError):
    pass


class MissingLibrary(RuntimeError):
    pass


def _versions() -> dict[str, str | None]:
    versions = {}
    for package in ("torch", "transformers", "nvidia-modelopt", "sglang", "tensorrt-llm"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _requirement(package: str) -> str:
    """This project's pinned requirement for `package` (e.g. 'nvidia-modelopt==0.47.0'), else its name."""
    try:
        pins = metadata.requires("natix-miner") or []
    except metadata.PackageNotFoundError:
        pins = []
    return next((pin.split(";")[0].strip() for pin in pins if pin.startswith(package)), package)


def _require_modelopt(device_kind: str) -> None:
    try:
        import modelopt.torch.quantization  # noqa: F401
    except ImportError as exc:
        if device_kind == "cpu":  # ModelOpt's fake quantization needs no CUDA: the [gpu] extra (SGLang's CUDA stack) would be wasted
            fix = f"pip install '{_requirement('nvidia-modelopt')}' (it runs on the CPU; the dev install, pip install -e '.[dev]', has it too)"
        else:
            fix = "pip install -e '.[gpu]' (ModelOpt and SGLang for the GPU)"
        raise MissingLibrary(f"nvidia-modelopt is not importable ({exc}): {fix}") from None


def check_sglang_args(args: dict) -> str:
    """Construct SGLang's own ServerArgs from the arguments when SGLang is installed."""
    try:
        from sglang.srt.server_args import ServerArgs
    except ImportError:
        return "not checked: sglang is not installed here"
    try:
        ServerArgs(**args)
    except (TypeError, ValueError) as exc:  # unknown keys raise TypeError, bad choices ValueError
        raise ConfigError(f"SGLang rejects the recipe's server arguments {args}: {exc}") from None
    return f"accepted by sglang {metadata.version('sglang')} ServerArgs"


def _warm_up_tensorrt_llm(recipe: Recipe, folder: Path, image, log) -> str:
    from cascade.runtimes import RuntimeUnavailable
    from cascade.runtimes.tensorrt_llm_runtime import TensorRTLLMRuntime
    from cascade.tiers.vlm import yes_probability

    try:
        runtime = TensorRTLLMRuntime(str(folder))
    except RuntimeUnavailable as exc:
        if recipe.tensorrt_llm.required:
            raise MissingLibrary(str(exc)) from None
        return f"skipped: {exc}"
    started = time.perf_counter()
    p_yes = yes_probability(runtime.first_token_logprobs([image], recipe.calibration.prompt)[0])
    return f"loaded and judged one image in {time.perf_counter() - started:.1f} s (P(yes) {p_yes:.3f})"


def tensorrt_llm_step(recipe: Recipe, folder: Path, image, log) -> str:
    """Step 6, said whatever happens: warmed up, skipped (and why), or not asked for."""
    if not recipe.tensorrt_llm.warm_up:
        result = "skipped: not asked for (tensorrt_llm: {warm_up: true} in the recipe asks for it)"
    else:
        result = _warm_up_tensorrt_llm(recipe, folder, image, log)
    log(f"[6/6] TensorRT-LLM warm-up {result}")
    return result


def build(recipe: Recipe, out: Path | None = None, cross_build: bool = False, log=print) -> Path:
    """Run the recipe; return the artifact folder. Raises BuildRefused, AccuracyCheckFailed, MissingLibrary."""
    started = time.perf_counter()
    out = (out or recipe.path(recipe.out)).resolve()
    device = hardware.detect(recipe.device)
    for warning in hardware.check_formats(device, recipe.weights, recipe.kv_cache, cross_build):
        log(f"note: {warning}")
    _require_modelopt(device.kind)
    sglang_args = recipe.sglang_server_args(out)
    sglang_check = check_sglang_args(sglang_args)  # before hours of calibration, not after
    import modelopt.torch.quantization as mtq
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from .quantize import JudgeInputs, compare, judge_images, modelopt_config
    from .tiny import build_tiny_vlm

    log(f"[1/6] {recipe.name}: weights {recipe.weights}, KV cache {recipe.kv_cache}, on {device.describe()}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as work:
        work = Path(work)
        source = build_tiny_vlm(work / "source") if recipe.model == "tiny:llava" else recipe.path(recipe.model)
        if not (source / "config.json").is_file():
            raise ConfigError(f"model {source} is not a Hugging Face model folder (no config.json)")
        dtype = torch.bfloat16 if device.kind == "cuda" else torch.float32
        model = AutoModelForImageTextToText.from_pretrained(str(source), dtype=dtype).to(device.torch_device).eval()
        processor = AutoProcessor.from_pretrained(str(source))

        cal = recipe.calibration
        log(f"[2/6] calibration inputs: {cal.count} images from {cal.images} with the judge prompt; "
            f"{recipe.accuracy.heldout} held out for the accuracy check")
        base = recipe.base()
        calibration_images = judge_images(cal.images, cal.count, cal.seed, base=base)
        heldout_images = judge_images(cal.images, recipe.accuracy.heldout, cal.seed, heldout_after=cal.count, base=base)
        calibration = JudgeInputs.build(processor, calibration_images, cal.prompt, cal.batch_size, device.torch_device)
        heldout = JudgeInputs.build(processor, heldout_images, cal.prompt, cal.batch_size, device.torch_device)
        reference = heldout.next_token_logits(model)

        log("[3/6] ModelOpt post-training quantization")
        step = time.perf_counter()
        mtq.quantize(model, modelopt_config(recipe.weights, recipe.kv_cache), calibration.forward_loop())
        log(f"      calibrated in {time.perf_counter() - step:.1f} s")

        check = compare(reference, heldout.next_token_logits(model), processor.tokenizer, recipe)
        log(f"[4/6] {check.summary()}")
        if not check.passed:
            raise AccuracyCheckFailed(check.summary())

        log("[5/6] export_hf_checkpoint")
        staging = work / "artifact"
        quant_config = export_checkpoint(model, processor, staging)
        manifest = {
            "recipe": recipe.model_dump(mode="json", exclude={"source"}),
            "recipe_file": str(recipe.source) if recipe.source else None,
            "source_model": {"path": str(source) if recipe.model != "tiny:llava" else "tiny:llava",
                             "sha256": folder_digest(source)},
            "formats": {"weights": recipe.weights, "kv_cache": recipe.kv_cache, "hf_quant_config": quant_config},
            "kv_cache": kv_cache_summary(staging),
            "device": {"kind": device.kind, "name": device.name,
                       "compute_capability": ".".join(map(str, device.compute_capability)) if device.compute_capability else None,
                       "cross_build": cross_build},
            "libraries": {**_versions(), "python": platform.python_version()},
            "calibration": {"images": cal.images, "count": cal.count, "seed": cal.seed, "prompt": cal.prompt},
            "accuracy_check": check.as_dict(),
            "sglang": {"server_args": sglang_args, "check": sglang_check},
        }
        log(f"      SGLang arguments {manifest['sglang']['check']}")
        manifest["tensorrt_llm"] = tensorrt_llm_step(recipe, staging, heldout_images[0], log)
        manifest["build_seconds"] = round(time.perf_counter() - started, 1)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    kv = manifest["kv_cache"]
    log(f"built {out} in {manifest['build_seconds']} s: KV cache {kv['bytes_per_token']:.0f} bytes/token "
        f"({kv['ratio_to_bf16']:.2f}x bf16)")
    log("serve it with a `vlm` tier, runtime: sglang, model: " + str(out))
    log(json.dumps(sglang_args, indent=2))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", required=True, help="a YAML recipe, or the name of one in compression/recipes/")
    parser.add_argument("--out", default=None, help="artifact folder (default: the recipe's `out`)")
    parser.add_argument("--cross-build", action="store_true",
                        help="calibrate NVFP4 on a pre-Blackwell GPU for a Blackwell server")


def run_build(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe)
    try:
        build(recipe, Path(args.out) if args.out else None, args.cross_build)
    except BuildRefused as exc:
        print(f"natix-miner build: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except AccuracyCheckFailed as exc:
        print(f"natix-miner build: {exc}; nothing was written. Loosen `accuracy` in the recipe only if you accept that.", file=sys.stderr)
        return EXIT_ACCURACY
    except MissingLibrary as exc:
        print(f"natix-miner build: {exc}", file=sys.stderr)
        return EXIT_MISSING
    return 0
