"""/metrics reflects a known burst exactly: counts per outcome, per validator, refusals by reason."""

import urllib.request

import bittensor as bt
from prometheus_client.parser import text_string_to_metric_families

from tests.payloads import b64, jpeg_bytes
from tests.wire.harness import MinerProcess, free_port

ALICE = bt.Keypair.create_from_uri("//Alice").ss58_address


def scrape(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_a_known_burst_exactly(tmp_path):
    port = free_port()
    miner = MinerProcess(tmp_path, "--local.validator_hotkey", ALICE, "--metrics.port", str(port), "--metrics.ip", "127.0.0.1")
    try:
        image = [{"synapse": "ImageSynapse", "image": b64(jpeg_bytes(seed=i))} for i in range(5)]
        extended = [{"synapse": "ExtendedImageSynapse", "image": b64(jpeg_bytes(seed=10 + i))} for i in range(2)]
        hostile = [{"synapse": "ImageSynapse", "image": "%%% not base64 %%%"} for _ in range(3)]
        assert {r["status_code"] for r in miner.query(image + extended + hostile, {"uri": "//Alice"}, concurrency=3)["results"]} == {200}
        assert {r["status_code"] for r in miner.query(image[:2], {"uri": "//Bob"})["results"]} == {403}
        samples = scrape(port)
    finally:
        miner.stop()

    def value(name, **labels):
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("natix_requests_total", synapse="ImageSynapse", validator=ALICE, outcome="ok") == 5
    assert value("natix_requests_total", synapse="ExtendedImageSynapse", validator=ALICE, outcome="ok") == 2
    assert value("natix_requests_total", synapse="ImageSynapse", validator=ALICE, outcome="rejected") == 3
    assert value("natix_refused_total", reason="unregistered") == 2
    # cpu-default: lite0 scores every image; the ones it is unsure of are settled by the detector
    by_detector = value("natix_settled_total", tier="detector")
    assert value("natix_settled_total", tier="lite0") + by_detector == 7
    assert value("natix_forward_seconds_count", synapse="ImageSynapse") == 8
    assert value("natix_tier_seconds_count", tier="lite0") == 7
    assert value("natix_tier_seconds_count", tier="detector") == by_detector
    assert value("natix_chain", figure="registered") == 1 and value("natix_chain", figure="uid") == 0
