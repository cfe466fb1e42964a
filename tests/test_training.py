import pytest
import torch

from cascade.tiers.classifier import ClassifierTier
from cascade.tiers.classifier_torch import load_classifier
from cascade.lab.training import CHECKPOINT, TrainConfig, train


def tiny(out, **overrides):
    settings = dict(out=str(out), steps=4, batch_size=2, image_size=64, checkpoint_every=1, threads=1, init="random", lr=1e-3, device="cpu")
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


def test_batches_do_not_depend_on_the_number_of_workers(tmp_path):
    from cascade.lab.training import _manifest, batches, make_sampler

    config = tiny(tmp_path, steps=5)
    sample = make_sampler(config, heldout=False)
    in_process = list(batches(sample, config, _manifest(config), start=1))
    with_workers = list(batches(sample, tiny(tmp_path, steps=5, workers=2), _manifest(config), start=1))
    assert len(in_process) == len(with_workers) == 4
    for (pixels_a, targets_a), (pixels_b, targets_b) in zip(in_process, with_workers):
        assert torch.equal(pixels_a, pixels_b) and torch.equal(targets_a, targets_b)


def test_a_run_with_workers_resumes_one_without(tmp_path):
    straight = train(tiny(tmp_path / "straight"), log=lambda line: None)
    train(tiny(tmp_path / "mixed", workers=2), stop_after=2, log=lambda line: None)
    resumed = train(tiny(tmp_path / "mixed", checkpoint_every=3), log=lambda line: None)  # neither changes what is learnt
    a, _ = load_classifier(straight)
    b, _ = load_classifier(resumed)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), f"{name} differs"


def test_a_vit_trains_saves_and_serves(tmp_path):
    from PIL import Image

    folder = train(tiny(tmp_path, steps=2, arch="test_vit"), log=lambda line: None)  # timm's tiny test ViT
    tier = ClassifierTier(folder)
    assert tier.manifest.architecture == "test_vit" and tier.manifest.name == "test-vit-roadwork"
    assert 0.0 <= tier.predict([Image.new("RGB", (224, 224), (90, 90, 90))])[0].probability <= 1.0


def test_flags_that_cannot_work_say_which_to_use(tmp_path):
    with pytest.raises(ValueError, match="--init random"):
        train(tiny(tmp_path, arch="test_vit", init="pretrained"), log=lambda line: None)
    with pytest.raises(ValueError, match="--image-size 224"):
        train(tiny(tmp_path, arch="vit_tiny_patch16_224"), log=lambda line: None)
    with pytest.raises(ValueError, match="not a timm architecture"):
        train(tiny(tmp_path, arch="no_such_net"), log=lambda line: None)


def test_the_cli_flags_fill_the_config():
    import argparse

    from cascade.lab.training import add_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = config_from_args(parser.parse_args(["--out", "x", "--arch", "vit_small_patch16_224", "--init", "random", "--workers", "14", "--device", "cuda"]))
    assert (config.arch, config.init, config.workers, config.device) == ("vit_small_patch16_224", "random", 14, "cuda")


def test_fine_tuning_starts_from_the_given_model(tmp_path):
    first = train(tiny(tmp_path / "first", steps=2), log=lambda line: None)
    frozen = train(tiny(tmp_path / "again", steps=1, init=str(first), lr=0.0), log=lambda line: None)
    a, _ = load_classifier(first)
    b, _ = load_classifier(frozen)
    for (name, x), (_, y) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(x, y), f"{name}: a run at lr 0 must keep the weights it started from"
    with pytest.raises(ValueError, match="--arch efficientnet_lite0 --image-size 64"):
        train(tiny(tmp_path / "other", arch="test_vit", init=str(first)), log=lambda line: None)
    with pytest.raises(ValueError, match="not 'pretrained', 'random' or a classifier folder"):
        train(tiny(tmp_path / "missing", init=str(tmp_path / "nowhere")), log=lambda line: None)


