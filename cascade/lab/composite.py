"""Roadwork pasted onto real photographs (cut-paste-learn), with the photo's scale, perspective,
light, blur and noise.

A work zone is laid out on the ground of the photo: a horizon is assumed in the upper middle of the
frame, objects stand below it along a line that recedes towards a vanishing point on it, and each
object's size grows with its distance below the horizon (as in cascade/scenes.py, whose drawing
code draws them). Objects are drawn on a transparent layer, so the mask is exact; the layer is then
toned to the photo's brightness and colour around the zone, hazed with distance, softened to the
photo's own sharpness, given a contact shadow, and the whole image gets sensor noise.

Styles: TRAIN_STYLES are what training may see; HELDOUT_STYLES (other colours, other object
instances) are kept out of it, for a proxy of recall on unseen roadwork that "always answer no"
cannot pass.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageStat

from ..scenes import ROADWORK_KINDS, _draw_distractor, _draw_roadwork

TRAIN_STYLES = ("generator", "generator-amber")
HELDOUT_STYLES = ("red-white", "drums", "delineators")
MAX_OBJECT_HEIGHT = 0.45  # of the frame: nothing larger than a near cone at a dashcam's height
MIN_COVER = 0.002  # of the frame: roadwork a validator's crop can still show
FRAME_SIZES = ((512, 384), (640, 480), (448, 448), (384, 512))  # crops taken for training: landscape mostly, like dashcams and phones
TEXTURED_SHARE = 0.7  # of training frames whose pasted objects (roadwork and distractors alike) get photo texture and shading


@dataclass
class Composite:
    image: Image.Image  # RGB
    mask: Image.Image  # L, 255 where roadwork covers the photo
    boxes: list[tuple[str, tuple[int, int, int, int]]]
    style: str
    horizon: int


def crop_background(photo: Image.Image, rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A random crop of `photo` with the aspect of `size` (60-100% of the largest such crop), resized to it."""
    width, height = size
    aspect = width / height
    full_w, full_h = (photo.width, int(photo.width / aspect)) if photo.width / photo.height < aspect else (int(photo.height * aspect), photo.height)
    share = rng.uniform(0.6, 1.0)
    crop_w, crop_h = max(1, int(full_w * share)), max(1, int(full_h * share))
    x0, y0 = rng.randint(0, photo.width - crop_w), rng.randint(0, photo.height - crop_h)
    return photo.crop((x0, y0, x0 + crop_w, y0 + crop_h)).resize(size, Image.BICUBIC)


def _recolour(layer: Image.Image, hue: int, saturation_min: int = 90) -> Image.Image:
    """Turn the layer's orange-yellow pixels to `hue` (0-255 PIL scale), keeping light and alpha."""
    rgb, alpha = layer.convert("RGB"), layer.getchannel("A")
    hsv = np.asarray(rgb.convert("HSV")).copy()
    orange = (hsv[..., 0] >= 8) & (hsv[..., 0] <= 45) & (hsv[..., 1] >= saturation_min)
    hsv[..., 0][orange] = hue
    out = Image.fromarray(hsv, "HSV").convert("RGB")
    out.putalpha(alpha)
    return out


