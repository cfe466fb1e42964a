"""Whether two versions of the code answer the same: each run scores the same validator
challenges with a preset in-process (the miner's decode, the whole cascade) and writes every
answer; `--compare` reads another run's answers and reports the largest difference.

    mkdir /tmp/old && git archive BASE | tar -x -C /tmp/old      # the old code, beside this checkout
    .venv/bin/python benchmarks/same_answers.py --code /tmp/old --cases-file /tmp/cases.json --out /tmp/old.json
    .venv/bin/python benchmarks/same_answers.py --cases-file /tmp/cases.json --out /tmp/new.json --compare /tmp/old.json

The challenges are built once (the first run) and kept in --cases-file, so both runs score the
very same JPEGs. Needs the train extra (the challenge replay draws with torch).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parent.parent, help="the checkout whose code answers")
    parser.add_argument("--config", default="cpu-default")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pipeline", default="v0.4")
    parser.add_argument("--cases-file", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--compare", type=Path, help="another run's --out")
    parser.add_argument("--tolerance", type=float, default=1e-3)
    args = parser.parse_args()
    sys.path.insert(0, str(args.code.resolve()))
    import natix_miner
    from natix_miner.tools.evaluate import cached_cases, predict_in_process

    cases = cached_cases(args.cases_file, args.count, args.seed, "scenes", "all", args.pipeline)
    answers = [p for p, _ in predict_in_process(cases, args.config)]
    args.out.write_text(json.dumps({"code": str(Path(natix_miner.__file__).parent.parent), "config": args.config, "answers": answers}))
    print(f"{len(answers)} answers of {args.config} from {Path(natix_miner.__file__).parent.parent} written to {args.out}")
    if args.compare is None:
        return 0
    other = json.loads(args.compare.read_text())
    gaps = [abs(a - b) for a, b in zip(answers, other["answers"], strict=True)]
    flipped = sum(round(a) != round(b) for a, b in zip(answers, other["answers"]))
    print(f"vs {other['code']}: max |p_new - p_old| = {max(gaps):.3g}, mean {sum(gaps) / len(gaps):.3g}, "
          f"decisions flipped {flipped}/{len(gaps)} (tolerance {args.tolerance:g})")
    return 0 if max(gaps) <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
