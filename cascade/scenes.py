"""Procedural street scenes with and without roadwork, deterministic by seed.

Good enough to train a first head and to drive tests and demos offline; it is not the NATIX data.
Negatives include hard cases (orange cars, traffic lights, shop signs) so that "orange" alone does
not mean roadwork.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ORANGE = [(255, 120, 0), (240, 100, 20), (255, 140, 30), (230, 90, 10)]
ROADWORK_KINDS = ("cone", "barrier", "sign", "worker", "fence", "machine")
# How often each kind of work zone appears: a closed lane (most roadwork a dashcam passes), the
# road closed ahead, a small site around one point.
LAYOUT_WEIGHTS = (0.5, 0.2, 0.3)
# The sizes of the images validators send since v0.4 (each at its stored size): SDXL renders are
# 1024 px squares; photographs (the real set, the NATIX app) are 16:9 and 4:3 frames up to 1920 px.
# One source in three is synthetic, hence the square's weight. Rendering costs about 25 ms at
# 1024x1024 and 47 ms at 1920x1080 on one core (1.3 ms at 448x256): cheap beside a training step.
FRAME_SIZES = ((1024, 1024), (1920, 1080), (1280, 720), (1600, 1200), (1024, 768), (640, 480))
FRAME_WEIGHTS = (0.35, 0.2, 0.15, 0.1, 0.1, 0.1)


def draw_frame_size(rng: np.random.Generator) -> tuple[int, int]:
    """(width, height) of a frame as validators send them now."""
    return FRAME_SIZES[int(rng.choice(len(FRAME_SIZES), p=FRAME_WEIGHTS))]


@dataclass
class Scene:
    image: Image.Image
    roadwork: bool
    boxes: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)  # (kind, x0 y0 x1 y1) per object

    def roadwork_mask(self) -> Image.Image:
        """White where any roadwork object's box is, black elsewhere (for `make_challenge(masks=...)`)."""
        return _box_mask(self.image.size, [box for _, box in self.boxes])

    def object_masks(self) -> list[Image.Image]:
        """One mask per roadwork object, in the order of `boxes`."""
        return [_box_mask(self.image.size, [box]) for _, box in self.boxes]


def _box_mask(size: tuple[int, int], boxes: list[tuple[int, int, int, int]]) -> Image.Image:
    mask = Image.new("L", size)
    draw = ImageDraw.Draw(mask)
    for box in boxes:
        draw.rectangle(box, fill=255)
    return mask


def _jitter(rng: random.Random, color: tuple[int, int, int], amount: int = 25) -> tuple[int, int, int]:
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in color)  # type: ignore[return-value]


