"""Cascade presets side by side on real photographs and on procedural scenes: one table.

    .venv/bin/python benchmarks/photo_accuracy.py --photosets runs/photosets \\
        --config before=runs/before.yaml --config after=cpu-default --out runs/photo-accuracy

`--photosets` is what `natix-miner photos datasets` wrote: heldout-negatives/ (crops of held-out
photos, from packages training never saw, no roadwork) and heldout-recall/ (roadwork in the
held-out styles pasted on held-out photos: a proxy for recall that "always answer no" fails).
Every preset answers the same challenges (cases files under --out): v0.4 for the photos, and the
held-out procedural scenes under v0.4, v0.3 and v0.2. Each cell is one `natix-miner eval` run.

Columns: photos without roadwork called roadwork (lower is better), pasted roadwork found, the MCC
of those two sets taken together (equal sizes), and the procedural scenes' MCC per pipeline.
These are PHOTOS FROM DEBIAN/PYPI PACKAGES and DRAWINGS, not the NATIX data: say so with any figure.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHOTO_SETS = ("heldout-negatives", "heldout-recall")
SCENE_PIPELINES = ("v0.4", "v0.3", "v0.2")


def evaluate(config: str, out: Path, name: str, cell: str, args: list[str]) -> dict:
    report = out / f"{name}-{cell}.json"
    if not report.exists():
        command = [sys.executable, "-m", "natix_miner.tools.cli", "eval", "--config", config, *args,
                   "--cases-file", str(out / f"cases-{cell}.json"), "--json", str(report)]
        run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if run.returncode != 0 or not report.exists():
            raise SystemExit(f"{name} on {cell} failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    return json.loads(report.read_text())


def balanced_mcc(false_alarms: float, found: float) -> float:
    """MCC of a set with as many photos without roadwork as with it."""
    tp, fn, fp, tn = found, 1 - found, false_alarms, 1 - false_alarms
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photosets", type=Path, required=True, help="natix-miner photos datasets' output folder")
    parser.add_argument("--config", action="append", required=True, metavar="NAME=CONFIG", help="a preset name or YAML file, named for the table")
    parser.add_argument("--photo-count", type=int, default=120, help="v0.4 challenges per photo set")
    parser.add_argument("--scene-count", type=int, default=600, help="challenges per procedural pipeline")
    parser.add_argument("--out", type=Path, required=True, help="cases files and one JSON report per cell (kept: a rerun only fills what is missing)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for named in args.config:
        name, _, config = named.partition("=")
        if not config:
            parser.error(f"--config {named}: write NAME=CONFIG")
        photos = {s: evaluate(config, args.out, name, s, ["--data", str(args.photosets / s), "--pipeline", "v0.4",
                                                          "--count", str(args.photo_count), "--seed", "3"]) for s in PHOTO_SETS}
        scenes = {p: evaluate(config, args.out, name, f"scenes-{p}", ["--pipeline", p, "--count", str(args.scene_count), "--seed", "1"])
                  for p in SCENE_PIPELINES}
        false_alarms = 1 - photos["heldout-negatives"]["accuracy"]
        found = photos["heldout-recall"]["accuracy"]
        rows.append([name, f"{false_alarms:.1%}", f"{found:.1%}", f"{balanced_mcc(false_alarms, found):.3f}",
                     *(f"{scenes[p]['mcc']:.3f}" for p in SCENE_PIPELINES),
                     f"{photos['heldout-negatives']['latency_p50_ms']:.0f}"])
        print(f"{name}: done", file=sys.stderr)
    header = ["preset", "held-out photos called roadwork", "pasted roadwork found (held-out styles)", "photo MCC (balanced)",
              *(f"scenes {p} MCC" for p in SCENE_PIPELINES), "photo p50 ms"]
    print(f"photos: {args.photo_count} v0.4 challenges per set from {args.photosets}; scenes: {args.scene_count} held-out procedural challenges per pipeline")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
