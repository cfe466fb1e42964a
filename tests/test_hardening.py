"""Hardening over the wire (issue 7): a real miner on loopback under abuse a validator must not feel.

- a validator hammering past its rate limit is refused (403) while another validator is served;
- floods signed by unregistered hotkeys and by a registered hotkey without a validator permit are all
  refused before the forward, while a validator's own requests are answered;
- slow clients (slowloris headers, trickled or stalled bodies) neither delay a validator nor keep
  their connections forever;
- a tier that hangs or crashes mid-request still leaves every validator request answered in time
  (fallback 0.5, or the other tier's answer), and a crashing tier trips its circuit breaker.

Validators send through the harness's client under bittensor 9.12.2 (what SN72 validators pin);
the floods are attackers, sent from this process's own bittensor with as many keys as they like.
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
import subprocess
import threading
import time
import urllib.request

import bittensor as bt
import bittensor.utils.networking as networking
import pytest
from prometheus_client.parser import text_string_to_metric_families

from natix_miner.serving.http_limits import REQUEST_READ_TIMEOUT_S
from natix_miner.serving.logs import short_hotkey
from natix_miner.serving.protocol import ImageSynapse
from tests.payloads import b64, jpeg_bytes
from tests.wire.harness import CLIENT, REPO, MinerProcess, client_python, client_reply, free_port

VALIDATOR_TIMEOUT_S = 9.0
RATE, BURST = 2.0, 4  # the shared miner's --blacklist.rate_limit / --blacklist.rate_burst
HAMMER = {"uri": "//Alice"}  # test 1: past its limit
POLITE = {"uri": "//Charlie"}  # test 1: within its limit, while Alice hammers
FLOOD_WITNESS = {"uri": "//Dave"}  # test 2
SLOW_WITNESS = {"uri": "//Eve"}  # test 3


def ss58(signer: dict) -> str:
    return bt.Keypair.create_from_uri(signer["uri"]).ss58_address


def image_request(seed: int, size: int = 224) -> dict:
    return {"synapse": "ImageSynapse", "image": b64(jpeg_bytes(seed, size=size))}


def answered(result: dict) -> bool:
    return result["status_code"] == 200 and 0.0 <= result["prediction"] <= 1.0 and result["wall_s"] < VALIDATOR_TIMEOUT_S


def scrape(port: int) -> dict:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(text) for s in family.samples}


def metric(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def start_job(job: dict) -> subprocess.Popen:
    """A validator's client running in the background (MinerProcess.query waits for it)."""
    process = subprocess.Popen([client_python(), str(CLIENT), "--job", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    process.stdin.write(json.dumps(job))
    process.stdin.close()
    return process


def finish_job(process: subprocess.Popen, timeout_s: float = 300.0) -> dict:
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    out, err = process.stdout.read(), process.stderr.read()
    if process.returncode != 0:
        raise RuntimeError(f"dendrite client failed:\n{err[-4000:]}")
    return client_reply(out)


@pytest.fixture(scope="module")
def miner(tmp_path_factory):
    """One miner for tests 1-3: a tight rate limit, metrics on, four validators (one per role)."""
    tmp = tmp_path_factory.mktemp("hardening")
    metrics_port = free_port()
    validators = [arg for signer in (HAMMER, POLITE, FLOOD_WITNESS, SLOW_WITNESS) for arg in ("--local.validator_hotkey", ss58(signer))]
    process = MinerProcess(
        tmp, *validators, "--blacklist.rate_limit", str(RATE), "--blacklist.rate_burst", str(BURST),
        "--metrics.port", str(metrics_port), "--metrics.ip", "127.0.0.1",
    )
    process.metrics_port = metrics_port
    process.wallets = tmp / "wallets"
    yield process
    process.stop()


# --- 1. a validator hammering past its rate limit ------------------------------------------------


def test_a_validator_hammering_past_its_rate_limit_is_refused_while_another_is_served(miner):
    before = scrape(miner.metrics_port)
    hammer_requests = 40
    started = time.monotonic()
    hammer = start_job(miner.job([image_request(1000 + i) for i in range(hammer_requests)], HAMMER, concurrency=hammer_requests))
    polite = start_job(miner.job([image_request(2000 + i) for i in range(BURST)], POLITE, concurrency=1))
    hammered = finish_job(hammer)["results"]
    span_s = time.monotonic() - started  # the client's start-up included: an upper bound on the refill time
    polite_results = finish_job(polite)["results"]

    served = [r for r in hammered if r["status_code"] == 200]
    refused = [r for r in hammered if r["status_code"] != 200]
    print(f"hammer: {len(served)} of {hammer_requests} served in {span_s:.1f} s (burst {BURST}, {RATE:g}/s)")
    assert all(answered(r) for r in served)
    assert BURST <= len(served) <= BURST + RATE * span_s + 1, "the bucket allows its burst and its refill, no more"
    assert refused, "the excess of the burst must be refused"
    for result in refused:  # bittensor answers a blacklisted request 403, before its forward
        assert result["status_code"] == 403, result
        assert f"exceeds {RATE:g} requests/s" in result["status_message"] and result["prediction"] == -1.0
    assert all(answered(r) for r in polite_results), polite_results  # its own bucket: untouched by Alice's
    assert miner.process.poll() is None

    after = scrape(miner.metrics_port)
    rate_limited = metric(after, "natix_refused_total", reason="rate_limited") - metric(before, "natix_refused_total", reason="rate_limited")
    assert rate_limited == len(refused)
    alice_ok = metric(after, "natix_requests_total", synapse="ImageSynapse", validator=ss58(HAMMER), outcome="ok")
    assert alice_ok == len(served), "only the requests within the bucket reached the forward"

    time.sleep(BURST / RATE + 1.0)  # the bucket refills
    again = miner.query([image_request(3000 + i) for i in range(3)], HAMMER)["results"]
    assert all(answered(r) for r in again), again


# --- 2. floods from unregistered hotkeys and a registered non-validator ---------------------------


async def flood(axon: bt.AxonInfo, keys: list, total: int, concurrency: int, keep_going, most: int = 3000) -> list[tuple[str, int, str]]:
    """At least `total` requests (then on while keep_going(), up to `most`), `concurrency` at a time,
    round-robin over `keys`: (hotkey, status, message) for each."""
    dendrites = [bt.Dendrite(wallet=key) for key in keys]
    image = b64(jpeg_bytes(7))
    results: list[tuple[str, int, str]] = []
    sent = 0

    async def sender():
        nonlocal sent
        while sent < most and (sent < total or keep_going()):
            dendrite = dendrites[sent % len(dendrites)]
            sent += 1
            response = (await dendrite.forward(axons=[axon], synapse=ImageSynapse(image=image), timeout=30, deserialize=False))[0]
            results.append((dendrite.keypair.ss58_address, response.dendrite.status_code, response.dendrite.status_message or ""))

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    for dendrite in dendrites:
        await dendrite.aclose_session()
    return results


def test_floods_from_strangers_and_a_non_validator_are_refused_while_a_validator_is_served(miner, monkeypatch):
    # The dendrite looks its own IP up online; were it the axon's, it would dial 0.0.0.0 (which the
    # suite's no-network guard refuses) instead of the axon's loopback address.
    monkeypatch.setattr(networking, "get_external_ip", lambda: "192.0.2.1")
    strangers = [bt.Keypair.create_from_mnemonic(bt.Keypair.generate_mnemonic()) for _ in range(8)]
    non_validator = bt.Wallet(name="default", hotkey="default", path=str(miner.wallets)).hotkey  # the miner's own: registered, no permit
    assert non_validator.ss58_address == miner.info["hotkey"]
    axon = bt.AxonInfo(version=1, ip=miner.info["ip"], port=miner.info["port"], ip_type=4,
                       hotkey=miner.info["hotkey"], coldkey=miner.info["hotkey"])
    # Everything here comes from 127.0.0.1: an address a validator calls from is never cut off by the
    # flood throttle (caller_gate.RefusalThrottle), so the witness speaks first; the throttle itself
    # is tested in test_caller_gate and measured from another address by benchmarks/flood.py.
    assert answered(miner.query([image_request(3999)], FLOOD_WITNESS)["results"][0])
    before = scrape(miner.metrics_port)

    witness = start_job(miner.job([image_request(4000 + i) for i in range(BURST)], FLOOD_WITNESS, concurrency=1))
    results = asyncio.run(flood(axon, strangers * 2 + [non_validator] * 8, total=200, concurrency=32,
                                keep_going=lambda: witness.poll() is None))
    witnessed = finish_job(witness)["results"]

    stranger_keys = {k.ss58_address for k in strangers}
    from_strangers = [r for r in results if r[0] in stranger_keys]
    from_non_validator = [r for r in results if r[0] == non_validator.ss58_address]
    print(f"flood: {len(from_strangers)} from {len(strangers)} unregistered hotkeys, {len(from_non_validator)} from a non-validator")
    assert len(results) >= 200 and from_strangers and from_non_validator
    for hotkey, status, message in from_strangers:
        assert status == 403 and "is not registered" in message, (hotkey, status, message)
    for hotkey, status, message in from_non_validator:
        assert status == 403 and "has no validator permit" in message, (hotkey, status, message)
    assert all(answered(r) for r in witnessed), witnessed
    assert miner.process.poll() is None

    after = scrape(miner.metrics_port)

    def delta(name, **labels):
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta("natix_refused_total", reason="unregistered") == len(from_strangers)
    assert delta("natix_refused_total", reason="no_validator_permit") == len(from_non_validator)
    # refused before the forward: no answer was counted for them, and every answer counted is the witness's
    flooders = stranger_keys | {non_validator.ss58_address}
    assert not [k for k in after if k[0] == "natix_requests_total" and dict(k[1]).get("validator") in flooders]
    assert delta("natix_forward_seconds_count", synapse="ImageSynapse") == len(witnessed)
    log = miner.log()
    assert not [k for k in flooders if f"validator={short_hotkey(k)} " in log]


# --- 3. slow clients --------------------------------------------------------------------------------


class SlowClients:
    """Raw loopback sockets that never finish a request, trickling a byte now and then; notes when the
    miner closes each one."""

    def __init__(self, port: int, slowloris: int = 50, trickled_bodies: int = 5, stalled_bodies: int = 5, kept_alive: int = 5):
        self.sockets: list[tuple[str, socket.socket]] = []
        self.opened: list[float] = []
        body_head = (
            "POST /ImageSynapse HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 4000000\r\n\r\n"
        ).encode()
        for kind, count, first in (
            ("slowloris", slowloris, b"POST /ImageSynapse HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "),
            ("trickled_body", trickled_bodies, body_head + b'{"image": "'),
            ("stalled_body", stalled_bodies, body_head + b'{"image": "' + b"A" * 1000),
            # one whole (refused) request, then the next one's headers byte by byte: every byte resets
            # uvicorn's keep-alive timer, so only a deadline on the request itself ends it
            ("kept_alive_then_slow", kept_alive, b"POST /ImageSynapse HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}"),
        ):
            for _ in range(count):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                sock.sendall(first)
                sock.setblocking(False)
                self.sockets.append((kind, sock))
                self.opened.append(time.monotonic())
        self.closed_after: dict[int, float] = {}  # index -> seconds from opening until the miner closed it
        self.replies: dict[int, bytes] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()

    def closed(self, kind: str) -> list[float]:
        return [self.closed_after[i] for i, (k, _) in enumerate(self.sockets) if k == kind and i in self.closed_after]

    def _trickle(self) -> None:
        while not self._stop.wait(0.5):
            for index, (kind, sock) in enumerate(self.sockets):
                if index in self.closed_after:
                    continue
                try:
                    readable, _, _ = select.select([sock], [], [], 0)
                    if readable:
                        data = sock.recv(65536)
                        if not data:
                            raise ConnectionResetError("closed by the miner")
                        self.replies[index] = self.replies.get(index, b"") + data
                    if kind != "stalled_body":
                        sock.send(b"a")
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    self.closed_after[index] = time.monotonic() - self.opened[index]
            if len(self.closed_after) == len(self.sockets):
                return

    def wait_all_closed(self, timeout_s: float) -> bool:
        self._thread.join(timeout_s)
        return len(self.closed_after) == len(self.sockets)

    def still_open(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for index, (kind, _) in enumerate(self.sockets):
            if index not in self.closed_after:
                counts[kind] = counts.get(kind, 0) + 1
        return counts

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for _, sock in self.sockets:
            sock.close()


def test_slow_clients_neither_delay_a_validator_nor_hold_their_connections_forever(miner):
    slow = SlowClients(miner.port)
    try:
        time.sleep(1.0)  # every slow connection is in, half-sent
        assert not slow.closed_after, "nothing should be cut off this early"
        during = miner.query([image_request(5000 + i) for i in range(3)], SLOW_WITNESS, concurrency=3)["results"]
        held = len(slow.sockets) - len(slow.closed_after)
        print(f"validator answered in {max(r['wall_s'] for r in during):.2f} s while {held} slow connections were held")
        assert all(answered(r) for r in during), during
        # The miner must not let a client that never finishes its request keep the connection: each is
        # closed once the request read deadline passes (a validator's whole exchange fits in 12 s).
        # The bodies' senders were answered 403 from their headers alone: uvicorn's keep-alive timer
        # then closes a connection that goes quiet, the request deadline one that keeps trickling.
        assert slow.wait_all_closed(REQUEST_READ_TIMEOUT_S + 45.0), f"still open: {slow.still_open()}"
        for kind in ("slowloris", "trickled_body", "stalled_body", "kept_alive_then_slow"):
            print(f"{kind}: {len(slow.closed(kind))} closed after {min(slow.closed(kind)):.1f} to {max(slow.closed(kind)):.1f} s")
        assert all(slow.replies.get(i, b"").startswith(b"HTTP/1.1 403") for i, (k, _) in enumerate(slow.sockets) if k != "slowloris")
        for kind in ("slowloris", "kept_alive_then_slow"):  # a request still arriving gets its whole deadline
            assert min(slow.closed(kind)) >= REQUEST_READ_TIMEOUT_S - 1.0, kind
    finally:
        slow.close()
    assert miner.process.poll() is None
    after = miner.query([image_request(5100)], SLOW_WITNESS)["results"]
    assert all(answered(r) for r in after), after


# --- 4. a tier that hangs or crashes mid-request ----------------------------------------------------

HANG_PX, CRASH_PX = 96, 80  # images of these widths make the test tiers hang / raise
HANG_S = 60.0  # far beyond the deadline
DEADLINE_S = 4.0

# Two misbehaving tiers before the real classifier. Their weight in the fusion is negligible, so an
# answer from the cascade is (to 1e-6) the classifier's whether or not they answered too.
MISBEHAVING_YAML = f"""
deadline_s: {DEADLINE_S}
workers: 8
cache_size: 0
fallback_probability: 0.5
tiers:
  - name: hangs
    kind: classifier
    model: builtin:efficientnet-lite0-roadwork
    max_batch: 1
    weight: 0.000001
  - name: crashes
    kind: classifier
    model: builtin:efficientnet-lite0-roadwork
    max_batch: 1
    weight: 0.000001
    breaker_failures: 2
    breaker_cooldown_s: 3600
  - name: lite0
    kind: classifier
    model: builtin:efficientnet-lite0-roadwork
    max_batch: 8
    max_wait_ms: 2
"""

# The real entry point, with tiers named hangs / crashes replaced by test tiers that log every call.
MISBEHAVING_MINER = """
import sys, time
sys.path.insert(0, {repo!r})

from cascade import config as cascade_config
from cascade.tier import Tier, TierOutput
from natix_miner.serving.neuron import exit_process, main


class Misbehaving(Tier):
    def __init__(self, name):
        self.name = name

    def predict(self, images):
        with open({calls!r}, "a") as calls:
            calls.write("".join(f"{{self.name}} {{image.width}}\\n" for image in images))
        if self.name == "hangs" and any(image.width == {hang_px} for image in images):
            time.sleep({hang_s})
        if self.name == "crashes" and any(image.width == {crash_px} for image in images):
            raise RuntimeError("test tier crashed")
        return [TierOutput(0.9) for _ in images]


real_build_tier = cascade_config.build_tier
cascade_config.build_tier = lambda config, tier: Misbehaving(tier.name) if tier.name in ("hangs", "crashes") else real_build_tier(config, tier)
exit_process(main())
"""


@pytest.fixture(scope="module")
def flaky_miner(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("flaky")
    calls = tmp / "tier-calls.txt"
    config = tmp / "misbehaving.yaml"
    config.write_text(MISBEHAVING_YAML)
    script = tmp / "misbehaving_miner.py"
    script.write_text(MISBEHAVING_MINER.format(repo=str(REPO), calls=str(calls), hang_px=HANG_PX, crash_px=CRASH_PX, hang_s=HANG_S))
    process = MinerProcess(tmp, "--local.validator_hotkey", ss58(HAMMER), "--config", str(config),
                           "--blacklist.rate_limit", "100", "--blacklist.rate_burst", "200", script=script)
    process.calls = lambda tier, width: sum(1 for line in calls.read_text().splitlines() if line == f"{tier} {width}")
    yield process
    process.stop(timeout_s=5.0)


@pytest.fixture(scope="module")
def classifier_answers():
    """What the real classifier alone says for an image payload, decoded as the miner decodes it."""
    from cascade.config import build_cascade, load_config
    from cascade.image import decode_base64_image

    config = load_config("cpu-default")
    cascade = build_cascade(config)
    yield lambda payload: cascade.predict(decode_base64_image(payload, config.image.limits())).probability
    cascade.close()


def test_a_crashing_tier_is_bypassed_and_trips_its_circuit_breaker_over_the_wire(flaky_miner, classifier_answers):
    crashing = [image_request(6000 + i, size=CRASH_PX) for i in range(5)]
    results = flaky_miner.query(crashing, HAMMER)["results"]  # one at a time: the breaker counts in order
    assert all(answered(r) for r in results), results
    for request, result in zip(crashing, results):  # the next tier's answer, not the fallback
        assert result["prediction"] == pytest.approx(classifier_answers(request["image"]), abs=1e-4)
    assert flaky_miner.calls("crashes", CRASH_PX) == 2, "after breaker_failures (2) errors the tier is no longer called"
    calls_before = flaky_miner.calls("crashes", 224)
    ordinary = flaky_miner.query([image_request(6100 + i) for i in range(3)], HAMMER)["results"]
    assert all(answered(r) for r in ordinary), ordinary
    assert flaky_miner.calls("crashes", 224) == calls_before, "an open breaker keeps the tier out for every image"
    assert flaky_miner.process.poll() is None


def test_a_hanging_tier_still_leaves_every_request_answered_in_time_over_the_wire(flaky_miner, classifier_answers):
    hanging = [image_request(7000 + i, size=HANG_PX) for i in range(3)]
    results = flaky_miner.query(hanging, HAMMER, concurrency=3)["results"]
    print("hanging tier: answers in " + ", ".join(f"{r['wall_s']:.1f} s" for r in results))
    assert all(answered(r) for r in results), results
    hung = flaky_miner.calls("hangs", HANG_PX)
    fallbacks = sum(1 for r in results if r["prediction"] == 0.5)
    # A request that reached the hung tier gets the fallback, 0.5, when its deadline comes; one that
    # arrived after the first overrun taught the tier's p95 skips it and gets the classifier's answer.
    assert hung >= 1 and fallbacks == hung
    for request, result in zip(hanging, results):
        assert result["prediction"] == 0.5 or result["prediction"] == pytest.approx(classifier_answers(request["image"]), abs=1e-4)
    # while the hung calls still sleep, later requests are served
    later = [image_request(7100 + i) for i in range(4)]
    later_results = flaky_miner.query(later, HAMMER, concurrency=2)["results"]
    assert all(answered(r) for r in later_results), later_results
    for request, result in zip(later, later_results):
        assert result["prediction"] == pytest.approx(classifier_answers(request["image"]), abs=1e-4)
    assert flaky_miner.process.poll() is None


def test_a_miner_whose_tier_hangs_still_stops_cleanly_on_sigterm(flaky_miner):
    """Runs after the hanging-tier test: its calls are still asleep inside the miner."""
    assert flaky_miner.calls("hangs", HANG_PX) >= 1 and flaky_miner.process.poll() is None
    started = time.monotonic()
    assert flaky_miner.stop(timeout_s=20.0) == 0  # not killed: the harness kills only after 20 s
    assert time.monotonic() - started < 20.0
