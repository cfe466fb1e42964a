import pytest
import torch
import yaml
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

from cascade.config import ConfigError, build_cascade, load_config
from cascade.scenes import generate_scene
from cascade.tiers.hf_classifier import HFClassifierTier


@pytest.fixture(scope="module")
def reference_style_vit(tmp_path_factory):
    """The reference miner's checkpoint layout (ViT, labels Roadwork/None), tiny and random."""
    folder = tmp_path_factory.mktemp("vit") / "roadwork-vit"
    config = ViTConfig(image_size=64, patch_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, id2label={0: "None", 1: "Roadwork"}, label2id={"None": 0, "Roadwork": 1})
    torch.manual_seed(0)
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder


def test_reads_the_roadwork_label_probability(reference_style_vit):
    tier = HFClassifierTier(reference_style_vit, "vit")
    images = [generate_scene(i).image for i in range(3)]
    batched = [o.probability for o in tier.predict(images)]
    model, processor = tier.model, tier.processor
    with torch.inference_mode():
        logits = model(**processor(images=images, return_tensors="pt")).logits
    assert batched == pytest.approx(torch.softmax(logits, -1)[:, 1].tolist(), rel=1e-5)
    assert batched == pytest.approx([tier.predict([im])[0].probability for im in images], rel=1e-4)


def test_an_unknown_label_is_named(reference_style_vit):
    with pytest.raises(ValueError, match="no label 'Cones'"):
        HFClassifierTier(reference_style_vit, "vit", positive_label="Cones")


def test_serves_from_yaml(reference_style_vit, tmp_path):
    path = tmp_path / "vit.yaml"
    path.write_text(yaml.safe_dump({"tiers": [{"name": "vit", "kind": "hf_classifier", "model": str(reference_style_vit)}]}))
    result = build_cascade(load_config(str(path))).predict(generate_scene(3).image)
    assert 0.0 <= result.probability <= 1.0 and result.settled_by == "vit"
    path.write_text(yaml.safe_dump({"tiers": [{"name": "vit", "kind": "hf_classifier"}]}))
    with pytest.raises(ConfigError, match="needs model"):
        load_config(str(path))
