"""Entry point: `python neurons/miner.py --netuid 72 ...` (see README for the flags)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a clone without installing

from natix_miner.neuron import exit_process, main  # noqa: E402

if __name__ == "__main__":
    exit_process(main())
