from pathlib import Path

import pytest
import yaml

from cascade.config import ConfigError, load_config
from natix_miner.serving.config import build_parser, settings_from_args

ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def settings(*argv):
    return settings_from_args(build_parser().parse_args(list(argv)))


def test_defaults_are_a_working_mainnet_miner():
    s = settings()
    assert s.netuid == 72 and s.force_validator_permit is True and not s.local
    assert s.cascade.tiers[0].kind == "classifier" and s.cascade.deadline_s < 9.0
    assert s.network == "finney"


def test_reference_start_script_flags_are_accepted():
    s = settings(
        "--neuron.image_detector", "ViT",
        "--neuron.image_detector_config", "ViT_roadwork.yaml",
        "--neuron.image_detector_device", "cpu",
        "--netuid", "323",
        "--model_url", "someone/roadwork-model",
        "--subtensor.network", "test",
        "--subtensor.chain_endpoint", "wss://test.finney.opentensor.ai:443",
        "--wallet.name", "miner", "--wallet.hotkey", "default",
        "--axon.port", "8091",
        "--blacklist.force_validator_permit", "false",
        "--logging.debug",
    )
    assert s.netuid == 323 and s.model_url == "someone/roadwork-model"
    assert s.network == "wss://test.finney.opentensor.ai:443"  # an explicit endpoint wins
    assert s.force_validator_permit is False and s.log_level == "debug"


@pytest.mark.parametrize("value, expected", [([], True), (["--blacklist.force_validator_permit"], True), (["--blacklist.force_validator_permit", "no"], False)])
def test_force_validator_permit_parses_like_a_switch_or_a_value(value, expected):
    assert settings(*value).force_validator_permit is expected


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        settings("--axon.port", "70000", "--local.validator_hotkey", "not-an-address", "--config", "no-such-preset")
    message = str(caught.value)
    assert "--axon.port 70000" in message
    assert "not an SS58 address" in message and "only makes sense with --local" in message
    assert "unknown cascade preset 'no-such-preset'" in message and "cpu-default" in message


def test_device_override_reaches_every_tier():
    tiers = settings("--neuron.image_detector_device", "cuda:1").cascade.tiers
    assert all(t.device == "cuda:1" and t.runtime == "torch" for t in tiers)  # ONNX Runtime is the CPU path only
    assert all(t.runtime == "onnxruntime" for t in settings("--neuron.image_detector_device", "cpu").cascade.tiers)


@pytest.mark.parametrize(
    "tier, problem",
    [
        ({"kind": "classifier", "runtime": "onnxruntime", "device": "cuda"}, "runtime onnxruntime runs on the CPU"),
        ({"kind": "classifier", "runtime": "sglang"}, "runtime sglang does not apply to a classifier tier (choose torch or onnxruntime)"),
        ({"kind": "detector", "runtime": "sglang"}, "runtime sglang does not apply to a detector tier (choose torch or onnxruntime)"),
        ({"kind": "detector", "runtime": "onnxruntime", "device": "cuda"}, "runtime onnxruntime runs on the CPU"),
        ({"kind": "zero_shot", "runtime": "onnxruntime"}, "runtime onnxruntime does not apply to a zero_shot tier"),
        ({"kind": "classifier", "runtime": "onnxruntime", "token_pruning": {"keep_ratio": 0.5}}, "token_pruning runs in torch"),
        ({"kind": "vlm", "runtime": "onnxruntime"}, "a vlm tier needs runtime: transformers, sglang, sglang_http, tensorrt_llm"),
    ],
)
def test_tier_runtimes_are_checked_against_the_kind(tmp_path, tier, problem):
    path = tmp_path / "runtime.yaml"
    path.write_text(yaml.safe_dump({"tiers": [{"name": "x", "model": "builtin:efficientnet-lite0-roadwork", **tier}]}))
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert problem in str(caught.value)


def test_yaml_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"deadline_s": 12, "tiers": [{"name": "x", "kind": "classifier", "model": "builtin:efficientnet-lite0-roadwork", "colour": 1}]}))
    with pytest.raises(ConfigError) as caught:
        load_config(str(bad))
    message = str(caught.value)
    assert "deadline_s: Input should be less than 9" in message and "tiers.0.colour" in message
    bad.write_text(yaml.safe_dump({"tiers": [{"name": "x", "kind": "classifier", "model": "builtin:efficientnet-lite0-roadwork", "exit_below": 0.9, "exit_above": 0.1}]}))
    with pytest.raises(ConfigError, match="exit_below"):
        load_config(str(bad))


def test_relative_model_folder_resolves_beside_the_yaml(tmp_path):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(yaml.safe_dump({"tiers": [{"name": "x", "kind": "classifier", "model": "models/missing"}]}))
    with pytest.raises(ConfigError, match=str(tmp_path / "models" / "missing")):
        load_config(str(cfg))


def test_local_mode_settings():
    s = settings("--local", "--local.validator_hotkey", ALICE, "--local.ready_file", "/tmp/r.json")
    assert s.local and s.local_validator_hotkeys == [ALICE] and str(s.ready_file) == "/tmp/r.json"