def test_training_batches_follow_the_pipeline_mix():
    import numpy as np
    from PIL import Image

    from cascade.lab.challenge import parse_pipeline_mix
    from cascade.lab.training import challenge_batch

    frame = Image.new("RGB", (1280, 720), (200, 120, 40))
    images, labels, used = challenge_batch(lambda rng: (frame, 1.0), np.random.default_rng(0), 400, 224,
                                           parse_pipeline_mix("v0.4=3,v0.2=1"))
    assert set(used) == {"v0.4", "v0.2"} and 270 <= used.count("v0.4") <= 330  # 300 expected
    for image, pipeline in zip(images, used):  # decoded as the miner decodes: v0.4 frames at 1/2 scale
        assert image.size == ((640, 360) if pipeline == "v0.4" else (224, 224))
    assert labels.tolist() == [1.0] * 400


def test_the_pipelines_and_fit_reach_the_run_and_the_manifest(tmp_path):
    with pytest.raises(ValueError, match="unknown pipeline"):
        train(tiny(tmp_path / "typo", pipelines="v0.4=1,v4=1"), log=lambda line: None)
    folder = train(tiny(tmp_path / "run", steps=1, pipelines="v0.3", fit="letterbox"), log=lambda line: None)
    _, manifest = load_classifier(folder)
    assert manifest.fit == "letterbox" and "pipelines v0.3" in manifest.trained_on


def test_scene_share_mixes_endless_procedural_scenes_into_a_labelled_folder(tmp_path):
    import numpy as np
    from PIL import Image

    from cascade.lab.training import make_sampler

    for label in ("roadwork", "none"):
        (tmp_path / label).mkdir()
        for i in range(4):
            Image.new("RGB", (64, 48), (i * 40, 80, 120)).save(tmp_path / label / f"{i}.jpg")
    rng = np.random.default_rng(0)
    sample = make_sampler(tiny(tmp_path / "run", data=str(tmp_path), scene_share=0.3, heldout_fraction=0.0), heldout=False)
    sizes = [sample(rng)[0].size for _ in range(200)]
    scenes = sum(size != (64, 48) for size in sizes)
    assert 40 <= scenes <= 80, scenes  # about 30% of 200, whole frames at validators' sizes
    only_folder = make_sampler(tiny(tmp_path / "run", data=str(tmp_path), heldout_fraction=0.0), heldout=False)
    assert {only_folder(rng)[0].size for _ in range(20)} == {(64, 48)}
    with pytest.raises(ValueError, match="scene-share"):
        train(tiny(tmp_path / "bad", data=str(tmp_path), scene_share=1.5), log=lambda line: None)


def test_backbone_lr_scale_zero_trains_only_the_head(tmp_path):
    first = train(tiny(tmp_path / "first", steps=1), log=lambda line: None)
    tuned = train(tiny(tmp_path / "head", steps=2, init=str(first), backbone_lr_scale=0.0), log=lambda line: None)
    a, _ = load_classifier(first)
    b, manifest = load_classifier(tuned)
    # weights stay (batch-norm statistics still follow the data, as in any train-mode pass)
    assert all(torch.equal(x, y) for x, y in zip(a.backbone.parameters(), b.backbone.parameters()))
    assert not torch.equal(a.head.weight, b.head.weight)
    assert "backbone lr x0" in manifest.trained_on
    with pytest.raises(ValueError, match="backbone-lr-scale"):
        train(tiny(tmp_path / "bad", backbone_lr_scale=2.0), log=lambda line: None)


def test_a_photo_pool_as_data_gives_endless_fresh_crops_of_its_training_photos(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from cascade.lab import photo_datasets
    from cascade.lab.composite import FRAME_SIZES
    from cascade.lab.training import make_sampler
    from tests.test_photo_composites import _pool

    pool = _pool(tmp_path / "pool")
    opened = []
    real_open = Image.open
    monkeypatch.setattr(photo_datasets.Image, "open", lambda path, *a, **k: opened.append(path) or real_open(path, *a, **k))
    sample = make_sampler(tiny(tmp_path / "run", data=str(pool)), heldout=False)
    rng = np.random.default_rng(0)
    drawn = [sample(rng) for _ in range(60)]
    assert 18 <= sum(target for _, target in drawn) <= 42  # about half with roadwork pasted on
    assert {image.size for image, _ in drawn} <= set(FRAME_SIZES)
    assert len({image.tobytes() for image, _ in drawn}) == 60  # 4 training photos, 60 different frames
    assert opened and all(path.parent.parent.name == "train" for path in opened)  # never a held-out photo
    with pytest.raises(ValueError, match="held-out photos are for `eval` only"):
        make_sampler(tiny(tmp_path / "run", data=str(pool)), heldout=True)