def _drum(draw: ImageDraw.ImageDraw, rng: random.Random, x: int, y: int, s: int) -> tuple[int, int, int, int]:
    """A channelizer drum: a barrel in orange and white bands (no such object in the generator)."""
    w, h = max(4, int(s * 0.55)), max(6, int(s * 0.9))
    bands = rng.choice((4, 5))
    for i in range(bands):
        top = y - h + i * h // bands
        draw.rectangle([x - w // 2, top, x + w // 2, top + h // bands], fill=(250, 250, 245) if i % 2 else (245, 95, 15))
    draw.ellipse([x - w // 2, y - h - max(1, h // 12), x + w // 2, y - h + max(1, h // 12)], fill=(235, 90, 15))
    draw.rectangle([x - int(w * 0.7), y - max(2, h // 10), x + int(w * 0.7), y], fill=(25, 25, 25))
    return (x - int(w * 0.7), y - h - max(1, h // 12), x + int(w * 0.7), y)


def _delineator(draw: ImageDraw.ImageDraw, rng: random.Random, x: int, y: int, s: int) -> tuple[int, int, int, int]:
    """A tall warning post with diagonal red and white stripes on a black foot (not in the generator)."""
    w, h = max(3, s // 5), max(8, int(s * 1.2))
    stripe = max(2, h // 6)
    red = rng.choice(((210, 25, 25), (230, 40, 30)))
    for i, top in enumerate(range(y - h, y - max(2, h // 8), stripe)):
        draw.polygon([(x - w // 2, top + stripe // 2), (x + w // 2, top), (x + w // 2, top + stripe), (x - w // 2, top + stripe + stripe // 2)],
                     fill=red if i % 2 else (250, 250, 250))
    draw.rectangle([x - w, y - max(2, h // 8), x + w, y], fill=(20, 20, 20))
    return (x - w, y - h, x + w, y)


def _size_at(y: int, horizon: int, height: int, scale: float, rng: random.Random) -> int:
    return max(4, int(rng.randint(18, 40) * scale * (0.3 + (y - horizon) / max(1, height - horizon))))


def _draw_zone(rng: random.Random, style: str, w: int, h: int, horizon: int) -> tuple[Image.Image, list]:
    """The work zone on a transparent layer, far objects first so near ones cover them."""
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    scale = min(w, h) / 224  # the generator's objects were sized at 224 px
    vanish = w * rng.uniform(0.3, 0.7)
    side = rng.choice((-1, 1))
    near_x = min(0.95 * w, max(0.05 * w, vanish + side * w * rng.uniform(0.1, 0.55)))
    near, far = rng.uniform(0.55, 1.0), rng.uniform(0.08, 0.4)
    count = rng.randint(2, 7)
    boxes = []
    line_kind = rng.choice(("cone", "cone", "barrier", "fence")) if style in TRAIN_STYLES + ("red-white",) else style
    for i in range(count):
        depth = far + (near - far) * i / max(1, count - 1)
        y = int(horizon + depth * (h - horizon))
        x = int(min(w - 1, max(0, vanish + (near_x - vanish) * depth)))
        if line_kind == "drums":
            boxes.append(("drum", _drum(draw, rng, x, y, _size_at(y, horizon, h, scale, rng))))
        elif line_kind == "delineators":
            boxes.append(("delineator", _delineator(draw, rng, x, y, _size_at(y, horizon, h, scale, rng))))
        else:
            boxes.append((line_kind, _draw_roadwork(rng, draw, line_kind, w, h, horizon, scale, at=(x, y))))
    if style in TRAIN_STYLES + ("red-white",):  # a sign, a worker or a machine beside the line, sometimes
        for kind in rng.sample([k for k in ROADWORK_KINDS if k in ("sign", "worker", "machine")], rng.randint(0, 2)):
            depth = rng.uniform(far, near)
            y = int(horizon + depth * (h - horizon))
            x = int(min(w - 1, max(0, vanish + (near_x - vanish) * depth - side * w * 0.06)))
            boxes.append((kind, _draw_roadwork(rng, draw, kind, w, h, horizon, scale, at=(x, y))))
    if style == "red-white":
        layer = _recolour(layer, hue=rng.randint(0, 3))
    elif style == "generator-amber":
        layer = _recolour(layer, hue=rng.randint(18, 30), saturation_min=140)
    return layer, boxes


def _tone(layer: Image.Image, background: Image.Image, horizon: int, rng: random.Random) -> Image.Image:
    """Match the layer's light and colour to the photo's ground, and haze it with distance."""
    ground = background.crop((0, horizon, background.width, background.height))
    mean = np.array(ImageStat.Stat(ground).mean) / 255.0
    luminance = float(mean @ np.array([0.299, 0.587, 0.114]))
    gain = np.clip((luminance / 0.45) ** 0.6, 0.35, 1.2) * np.clip((mean / max(mean.mean(), 1e-3)) ** 0.35, 0.8, 1.25)
    pixels = np.asarray(layer).astype(np.float32)
    rgb = pixels[..., :3] * gain * rng.uniform(0.9, 1.1)
    rows = np.arange(layer.height, dtype=np.float32)[:, None, None]
    haze = np.clip(1 - (rows - horizon) / max(1, layer.height - horizon), 0, 1) * rng.uniform(0.0, 0.35)
    rgb = rgb * (1 - haze) + (mean * 255.0) * haze
    pixels[..., :3] = np.clip(rgb, 0, 255)
    return Image.fromarray(pixels.astype(np.uint8), "RGBA")


def _sharpness(image: Image.Image) -> float:
    edges = image.convert("L").filter(ImageFilter.FIND_EDGES)
    return float(ImageStat.Stat(edges).var[0])


def photo_texture(layer: Image.Image, boxes: list, source: Image.Image, rng: random.Random) -> Image.Image:
    """Make flat drawn objects look less drawn: the fine light and grain of a real photo (`source`,
    cropped, flipped and scaled at random), a round body's shading across each object, now and then a
    highlight, and paint a little duller than a drawing's pure colours. Training applies it to roadwork
    and distractors alike, so neither texture nor flatness can tell the classes apart."""
    w, h = layer.size
    patch = crop_background(source, rng, (max(8, int(w * rng.uniform(0.5, 1.5))), max(8, int(h * rng.uniform(0.5, 1.5)))))
    patch = patch.transpose(rng.choice((Image.FLIP_LEFT_RIGHT, Image.FLIP_TOP_BOTTOM, Image.ROTATE_180))).resize((w, h), Image.BILINEAR)
    light = np.asarray(patch.convert("L"), dtype=np.float32) + 1.0
    smooth = np.asarray(patch.convert("L").filter(ImageFilter.GaussianBlur(rng.uniform(4, 12))), dtype=np.float32) + 1.0
    detail = np.clip(light / smooth, 0.5, 1.5)
    gain = 1.0 + rng.uniform(0.3, 1.0) * (detail - 1.0)
    columns = np.arange(w, dtype=np.float32)[None, :]
    rows = np.arange(h, dtype=np.float32)[:, None]
    for _, (x0, y0, x1, y1) in boxes:  # each object's own shading, as if round and lit from one side
        x0, x1 = max(0, x0), min(w, x1)
        y0, y1 = max(0, y0), min(h, y1)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        u = (columns[:, x0:x1] - x0) / (x1 - x0)
        lit = rng.uniform(0.2, 0.8)
        shade = 1.0 - rng.uniform(0.1, 0.45) * ((u - lit) / max(lit, 1 - lit)) ** 2
        if rng.random() < 0.5:
            shade = shade + rng.uniform(0.1, 0.35) * np.exp(-(((u - lit) / 0.07) ** 2))
        gain[y0:y1, x0:x1] *= shade * (1.0 - rng.uniform(0.0, 0.25) * (rows[y0:y1] - y0) / (y1 - y0))
    pixels = np.asarray(layer).astype(np.float32)
    rgb = pixels[..., :3]
    grey = rgb.mean(axis=2, keepdims=True)
    rgb = grey + (rgb - grey) * rng.uniform(0.65, 1.0)
    pixels[..., :3] = np.clip(rgb * gain[..., None], 0, 255)
    return Image.fromarray(pixels.astype(np.uint8), "RGBA")


def paste_layer(background: Image.Image, layer: Image.Image, boxes: list, horizon: int, rng: random.Random) -> tuple[Image.Image, Image.Image]:
    """Tone, soften, shadow and paste `layer` on `background`, then add sensor noise; returns the
    image and the layer's final alpha."""
    w, h = background.size
    layer = _tone(layer, background, horizon, rng)
    # as soft as the photo: a blurry photo gets a blurrier paste; edges are always slightly soft
    radius = rng.uniform(0.3, 0.8) + (1.0 if _sharpness(background) < 150 else 0.0) * rng.uniform(0.3, 1.0)
    layer = layer.filter(ImageFilter.GaussianBlur(radius))
    alpha = layer.getchannel("A")
    shadow = Image.new("L", (w, h), 0)
    shade = ImageDraw.Draw(shadow)
    for _, (x0, y0, x1, y1) in boxes:  # contact shadows at the objects' feet
        depth = max(2, (x1 - x0) // 6)
        shade.ellipse([x0 - depth, y1 - depth, x1 + depth, y1 + depth], fill=int(rng.uniform(60, 120)))
    shadow = ImageChops.subtract(shadow.filter(ImageFilter.GaussianBlur(max(1.0, radius * 2))), alpha)
    image = Image.composite(Image.new("RGB", (w, h), (0, 0, 0)), background, shadow.point(lambda v: v // 2))
    image = Image.composite(layer.convert("RGB"), image, alpha)
    sigma = rng.uniform(0.0, 3.0)
    if sigma > 0.2:
        noisy = np.asarray(image).astype(np.float32) + np.random.default_rng(rng.getrandbits(32)).normal(0, sigma, (h, w, 3))
        image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")
    return image, alpha


def composite_distractors(background: Image.Image, rng: random.Random, textured: bool = False) -> Composite:
    """Things that are not roadwork (the generator's cars, orange cars, traffic lights, shop signs,
    trees, people) pasted the same way: negatives with paste marks, so that a paste alone never
    means roadwork."""
    background = background.convert("RGB")
    w, h = background.size
    horizon = int(h * rng.uniform(0.3, 0.5))
    layer, boxes = Image.new("RGBA", (w, h), (0, 0, 0, 0)), []
    for _ in range(rng.randint(1, 4)):
        single = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        _draw_distractor(rng, ImageDraw.Draw(single), w, h, horizon, min(w, h) / 224)
        if single.getbbox():
            boxes.append(("distractor", single.getbbox()))
            layer.alpha_composite(single)
    grounded = [b for b in boxes if b[1][3] > horizon + 0.1 * (h - horizon)]  # shop signs hang: no shadow
    if textured:
        layer = photo_texture(layer, boxes, background, rng)
    image, alpha = paste_layer(background, layer, grounded, horizon, rng)
    return Composite(image=image, mask=alpha.point(lambda v: 255 if v >= 128 else 0), boxes=boxes, style="distractors", horizon=horizon)


def composite_roadwork(background: Image.Image, rng: random.Random, style: str, textured: bool = False) -> Composite:
    """Roadwork of `style` on `background` (RGB, any size); `textured`: see photo_texture."""
    if style not in TRAIN_STYLES + HELDOUT_STYLES:
        raise ValueError(f"unknown style {style!r}: one of {TRAIN_STYLES + HELDOUT_STYLES}")
    background = background.convert("RGB")
    w, h = background.size
    horizon = int(h * rng.uniform(0.3, 0.5))
    for _ in range(8):  # a zone that mostly falls outside the frame is drawn again
        layer, boxes = _draw_zone(rng, style, w, h, horizon)
        if np.count_nonzero(np.asarray(layer.getchannel("A")) >= 128) >= MIN_COVER * w * h:
            break
    if textured:
        layer = photo_texture(layer, boxes, background, rng)
    image, alpha = paste_layer(background, layer, boxes, horizon, rng)
    mask = alpha.point(lambda v: 255 if v >= 128 else 0)
    clipped = [(kind, (max(0, x0), max(0, y0), min(w, x1), min(h, y1))) for kind, (x0, y0, x1, y1) in boxes]
    return Composite(image=image, mask=mask, boxes=clipped, style=style, horizon=horizon)


def training_frame(photo: Image.Image, rng: random.Random, distractor_share: float = 0.5) -> tuple[Image.Image, bool, list]:
    """A fresh crop of a training photo at a FRAME_SIZES size: half the time with roadwork in a
    training style pasted on (True, its objects' boxes), else bare or, `distractor_share` of those,
    with non-roadwork objects pasted on (False, no boxes); TEXTURED_SHARE of the pasted objects get
    photo texture. What the classifier and detector train on."""
    frame = crop_background(photo, rng, rng.choice(FRAME_SIZES))
    if rng.random() < 0.5:
        pasted = composite_roadwork(frame, rng, rng.choice(TRAIN_STYLES), textured=rng.random() < TEXTURED_SHARE)
        return pasted.image, True, pasted.boxes
    if rng.random() < distractor_share:
        frame = composite_distractors(frame, rng, textured=rng.random() < TEXTURED_SHARE).image
    return frame, False, []