def _background(rng: random.Random, draw: ImageDraw.ImageDraw, w: int, h: int) -> tuple[int, float, float]:
    """Sky, buildings, verge and a road in perspective; returns the horizon row and the road's
    left and right edges there."""
    horizon = int(h * rng.uniform(0.3, 0.55))
    sky = _jitter(rng, rng.choice([(135, 180, 230), (190, 200, 210), (110, 120, 140), (230, 200, 170)]))
    draw.rectangle([0, 0, w, horizon], fill=sky)
    x = 0
    while x < w:  # buildings along the horizon
        bw = rng.randint(w // 10, w // 4)
        bh = rng.randint(h // 10, horizon)
        draw.rectangle([x, horizon - bh, x + bw, horizon], fill=_jitter(rng, (120, 110, 100), 60))
        for _ in range(rng.randint(0, 6)):
            wx, wy = rng.randint(x, x + bw), rng.randint(horizon - bh, horizon - 4)
            draw.rectangle([wx, wy, wx + 4, wy + 5], fill=_jitter(rng, (200, 210, 220), 40))
        x += bw + rng.randint(0, 10)
    draw.rectangle([0, horizon, w, h], fill=_jitter(rng, (110, 140, 90), 40))  # verge
    left_top, right_top = w * rng.uniform(0.35, 0.48), w * rng.uniform(0.52, 0.65)
    draw.polygon(
        [(left_top, horizon), (right_top, horizon), (w * 1.2, h), (-w * 0.2, h)],
        fill=_jitter(rng, (90, 90, 95), 20),
    )
    for i in range(6):  # dashed centre line
        t0, t1 = i / 6, i / 6 + 0.07
        xm = (left_top + right_top) / 2
        y0, y1 = horizon + (h - horizon) * t0, horizon + (h - horizon) * t1
        draw.line([(xm, y0), (xm + (w / 2 - xm) * t1, y1)], fill=(230, 230, 220), width=max(1, int(1 + 3 * t1)))
    return horizon, left_top, right_top


def _place(rng: random.Random, w: int, h: int, horizon: int, base: int, scale: float = 1.0, near: float | None = None) -> tuple[int, int, int]:
    """A ground position and a size that grows towards the camera; `near` (a fraction of the width)
    keeps it close to that point, as the objects of one work zone are."""
    y = rng.randint(horizon + 5, h - 5)
    depth = (y - horizon) / max(1, h - horizon)
    size = max(4, int(base * scale * (0.3 + depth)))
    x = rng.randint(0, w - 1) if near is None else min(w - 1, max(0, int(rng.gauss(near, 0.12) * w)))
    return x, y, size


def _draw_roadwork(rng, draw, kind, w, h, horizon, scale=1.0, zone: float | None = None, at: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
    """Draw one roadwork object at a random ground position (near `zone`), or exactly `at` (x, y)."""
    x, y, s = _place(rng, w, h, horizon, rng.randint(18, 40), scale, zone)
    if at is not None:
        x, y = at
        s = max(4, int(rng.randint(18, 40) * scale * (0.3 + (y - horizon) / max(1, h - horizon))))
    orange = _jitter(rng, rng.choice(ORANGE), 15)
    if kind == "cone":
        draw.polygon([(x, y - s), (x - s // 3, y), (x + s // 3, y)], fill=orange)
        draw.rectangle([x - s // 5, y - s // 2, x + s // 5, y - s // 2 + max(1, s // 8)], fill=(245, 245, 245))
        draw.rectangle([x - s // 2, y - 2, x + s // 2, y], fill=orange)
        return (x - s // 2, y - s, x + s // 2, y)
    if kind == "barrier":
        bw, bh = int(s * 1.8), max(4, s // 3)
        stripe = rng.choice([(245, 245, 245), (220, 30, 30)])
        for i in range(6):
            draw.rectangle([x + i * bw // 6, y - bh, x + (i + 1) * bw // 6, y - bh // 3], fill=orange if i % 2 else stripe)
        draw.line([(x + 2, y - bh // 3), (x + 2, y)], fill=(60, 60, 60), width=2)
        draw.line([(x + bw - 2, y - bh // 3), (x + bw - 2, y)], fill=(60, 60, 60), width=2)
        return (x, y - bh, x + bw, y)
    if kind == "sign":
        r = max(4, s // 2)
        cy = y - s
        draw.line([(x, cy), (x, y)], fill=(80, 80, 80), width=2)
        draw.polygon([(x, cy - r), (x + r, cy), (x, cy + r), (x - r, cy)], fill=_jitter(rng, (250, 170, 20), 10), outline=(20, 20, 20))
        draw.line([(x - r // 3, cy + r // 3), (x + r // 4, cy - r // 3)], fill=(20, 20, 20), width=max(1, r // 5))
        return (x - r, cy - r, x + r, y)
    if kind == "worker":
        vest = _jitter(rng, rng.choice([(255, 130, 0), (210, 255, 40)]), 10)
        draw.ellipse([x - s // 6, y - s, x + s // 6, y - s + s // 3], fill=_jitter(rng, (200, 160, 130), 30))
        draw.rectangle([x - s // 6, y - s - 2, x + s // 6, y - s + s // 10], fill=(250, 220, 0))  # helmet
        draw.rectangle([x - s // 4, y - 2 * s // 3, x + s // 4, y - s // 4], fill=vest)
        draw.line([(x - s // 8, y - s // 4), (x - s // 6, y)], fill=(40, 40, 70), width=max(1, s // 10))
        draw.line([(x + s // 8, y - s // 4), (x + s // 6, y)], fill=(40, 40, 70), width=max(1, s // 10))
        return (x - s // 4, y - s - 2, x + s // 4, y)
    if kind == "fence":
        fw, fh = int(s * 2.5), max(5, int(s * 0.8))
        draw.rectangle([x, y - fh, x + fw, y], outline=(180, 180, 170), width=1)
        for i in range(0, fw, max(2, s // 6)):
            draw.line([(x + i, y - fh), (x + i, y)], fill=(170, 170, 160))
        draw.rectangle([x, y - fh // 2, x + fw, y - fh // 2 + max(1, fh // 8)], fill=orange)
        return (x, y - fh, x + fw, y)
    # machine: an excavator-like yellow body with an arm
    mw, mh = int(s * 2), int(s * 1.1)
    body = _jitter(rng, (240, 190, 20), 15)
    draw.rectangle([x, y - mh, x + mw, y - mh // 4], fill=body)
    draw.rectangle([x - 2, y - mh // 4, x + mw + 2, y], fill=(40, 40, 40))
    draw.line([(x + mw, y - mh), (x + mw + s, y - mh - s // 2), (x + mw + s + s // 3, y - mh // 3)], fill=body, width=max(2, s // 5))
    return (x - 2, y - mh - s // 2, x + mw + s + s // 3, y)


def _draw_distractor(rng, draw, w, h, horizon, scale=1.0) -> None:
    kind = rng.choice(["car", "orange_car", "traffic_light", "shop_sign", "tree", "person"])
    x, y, s = _place(rng, w, h, horizon, rng.randint(20, 45), scale)
    if kind in ("car", "orange_car"):
        color = _jitter(rng, rng.choice(ORANGE), 20) if kind == "orange_car" else _jitter(rng, rng.choice([(30, 60, 160), (200, 200, 200), (20, 20, 20), (160, 20, 20)]), 20)
        draw.rectangle([x, y - s // 2, x + int(s * 1.6), y - s // 8], fill=color)
        draw.rectangle([x + s // 4, y - int(s * 0.8), x + int(s * 1.2), y - s // 2], fill=_jitter(rng, (150, 190, 220), 20))
        for wx in (x + s // 4, x + int(s * 1.3)):
            draw.ellipse([wx - s // 6, y - s // 5, wx + s // 6, y + s // 8], fill=(15, 15, 15))
    elif kind == "traffic_light":
        draw.line([(x, y - 2 * s), (x, y)], fill=(50, 50, 50), width=2)
        draw.rectangle([x - s // 6, y - 2 * s, x + s // 6, y - s - s // 3], fill=(30, 30, 30))
        lit = rng.randrange(3)
        for i, c in enumerate([(230, 30, 30), (250, 160, 0), (30, 200, 60)]):
            cy = y - 2 * s + s // 8 + i * s // 5
            draw.ellipse([x - s // 10, cy, x + s // 10, cy + s // 6], fill=c if i == lit else (70, 70, 70))
    elif kind == "shop_sign":
        sx, sy = rng.randint(0, w - 20), rng.randint(max(0, horizon - int(50 * scale)), horizon)
        draw.rectangle([sx, sy, sx + int(rng.randint(15, 50) * scale), sy + int(rng.randint(6, 14) * scale)], fill=_jitter(rng, rng.choice(ORANGE + [(200, 30, 30), (30, 120, 200)]), 20))
    elif kind == "tree":
        draw.line([(x, y), (x, y - s)], fill=(90, 60, 30), width=max(2, s // 8))
        draw.ellipse([x - s // 2, y - 2 * s, x + s // 2, y - s // 2], fill=_jitter(rng, (40, 120, 50), 30))
    else:
        draw.ellipse([x - s // 8, y - s, x + s // 8, y - s + s // 4], fill=_jitter(rng, (200, 160, 130), 40))
        draw.rectangle([x - s // 6, y - 3 * s // 4, x + s // 6, y - s // 4], fill=_jitter(rng, (60, 60, 120), 60))
        draw.line([(x, y - s // 4), (x, y)], fill=(30, 30, 50), width=max(1, s // 8))


def _spot_works(rng, draw, w, h, horizon, scale) -> list[tuple[str, tuple[int, int, int, int]]]:
    """A small work site (a manhole, a patch of asphalt): a few objects clustered around one point."""
    zone = min(0.85, max(0.15, rng.gauss(0.5, 0.15)))
    boxes = []
    for kind in rng.sample(ROADWORK_KINDS, rng.randint(1, 3)):
        for _ in range(rng.randint(1, 4) if kind == "cone" else 1):
            boxes.append((kind, _draw_roadwork(rng, draw, kind, w, h, horizon, scale, zone)))
    return boxes


def _lane_closure(rng, draw, w, h, horizon, left_top, right_top, scale) -> list[tuple[str, tuple[int, int, int, int]]]:
    """A closed lane as a dashcam meets it: a line of cones, barriers or fence panels running from
    near the camera towards the horizon along one side of the road, a warning sign where it starts,
    and sometimes a worker or a machine inside it."""
    right = rng.random() < 0.5
    offset = rng.uniform(0.1, 0.4)  # how far into the road the line runs, as a share of its width
    near, far = rng.uniform(0.55, 1.0), rng.uniform(0.05, 0.35)  # depth: 0 at the horizon, 1 at the bottom

    def ground(depth: float, extra: float = 0.0) -> tuple[int, int]:
        y = horizon + depth * (h - horizon)
        left_edge = left_top + (-0.2 * w - left_top) * depth
        right_edge = right_top + (1.2 * w - right_top) * depth
        share = offset + extra
        x = right_edge - share * (right_edge - left_edge) if right else left_edge + share * (right_edge - left_edge)
        return int(min(w - 1, max(0, x))), int(min(h - 1, y))

    if rng.random() < 0.5:  # temporary yellow markings lead traffic past the closure (a line: no box)
        draw.line([ground(far, 0.05), ground(min(1.0, near + 0.3), 0.05)], fill=_jitter(rng, (245, 200, 20), 15), width=max(2, int(3 * scale)))
    boxes = []
    line_kind = rng.choice(("cone", "cone", "barrier", "fence"))
    count = rng.randint(3, 8)
    for i in range(count):  # far to near, so nearer objects are drawn over farther ones
        depth = far + (near - far) * i / max(1, count - 1)
        boxes.append((line_kind, _draw_roadwork(rng, draw, line_kind, w, h, horizon, scale, at=ground(depth))))
    if rng.random() < 0.7:
        boxes.append(("sign", _draw_roadwork(rng, draw, "sign", w, h, horizon, scale, at=ground(near, -0.08))))
    for kind in ("worker", "machine"):
        if rng.random() < 0.3:
            depth = rng.uniform(far, near)
            boxes.append((kind, _draw_roadwork(rng, draw, kind, w, h, horizon, scale, at=ground(depth, -0.06))))
    return boxes


def _road_closed(rng, draw, w, h, horizon, left_top, right_top, scale) -> list[tuple[str, tuple[int, int, int, int]]]:
    """The road ahead closed: a row of barriers across it, signs at both ends, sometimes cones
    leading to it and a machine behind."""
    depth = rng.uniform(0.15, 0.6)
    y = int(horizon + depth * (h - horizon))
    left_edge = left_top + (-0.2 * w - left_top) * depth
    right_edge = right_top + (1.2 * w - right_top) * depth
    boxes = []
    if rng.random() < 0.4:
        boxes.append(("machine", _draw_roadwork(rng, draw, "machine", w, h, horizon, scale, at=(int(rng.uniform(left_edge, right_edge)), y - 3))))
    width = right_edge - left_edge
    x = max(0.0, left_edge)
    while x < min(w - 1, right_edge - 0.05 * width):
        box = _draw_roadwork(rng, draw, "barrier", w, h, horizon, scale, at=(int(x), y))
        boxes.append(("barrier", box))
        x += max(4, box[2] - box[0])
    for edge in (left_edge, right_edge):
        if 0 <= edge < w:
            boxes.append(("sign", _draw_roadwork(rng, draw, "sign", w, h, horizon, scale, at=(int(edge), min(h - 1, y + 4)))))
    for _ in range(rng.randint(0, 4)):
        near = rng.uniform(depth + 0.05, 1.0)
        at = (int(rng.uniform(0.3, 0.7) * w), int(horizon + near * (h - horizon)))
        boxes.append(("cone", _draw_roadwork(rng, draw, "cone", w, h, horizon, scale, at=at)))
    return boxes


def generate_scene(seed: int, roadwork: bool | None = None, size: int | tuple[int, int] = 224) -> Scene:
    """One scene of `size` (side, or (width, height)); `roadwork=None` picks the label from the
    seed (50/50, as validators do)."""
    rng = random.Random(seed)
    if roadwork is None:
        roadwork = rng.random() < 0.5
    width, height = (size, size) if isinstance(size, int) else size
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    horizon, left_top, right_top = _background(rng, draw, width, height)
    scale = min(width, height) / 224  # object sizes were tuned at 224 px
    for _ in range(rng.randint(0, 4)):
        _draw_distractor(rng, draw, width, height, horizon, scale)
    boxes = []
    if roadwork:
        layout = rng.choices((_lane_closure, _road_closed, _spot_works), weights=LAYOUT_WEIGHTS)[0]
        if layout is _spot_works:
            boxes = _spot_works(rng, draw, width, height, horizon, scale)
        else:
            boxes = layout(rng, draw, width, height, horizon, left_top, right_top, scale)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    return Scene(image=image, roadwork=roadwork, boxes=boxes)
