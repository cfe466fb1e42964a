"""Attacks from outside that got through once (issue 17), re-run over the wire against a real miner on
loopback. The attacker builds requests by hand (tests/wire/forge.py); the validator is a real
bittensor 9.12.2 dendrite (the harness's client)."""

from __future__ import annotations

import threading
import time

import bittensor as bt
import pytest

from tests.payloads import b64, jpeg_bytes
from tests.test_hardening import answered, finish_job, image_request, metric, scrape, ss58, start_job
from tests.wire.forge import post, signed_request
from tests.wire.harness import MinerProcess, free_port

RATE, BURST = 2.0, 4
DRAINED = {"uri": "//Alice"}  # the validator whose public hotkey the forger names
CAPTURED = {"uri": "//Charlie"}  # the validator whose request the attacker captured
MALLORY = bt.Keypair.create_from_uri("//Mallory")  # no stake, no registration: just a key


@pytest.fixture(scope="module")
def miner(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attacks")
    metrics_port = free_port()
    validators = [arg for signer in (DRAINED, CAPTURED) for arg in ("--local.validator_hotkey", ss58(signer))]
    process = MinerProcess(
        tmp, *validators, "--blacklist.rate_limit", str(RATE), "--blacklist.rate_burst", str(BURST),
        "--metrics.port", str(metrics_port), "--metrics.ip", "127.0.0.1",
    )
    process.metrics_port = metrics_port
    yield process
    process.stop()


def test_forged_requests_naming_a_validator_cannot_drain_its_rate_limit(miner):
    image = b64(jpeg_bytes(5))
    forged: list[tuple[int, str, float | None]] = []
    stop = threading.Event()

    def drain(per_s: float = 30.0):
        while not stop.is_set():
            headers, body = signed_request(MALLORY, miner.info["hotkey"], image, claimed_hotkey=ss58(DRAINED))
            forged.append(post(miner.port, headers, body))
            time.sleep(1.0 / per_s)

    before = scrape(miner.metrics_port)
    attacker = threading.Thread(target=drain, daemon=True)
    attacker.start()
    time.sleep(1.0)  # the drain is well under way (at least twice the burst) before the validator asks
    validator = finish_job(start_job(miner.job([image_request(6000 + i) for i in range(BURST)], DRAINED)))
    stop.set()
    attacker.join(10)

    results = validator["results"]
    print(f"validator served {sum(map(answered, results))} of {len(results)} under {len(forged)} forged requests")
    assert len(forged) >= 2 * BURST
    assert all(answered(r) for r in results), results
    for status, message, prediction in forged:
        assert status == 401 and "signature" in message and prediction in (None, -1.0), (status, message)
    after = scrape(miner.metrics_port)

    def delta(reason):
        return metric(after, "natix_refused_total", reason=reason) - metric(before, "natix_refused_total", reason=reason)

    assert delta("unverified") == len(forged)
    assert delta("rate_limited") == 0
    assert miner.process.poll() is None


def test_a_captured_request_replayed_later_with_a_huge_timeout_header_is_refused(miner):
    charlie = bt.Keypair.create_from_uri(CAPTURED["uri"])
    image = b64(jpeg_bytes(6))
    status, _, prediction = post(miner.port, *signed_request(charlie, miner.info["hotkey"], image))
    assert status == 200 and 0.0 <= prediction <= 1.0  # the same kind of request, fresh, is answered
    captured_18s_ago = time.time_ns() - 18_000_000_000
    headers, body = signed_request(charlie, miner.info["hotkey"], image, nonce=captured_18s_ago, timeout=1000.0)
    status, message, _ = post(miner.port, headers, body)
    assert status == 401 and "old" in message, (status, message)


@pytest.mark.parametrize("timeout", ["nan", "inf"])
def test_a_non_finite_timeout_header_is_answered(miner, timeout):
    charlie = bt.Keypair.create_from_uri(CAPTURED["uri"])
    headers, body = signed_request(charlie, miner.info["hotkey"], b64(jpeg_bytes(7)))
    headers["timeout"] = timeout
    time.sleep(1.0 / RATE)  # Charlie's bucket: one token back
    status, message, prediction = post(miner.port, headers, body)
    assert status == 200 and 0.0 <= prediction <= 1.0, (status, message)


def test_the_axon_listens_only_on_the_address_it_is_given(miner):
    """Issue 17, item 8: with --axon.ip 127.0.0.1 (local mode's) bittensor still listened on 0.0.0.0."""
    import psutil

    listening = {c.laddr for c in psutil.Process(miner.process.pid).net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
    ours = [address for address in listening if address.port == miner.port]
    assert [a.ip for a in ours] == ["127.0.0.1"], listening


def test_malformed_keyless_requests_cost_a_bounded_log(miner):
    """Issue 17, item 7: bittensor logged each malformed request at ERROR with every header (61 KB)."""
    image = b64(jpeg_bytes(8))
    headers, body = signed_request(MALLORY, miner.info["hotkey"], image, claimed_hotkey=ss58(DRAINED))
    before = len(miner.log())
    statuses = []
    for i in range(200):
        bad = dict(headers)
        if i % 2:
            bad["bt_header_dendrite_nonce"] = "abc"  # refused at the gate
        else:
            bad["bt_header_dendrite_version"] = "abc" + "x" * 4000  # passes the gate; bittensor's parser refuses it
        statuses.append(post(miner.port, bad, body)[0])
        if i % 40 == 39:
            time.sleep(1.0)  # under the flood throttle: every one is parsed
    time.sleep(1.0)
    grown = len(miner.log()) - before
    print(f"log grew {grown} bytes for 200 malformed requests ({grown / 200:.0f} bytes each)")
    assert all(status in (400, 401, 403, 500) for status in statuses) and 400 in statuses
    assert grown / 200 < 500
    assert miner.process.poll() is None
