import pytest
import yaml

from cascade.config import build_cascade, load_config
from cascade.scenes import generate_scene
from cascade.tiers.detector import DetectorTier, describe_detections


@pytest.fixture(scope="module")
def random_yolo(tmp_path_factory):
    """yolo11n built from its YAML (random weights: no download), saved as a .pt weights file."""
    from ultralytics import YOLO

    path = tmp_path_factory.mktemp("yolo") / "yolo11n-random.pt"
    YOLO("yolo11n.yaml", task="detect").save(str(path))
    return path


def test_explanations_count_categories_by_side():
    text = describe_detections([("cone", 10, 300), ("cone", 40, 300), ("barrier", 150, 300), ("worker", 290, 300)])
    assert text == "2 cones on the left, 1 barrier in the centre, 1 worker on the right"
    assert describe_detections([]) == ""


def test_probability_is_the_squeezed_noisy_or_of_mapped_detections(random_yolo):
    # random weights fire everywhere at a tiny threshold: enough boxes to check the arithmetic
    tier = DetectorTier(random_yolo, "yolo", classes={"0": "cone", "1": "barrier", "2": "sign"}, min_confidence=1e-4, floor=0.1, ceiling=0.9)
    images = [generate_scene(i, roadwork=True).image for i in range(2)]
    found = tier.roadwork_detections(images)
    outputs = tier.predict(images)
    for detections, output in zip(found, outputs):
        nothing = 1.0
        for _, confidence, _, _ in detections:
            nothing *= 1 - confidence
        assert output.probability == pytest.approx(0.1 + 0.8 * (1 - nothing))
        assert 0.1 <= output.probability <= 0.9
        assert {c for c, *_ in detections} <= {"cone", "barrier", "sign"}


def test_unknown_class_names_are_refused(random_yolo):
    with pytest.raises(ValueError, match="traffic cone"):
        DetectorTier(random_yolo, "yolo", classes={"traffic cone": "cone"})


def test_detector_tier_from_yaml(random_yolo, tmp_path):
    path = tmp_path / "det.yaml"
    path.write_text(yaml.safe_dump({"tiers": [{"name": "yolo", "kind": "detector", "model": str(random_yolo), "classes": {"0": "cone"}}]}))
    result = build_cascade(load_config(str(path))).predict(generate_scene(2).image)
    assert 0.1 <= result.probability <= 0.97


def test_a_folder_holding_detector_pt_is_a_model_and_a_missing_file_is_named(random_yolo, tmp_path):
    folder = tmp_path / "detector"
    folder.mkdir()
    (folder / "detector.pt").write_bytes(random_yolo.read_bytes())
    assert DetectorTier(folder, "yolo").classes == DetectorTier(random_yolo, "yolo").classes
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty/detector.pt"):
        DetectorTier(tmp_path / "empty", "yolo")


def test_the_shipped_detector_finds_roadwork_on_scenes_it_never_saw():
    """builtin:yolo11n-roadwork on whole held-out scenes at 224 px: it boxes roadwork objects on most
    positives and explains them in words, and rarely fires on scenes without roadwork."""
    from cascade.config import builtin_model_folder
    from cascade.lab.detector_training import CLASSES
    from cascade.lab.training import HELDOUT_SCENE_SEED

    tier = DetectorTier(builtin_model_folder("builtin:yolo11n-roadwork"), "detector")
    assert sorted(tier.classes) == sorted(CLASSES)
    seeds = range(HELDOUT_SCENE_SEED + 900_000, HELDOUT_SCENE_SEED + 900_012)
    positives = tier.predict([generate_scene(s, roadwork=True).image.resize((224, 126)) for s in seeds])
    negatives = tier.predict([generate_scene(s, roadwork=False).image.resize((224, 126)) for s in seeds])
    assert sum(o.evidence != "" for o in positives) >= 8
    assert sum(o.evidence != "" for o in negatives) <= 4
    assert all(any(kind in o.evidence for kind in CLASSES) for o in positives if o.evidence)


def test_loading_the_detector_leaves_no_way_for_a_request_to_install_a_package(random_yolo):
    """Issue 17, item 4: ultralytics' PIL.Image.open patch ran its pi-heif requirement check (a pip
    install, online) for any payload PIL could not identify, and the refusal named pi_heif."""
    import io

    from PIL import Image
    from ultralytics.utils import checks

    from cascade.image import ImageRejected, decode_image_bytes

    DetectorTier(random_yolo, "detector")
    assert Image.open.__module__ == "PIL.Image" and checks.AUTOINSTALL is False
    tiff = io.BytesIO()
    Image.new("RGB", (8, 8)).save(tiff, format="TIFF")
    for payload in (b"\x00not an image" * 50, tiff.getvalue()):
        with pytest.raises(ImageRejected) as refused:
            decode_image_bytes(payload)
        assert refused.value.reason == "not_an_image" and "heif" not in str(refused.value).lower()
        assert "cannot identify image file" in str(refused.value)


def test_the_detector_squashes_whole_frames_to_its_square():
    """v0.4 validators send whole frames; the detector sees them squashed (measured best), the
    same answer as for the frame squashed beforehand, and still finds the roadwork."""
    from cascade.config import builtin_model_folder
    from cascade.image import fit_square
    from cascade.lab.training import HELDOUT_SCENE_SEED

    tier = DetectorTier(builtin_model_folder("builtin:yolo11n-roadwork"), "detector")
    frames = [generate_scene(HELDOUT_SCENE_SEED + 910_000 + i, roadwork=True, size=(1280, 720)).image for i in range(8)]
    whole = tier.predict(frames)
    squashed = tier.predict([fit_square(frame, 224, "squash") for frame in frames])
    assert [o.probability for o in whole] == pytest.approx([o.probability for o in squashed], abs=1e-6)
    assert sum(o.evidence != "" for o in whole) >= 5
