import json
import shutil

import pytest
import torch
import yaml
from PIL import Image

from cascade.config import ConfigError, build_cascade, load_config
from cascade.model_folder import ModelFolderError, check_model_folder, fetch_model
from cascade.scenes import generate_scene
from cascade.tiers.zero_shot import ROADWORK_PROMPTS, STREET_PROMPTS, ZeroShotTier
from natix_miner.tools.cli import main
from tests.random_models import build_image_text_model


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return build_image_text_model(tmp_path_factory.mktemp("clip") / "tiny-clip", "tiny-clip")


def images():
    return [generate_scene(i, roadwork=bool(i % 2)).image for i in range(3)] + [Image.new("L", (300, 90), 128)]


def test_probability_is_the_roadwork_prompts_share_of_the_models_own_softmax(tiny_clip):
    tier = ZeroShotTier(tiny_clip, "clip")
    batch = images()
    probabilities = [o.probability for o in tier.predict(batch)]
    # the same number from CLIP's own forward: softmax over every prompt, summed over the roadwork ones
    prompts = list(ROADWORK_PROMPTS + STREET_PROMPTS)
    squares = [im.convert("RGB").resize((32, 32), Image.BICUBIC) for im in batch]  # the tiny tower's input size
    inputs = tier.processor(text=prompts, images=squares, padding=True, return_tensors="pt")
    with torch.inference_mode():
        per_image = tier.model(**inputs).logits_per_image
    expected = torch.softmax(per_image, dim=-1)[:, :len(ROADWORK_PROMPTS)].sum(-1)
    assert probabilities == pytest.approx(expected.tolist(), abs=1e-5)
    assert all(0.0 < p < 1.0 for p in probabilities) and len(set(probabilities)) == len(batch)
    assert probabilities == pytest.approx([tier.predict([im])[0].probability for im in batch], abs=1e-5)


def test_the_whole_image_is_seen_not_a_centre_crop(tiny_clip):
    tier = ZeroShotTier(tiny_clip, "clip")
    wide = Image.new("RGB", (300, 100), (90, 90, 90))
    wide.paste((255, 120, 0), (0, 0, 60, 100))  # an orange block at the left edge, outside a centre crop
    plain = Image.new("RGB", (300, 100), (90, 90, 90))
    assert tier.predict([wide])[0].probability != pytest.approx(tier.predict([plain])[0].probability, abs=1e-6)
    sliver = tier.predict([Image.new("RGB", (4000, 2), (200, 200, 200))])[0]  # would be 448,000 x 224 after an aspect-keeping resize
    assert 0.0 < sliver.probability < 1.0


def test_a_zero_shot_tier_from_yaml_answers_through_the_cascade(tiny_clip, tmp_path):
    path = tmp_path / "zero-shot.yaml"
    path.write_text(yaml.safe_dump({"tiers": [
        {"name": "lite0", "kind": "classifier", "model": "builtin:efficientnet-lite0-roadwork", "exit_below": 0.0, "exit_above": 1.0},
        {"name": "clip", "kind": "zero_shot", "model": str(tiny_clip), "hub_repo": "openai/clip-vit-base-patch32",
         "weight": 2.0, "roadwork_prompts": ["a photo of roadwork"], "street_prompts": ["a photo of a street", "a photo of a road"]},
    ]}))
    cascade = build_cascade(load_config(str(path)))
    clip = cascade.stages[1].tier.inner  # behind the micro-batcher
    assert (clip.roadwork_prompts, clip.street_prompts) == (("a photo of roadwork",), ("a photo of a street", "a photo of a road"))
    for image in images()[:2]:
        result = cascade.predict(image)
        assert 0.0 <= result.probability <= 1.0
        assert result.settled_by == "clip" and set(result.tier_ms) == {"lite0", "clip"}  # lite0 never settles alone


@pytest.mark.parametrize("tier, problem", [
    ({"name": "c", "kind": "classifier", "model": "x", "street_prompts": ["a street"]}, "zero_shot tiers only"),
    ({"name": "z", "kind": "zero_shot"}, "needs model"),
    ({"name": "z", "kind": "zero_shot", "model": "builtin:x", "hub_repo": "a/b"}, "hub_repo needs model"),
    ({"name": "z", "kind": "zero_shot", "model": "x", "runtime": "transformers"}, "does not apply to a zero_shot tier"),
])
def test_zero_shot_mistakes_are_named(tmp_path, tier, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"tiers": [tier]}))
    with pytest.raises(ConfigError, match=problem):
        load_config(str(path), check_models=False)