def test_a_tier_without_a_known_kind_is_told_the_kinds(tmp_path):
    bad = tmp_path / "bad.yaml"
    for tier in ({"name": "x", "model": "m"}, {"name": "x", "kind": "cnn", "model": "m"}):
        bad.write_text(yaml.safe_dump({"tiers": [tier]}))
        with pytest.raises(ConfigError, match=r"bad.yaml: tiers.0: kind must be one of classifier, hf_classifier, detector, zero_shot, vlm"):
            load_config(str(bad), check_models=False)


def test_a_field_of_another_kind_names_the_kinds_that_take_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"tiers": [{"name": "x", "kind": "zero_shot", "model": "m", "floor": 0.2, "prompt": "roadwork?"}]}))
    with pytest.raises(ConfigError, match=r"tiers.0: Value error, floor applies to detector tiers only"):
        load_config(str(bad), check_models=False)


def test_reading_every_preset_imports_no_model_library():
    """The registry imports a kind's tier module only when the tier is built."""
    import subprocess
    import sys

    code = ("import sys\nfrom cascade.config import list_presets, load_config\n"
            "for name in list_presets(): load_config(name, check_models=False)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'sglang', 'ultralytics', 'timm', 'onnxruntime')"
            " or m.startswith('cascade.tiers.') and m != 'cascade.tiers.vlm'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("text, problem", [
    ("tiers: [unclosed", "is not valid YAML"),
    ("- name: x\n  kind: classifier\n", "holds a YAML list, not a mapping of keys to values"),
])
def test_cascade_and_recipe_yaml_that_is_not_a_mapping_names_the_file(tmp_path, text, problem):
    from compression.recipe import load_recipe

    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    for load in (load_config, load_recipe):
        with pytest.raises(ConfigError, match=f"{bad} {problem}"):
            load(str(bad))


def test_recipe_errors_name_the_file_and_field(tmp_path):
    from compression.recipe import load_recipe

    bad = tmp_path / "recipe.yaml"
    bad.write_text(yaml.safe_dump({"calibration": {"count": 0}}))
    with pytest.raises(ConfigError, match=rf"{bad}: .*calibration.count: Input should be greater than 0"):
        load_recipe(str(bad))


def test_the_help_shows_every_setting_with_its_help_and_default():
    """The settings model is the one place a flag's help and default live; --help is written from it."""
    import re

    from natix_miner.serving.config import MinerSettings

    text = build_parser().format_help()
    entries = {entry.split()[0]: " ".join(entry.split()) for entry in re.split(r"\n(?=  -)", text) if entry.startswith("  -")}
    for field in MinerSettings.model_fields.values():
        extra = field.json_schema_extra or {}
        if "flag" not in extra:
            continue
        entry = entries[extra["flag"]]  # bittensor's flags (library_flag) are in the help too, with bittensor's text
        if extra.get("library"):
            continue
        assert " ".join(field.description.split()) in entry
        default = field.get_default()
        if default not in (None, "", []) and "default" not in field.description:
            assert f"(default: {default})" in entry, entry
    assert "(default: [])" not in text


def test_each_bad_flag_is_one_line_naming_it():
    folder, file = Path(__file__).parent, Path(__file__)
    bad = {
        "--netuid": "70000", "--axon.port": "0", "--blacklist.min_stake": "-1", "--blacklist.rate_limit": "0", "--blacklist.rate_burst": "0",
        "--neuron.state_dir": str(file), "--logging.retention": "0", "--logging.compression": "rar", "--active.margin": "0.7",
        "--active.max_images": "-1", "--neuron.journal_days": "0", "--neuron.sync_interval": "0.5", "--local.ready_file": str(folder),
        "--model_url": "no-slash",
    }
    with pytest.raises(ConfigError) as caught:
        settings(*[word for pair in bad.items() for word in pair])
    lines = str(caught.value).splitlines()
    assert sorted(line.split()[1] for line in lines) == sorted(bad), lines  # one line per flag, each naming it
    assert "  - --neuron.state_dir " + str(file) + " is a file: give a folder" in lines
    assert "  - --active.margin 0.7 must be at most 0.5" in lines
    with pytest.raises(ConfigError, match=r"--metrics.port 8091 is --axon.port's"):
        settings("--metrics.port", "8091", "--axon.port", "8091")


def test_rate_limits_default_by_mode_and_the_flags_win():
    from natix_miner.serving.guard import REAL_RATE_BURST, REAL_RATE_LIMIT

    real, local = settings(), settings("--local")
    assert (real.rate_limit, real.rate_burst) == (REAL_RATE_LIMIT, REAL_RATE_BURST) == (5.0, 20)
    assert local.rate_limit >= 1e6 and local.rate_burst >= 1_000_000  # local validators are the operator's own keys
    given = settings("--local", "--blacklist.rate_limit", "2", "--blacklist.rate_burst", "3")
    assert (given.rate_limit, given.rate_burst) == (2.0, 3)
