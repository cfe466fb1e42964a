import argparse
import sqlite3

import numpy as np
import pytest
import torch
from PIL import Image

from cascade.lab import training
from cascade.lab.distill import TEACHER_CACHE, DistillConfig, Teacher, add_arguments, config_from_args, distill
from cascade.scenes import generate_scene
from cascade.tiers.classifier import ClassifierTier
from cascade.tiers.classifier_torch import load_classifier, preprocess

TEACHER_YAML = """
tiers:
  - name: fast
    kind: classifier
    model: builtin:efficientnet-lite0-roadwork
    exit_below: 0.5
    exit_above: 0.5
  - name: slow
    kind: classifier
    model: builtin:efficientnet-lite0-roadwork
"""


@pytest.fixture
def setup(tmp_path):
    images = tmp_path / "images"
    for i in range(12):  # unlabelled, nested at different depths
        folder = images / ("a" if i % 2 else "b/c")
        folder.mkdir(parents=True, exist_ok=True)
        generate_scene(i, size=(224, 128)).image.save(folder / f"{i}.jpg")
    (tmp_path / "cascade.yaml").write_text(TEACHER_YAML)
    return tmp_path


def student(tmp_path, out, **overrides):
    settings = dict(out=str(tmp_path / out), teacher=str(tmp_path / "cascade.yaml"), teacher_tier="slow", data=str(tmp_path / "images"),
                    arch="test_efficientnet", init="random", image_size=64, batch_size=8, steps=20, lr=1e-2, threads=1, checkpoint_every=5, device="cpu")
    settings.update(overrides)
    return DistillConfig(**settings)


class CountingTeacher:
    """The real teacher, recording each call's number of images; interrupted at call `interrupt_at`."""

    built = 0

    def __init__(self, config, asked, interrupt_at=None):
        CountingTeacher.built += 1
        self.teacher, self.asked, self.interrupt_at = Teacher(config), asked, interrupt_at

    def __call__(self, images):
        self.asked.append(len(images))
        if len(self.asked) == self.interrupt_at:
            raise KeyboardInterrupt
        return self.teacher(images)

    def close(self):
        self.teacher.close()


def test_the_student_learns_the_teacher_and_an_interrupted_run_resumes_without_asking_it_again(setup):
    config = student(setup, "run")
    asked = []
    assert distill(config, stop_after=10, make_teacher=lambda: CountingTeacher(config, asked), log=lambda line: None) is None
    assert sum(asked) == 12 and (setup / "run" / TEACHER_CACHE).is_file()

    CountingTeacher.built, asked_again, messages = 0, [], []
    folder = distill(config, make_teacher=lambda: CountingTeacher(config, asked_again), log=messages.append)
    assert asked_again == [] and CountingTeacher.built == 0  # every answer came from the cache: no teacher even loaded
    assert "resuming from step 10/20" in messages

    # the same answers (a teacher's floats vary with torch's thread count), from the cache this time
    straight = distill(student(setup, "straight", teacher_cache=str(setup / "run" / TEACHER_CACHE)), log=lambda line: None)
    a, _ = load_classifier(folder)
    b, _ = load_classifier(straight)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), f"{name} differs after resuming"

    files = sorted((setup / "images").rglob("*.jpg"))
    images = [Image.open(f).convert("RGB") for f in files]
    teacher = np.array(Teacher(config)(images))
    torch.manual_seed(config.seed)  # the student as train() starts it
    with torch.no_grad():
        before = torch.sigmoid(training.build_model(config).eval()(preprocess(images, training._manifest(config)))).numpy()
    tier = ClassifierTier(folder)
    after = np.array([o.probability for o in tier.predict(images)])
    assert np.abs(after - teacher).mean() < 0.9 * np.abs(before - teacher).mean()
    assert "slow" in tier.manifest.trained_on and "cascade.yaml" in tier.manifest.trained_on


def test_answers_already_given_survive_an_interrupted_labelling(setup):
    config = student(setup, "run", teacher_batch=4, steps=2)
    asked = []
    with pytest.raises(KeyboardInterrupt):
        distill(config, make_teacher=lambda: CountingTeacher(config, asked, interrupt_at=2), log=lambda line: None)
    rows = sqlite3.connect(setup / "run" / TEACHER_CACHE).execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    assert rows == 4

    asked = []
    assert distill(config, stop_after=1, make_teacher=lambda: CountingTeacher(config, asked), log=lambda line: None) is None
    assert asked == [4, 4]  # only the 8 images it had not answered


def test_a_whole_cascade_teaches_on_scenes(setup):
    config = student(setup, "scenes", teacher_tier=None, data="scenes", scene_count=4, steps=1, batch_size=2)
    folder = distill(config, log=lambda line: None)
    manifest = ClassifierTier(folder).manifest
    assert manifest.trained_on.startswith(f"soft labels of {setup / 'cascade.yaml'} on 4 scenes")
    rows = sqlite3.connect(setup / "scenes" / TEACHER_CACHE).execute("SELECT image, probability FROM answers").fetchall()
    assert len(rows) == 4 and all(key.startswith("scene:") and 0 <= p <= 1 for key, p in rows)


def test_an_unknown_teacher_tier_names_the_ones_there_are(setup):
    with pytest.raises(ValueError, match="fast, slow"):
        distill(student(setup, "run", teacher_tier="nope"), log=lambda line: None)


def test_flags():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = config_from_args(parser.parse_args(["--out", "o", "--teacher", "h100", "--teacher-tier", "vlm", "--images", "pics", "--arch", "test_vit", "--workers", "3"]))
    assert (config.teacher, config.teacher_tier, config.data, config.arch, config.workers) == ("h100", "vlm", "pics", "test_vit", 3)
    assert config.heldout_fraction == DistillConfig(out="").heldout_fraction
    with pytest.raises(SystemExit):
        parser.parse_args(["--out", "o", "--teacher", "h100", "--data", "x"])  # distill takes --images
