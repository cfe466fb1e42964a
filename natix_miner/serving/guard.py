"""Who may ask, and in what order: runs on the request headers, before any image work.

bittensor's axon calls the blacklist BEFORE it verifies the signature, and every header it reads
there is the caller's word. So `check` verifies the request itself before it spends anything on the
hotkey the headers name: a forged request that names a validator's public hotkey would otherwise
spend that validator's rate-limit tokens, and its sender's address would be trusted as the
validator's. A request that fails verification is charged to the address it came from instead.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

import bittensor as bt

from bittensor.core.errors import NotVerifiedException

from .chain import ChainSnapshot


REAL_RATE_LIMIT, REAL_RATE_BURST = 5.0, 20  # a real validator reaches a miner every few minutes


@dataclass(frozen=True)
class GuardPolicy:
    force_validator_permit: bool = True
    min_stake: float = 0.0
    rate_per_s: float = REAL_RATE_LIMIT  # sustained requests per second per hotkey
    burst: int = REAL_RATE_BURST  # requests a hotkey may send at once


class _TokenBucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, now: float):
        self.tokens = tokens
        self.updated = now


class Guard:
    """Blacklist and priority from the latest chain snapshot (swapped in by the sync loop)."""

    def __init__(self, policy: GuardPolicy, snapshot: ChainSnapshot, clock=time.monotonic, on_refusal=None,
                 verify=None, throttle=None):
        self.policy = policy
        self.snapshot = snapshot
        self._clock = clock
        # verify(synapse) raises ValueError when the request is not authentic and fresh (the miner
        # passes SignatureVerifier.verify); throttle is the caller gate's RefusalThrottle. Both are
        # optional only so that the policy can be tested on its own.
        self._verify = verify
        self._throttle = throttle
        self._buckets: dict[str, _TokenBucket] = {}
        self._lock = threading.Lock()
        self.refusals: Counter[str] = Counter()
        self._untaken: Counter[tuple[str, str]] = Counter()  # (reason, hotkey) since take_refusals last ran
        self._on_refusal = on_refusal  # called with the reason, e.g. to count it in metrics

    def update(self, snapshot: ChainSnapshot) -> None:
        self.snapshot = snapshot
        with self._lock:  # forget hotkeys that left the subnet: the table stays bounded by its size
            for hotkey in [h for h in self._buckets if h not in snapshot.by_hotkey]:
                del self._buckets[hotkey]

    def check(self, synapse: bt.Synapse) -> tuple[bool, str]:
        """(refused, reason); raises NotVerifiedException (the axon answers 401) for a request that is
        not authentic. Cheap: dictionary lookups, then one signature check for admitted hotkeys."""
        dendrite = synapse.dendrite
        hotkey = dendrite.hotkey if dendrite is not None else None
        address = dendrite.ip if dendrite is not None else None  # the TCP peer: bittensor sets it, not the caller
        refused = self.admission(hotkey)
        if refused[0]:
            return refused
        if self._verify is not None:
            try:
                self._verify(synapse)
            except ValueError as exc:
                self._refuse("unverified", f"request naming hotkey {hotkey} from {address} failed verification: {exc}")
                if self._throttle is not None:
                    self._throttle.refused(address)
                raise NotVerifiedException(f"Not Verified with error: {exc}", synapse) from None
        if self._throttle is not None:
            self._throttle.admitted(address)  # only a verified request vouches for its address
        if not self._take_token(hotkey):
            return self._refuse("rate_limited", f"hotkey {hotkey} exceeds {self.policy.rate_per_s:g} requests/s", hotkey)
        return False, "allowed"

    def admission(self, hotkey: str | None) -> tuple[bool, str]:
        """The checks that depend on who the caller is, not on how often it calls: (refused, reason)."""
        if not hotkey:
            return self._refuse("missing_hotkey", "request carries no hotkey")
        neuron = self.snapshot.by_hotkey.get(hotkey)
        if neuron is None:
            return self._refuse("unregistered", f"hotkey {hotkey} is not registered on netuid {self.snapshot.netuid}")
        if self.policy.force_validator_permit and not neuron.validator_permit:
            return self._refuse("no_validator_permit", f"hotkey {hotkey} (uid {neuron.uid}) has no validator permit", hotkey)
        if neuron.stake < self.policy.min_stake:
            return self._refuse("low_stake", f"hotkey {hotkey} stake {neuron.stake:.1f} < {self.policy.min_stake:.1f}", hotkey)
        return False, "admitted"

    def priority(self, synapse: bt.Synapse) -> float:
        hotkey = synapse.dendrite.hotkey if synapse.dendrite is not None else None
        neuron = self.snapshot.by_hotkey.get(hotkey or "")
        return neuron.stake if neuron is not None else 0.0

    def take_refusals(self) -> Counter[tuple[str, str]]:
        """{(reason, hotkey): count} refused since the last call (the sync loop journals them)."""
        with self._lock:
            taken, self._untaken = self._untaken, Counter()
        return taken

    def _refuse(self, reason: str, detail: str, hotkey: str = "") -> tuple[bool, str]:
        """`hotkey`: only one the chain has registered, so that what is kept per hotkey stays bounded
        by the subnet's size whatever callers claim to be."""
        self.refusals[reason] += 1
        with self._lock:
            self._untaken[reason, hotkey] += 1
        if self._on_refusal is not None:
            self._on_refusal(reason)
        bt.logging.debug(f"refused: {detail}")
        return True, detail

    def _take_token(self, hotkey: str) -> bool:
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(hotkey)
            if bucket is None:
                bucket = self._buckets[hotkey] = _TokenBucket(float(self.policy.burst), now)
            bucket.tokens = min(float(self.policy.burst), bucket.tokens + (now - bucket.updated) * self.policy.rate_per_s)
            bucket.updated = now
            if bucket.tokens < 1.0:
                return False
            bucket.tokens -= 1.0
            return True
