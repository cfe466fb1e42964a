"""The gate in front of the axon: strangers and non-validators get 403 from one header, without
their body being read or the axon's own machinery running; admitted callers pass untouched."""

import asyncio

import bittensor as bt

from natix_miner.serving.caller_gate import CallerGate
from natix_miner.serving.guard import Guard, GuardPolicy
from natix_miner.serving.protocol import ImageSynapse
from tests.test_guard import MINER, STRANGER, VALIDATOR, neurons, snapshot


def _call(gate: CallerGate, hotkey: str | None):
    headers = [(b"content-type", b"application/json")]
    if hotkey is not None:
        headers.append((b"bt_header_dendrite_hotkey", hotkey.encode()))
    sent, body_reads = [], []

    async def receive():
        body_reads.append(1)
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(gate({"type": "http", "path": "/ImageSynapse", "headers": headers}, receive, send))
    return sent, body_reads


def _gate():
    reached = []

    async def axon(scope, receive, send):
        reached.append(scope["path"])
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    guard = Guard(GuardPolicy(rate_per_s=1.0, burst=1), snapshot(*neurons()))
    return CallerGate(axon, guard), guard, reached


def test_strangers_and_non_validators_are_refused_at_the_door():
    gate, guard, reached = _gate()
    for hotkey, reason in ((STRANGER, "unregistered"), (MINER, "no_validator_permit"), (None, "missing_hotkey")):
        sent, body_reads = _call(gate, hotkey)
        headers = dict(sent[0]["headers"])
        assert sent[0]["status"] == 403 and headers[b"bt_header_axon_status_code"] == b"403"
        assert body_reads == [] and guard.refusals[reason] == 1
    assert reached == []


def test_validators_pass_and_the_blacklist_still_rate_limits_them():
    gate, guard, reached = _gate()
    for _ in range(3):  # the gate never rate-limits: every request reaches the axon ...
        sent, body_reads = _call(gate, VALIDATOR)
        assert sent[0]["status"] == 200 and body_reads == [1]
    assert len(reached) == 3
    synapse = ImageSynapse()
    synapse.dendrite = bt.TerminalInfo(hotkey=VALIDATOR)
    assert guard.check(synapse) == (False, "allowed")  # ... whose blacklist spends the bucket once
    assert guard.check(synapse)[0] is True and guard.refusals["rate_limited"] == 1


def test_an_address_that_keeps_being_refused_is_cut_off_for_a_while_unless_a_validator_uses_it():
    from natix_miner.serving.caller_gate import RefusalThrottle
    from tests.clock import FakeClock

    clock = FakeClock(1000.0)
    throttle = RefusalThrottle(max_refusals_per_s=5, ban_s=60.0, clock=clock)
    for _ in range(5):
        throttle.refused("203.0.113.9")
    assert not throttle.is_banned("203.0.113.9")  # five a second is tolerated ...
    throttle.refused("203.0.113.9")
    assert throttle.is_banned("203.0.113.9") and throttle.bans == 1  # ... the sixth is a flood
    assert not throttle.is_banned("203.0.113.10")
    clock.now += 61.0
    assert not throttle.is_banned("203.0.113.9")  # the ban runs out
    throttle.admitted("198.51.100.7")  # a validator calls from this address ...
    for _ in range(50):
        throttle.refused("198.51.100.7")  # ... so a flood from it never locks the validator out
    assert not throttle.is_banned("198.51.100.7")


def test_the_gate_feeds_the_throttle_from_the_callers_address():
    from natix_miner.serving.caller_gate import RefusalThrottle

    gate, guard, reached = _gate()
    gate.throttle = RefusalThrottle(max_refusals_per_s=2)

    def call(hotkey, address):
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message):
            sent.append(message)

        headers = [(b"bt_header_dendrite_hotkey", hotkey.encode())]
        asyncio.run(gate({"type": "http", "path": "/ImageSynapse", "headers": headers, "client": (address, 5000)}, receive, send))
        return sent[0]["status"]

    assert [call(STRANGER, "192.0.2.1") for _ in range(3)] == [403, 403, 403]
    assert gate.throttle.is_banned("192.0.2.1")
    assert call(VALIDATOR, "192.0.2.2") == 200 and not gate.throttle.is_banned("192.0.2.2")


def test_a_banned_address_is_closed_before_any_http_and_others_are_served():
    import socket
    import threading
    import time

    import uvicorn

    from natix_miner.serving.http_limits import RequestReadDeadline
    from tests.wire.harness import free_port

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off",
                            http=RequestReadDeadline.refusing(lambda address: address == "127.0.0.2"))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)

        def exchange(source: str) -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)) as sock:
                received = b""
                try:
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    while chunk := sock.recv(1024):  # until the server closes
                        received += chunk
                except ConnectionResetError:
                    pass
                return received

        assert exchange("127.0.0.1").startswith(b"HTTP/1.1 200")
        assert exchange("127.0.0.2") == b""  # closed at once: not one byte of HTTP back
        reply = exchange("127.0.0.1")
        assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"ok")
    finally:
        server.should_exit = True
        thread.join(10)


def test_malformed_numeric_headers_are_refused_400_at_the_gate_and_charged_to_the_address():
    """Issue 17, items 7 and 9: bittensor answered a nonce "abc" 500 and logged ~60 KB at ERROR for it."""
    from natix_miner.serving.caller_gate import RefusalThrottle

    gate, guard, reached = _gate()
    gate.throttle = RefusalThrottle(max_refusals_per_s=2)

    def call(extra, address="192.0.2.7"):
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message):
            sent.append(message)

        headers = [(b"bt_header_dendrite_hotkey", VALIDATOR.encode()), *extra]
        asyncio.run(gate({"type": "http", "path": "/ImageSynapse", "headers": headers, "client": (address, 5000)}, receive, send))
        return sent[0]["status"], sent[-1].get("body", b"")

    assert call([(b"bt_header_dendrite_nonce", b"abc")]) == (400, b'{"message": "header bt_header_dendrite_nonce is not a number"}')
    assert call([(b"timeout", b"soon")])[0] == 400
    assert call([(b"bt_header_dendrite_nonce", b"123"), (b"timeout", b"9.0")])[0] == 200
    assert call([(b"bt_header_dendrite_nonce", b"x")])[0] == 400 and gate.throttle.is_banned("192.0.2.7")


def test_a_library_log_stays_bounded_whatever_callers_send():
    import logging

    from natix_miner.serving.logs import BoundedLog
    from tests.clock import FakeClock

    clock = FakeClock()
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    log = logging.getLogger("bounded-log-test")
    log.propagate, log.handlers = False, [Keep()]
    log.addFilter(BoundedLog(max_chars=100, per_minute=3, clock=clock))
    for i in range(200):
        log.error(f"SynapseParsingError#{i}: Improperly formatted request " + "h" * 60_000)
    log.error("SomethingElse: one line")
    clock.now += 61
    log.error("SynapseParsingError#last: again")
    assert len(records) == 5 and all(len(r) < 200 for r in records)
    assert records[3] == "SomethingElse: one line"
    assert records[4].startswith("(197 more like this held back) SynapseParsingError#last")
