"""Photographed objects, not drawings, pasted onto held-out photos: the nearest thing to
photographed roadwork that can be built offline.

    .venv/bin/python benchmarks/photo_cutouts.py --pool runs/photos --config before=... --config after=cpu-default

Debian's tuxpaint-stamps-default ships photographs of objects cut out with transparency. Three show
roadwork (a traffic cone, a site dumper, a cement mixer); seven show things of a street that are not
roadwork (post boxes, a fire engine, a refuse lorry, a pick-up, cars). None of them, nor any other
image of that package, is used in training. Each is pasted on crops of the pool's HELD-OUT photos
standing on the ground below a horizon, scaled with depth, toned, softened and shadowed as
cascade/lab/composite.py pastes drawings, sent as a v0.4 validator sends it (JPEG 75, stored size).
Reported: photographed roadwork found, and photographed non-roadwork called roadwork.

Only three roadwork objects: a narrow probe (many poses and scales of few things), not a dataset.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cascade.config import build_cascade, load_config  # noqa: E402
from cascade.lab.composite import crop_background, paste_layer  # noqa: E402
from cascade.lab.photo_pool import fetch_from_registry, load_pool, read_members  # noqa: E402

PACKAGE, VERSION = "tuxpaint-stamps-default", "2022.06.04-1"  # GPL-2 (its debian/copyright)
STAMPS = "usr/share/tuxpaint/stamps/"
ROADWORK = {  # path -> (sha256, height as a share of the frame when nearest)
    "town/roadsigns/traffic_cone.png": ("06cca35e7a3f9cc21c8d959f28f1d399389bdd4635f057c3f7749add88c08c7f", 0.22),
    "vehicles/construction/dumper.png": ("5d7093f55747a4f09634b944840df4063771b115078c4f28f209146a4bc71922", 0.40),
    "household/tools/cementmixer.png": ("1326aae460b636d588dc16989e5ff84f6962f597fdde97dff55be4d75957710d", 0.35),
}
NOT_ROADWORK = {
    "town/usps_mailbox.png": ("814b55b85cb8382e6e152dbf950b1d3e7253b9976a06a420713ef93824e474a5", 0.30),
    "town/uk_post_box.png": ("c2616a3bea9c5f67af20a8265252ed8a5934a7adcfc44abfde706cfd17855664", 0.30),
    "vehicles/emergency/firetruck.png": ("e2049145f4829b7f30342c6d0143524014894bab8928ea1b6daa27f3f1b610c0", 0.40),
    "vehicles/garbagetruck.png": ("dd14dd9ca0b5b5268a049dd5e0f8f1349225fc79dc7eefa075bb59fcab71ed31", 0.40),
    "vehicles/auto/truck.png": ("43bb2936c9bc1d5e298e779d7a243b8d6bbe360a1911982daf1b3716bb81a67e", 0.30),
    "vehicles/auto/sedan.png": ("762c8b7cc8b7a98c214ee21c729bdbdf965032a66521d677141381d9c2d4803b", 0.30),
    "vehicles/auto/beetle.png": ("0fb58566f5a173a3d4df34bcc6c2c6b731133e71fb1345177584e43d02e72d91", 0.30),
}


def cutouts(cache: Path) -> dict[str, Image.Image]:
    """The listed stamps, checked against their sha256 (a changed package fails loudly)."""
    wanted = {**ROADWORK, **NOT_ROADWORK}
    contents = read_members(fetch_from_registry("deb", PACKAGE, VERSION, cache), {STAMPS + p for p in wanted})
    images = {}
    for path, (sha256, _) in wanted.items():
        data = contents.get(STAMPS + path)
        if data is None or hashlib.sha256(data).hexdigest() != sha256:
            raise SystemExit(f"{PACKAGE} {VERSION}: {path} is missing or changed; delete {cache} and run again")
        images[path] = Image.open(io.BytesIO(data)).convert("RGBA")
    return images


def paste_objects(frame: Image.Image, objects: list[tuple[Image.Image, float]], rng: random.Random) -> Image.Image:
    """Each object stands on the ground below a horizon, smaller the farther up it stands."""
    w, h = frame.size
    horizon = int(h * rng.uniform(0.3, 0.5))
    layer, boxes = Image.new("RGBA", (w, h), (0, 0, 0, 0)), []
    for stamp, nearest in sorted(objects, key=lambda _: rng.random()):
        depth = rng.uniform(0.25, 1.0)  # 1: at the bottom edge
        foot = int(horizon + depth * (h - horizon))
        height = max(8, int(h * nearest * depth * rng.uniform(0.7, 1.1)))
        width = max(4, int(stamp.width * height / stamp.height))
        x = rng.randint(0, max(0, w - width))
        layer.alpha_composite(stamp.resize((width, height), Image.LANCZOS), (x, foot - height))
        boxes.append(("object", (x, foot - height, x + width, foot)))
    image, _ = paste_layer(frame, layer, boxes, horizon, rng)
    return image


def as_validator_sends(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")  # PIL's default quality, 75, as the validator saves
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def probe_set(pool: Path, stamps: dict[str, Image.Image], per_photo: int, seed: int):
    """(image, is_roadwork) pairs: each held-out photo crop gets 1-3 roadwork objects, and another
    crop 1-3 objects that are not roadwork."""
    entries = load_pool(pool, "heldout")
    for entry in entries:
        with Image.open(entry["image"]) as photo:
            photo = photo.convert("RGB")
        for k in range(per_photo):
            for label, table in ((True, ROADWORK), (False, NOT_ROADWORK)):
                rng = random.Random(f"{seed}:{entry['file']}:{k}:{label}")
                frame = crop_background(photo, rng, (512, 384))
                chosen = [(stamps[path], table[path][1]) for path in rng.sample(sorted(table), rng.randint(1, min(3, len(table))))]
                yield as_validator_sends(paste_objects(frame, chosen, rng)), label


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", type=Path, required=True, help="natix-miner photos build's folder (its held-out photos are the backgrounds)")
    parser.add_argument("--config", action="append", required=True, metavar="NAME=CONFIG")
    parser.add_argument("--per-photo", type=int, default=2, help="crops per held-out photo and label")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, help="where the package is downloaded (default: POOL/cache)")
    parser.add_argument("--sheet", type=Path, help="also save a contact sheet of the first 16 images (PNG)")
    args = parser.parse_args(argv)
    stamps = cutouts(args.cache or args.pool / "cache")
    cases = list(probe_set(args.pool, stamps, args.per_photo, args.seed))
    if args.sheet:
        sheet = Image.new("RGB", (4 * 256, 4 * 192))
        for i, (image, _) in enumerate(cases[:16]):
            sheet.paste(image.resize((256, 192)), ((i % 4) * 256, (i // 4) * 192))
        sheet.save(args.sheet)
    positives = sum(label for _, label in cases)
    print(f"{len(cases)} images ({positives} with photographed roadwork) on held-out photos of {args.pool}")
    print("| preset | photographed roadwork found | photographed non-roadwork called roadwork |")
    print("|---|---|---|")
    for named in args.config:
        name, _, config = named.partition("=")
        cascade = build_cascade(load_config(config or name))
        said = [(cascade.predict(image).probability > 0.5, label) for image, label in cases]
        found = sum(s for s, label in said if label) / positives
        false_alarms = sum(s for s, label in said if not label) / (len(cases) - positives)
        print(f"| {name} | {found:.1%} | {false_alarms:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
