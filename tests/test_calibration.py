import numpy as np
import pytest

from cascade.lab.calibration_fit import best_threshold, calibrate, fit_temperature


def test_threshold_maximises_mcc_and_lands_on_half():
    rng = np.random.default_rng(0)
    labels = rng.random(2000) < 0.5
    # a model whose logits are shifted: its best cut is near 1.5, not 0
    logits = np.where(labels, rng.normal(3.0, 1.0, 2000), rng.normal(0.0, 1.0, 2000))
    calibration, mcc = calibrate(logits, labels)
    assert calibration.threshold == pytest.approx(1.5, abs=0.2)
    decided = calibration.apply(logits) > 0.5
    naive = (logits > 0) == labels
    assert np.mean(decided == labels) > np.mean(naive) + 0.1
    assert mcc == pytest.approx(best_threshold(logits, labels)[1])


def test_temperature_recovers_overconfidence():
    rng = np.random.default_rng(1)
    true_logits = rng.normal(0.0, 2.0, 20000)
    labels = rng.random(20000) < 1 / (1 + np.exp(-true_logits))
    # an overconfident model reports logits 3x too large
    assert fit_temperature(3.0 * true_logits, labels) == pytest.approx(3.0, rel=0.1)


def test_one_class_is_refused():
    with pytest.raises(ValueError, match="both classes"):
        calibrate(np.array([0.1, 0.2]), np.array([1, 1]))


def test_calibrate_command_writes_the_manifest_and_the_tier_applies_it(tmp_path):
    import shutil

    import yaml

    from cascade.config import load_config
    from cascade.tiers.classifier import ClassifierTier
    from natix_miner.tools.cli import main
    from natix_miner.tools.evaluate import build_cases

    config = load_config("cpu-default")
    model = tmp_path / "model"
    shutil.copytree(config.model_folder(config.tiers[0]), model)
    assert main(["calibrate", "--model-dir", str(model), "--count", "64"]) == 0
    calibration = yaml.safe_load((model / "manifest.yaml").read_text())["calibration"]
    assert calibration["temperature"] > 0

    from PIL import Image
    import io

    image = Image.open(io.BytesIO(build_cases(1, seed=9)[0].jpeg)).convert("RGB")
    tier = ClassifierTier(model)
    logit = tier.logits([image])[0]
    expected = 1 / (1 + np.exp(-(logit - calibration["threshold"]) / calibration["temperature"]))
    assert tier.predict([image])[0].probability == pytest.approx(expected, rel=1e-6)


def test_calibrating_a_cascade_config_writes_tier_and_fused_calibrations(tmp_path):
    import yaml

    from cascade.config import build_cascade, load_config
    from natix_miner.tools.cli import main

    config_file = tmp_path / "mine.yaml"
    config_file.write_text(yaml.safe_dump({"cache_size": 0, "tiers": [
        {"name": "a", "kind": "classifier", "model": "builtin:efficientnet-lite0-roadwork", "exit_below": 0.1, "exit_above": 0.9},
        {"name": "b", "kind": "classifier", "model": "builtin:efficientnet-lite0-roadwork", "weight": 2.0},
    ]}))
    assert main(["calibrate", "--config", str(config_file), "--count", "48"]) == 0
    written = yaml.safe_load(config_file.read_text())
    assert {"threshold", "temperature"} == set(written["calibration"]) == set(written["tiers"][1]["calibration"])
    cascade = build_cascade(load_config(str(config_file)))
    assert cascade.calibration is not None and "calibrated" in cascade.stages[0].tier.describe()


def test_built_in_presets_are_not_rewritten(capsys):
    from natix_miner.tools.cli import main

    assert main(["calibrate", "--config", "cpu-default", "--count", "8"]) == 2
    assert "copy it" in capsys.readouterr().err
