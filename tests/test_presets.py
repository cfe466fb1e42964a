import importlib.util
import json
import os

import pytest

from cascade.config import ConfigError, list_presets, load_config, sglang_server_args
from natix_miner.tools.cli import main

GPU_PRESETS = ("h100", "blackwell")
# Presets whose strongest tier (a VLM judge, or a zero-shot model of web photographs) sees every image.
EVERY_IMAGE_JUDGED = {"h100": "vlm-judge", "blackwell": "vlm-judge", "cpu-zeroshot": "clip"}


def test_every_preset_validates():
    assert {"cpu-default", *GPU_PRESETS, *EVERY_IMAGE_JUDGED} <= set(list_presets())
    for name in list_presets():
        config = load_config(name, check_models=False)
        assert config.deadline_s < 9.0 and config.tiers


def test_hopper_gets_fp8_and_blackwell_nvfp4():
    h100 = sglang_server_args(*_judge("h100"))
    blackwell = sglang_server_args(*_judge("blackwell"))
    assert (h100["quantization"], h100["kv_cache_dtype"]) == ("modelopt_fp8", "fp8_e4m3")
    assert (blackwell["quantization"], blackwell["kv_cache_dtype"]) == ("modelopt_fp4", "nvfp4")


def _judge(preset):
    config = load_config(preset, check_models=False)
    return config, next(t for t in config.tiers if t.runtime == "sglang")


def test_gpu_presets_need_their_built_models():
    with pytest.raises(ConfigError, match="model .*artifacts.* does not exist"):
        load_config("h100")


@pytest.mark.parametrize("preset, judge", EVERY_IMAGE_JUDGED.items())
def test_no_tier_settles_before_the_judge(preset, judge):
    """The drawing-trained classifier fuses its vote but never settles an image alone."""
    config = load_config(preset, check_models=False)
    names = [t.name for t in config.tiers]
    assert names[-1] == judge
    for tier in config.tiers[:-1]:
        assert (tier.exit_below, tier.exit_above) == (0.0, 1.0)
    assert config.tiers[-1].weight > max(t.weight for t in config.tiers[:-1])


def test_the_cpu_zero_shot_preset_names_the_command_that_fetches_its_weights():
    with pytest.raises(ConfigError, match=r"tier 'clip' model folder .*artifacts/clip-vit-base-patch32 does not exist: "
                                          r"fetch it with `natix-miner fetch-model openai/clip-vit-base-patch32 --out "):
        load_config("cpu-zeroshot")


def test_sglang_args_command_prints_json(capsys):
    assert main(["sglang-args", "--config", "blackwell"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["vlm-judge"]["model_path"].endswith("artifacts/qwen2.5-vl-7b-instruct-nvfp4")


@pytest.mark.parametrize("preset", GPU_PRESETS)
def test_sglang_accepts_every_presets_arguments(preset):
    """Checked against SGLang's own ServerArgs (run_tests.sh installs sglang without its CUDA deps)."""
    if importlib.util.find_spec("sglang") is None:
        if os.environ.get("NATIX_FULL_TEST_ENV"):
            pytest.fail("sglang missing: run ./run_tests.sh, which installs it")
        pytest.skip("sglang not installed")
    from sglang.srt.server_args import ServerArgs

    config, tier = _judge(preset)
    arguments = ServerArgs(**sglang_server_args(config, tier))
    for key, value in tier.server_args.items():
        assert getattr(arguments, key) == value


@pytest.mark.parametrize("tier, problem", [
    ({"name": "j", "kind": "vlm", "model": "x"}, "needs runtime"),
    ({"name": "j", "kind": "vlm", "runtime": "sglang_http", "prompt_template": "{prompt}"}, "needs url"),
    ({"name": "c", "kind": "classifier", "model": "x", "runtime": "sglang"}, "does not apply to a classifier tier"),
    ({"name": "j", "kind": "vlm", "runtime": "transformers", "model": "x", "server_args": {"tp_size": 2}}, "runtime sglang only"),
])
def test_vlm_tier_mistakes_are_named(tmp_path, tier, problem):
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"tiers": [tier]}))
    with pytest.raises(ConfigError, match=problem):
        load_config(str(path), check_models=False)


def test_a_presets_relative_models_start_at_the_working_directory_and_a_yaml_of_yours_at_its_folder(tmp_path, monkeypatch):
    """Presets ship inside the package (site-packages after `pip install .`): their `artifacts/...`
    are the operator's, found from where the miner runs (run_miner.sh and pm2 run from the checkout)."""
    import yaml

    monkeypatch.chdir(tmp_path)
    config = load_config("cpu-zeroshot", check_models=False)
    assert config.model_folder(config.tiers[-1]) == tmp_path / "artifacts" / "clip-vit-base-patch32"
    mine = tmp_path / "elsewhere" / "mine.yaml"
    mine.parent.mkdir()
    mine.write_text(yaml.safe_dump({"tiers": [{"name": "c", "kind": "classifier", "model": "models/lite0"}]}))
    config = load_config(str(mine), check_models=False)
    assert config.model_folder(config.tiers[0]) == tmp_path / "elsewhere" / "models" / "lite0"


def test_a_shipped_recipes_paths_start_at_the_working_directory(tmp_path, monkeypatch):
    from compression.recipe import load_recipe

    monkeypatch.chdir(tmp_path)
    recipe = load_recipe("h100-qwen2.5-vl-fp8")
    assert recipe.path(recipe.model) == tmp_path / "artifacts" / "sources" / "Qwen2.5-VL-7B-Instruct"
    assert recipe.path(recipe.out) == tmp_path / "artifacts" / "qwen2.5-vl-7b-instruct-fp8"
