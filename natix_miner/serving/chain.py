"""What the miner needs from the chain, behind one small interface.

`RealChain` wraps `bt.Subtensor`; `LocalChain` (local_chain.py) is the in-process stand-in used by
`--local`. The neuron, the guard and the tests only ever see this interface.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Protocol

import bittensor as bt

from ..errors import SetupError


@dataclass(frozen=True)
class NeuronStanding:
    uid: int
    hotkey: str
    coldkey: str
    stake: float
    validator_permit: bool
    incentive: float = 0.0
    emission: float = 0.0
    validator_trust: float = 0.0
    serving: bool = False  # an axon is published: validators' UIDDeck deals this uid


@dataclass(frozen=True)
class SubnetWeights:
    """Where the validators' weights go, as the chain holds them, and who owns the subnet."""

    block: int
    owner_hotkey: str | None
    rows: dict[int, dict[int, float]]  # setter uid -> {target uid: raw weight (u16 on chain)}


@dataclass(frozen=True)
class ChainSnapshot:
    """The subnet's neurons at one block, indexed by hotkey for the guard's lookups."""

    netuid: int
    block: int
    by_hotkey: dict[str, NeuronStanding]
    taken_at: float  # time.monotonic()

    @classmethod
    def build(cls, netuid: int, block: int, neurons: list[NeuronStanding]) -> "ChainSnapshot":
        return cls(netuid, block, {n.hotkey: n for n in neurons}, time.monotonic())


class Chain(Protocol):
    network: str

    def subnet_exists(self, netuid: int) -> bool: ...

    def uid_for_hotkey(self, netuid: int, hotkey: str) -> int | None: ...

    def snapshot(self, netuid: int) -> ChainSnapshot: ...

    def weights(self, netuid: int) -> SubnetWeights: ...

    # Same keywords as bt.Subtensor.serve_axon, which `bt.Axon.serve` calls.
    def serve_axon(self, netuid: int, axon: bt.Axon, certificate=None) -> None: ...


class RealChain:
    def __init__(self, subtensor: bt.Subtensor, network: str):
        self._subtensor = subtensor
        self.network = network

    def subnet_exists(self, netuid: int) -> bool:
        return bool(self._subtensor.subnet_exists(netuid))

    def uid_for_hotkey(self, netuid: int, hotkey: str) -> int | None:
        uid = self._subtensor.get_uid_for_hotkey_on_subnet(hotkey_ss58=hotkey, netuid=netuid)
        return None if uid is None else int(uid)

    def snapshot(self, netuid: int) -> ChainSnapshot:
        graph = self._subtensor.metagraph(netuid, lite=True)
        neurons = [
            NeuronStanding(
                uid=int(uid),
                hotkey=hotkey,
                coldkey=coldkey,
                stake=float(graph.S[i]),
                validator_permit=bool(graph.validator_permit[i]),
                incentive=float(graph.I[i]),
                emission=float(graph.E[i]),
                validator_trust=float(graph.Tv[i]),
                serving=bool(graph.axons[i] is not None and graph.axons[i].is_serving),
            )
            for i, (uid, hotkey, coldkey) in enumerate(zip(graph.uids, graph.hotkeys, graph.coldkeys))
        ]
        return ChainSnapshot.build(netuid, int(graph.block.item()), neurons)

    def weights(self, netuid: int) -> SubnetWeights:
        block = int(self._subtensor.get_current_block())
        rows = {int(uid): {int(target): float(w) for target, w in pairs} for uid, pairs in self._subtensor.weights(netuid, block=block)}
        return SubnetWeights(block, self._subtensor.get_subnet_owner_hotkey(netuid, block=block), rows)

    def serve_axon(self, netuid: int, axon: bt.Axon, certificate=None) -> None:
        response = self._subtensor.serve_axon(netuid=netuid, axon=axon, certificate=certificate)
        if not response.success:
            raise SetupError(f"publishing the axon on netuid {netuid} failed: {response.message}")


def connect_real_chain(
    network: str,
    attempts: int = 4,
    first_delay_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    connect: Callable[[str], bt.Subtensor] = lambda network: bt.Subtensor(network=network),
) -> RealChain:
    """Connect with exponential backoff; after the last attempt, a SetupError says what to do."""
    delay = first_delay_s
    last_error: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            return RealChain(connect(network), network)
        except Exception as exc:  # bittensor raises ConnectionError, OSError, websockets errors ...
            last_error = exc
            if attempt < attempts:
                bt.logging.warning(f"chain {network} unreachable (attempt {attempt}/{attempts}): {exc}; retrying in {delay:.0f}s")
                sleep(delay)
                delay *= 2
    raise SetupError(
        f"cannot reach the chain at {network} after {attempts} attempts ({type(last_error).__name__}: {last_error}). "
        "Check --subtensor.network / --subtensor.chain_endpoint and your connection, or try the miner offline with --local."
    )
