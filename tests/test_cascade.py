import io

import pytest
from PIL import Image

from cascade.config import build_cascade, load_config
from cascade.engine import Cascade, Stage
from cascade.scenes import generate_scene
from cascade.tier import Tier, TierOutput
from cascade.tiers.classifier import ClassifierTier


class FixedTier(Tier):
    """Answers a fixed probability and counts its calls: drives the routing logic."""

    def __init__(self, name, probability):
        self.name, self.probability, self.calls = name, probability, 0

    def predict(self, images):
        self.calls += 1
        return [TierOutput(self.probability, f"{self.name} saw it") for _ in images]


@pytest.fixture(scope="module", params=["torch", "onnxruntime"])
def classifier(request):
    config = load_config("cpu-default")
    return ClassifierTier(config.model_folder(config.tiers[0]), name="lite0", runtime=request.param)


def test_onnxruntime_answers_as_the_torch_model_does():
    config = load_config("cpu-default")
    folder = config.model_folder(config.tiers[0])
    eager, onnx = ClassifierTier(folder), ClassifierTier(folder, runtime="onnxruntime")
    images = [generate_scene(9_000 + i, size=(448, 256)).image for i in range(6)]
    assert onnx.logits(images) == pytest.approx(eager.logits(images), abs=1e-3)
    assert "(onnxruntime)" in onnx.describe() and "(torch)" in eager.describe()


def test_missing_onnxruntime_is_named(monkeypatch):
    from cascade.runtimes import RuntimeUnavailable

    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # as if not installed
    config = load_config("cpu-default")
    with pytest.raises(RuntimeUnavailable, match="pip install onnxruntime"):
        ClassifierTier(config.model_folder(config.tiers[0]), runtime="onnxruntime")


def jpeg_roundtrip(image):
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def test_builtin_classifier_separates_held_out_scenes(classifier):
    # Held-out seeds, no augmentation: the shipped model should do well on plain scenes.
    scenes = [generate_scene(5_000_000 + i) for i in range(64)]
    outputs = classifier.predict([jpeg_roundtrip(s.image) for s in scenes])
    correct = sum((o.probability > 0.5) == s.roadwork for o, s in zip(outputs, scenes))
    assert all(0.0 <= o.probability <= 1.0 for o in outputs)
    assert correct / len(scenes) >= 0.7, f"accuracy {correct / len(scenes):.2f}"


def test_batched_and_single_predictions_agree(classifier):
    images = [generate_scene(i).image for i in range(4)]
    batched = [o.probability for o in classifier.predict(images)]
    single = [classifier.predict([image])[0].probability for image in images]
    assert batched == pytest.approx(single, abs=1e-5)


def test_any_image_size_is_accepted(classifier):
    outputs = classifier.predict([Image.new("RGB", (640, 120), (90, 90, 90)), Image.new("RGB", (17, 300))])
    assert len(outputs) == 2


def test_confident_tier_exits_early_and_unsure_one_defers():
    cheap, heavy = FixedTier("cheap", 0.97), FixedTier("heavy", 0.2)
    cascade = Cascade([Stage(cheap, exit_below=0.1, exit_above=0.9), Stage(heavy)])
    result = cascade.predict(Image.new("RGB", (8, 8)))
    assert (result.settled_by, heavy.calls) == ("cheap", 0) and result.probability == pytest.approx(0.97)
    assert result.explanation == "cheap saw it"

    unsure = Cascade([Stage(FixedTier("cheap", 0.6), 0.1, 0.9), Stage(heavy)])
    result = unsure.predict(Image.new("RGB", (8, 8)))
    assert (result.settled_by, heavy.calls) == ("heavy", 1)
    assert result.probability == pytest.approx(fuse_two(0.6, 0.2))  # both answers count
    assert set(result.tier_ms) == {"cheap", "heavy"}


def fuse_two(p, q):
    import math

    z = (math.log(p / (1 - p)) + math.log(q / (1 - q))) / 2
    return 1 / (1 + math.exp(-z))


def test_default_preset_builds_a_working_cascade():
    cascade = build_cascade(load_config("cpu-default"))
    result = cascade.predict(generate_scene(7, roadwork=True).image)
    assert 0.0 <= result.probability <= 1.0 and result.settled_by == "lite0" and result.explanation
