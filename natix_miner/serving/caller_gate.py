"""Refuse strangers at the door: an ASGI middleware in front of bittensor's axon, and a throttle
that stops a flooding address at the connection.

bittensor's own blacklist runs late: its middleware first builds a synapse object from the headers,
logs, and checks the signature, which costs about a core per 250 refused requests a second here,
and the validators' requests queue behind that work. This gate reads one header, asks the guard
whether that hotkey may call at all (registered, validator permit, stake), and answers a refused
caller 403 without reading its body. Rate limits stay in the blacklist, which counts every request
once. A forged hotkey header gains nothing: an admitted request still goes through the signature
check behind the gate, before any rate-limit token is spent (guard.py), and its failure is charged
to its address here.

Even a cheap refusal costs HTTP parsing, so an address refused more than `max_refusals_per_s` times
in a second is cut off for `ban_s` when it connects (RequestReadDeadline asks `is_banned`), unless
a validator's verified request came from it within `vouch_s`: an address a validator uses is never
cut off, so a validator behind a shared address cannot be locked out by a flood from it. Only a
request whose signature verified vouches (the guard calls `admitted`): a header alone proves nothing.
"""

from __future__ import annotations

import threading
import time

from .guard import Guard
from .http_limits import send_json_error
from .logs import logger

HOTKEY_HEADER = b"bt_header_dendrite_hotkey"


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


# Headers bittensor parses (and, when malformed, answers 500 and logs at ERROR with every header)
# before anyone has checked who sent them: checked here, cheaply, and charged to the address.
NUMERIC_HEADERS = {b"bt_header_dendrite_nonce": str.isdigit, b"timeout": _is_number}


class RefusalThrottle:
    # vouch_s: a validator reaches a given miner about every half hour (FACTS: UIDDeck), so an address
    # stays vouched for far longer than that, or a flood from it would lock the validator out between visits.
    def __init__(self, max_refusals_per_s: int = 50, ban_s: float = 60.0, vouch_s: float = 6 * 3600.0, clock=time.monotonic):
        self.max_refusals_per_s, self.ban_s, self.vouch_s = max_refusals_per_s, ban_s, vouch_s
        self._clock = clock
        self._window: dict[str, tuple[int, int]] = {}  # address -> (second, refusals in it)
        self._banned_until: dict[str, float] = {}
        self._vouched_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self.bans = 0

    def admitted(self, address: str | None) -> None:
        if address:
            with self._lock:
                self._vouched_at[address] = self._clock()
                self._banned_until.pop(address, None)

    def refused(self, address: str | None) -> None:
        if not address:
            return
        now = self._clock()
        second = int(now)
        with self._lock:
            window, count = self._window.get(address, (second, 0))
            count = count + 1 if window == second else 1
            self._window[address] = (second, count)
            if count > self.max_refusals_per_s and not self._vouched(address, now):
                if address not in self._banned_until:
                    self.bans += 1
                    logger.warning(f"address {address} was refused over {self.max_refusals_per_s} times in a second: "
                                   f"its connections are closed unread for {self.ban_s:.0f} s")
                self._banned_until[address] = now + self.ban_s
            if len(self._window) > 10_000:  # bounded (many addresses, IPv6): forget the quiet ones
                self._window = {a: w for a, w in self._window.items() if w[0] == second}
            if len(self._banned_until) > 10_000:  # and the bans that ran out
                self._banned_until = {a: until for a, until in self._banned_until.items() if until > now}

    def is_banned(self, address: str | None) -> bool:
        if not address:
            return False
        with self._lock:
            until = self._banned_until.get(address)
            if until is None:
                return False
            if until <= self._clock():
                del self._banned_until[address]
                return False
            return True

    def _vouched(self, address: str, now: float) -> bool:
        vouched = self._vouched_at.get(address)
        return vouched is not None and now - vouched < self.vouch_s


class CallerGate:
    def __init__(self, app, guard: Guard, throttle: RefusalThrottle | None = None):
        self.app = app
        self.guard = guard
        self.throttle = throttle or RefusalThrottle()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = scope.get("headers") or []
        hotkey = next((value.decode("latin-1") for name, value in headers if name == HOTKEY_HEADER), None)
        address = (scope.get("client") or (None,))[0]
        malformed = next((name.decode() for name, value in headers if name in NUMERIC_HEADERS
                          and not NUMERIC_HEADERS[name](value.decode("latin-1"))), None)
        if malformed is not None:
            self.throttle.refused(address)
            reason = f"header {malformed} is not a number"
            status = ((b"bt_header_axon_status_code", b"400"), (b"bt_header_axon_status_message", reason.encode()))
            return await send_json_error(send, 400, reason, status)
        refused, reason = self.guard.admission(hotkey)
        if not refused:
            return await self.app(scope, receive, send)
        self.throttle.refused(address)
        # bittensor's dendrite reads the status headers to report the refusal
        status = ((b"bt_header_axon_status_code", b"403"), (b"bt_header_axon_status_message", reason.encode("latin-1", "replace")))
        await send_json_error(send, 403, reason, status)
