import bittensor as bt
import bittensor.utils.networking as networking
import pytest

from natix_miner.serving.protocol import ImageSynapse
from natix_miner.serving.signatures import MAX_WINDOW_NS, SignatureVerifier
from tests.wire.forge import signed_request

MINER = bt.Keypair.create_from_uri("//Miner")
VALIDATOR = bt.Keypair.create_from_uri("//Alice")


@pytest.fixture(scope="module")
def dendrite():
    original = networking.get_external_ip
    networking.get_external_ip = lambda: "127.0.0.1"
    try:
        yield bt.Dendrite(wallet=VALIDATOR)
    finally:
        networking.get_external_ip = original


def signed_headers(dendrite, image="abc", receiver=MINER):
    axon = bt.AxonInfo(version=1, ip="127.0.0.1", port=1, ip_type=4, hotkey=receiver.ss58_address, coldkey=receiver.ss58_address)
    return dendrite.preprocess_synapse_for_request(axon, ImageSynapse(image=image), timeout=9.0).to_headers()


def signed(dendrite, image="abc", receiver=MINER):
    return ImageSynapse.from_headers(signed_headers(dendrite, image, receiver))  # as the axon rebuilds it


def test_concurrent_requests_may_arrive_out_of_order(dendrite):
    verifier = SignatureVerifier(MINER.ss58_address)
    first, second = signed(dendrite), signed(dendrite)
    assert second.dendrite.nonce > first.dendrite.nonce
    verifier.verify(second)
    verifier.verify(first)  # bittensor's default verify answers 401 here


def test_a_replayed_request_is_refused(dendrite):
    verifier = SignatureVerifier(MINER.ss58_address)
    request = signed(dendrite)
    verifier.verify(request)
    with pytest.raises(ValueError, match="replayed"):
        verifier.verify(request)


def test_tampered_or_misaddressed_requests_are_refused(dendrite):
    verifier = SignatureVerifier(MINER.ss58_address)
    headers = signed_headers(dendrite)
    headers["bt_header_dendrite_nonce"] = str(int(headers["bt_header_dendrite_nonce"]) + 1)
    with pytest.raises(ValueError, match="signature"):
        verifier.verify(ImageSynapse.from_headers(headers))
    with pytest.raises(ValueError, match="signature"):
        verifier.verify(signed(dendrite, receiver=bt.Keypair.create_from_uri("//Other")))


def test_stale_nonces_are_refused_and_forgotten(dendrite):
    now = [0]
    request = signed(dendrite)
    now[0] = request.dendrite.nonce
    verifier = SignatureVerifier(MINER.ss58_address, clock_ns=lambda: now[0])
    verifier.verify(request)
    now[0] += 14_000_000_000  # past the 4 s allowance + 9 s timeout
    with pytest.raises(ValueError, match="old"):
        verifier.verify(request)
    now[0] += MAX_WINDOW_NS  # nonces are remembered for the widest window any request may have
    verifier.forget_idle()
    assert verifier._seen == {}


@pytest.mark.parametrize("synapse_class", ["ImageSynapse", "ExtendedImageSynapse"])
def test_cached_required_fields_are_what_bittensor_computes(dendrite, synapse_class):
    import natix_miner.serving.protocol as protocol

    synapse = getattr(protocol, synapse_class)(image="abc", prediction=0.25)
    assert synapse.get_required_fields() == bt.Synapse.get_required_fields(synapse)
    synapse.get_required_fields().append("mutated")  # a caller's copy, not the cache
    assert "mutated" not in synapse.get_required_fields()
    uncached = type(synapse_class, (type(synapse),), {"get_required_fields": bt.Synapse.get_required_fields})
    assert synapse.to_headers() == uncached(image="abc", prediction=0.25).to_headers()


# --- issue 17, item 3: the window must not follow the unsigned timeout header ---------------------


def arriving(headers) -> ImageSynapse:
    return ImageSynapse.from_headers(headers)


def test_a_capture_replayed_18_s_later_with_a_huge_timeout_header_is_refused():
    verifier = SignatureVerifier(MINER.ss58_address)
    captured_at = __import__("time").time_ns() - 18_000_000_000
    headers, _ = signed_request(VALIDATOR, MINER.ss58_address, "abc", nonce=captured_at, timeout=1000.0)
    with pytest.raises(ValueError, match="old"):  # bittensor's window would be 1004 s
        verifier.verify(arriving(headers))


def test_a_replay_inside_the_widest_window_is_still_remembered():
    now = [0]
    headers, _ = signed_request(VALIDATOR, MINER.ss58_address, "abc", timeout=1.0)
    request = arriving(headers)
    now[0] = request.dendrite.nonce
    verifier = SignatureVerifier(MINER.ss58_address, clock_ns=lambda: now[0])
    verifier.verify(request)
    now[0] += 6_000_000_000  # the first request's own window (4 s + 1 s) is over ...
    replay = arriving({**headers, "timeout": "12.0"})  # ... and the unsigned header widens the replay's
    verifier.forget_idle()
    with pytest.raises(ValueError, match="replayed"):
        verifier.verify(replay)


@pytest.mark.parametrize("timeout", ["nan", "inf", "-inf"])
def test_a_non_finite_timeout_header_gets_the_plain_window(timeout):
    headers, _ = signed_request(VALIDATOR, MINER.ss58_address, "abc")
    headers["timeout"] = timeout
    SignatureVerifier(MINER.ss58_address).verify(arriving(headers))
