"""An in-process stand-in for the chain, for `--local`.

Holds one subnet's neurons and the axon each one served, advances a block every 12 s, and answers
the `Chain` interface. (bt.MockSubtensor cannot serve here: FACTS.md lists how it misreports
registration, uids and permits.) Nothing in it touches a network.
"""

from __future__ import annotations

import threading
import time

import bittensor as bt

from .chain import ChainSnapshot, NeuronStanding

BLOCK_TIME_S = 12.0


class LocalChain:
    network = "local (in-process)"

    def __init__(self, netuid: int):
        self.netuid = netuid
        self._lock = threading.Lock()
        self._neurons: list[NeuronStanding] = []
        self._axons: dict[str, bt.AxonInfo] = {}
        self._started = time.monotonic()

    def register(self, hotkey: str, coldkey: str, stake: float = 0.0, validator_permit: bool = False) -> int:
        """Register a hotkey (idempotent) and return its uid."""
        with self._lock:
            for neuron in self._neurons:
                if neuron.hotkey == hotkey:
                    return neuron.uid
            uid = len(self._neurons)
            self._neurons.append(NeuronStanding(uid, hotkey, coldkey, float(stake), validator_permit))
            return uid

    def block(self) -> int:
        return int((time.monotonic() - self._started) / BLOCK_TIME_S)

    def subnet_exists(self, netuid: int) -> bool:
        return netuid == self.netuid

    def uid_for_hotkey(self, netuid: int, hotkey: str) -> int | None:
        if netuid != self.netuid:
            return None
        with self._lock:
            return next((n.uid for n in self._neurons if n.hotkey == hotkey), None)

    def snapshot(self, netuid: int) -> ChainSnapshot:
        with self._lock:
            neurons = list(self._neurons) if netuid == self.netuid else []
        return ChainSnapshot.build(netuid, self.block(), neurons)

    def serve_axon(self, netuid: int, axon: bt.Axon, certificate=None) -> None:
        if self.uid_for_hotkey(netuid, axon.wallet.hotkey.ss58_address) is None:
            raise ValueError(f"hotkey {axon.wallet.hotkey.ss58_address} is not registered on netuid {netuid}")
        with self._lock:
            self._axons[axon.wallet.hotkey.ss58_address] = axon.info()

    def served_axon(self, hotkey: str) -> bt.AxonInfo | None:
        with self._lock:
            return self._axons.get(hotkey)
