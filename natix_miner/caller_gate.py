"""Refuse strangers at the door: an ASGI middleware in front of bittensor's axon.

bittensor's own blacklist runs late: its middleware first builds a synapse object from the headers,
logs, and checks the signature, which costs about a core per 250 refused requests a second here,
and the validators' requests queue behind that work. This gate reads one header, asks the guard
whether that hotkey may call at all (registered, validator permit, stake), and answers a refused
caller 403 without reading its body. Rate limits stay in the blacklist, which counts every request
once. A forged hotkey header gains nothing: an admitted request still goes through the signature
check and the blacklist behind the gate.
"""

from __future__ import annotations

from .guard import Guard
from .http_limits import send_json_error

HOTKEY_HEADER = b"bt_header_dendrite_hotkey"


class CallerGate:
    def __init__(self, app, guard: Guard):
        self.app = app
        self.guard = guard

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        hotkey = next((value.decode("latin-1") for name, value in scope.get("headers") or [] if name == HOTKEY_HEADER), None)
        refused, reason = self.guard.admission(hotkey)
        if not refused:
            return await self.app(scope, receive, send)
        # bittensor's dendrite reads the status headers to report the refusal
        status = ((b"bt_header_axon_status_code", b"403"), (b"bt_header_axon_status_message", reason.encode("latin-1", "replace")))
        await send_json_error(send, 403, reason, status)
