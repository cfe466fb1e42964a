"""compression/: the CPU recipe end to end (ModelOpt FP8 weights + FP8 KV on a tiny VLM built from a
config), the hardware gate, the accuracy gate, and the SGLang arguments against SGLang's own schema."""

import importlib.util
import json
import os
from pathlib import Path

import pytest
import yaml
from safetensors import safe_open

from cascade.config import load_config
from compression.hardware import BuildDevice, BuildRefused, check_formats
from compression.recipe import RECIPES_DIR, load_recipe
from natix_miner.tools.cli import main



def _recipe(tmp_path: Path, **changes) -> Path:
    raw = yaml.safe_load((RECIPES_DIR / "cpu-tiny-fp8.yaml").read_text())
    raw.update(changes)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build") / "tiny-fp8"
    assert main(["build", "--recipe", "cpu-tiny-fp8", "--out", str(out)]) == 0
    return out


def test_the_cpu_fp8_recipe_quantizes_checks_and_exports(built):
    manifest = json.loads((built / "build-manifest.json").read_text())
    assert manifest["accuracy_check"]["passed"] and manifest["accuracy_check"]["inputs"] == 16
    assert manifest["formats"]["hf_quant_config"]["quantization"]["quant_algo"] == "FP8"
    assert manifest["formats"]["hf_quant_config"]["quantization"]["kv_cache_quant_algo"] == "FP8"
    assert manifest["libraries"]["nvidia-modelopt"] and manifest["device"]["kind"] == "cpu"
    assert len(manifest["source_model"]["sha256"]) == 64
    # Language-model linears are stored in FP8 with their scales; the vision tower stays unquantized.
    with safe_open(str(built / "model.safetensors"), "pt") as weights:
        dtypes = {name: str(weights.get_slice(name).get_dtype()) for name in weights.keys()}
    assert dtypes["language_model.model.layers.0.mlp.down_proj.weight"] == "F8_E4M3"
    assert "language_model.model.layers.0.self_attn.k_proj.k_scale" in dtypes
    assert not [n for n, d in dtypes.items() if n.startswith("vision_tower") and d == "F8_E4M3"]
    # The runtimes need the processor (tokenizer, chat template) beside the weights.
    assert (built / "tokenizer.json").is_file() and (built / "chat_template.jinja").is_file()


def test_kv_bytes_per_token_halve_against_bf16_from_the_exported_config(built):
    config = json.loads((built / "config.json").read_text())["text_config"]
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    elements = 2 * config["num_hidden_layers"] * config["num_key_value_heads"] * head_dim
    kv = json.loads((built / "build-manifest.json").read_text())["kv_cache"]
    assert kv["bf16_bytes_per_token"] == elements * 2
    assert kv["bytes_per_token"] == elements * 1
    assert kv["ratio_to_bf16"] == 0.5


def test_nvfp4_on_the_cpu_is_refused_with_the_device_the_format_and_the_alternative(tmp_path, capsys):
    out = tmp_path / "never"
    code = main(["build", "--recipe", str(_recipe(tmp_path, kv_cache="nvfp4")), "--out", str(out)])
    message = capsys.readouterr().err
    assert code == 3
    assert "NVFP4 KV cache" in message and "CPU" in message and "kv_cache: fp8" in message
    assert not out.exists()


def test_a_build_beyond_the_recipes_tolerance_fails_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    recipe = _recipe(tmp_path, accuracy={"heldout": 8, "max_relative_logit_error": 1e-7, "min_agreement": 0.9},
                     calibration={"images": "scenes", "count": 4, "batch_size": 4})
    assert main(["build", "--recipe", str(recipe), "--out", str(out)]) == 4
    assert "accuracy check FAILED" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".never*"))


@pytest.mark.parametrize("device, weights, kv, cross, refused_because", [
    (BuildDevice("cuda", "NVIDIA H100 80GB HBM3", (9, 0)), "fp8", "nvfp4", False, "compute capability 9.0"),
    (BuildDevice("cuda", "NVIDIA A100-SXM4-80GB", (8, 0)), "fp8", "fp8", False, "need compute capability >= 8.9"),
    (BuildDevice("cpu", "CPU"), "nvfp4", "fp8", True, "only on a CUDA GPU"),
    (BuildDevice("cuda", "NVIDIA B200", (10, 0)), "nvfp4", "nvfp4", False, None),
    (BuildDevice("cuda", "NVIDIA H100 80GB HBM3", (9, 0)), "nvfp4", "nvfp4", True, None),
    (BuildDevice("cuda", "NVIDIA L40S", (8, 9)), "fp8", "fp8", False, None),
])
def test_the_hardware_gate(device, weights, kv, cross, refused_because):
    if refused_because:
        with pytest.raises(BuildRefused, match=refused_because) as refusal:
            check_formats(device, weights, kv, cross)
        assert device.name in str(refusal.value) and "Alternative" in str(refusal.value)
    else:
        warnings = check_formats(device, weights, kv, cross)
        assert any("Blackwell only" in w for w in warnings) == (cross and device.compute_capability < (10, 0))


def test_a_bad_recipe_names_every_problem(tmp_path, capsys):
    recipe = _recipe(tmp_path, weights="int3", kv_cache="fp16", bogus=1)
    assert main(["build", "--recipe", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "weights" in err and "kv_cache" in err and "bogus" in err


def _sglang():
    if importlib.util.find_spec("sglang") is None:
        if os.environ.get("NATIX_FULL_TEST_ENV"):
            pytest.fail("sglang missing: run ./run_tests.sh, which installs it")
        pytest.skip("sglang not installed")
    from sglang.srt.server_args import ServerArgs

    return ServerArgs


@pytest.mark.parametrize("name", sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")))
def test_sglang_accepts_the_arguments_every_recipe_emits(name):
    ServerArgs = _sglang()
    recipe = load_recipe(name)
    arguments = ServerArgs(**recipe.sglang_server_args("/models/x"))
    assert arguments.kv_cache_dtype == {"fp8": "fp8_e4m3", "nvfp4": "nvfp4"}[recipe.kv_cache]
    assert arguments.quantization == {"fp8": "modelopt_fp8", "nvfp4": "modelopt_fp4"}[recipe.weights]


def test_several_gpus_get_sglangs_data_parallel_encoder(tmp_path):
    ServerArgs = _sglang()
    recipe = load_recipe(str(_recipe(tmp_path, sglang={"dp_size": 2, "server_args": {}})))
    arguments = ServerArgs(**recipe.sglang_server_args("/models/x"))
    assert arguments.dp_size == 2 and arguments.mm_enable_dp_encoder is True


@pytest.mark.parametrize("recipe, preset", [("h100-qwen2.5-vl-fp8", "h100"), ("blackwell-qwen2.5-vl-nvfp4", "blackwell")])
def test_each_gpu_recipe_builds_what_its_preset_serves(recipe, preset):
    built = load_recipe(recipe)
    config = load_config(preset, check_models=False)
    judge = next(t for t in config.tiers if t.kind == "vlm")
    assert config.model_folder(judge) == built.path(built.out)
    assert judge.server_args["kv_cache_dtype"] == built.sglang_server_args("")["kv_cache_dtype"]
    assert judge.server_args["quantization"] == built.sglang_server_args("")["quantization"]
