import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cascade.lab.challenge import TARGET_SIZE, make_challenge, parse_pipeline_mix
from cascade.scenes import generate_scene

FRAME = (448, 256)


def mask_with(box=None):
    mask = Image.new("L", FRAME)
    if box:
        ImageDraw.Draw(mask).rectangle(box, fill=255)
    return mask


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_tracking_the_roadwork_does_not_change_the_challenge(level):
    scene = generate_scene(11, roadwork=True, size=FRAME)
    plain = make_challenge(scene.image, np.random.default_rng(5), pipeline="v0.2", level=level)
    tracked = make_challenge(scene.image, np.random.default_rng(5), pipeline="v0.2", level=level, masks=[scene.roadwork_mask()])
    assert plain.jpeg == tracked.jpeg and plain.roadwork_pixels is None
    assert 0 <= tracked.roadwork_pixels <= TARGET_SIZE * TARGET_SIZE


def test_the_centre_view_keeps_the_centre_and_drops_the_sides():
    image = Image.new("RGB", FRAME)
    whole = make_challenge(image, np.random.default_rng(0), pipeline="v0.2", level=0, masks=[mask_with((0, 0, 447, 255))])
    side = make_challenge(image, np.random.default_rng(0), pipeline="v0.2", level=0, masks=[mask_with((0, 0, 60, 255))])
    assert whole.roadwork_pixels == TARGET_SIZE * TARGET_SIZE and side.roadwork_pixels == 0


def test_random_crops_sometimes_cut_a_small_site_out():
    image, corner = Image.new("RGB", FRAME), mask_with((0, 200, 40, 255))
    left = [make_challenge(image, np.random.default_rng(i), pipeline="v0.2", level=1, masks=[corner]).roadwork_pixels for i in range(40)]
    assert 0 in left and max(left) > 0  # the validator's crop decides, not the scene


def test_the_mask_covers_the_boxes_and_negatives_have_none():
    scene = generate_scene(3, roadwork=True, size=FRAME)
    mask = np.asarray(scene.roadwork_mask()) > 0
    for _, (x0, y0, x1, y1) in scene.boxes:
        x0, y0 = max(0, x0), max(0, y0)
        assert mask[y0:min(y1, FRAME[1] - 1) + 1, x0:min(x1, FRAME[0] - 1) + 1].all()
    assert not np.asarray(generate_scene(3, roadwork=False, size=FRAME).roadwork_mask()).any()


def gradient_frame(width=448, height=256):
    """Red grows left to right, green top to bottom: any flip reverses one of them."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, np.zeros_like(x)], -1).astype(np.uint8))


@pytest.mark.parametrize("pipeline", ["v0.2", "v0.3"])
def test_no_pipeline_ever_flips(pipeline):
    frame = gradient_frame()
    for seed in range(60):  # a flip at p = 0.5 each way would show in about 45 of these
        rgb = np.asarray(make_challenge(frame, np.random.default_rng(seed), pipeline=pipeline).image, np.float32)
        half_w, half_h = rgb.shape[1] // 2, rgb.shape[0] // 2
        assert rgb[:, :half_w, 0].mean() < rgb[:, half_w:, 0].mean(), f"seed {seed}: mirrored left to right"
        assert rgb[:half_h, :, 1].mean() < rgb[half_h:, :, 1].mean(), f"seed {seed}: upside down"


def test_v03_letterboxes_every_level_to_black_bars():
    white = Image.new("RGB", FRAME, (255, 255, 255))  # 448x256 -> 224x128, bars of 48 px above and below
    for level in (0, 1, 2, 3):
        for seed in range(5):
            challenge = make_challenge(white, np.random.default_rng(seed), pipeline="v0.3", level=level)
            rgb = np.asarray(challenge.image, np.float32)
            assert rgb.shape == (TARGET_SIZE, TARGET_SIZE, 3)
            assert rgb[:20, 90:134].max() < 60 and rgb[-20:, 90:134].max() < 60, f"level {level}: no black bar"
            if level == 0:
                assert rgb[60:164].min() > 230  # the whole frame, unrotated, nothing cropped
            else:
                assert rgb[100:124, 100:124].mean() > 60  # the picture is still there (rotated, distorted)


def test_v03_never_crops_the_sides_off():
    image, left_edge = Image.new("RGB", FRAME), mask_with((0, 100, 40, 160))  # roadwork at the far left
    kept = [make_challenge(image, np.random.default_rng(i), pipeline="v0.3", masks=[left_edge]).roadwork_pixels for i in range(30)]
    assert min(kept) > 0  # the crop of v0.2 would sometimes cut it out (test_random_crops_...)


def test_v04_sends_the_stored_image_at_its_size_as_a_default_quality_jpeg():
    frame = gradient_frame(1920, 1080)
    challenge = make_challenge(frame, np.random.default_rng(0), pipeline="v0.4", masks=[Image.new("L", (1920, 1080), 255)])
    sent = Image.open(io.BytesIO(challenge.jpeg))
    assert sent.format == "JPEG" and sent.size == (1920, 1080) and challenge.level is None
    expected = io.BytesIO()
    frame.save(expected, format="JPEG")  # PIL's default quality, 75
    assert challenge.jpeg == expected.getvalue()
    assert challenge.roadwork_pixels == 1920 * 1080  # nothing moved, nothing cut
    rgb = np.asarray(challenge.image, np.float32)
    assert rgb[:, :960, 0].mean() < rgb[:, 960:, 0].mean() and rgb[:540, :, 1].mean() < rgb[540:, :, 1].mean()
    with pytest.raises(ValueError, match="no augmentation levels"):
        make_challenge(frame, np.random.default_rng(0), pipeline="v0.4", level=1)


def test_pipeline_mixes_are_parsed_and_typos_named():
    assert parse_pipeline_mix("v0.4=3,v0.2=1") == {"v0.4": 0.75, "v0.2": 0.25}
    assert parse_pipeline_mix("v0.3") == {"v0.3": 1.0}
    for bad in ("v0.5", "v0.4=x", "v0.4=0", "v0.4=-1,v0.2=2"):
        with pytest.raises(ValueError, match="pipeline"):
            parse_pipeline_mix(bad)
