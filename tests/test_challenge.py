import numpy as np
import pytest
from PIL import Image, ImageDraw

from cascade.challenge import TARGET_SIZE, make_challenge
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
    plain = make_challenge(scene.image, np.random.default_rng(5), level=level)
    tracked = make_challenge(scene.image, np.random.default_rng(5), level=level, masks=[scene.roadwork_mask()])
    assert plain.jpeg == tracked.jpeg and plain.roadwork_pixels is None
    assert 0 <= tracked.roadwork_pixels <= TARGET_SIZE * TARGET_SIZE


def test_the_centre_view_keeps_the_centre_and_drops_the_sides():
    image = Image.new("RGB", FRAME)
    whole = make_challenge(image, np.random.default_rng(0), level=0, masks=[mask_with((0, 0, 447, 255))])
    side = make_challenge(image, np.random.default_rng(0), level=0, masks=[mask_with((0, 0, 60, 255))])
    assert whole.roadwork_pixels == TARGET_SIZE * TARGET_SIZE and side.roadwork_pixels == 0


def test_random_crops_sometimes_cut_a_small_site_out():
    image, corner = Image.new("RGB", FRAME), mask_with((0, 200, 40, 255))
    left = [make_challenge(image, np.random.default_rng(i), level=1, masks=[corner]).roadwork_pixels for i in range(40)]
    assert 0 in left and max(left) > 0  # the validator's crop decides, not the scene


def test_the_mask_covers_the_boxes_and_negatives_have_none():
    scene = generate_scene(3, roadwork=True, size=FRAME)
    mask = np.asarray(scene.roadwork_mask()) > 0
    for _, (x0, y0, x1, y1) in scene.boxes:
        x0, y0 = max(0, x0), max(0, y0)
        assert mask[y0:min(y1, FRAME[1] - 1) + 1, x0:min(x1, FRAME[0] - 1) + 1].all()
    assert not np.asarray(generate_scene(3, roadwork=False, size=FRAME).roadwork_mask()).any()
