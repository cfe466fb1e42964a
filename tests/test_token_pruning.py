"""Visual-token pruning: exact when nothing is pruned, the right tokens kept, fewer tokens downstream,
batch-independent, and wired into the ViT tiers from YAML."""

import math

import pytest
import timm
import torch
import yaml
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

from cascade.config import ConfigError, build_tier, load_config
from cascade.token_pruning import _keep_and_fuse, prune_vit_tokens, transformer_blocks


def _timm_vit():
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=64, depth=4).eval()


def _hf_vit():
    torch.manual_seed(0)
    config = ViTConfig(image_size=64, patch_size=16, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                       intermediate_size=64, id2label={0: "None", 1: "Roadwork"}, label2id={"None": 0, "Roadwork": 1})
    return ViTForImageClassification(config).eval()


def _tokens_seen_by(block) -> list[int]:
    seen = []
    block.register_forward_pre_hook(lambda module, args, kwargs=None: seen.append(args[0].shape[1]))
    return seen


def test_the_most_attended_tokens_stay_and_the_rest_fuse_by_attention():
    tokens = torch.arange(5 * 2, dtype=torch.float32).view(1, 5, 2)  # one prefix token + 4 patches
    importance = torch.tensor([[0.1, 0.5, 0.2, 0.9]])
    out = _keep_and_fuse(tokens, importance, keep_ratio=0.5, prefix=1)
    assert out.shape == (1, 4, 2)
    assert torch.equal(out[0, 0], tokens[0, 0])  # the class token always stays
    assert torch.equal(out[0, 1], tokens[0, 4]) and torch.equal(out[0, 2], tokens[0, 2])  # patches 3 then 1
    fused = (tokens[0, 1] * 0.1 + tokens[0, 3] * 0.2) / 0.3
    assert torch.allclose(out[0, 3], fused)


@pytest.mark.parametrize("build, call", [
    (_timm_vit, lambda m, x: m(x)),
    (_hf_vit, lambda m, x: m(pixel_values=x).logits),
])
def test_nothing_pruned_is_exact_and_pruning_shrinks_what_later_blocks_see(build, call):
    pixels = torch.randn(3, 3, 64, 64)
    with torch.inference_mode():
        reference = call(build(), pixels)
        assert torch.allclose(call(prune_vit_tokens(build(), 1.0, 1), pixels), reference, atol=1e-5)
        pruned = prune_vit_tokens(build(), 0.5, 1)
        seen = _tokens_seen_by(transformer_blocks(pruned)[0][2])
        batched = call(pruned, pixels)
        one_by_one = torch.cat([call(pruned, pixels[i : i + 1]) for i in range(3)])
    patches = (64 // 16) ** 2
    assert seen[0] == 1 + math.ceil(0.5 * patches) + 1  # class token, kept patches, one fused token
    assert not torch.allclose(batched, reference, atol=1e-5)
    assert torch.allclose(batched, one_by_one, atol=1e-5)


def test_bad_requests_are_named():
    with pytest.raises(ValueError, match="needs a ViT"):
        prune_vit_tokens(timm.create_model("efficientnet_lite0", pretrained=False), 0.5, 1)
    with pytest.raises(ValueError, match="prune_after_layer"):
        prune_vit_tokens(_timm_vit(), 0.5, 3)  # the last block has no next block to rank by
    with pytest.raises(ValueError, match="already prunes"):
        prune_vit_tokens(prune_vit_tokens(_timm_vit(), 0.5, 1), 0.5, 2)


def test_a_vit_tier_prunes_when_its_yaml_asks(tmp_path):
    folder = tmp_path / "vit"
    _hf_vit().save_pretrained(folder)
    ViTImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    path = tmp_path / "cascade.yaml"
    tier = {"name": "vit", "kind": "hf_classifier", "model": str(folder), "token_pruning": {"keep_ratio": 0.25, "after_layer": 0}}
    path.write_text(yaml.safe_dump({"tiers": [tier]}))
    config = load_config(str(path))
    built = build_tier(config, config.tiers[0])
    seen = _tokens_seen_by(transformer_blocks(built.model)[0][1])
    from PIL import Image

    [output] = built.predict([Image.new("RGB", (64, 64), (200, 120, 0))])
    assert 0.0 <= output.probability <= 1.0 and seen == [1 + 4 + 1]
    path.write_text(yaml.safe_dump({"tiers": [{**tier, "kind": "detector"}]}))
    with pytest.raises(ConfigError, match="token_pruning applies to"):
        load_config(str(path), check_models=False)
