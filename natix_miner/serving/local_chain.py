"""An in-process stand-in for the chain, for `--local`.

Holds one subnet's neurons and the axon each one served, advances a block every 12 s, and answers
the `Chain` interface. (bt.MockSubtensor cannot serve here: FACTS.md lists how it misreports
registration, uids and permits.) Nothing in it touches a network.

Its validators weight the subnet in one of two states: "paying" (each spreads its weight evenly
over the miners) or "halted" (all weight on the subnet owner's uid, as SN72's validators have done
since the 2026-05-06 halt), so the miner's payout reporting can be tried against both.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import bittensor as bt

from .chain import ChainSnapshot, NeuronStanding, SubnetWeights

BLOCK_TIME_S = 12.0
SUBNET_STATES = ("paying", "halted")
MAX_WEIGHT = 65535  # weights are u16 on chain; upstream's halt sets [65535] on the owner's uid
OWNER_URI = "//LocalSubnetOwner"  # the local subnet's owner: a fixed, well-known throwaway key


class LocalChain:
    network = "local (in-process)"

    def __init__(self, netuid: int, subnet_state: str = "paying"):
        if subnet_state not in SUBNET_STATES:
            raise ValueError(f"subnet state {subnet_state!r} is not one of {', '.join(SUBNET_STATES)}")
        self.netuid = netuid
        self.subnet_state = subnet_state  # may be changed while running, as the real subnet's may
        self.owner_hotkey: str | None = None
        self._lock = threading.Lock()
        self._neurons: list[NeuronStanding] = []
        self._axons: dict[str, bt.AxonInfo] = {}
        self._started = time.monotonic()

    def register_owner(self, hotkey: str | None = None) -> int:
        """Register the subnet owner's hotkey (by default OWNER_URI's) and return its uid."""
        hotkey = hotkey or bt.Keypair.create_from_uri(OWNER_URI).ss58_address
        self.owner_hotkey = hotkey
        return self.register(hotkey, hotkey)

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
            neurons = [dataclasses.replace(n, serving=n.hotkey in self._axons) for n in self._neurons] if netuid == self.netuid else []
        return ChainSnapshot.build(netuid, self.block(), neurons)

    def weights(self, netuid: int) -> SubnetWeights:
        """Each validator's weights in the current subnet state (none on another netuid)."""
        with self._lock:
            neurons = list(self._neurons) if netuid == self.netuid else []
        owner = next((n.uid for n in neurons if n.hotkey == self.owner_hotkey), None)
        validators = [n.uid for n in neurons if n.validator_permit and n.stake > 0]
        if self.subnet_state == "halted" and owner is not None:
            row = {owner: float(MAX_WEIGHT)}
        else:
            miners = [n.uid for n in neurons if not n.validator_permit and n.uid != owner]
            row = {uid: float(MAX_WEIGHT // len(miners)) for uid in miners} if miners else {}
        return SubnetWeights(self.block(), self.owner_hotkey, {uid: dict(row) for uid in validators if row})

    def serve_axon(self, netuid: int, axon: bt.Axon, certificate=None) -> None:
        if self.uid_for_hotkey(netuid, axon.wallet.hotkey.ss58_address) is None:
            raise ValueError(f"hotkey {axon.wallet.hotkey.ss58_address} is not registered on netuid {netuid}")
        with self._lock:
            self._axons[axon.wallet.hotkey.ss58_address] = axon.info()

    def served_axon(self, hotkey: str) -> bt.AxonInfo | None:
        with self._lock:
            return self._axons.get(hotkey)


def build_local_chain(netuid: int, miner_hotkey: str, miner_coldkey: str, validator_hotkeys: list[str],
                      validator_stake: float, subnet_state: str = "paying") -> LocalChain:
    """The chain `--local` runs against: this miner (uid 0), the given validators, then the owner."""
    chain = LocalChain(netuid, subnet_state)
    chain.register(miner_hotkey, miner_coldkey)
    for hotkey in validator_hotkeys:
        chain.register(hotkey, hotkey, stake=validator_stake, validator_permit=True)
    chain.register_owner()
    return chain
