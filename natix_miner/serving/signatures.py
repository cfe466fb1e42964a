"""Request signature check that tolerates reordering but not replays.

bittensor's default verify demands that each nonce exceed the last one seen from that dendrite, so
when a validator sends several requests at once and they arrive out of order, the late ones get a
401 ("Nonce is too old") and score 0. Here every nonce must be fresh (inside the same time window
bittensor allows) and unseen, so concurrent requests all pass and a replay still fails.

bittensor widens its window by the request's `timeout` header, which the signature does not cover:
a captured request replayed with `timeout: 1000` would be fresh for 17 minutes. Here the header
counts only up to MAX_TIMEOUT_S (validators send 9 s), and every nonce is remembered for the widest
window there is, so a replay is either still remembered or already too old.
"""

from __future__ import annotations

import math
import threading
import time

from bittensor import Keypair, Synapse

ALLOWED_DELTA_NS = 4_000_000_000  # bittensor's own allowance for clock skew and transit
FUTURE_SKEW_NS = 60_000_000_000  # validators' clocks may run ahead; beyond a minute is not plausible
MAX_TIMEOUT_S = 12.0  # validators ask with timeout=9; the header is unsigned, so never trust more
MAX_WINDOW_NS = ALLOWED_DELTA_NS + int(MAX_TIMEOUT_S * 1e9)


def freshness_window_ns(timeout) -> int:
    """How old a nonce may be: bittensor's allowance plus the caller's timeout, capped (unsigned header)."""
    try:
        timeout_s = float(timeout or 0.0)
    except (TypeError, ValueError):
        timeout_s = 0.0
    if not math.isfinite(timeout_s):  # nan, inf: no window of its own
        timeout_s = 0.0
    return ALLOWED_DELTA_NS + int(min(max(timeout_s, 0.0), MAX_TIMEOUT_S) * 1e9)


class SignatureVerifier:
    def __init__(self, receiver_hotkey: str, clock_ns=time.time_ns):
        self.receiver_hotkey = receiver_hotkey
        self._clock_ns = clock_ns
        self._seen: dict[str, dict[int, int]] = {}  # endpoint -> nonce -> forget after (ns)
        self._lock = threading.Lock()

    def verify(self, synapse: Synapse) -> None:
        """Raise with the reason when the request is not authentic and fresh; the axon answers 401."""
        dendrite = synapse.dendrite
        if dendrite is None or not dendrite.hotkey:
            raise ValueError("missing dendrite hotkey")
        if dendrite.nonce is None:
            raise ValueError("missing nonce")
        if not dendrite.signature:
            raise ValueError("missing signature")
        now = self._clock_ns()
        window = freshness_window_ns(synapse.timeout)
        if dendrite.nonce < now - window:
            raise ValueError(f"nonce is {(now - dendrite.nonce) / 1e9:.1f}s old, older than the {window / 1e9:.1f}s window")
        if dendrite.nonce > now + FUTURE_SKEW_NS:
            raise ValueError("nonce is too far in the future: check the sender's clock")
        message = f"{dendrite.nonce}.{dendrite.hotkey}.{self.receiver_hotkey}.{dendrite.uuid}.{synapse.computed_body_hash}"
        if not Keypair(ss58_address=dendrite.hotkey).verify(message, dendrite.signature):
            raise ValueError("signature does not match the request")
        endpoint = f"{dendrite.hotkey}:{dendrite.uuid}"
        with self._lock:
            seen = self._seen.setdefault(endpoint, {})
            for nonce in [n for n, expiry in seen.items() if expiry < now]:
                del seen[nonce]
            if dendrite.nonce in seen:
                raise ValueError("nonce already used: replayed request")
            seen[dendrite.nonce] = max(now, dendrite.nonce) + MAX_WINDOW_NS
            if not seen:
                del self._seen[endpoint]

    def forget_idle(self) -> None:
        """Drop endpoints whose nonces have all expired (called from the sync loop)."""
        now = self._clock_ns()
        with self._lock:
            for endpoint in [e for e, seen in self._seen.items() if all(x < now for x in seen.values())]:
                del self._seen[endpoint]
