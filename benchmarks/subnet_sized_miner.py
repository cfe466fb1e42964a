"""neurons/miner.py on a local subnet as large as SN72's, for benchmarks of the sync loop.

Same flags and the same code as the real entry point; only the in-process chain differs: it holds
256 neurons (the miner, the --local.validator_hotkey validators, and filler miners), so each sync
builds, swaps and checks a snapshot of the size the real loop handles.

With NATIX_BENCH_SYNC_NOOP=1 the loop still wakes every --neuron.sync_interval but does nothing:
an A/A control for benchmarks/sync_loop.py --on-noop.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from natix_miner.serving import local_chain, neuron  # noqa: E402
from natix_miner.serving.local_chain import LocalChain  # noqa: E402

SUBNET_SIZE = 256


class SubnetSizedChain(LocalChain):
    def snapshot(self, netuid):
        while len(self._neurons) < SUBNET_SIZE:
            filler = len(self._neurons)
            self.register(f"filler-{filler:03d}", f"filler-cold-{filler:03d}", stake=float(filler))
        return super().snapshot(netuid)


if __name__ == "__main__":
    local_chain.LocalChain = SubnetSizedChain  # what build_local_chain, which the neuron calls, constructs
    if os.environ.get("NATIX_BENCH_SYNC_NOOP") == "1":
        neuron.Miner.sync = lambda self: None
    sys.exit(neuron.main())
