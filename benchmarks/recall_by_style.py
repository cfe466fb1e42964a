"""Which pasted roadwork a preset misses on held-out photos: recall per held-out style and per share
of the frame the roadwork covers.

    .venv/bin/python benchmarks/recall_by_style.py --pool runs/photos --photosets runs/photosets --config cpu-default

Reads `photos datasets`' heldout-recall/ (written with its defaults: seed 0, 512x384, 4 per photo)
and finds each image's style by replaying the writer's own random draws; its mask gives the cover.
Images are scored as stored (not re-encoded as a validator would), so figures sit within a point or
two of `natix-miner eval`'s. Photos from Debian/PyPI packages with DRAWN roadwork pasted on: a proxy.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cascade.config import build_cascade, load_config  # noqa: E402
from cascade.lab.composite import HELDOUT_STYLES, crop_background  # noqa: E402
from cascade.lab.photo_pool import load_pool  # noqa: E402

COVER_BINS = ((0.0, 0.005), (0.005, 0.01), (0.01, 0.02), (0.02, 0.05), (0.05, 1.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", type=Path, required=True)
    parser.add_argument("--photosets", type=Path, required=True)
    parser.add_argument("--config", default="cpu-default")
    args = parser.parse_args(argv)
    cascade = build_cascade(load_config(args.config))
    folder = args.photosets / "heldout-recall"
    found: dict[str, list[bool]] = defaultdict(list)
    covers, hits = [], []
    for entry in load_pool(args.pool, "heldout"):
        with Image.open(entry["image"]) as photo:
            photo = photo.convert("RGB")
        for k in range(4):  # as photo_datasets.write_datasets draws them
            rng = random.Random(f"0:heldout-recall:{entry['file']}:roadwork:{k}")
            crop_background(photo, rng, (512, 384))
            style = rng.choice(HELDOUT_STYLES)
            name = f"{entry['package']}--{Path(entry['file']).stem}--{k}"
            with Image.open(folder / "roadwork" / f"{name}.jpg") as image:
                hit = cascade.predict(image.convert("RGB")).probability > 0.5
            found[style].append(hit)
            covers.append(float((np.asarray(Image.open(folder / "masks" / f"{name}.png")) > 127).mean()))
            hits.append(hit)
    print(f"{args.config} on {folder}:")
    for style, values in found.items():
        print(f"  {style:12s} {len(values):4d} images, found {np.mean(values):.1%}")
    covers, hits = np.array(covers), np.array(hits)
    for low, high in COVER_BINS:
        inside = (covers >= low) & (covers < high)
        if inside.any():
            print(f"  roadwork covers {low:.1%}-{high:.1%} of the frame: {inside.sum():4d} images, found {hits[inside].mean():.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
