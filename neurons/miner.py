"""Entry point: `python neurons/miner.py --netuid 72 ...` (see README for the flags)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a clone without installing

try:
    from natix_miner.serving.neuron import exit_process, main  # noqa: E402
except ImportError as exc:  # e.g. the system python, not the venv run_miner.sh built
    sys.exit(
        f"natix-miner: {exc.name or exc} is not importable from {sys.executable}: run ./run_miner.sh once to install, "
        "then `source .venv/bin/activate` (or call .venv/bin/python neurons/miner.py ...)"
    )

if __name__ == "__main__":
    exit_process(main())
