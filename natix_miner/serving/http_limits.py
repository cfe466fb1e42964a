"""Limits on what a client may make the axon hold: oversized bodies, requests that never finish."""

from __future__ import annotations

import asyncio
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

# From a connection's opening (or a kept-alive connection's next first byte) to the request's last
# byte. A validator sends its request in well under a second and gives up on the whole exchange after
# at most 12 s; a request still incomplete after this long is a slow client holding the connection.
REQUEST_READ_TIMEOUT_S = 15.0


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: 413 when Content-Length exceeds the limit; aborts streamed bodies that do."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._too_large(send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(f"request body exceeds {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)

    async def _too_large(self, send):
        await send_json_error(send, 413, f"request body exceeds {self.max_bytes} bytes")


async def send_json_error(send, status: int, message: str, headers: tuple = ()) -> None:
    """A whole ASGI response, {"message": ...}, sent without reading the request body."""
    body = json.dumps({"message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestReadDeadline(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection whose request does not arrive in time.

    uvicorn times out idle keep-alive connections only, and only once a response went out: a client
    that never finishes its headers (slowloris), or declares a body and trickles it, keeps the
    connection, its file descriptor and its buffers for as long as it likes, and enough of them use
    up the process's descriptors. Here each request must be read whole within REQUEST_READ_TIMEOUT_S;
    once it is, the deadline is off (the answer takes what the forward takes).
    """

    read_timeout_s = REQUEST_READ_TIMEOUT_S
    is_banned = None  # address -> bool: addresses cut off at the connection (caller_gate.RefusalThrottle)

    @classmethod
    def refusing(cls, is_banned):
        """A protocol factory for uvicorn's `http` setting: connections from addresses `is_banned`
        names are closed in connection_made, before uvicorn's HTTP protocol object is even built
        (that build was most of what a flood of throttled connections cost); the others get this
        protocol, which also refuses a kept-alive connection whose address gets banned later."""
        protocol = type(cls.__name__, (cls,), {"is_banned": staticmethod(is_banned)})

        def factory(**uvicorn_arguments):
            return _ConnectionGate(lambda: protocol(**uvicorn_arguments), is_banned)

        return factory

    def connection_made(self, transport) -> None:
        self._read_deadline = None
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self._peer_address = peer[0] if peer else None
        self._arm_read_deadline()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._banned():  # kept-alive connections too
            return
        if self._read_deadline is None and self.conn.their_state is h11.IDLE:
            self._arm_read_deadline()  # the next request on a kept-alive connection starts now
        super().data_received(data)
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):  # read whole (or the connection is done)
            self._disarm_read_deadline()

    def _banned(self) -> bool:
        """Close the connection of a flooding address: not one byte of its requests is parsed."""
        if self.is_banned is None or not self.is_banned(self._peer_address):
            return False
        self._disarm_read_deadline()
        self.transport.close()
        return True

    def connection_lost(self, exc) -> None:
        self._disarm_read_deadline()
        super().connection_lost(exc)

    def _arm_read_deadline(self) -> None:
        self._disarm_read_deadline()
        self._read_deadline = self.loop.call_later(self.read_timeout_s, self._read_deadline_passed)

    def _disarm_read_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_deadline_passed(self) -> None:
        self._read_deadline = None
        if not self.transport.is_closing():
            self.transport.close()  # connection_lost tells a handler still waiting for the body


class _ConnectionGate(asyncio.Protocol):
    """Looks at the peer's address first; hands the transport to the real protocol only if allowed."""

    def __init__(self, build, is_banned):
        self._build, self._is_banned = build, is_banned

    def connection_made(self, transport) -> None:
        peer = transport.get_extra_info("peername")
        if peer and self._is_banned(peer[0]):
            transport.close()
            return
        protocol = self._build()
        transport.set_protocol(protocol)  # from here on asyncio calls the real protocol
        protocol.connection_made(transport)

    def connection_lost(self, exc) -> None:  # only for refused connections: the others moved on
        pass