def test_the_layout_check_names_what_is_missing_and_the_command_that_fetches_it(tiny_clip, tmp_path):
    check_model_folder(tiny_clip, "openai/clip-vit-base-patch32")  # complete: no complaint
    partial = tmp_path / "partial"
    shutil.copytree(tiny_clip, partial)
    (partial / "model.safetensors").unlink()
    with pytest.raises(ModelFolderError, match=r"lacks weights .*natix-miner fetch-model openai/clip-vit-base-patch32 --out .*partial"):
        check_model_folder(partial, "openai/clip-vit-base-patch32")
    # a sharded checkpoint whose download stopped half-way
    (partial / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors"}}))
    with pytest.raises(ModelFolderError, match="weight shard model-00001-of-00002.safetensors"):
        check_model_folder(partial)
    with pytest.raises(ModelFolderError, match="lacks weight shard .*copy the whole model folder there"):
        ZeroShotTier(partial, "clip")  # the tier checks too, for folders no hub_repo names
    (partial / "tokenizer.json").unlink()
    (partial / "tokenizer_config.json").unlink()
    with pytest.raises(ModelFolderError, match="tokenizer"):
        check_model_folder(partial)


def test_a_config_whose_weights_are_missing_fails_in_one_line_naming_the_fetch(tmp_path):
    path = tmp_path / "clip.yaml"
    path.write_text(yaml.safe_dump({"tiers": [
        {"name": "clip", "kind": "zero_shot", "model": "models/clip", "hub_repo": "openai/clip-vit-base-patch32"}]}))
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    message = str(caught.value)
    assert "\n" not in message and "tier 'clip'" in message
    assert f"`natix-miner fetch-model openai/clip-vit-base-patch32 --out {tmp_path / 'models' / 'clip'}`" in message


def test_fetch_model_offline_says_what_it_needs(tmp_path, capsys):
    with pytest.raises(ModelFolderError, match="could not download openai/clip-vit-base-patch32 .*internet access to huggingface.co"):
        fetch_model("openai/clip-vit-base-patch32", tmp_path / "clip")
    assert main(["fetch-model", "openai/clip-vit-base-patch32", "--out", str(tmp_path / "clip")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("natix-miner fetch-model: could not download") and "\n" not in error


def test_fetch_takes_safetensors_and_falls_back_to_bin_weights_only_when_a_repository_has_none(tmp_path, monkeypatch):
    """The hub stood in for by a function that copies a repository's files matching allow_patterns."""
    import fnmatch

    import huggingface_hub

    repositories = {
        "org/safetensors": ["config.json", "preprocessor_config.json", "tokenizer.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5"],
        "org/bin-only": ["config.json", "preprocessor_config.json", "tokenizer_config.json", "spiece.model", "pytorch_model.bin", "flax_model.msgpack"],
    }

    def snapshot_download(repo_id, revision, local_dir, allow_patterns):
        for name in repositories[repo_id]:
            if any(fnmatch.fnmatch(name, pattern) for pattern in allow_patterns):
                (tmp_path / local_dir).mkdir(parents=True, exist_ok=True)
                (tmp_path / local_dir / name).write_text("{}")
        return local_dir

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    first = fetch_model("org/safetensors", tmp_path / "a")
    assert sorted(p.name for p in first.iterdir()) == ["config.json", "model.safetensors", "preprocessor_config.json", "tokenizer.json"]
    second = fetch_model("org/bin-only", tmp_path / "b")
    assert sorted(p.name for p in second.iterdir()) == ["config.json", "preprocessor_config.json", "pytorch_model.bin", "spiece.model", "tokenizer_config.json"]


def test_calibrate_fits_the_zero_shot_tiers_threshold(tiny_clip, tmp_path):
    from cascade.calibration import CalibratedTier, logit
    from natix_miner.tools.calibrate import calibrate_config
    from natix_miner.tools.evaluate import build_cases

    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"tiers": [{"name": "clip", "kind": "zero_shot", "model": str(tiny_clip), "max_batch": 1}]}))
    cases = build_cases(24, seed=5)
    calibrate_config(str(path), cases)
    section = yaml.safe_load(path.read_text())["tiers"][0]["calibration"]
    cascade = build_cascade(load_config(str(path)))
    tier = cascade.stages[0].tier
    assert isinstance(tier, CalibratedTier) and tier.calibration.threshold == pytest.approx(section["threshold"])
    raw = ZeroShotTier(tiny_clip, "clip")
    for case in cases[:6]:  # the calibrated tier says roadwork exactly where the raw margin passes the fitted cut
        image = case.decoded()
        assert (tier.predict([image])[0].probability > 0.5) == (logit(raw.predict([image])[0].probability) > section["threshold"])
    cascade.close()
