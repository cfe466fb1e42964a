import pytest
import torch

from cascade.tiers.classifier import ClassifierTier, load_classifier
from cascade.training import CHECKPOINT, TrainConfig, train


def tiny(out, **overrides):
    settings = dict(out=str(out), steps=4, batch_size=2, image_size=64, checkpoint_every=1, threads=1, init="random", lr=1e-3)
    settings.update(overrides)
    return TrainConfig(**settings)


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    straight = train(tiny(tmp_path / "straight"), log=lambda line: None)

    messages = []
    assert train(tiny(tmp_path / "interrupted"), stop_after=2, log=messages.append) is None
    assert torch.load(tmp_path / "interrupted" / CHECKPOINT, weights_only=False)["step"] == 2
    resumed = train(tiny(tmp_path / "interrupted"), log=messages.append)
    assert "resuming from step 2/4" in messages

    a, _ = load_classifier(straight)
    b, _ = load_classifier(resumed)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), f"{name} differs after resuming"


def test_resuming_with_other_settings_is_refused(tmp_path):
    train(tiny(tmp_path), stop_after=1, log=lambda line: None)
    with pytest.raises(ValueError, match="other settings"):
        train(tiny(tmp_path, lr=5e-4), log=lambda line: None)


def test_exported_model_serves_as_a_tier(tmp_path):
    folder = train(tiny(tmp_path, steps=1), log=lambda line: None)
    tier = ClassifierTier(folder)
    from PIL import Image

    output = tier.predict([Image.new("RGB", (224, 224), (120, 120, 120))])[0]
    assert 0.0 <= output.probability <= 1.0
    assert tier.manifest.input_size == 64 and (folder / "backbone.safetensors").is_file()


def test_folder_data_needs_both_classes(tmp_path):
    (tmp_path / "roadwork").mkdir()
    with pytest.raises(FileNotFoundError, match="none/"):
        train(tiny(tmp_path / "run", data=str(tmp_path)), log=lambda line: None)
