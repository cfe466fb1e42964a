import bittensor as bt
import pytest

from natix_miner.serving.chain import ChainSnapshot, NeuronStanding
from natix_miner.serving.guard import Guard, GuardPolicy
from natix_miner.serving.protocol import ImageSynapse
from tests.clock import FakeClock

VALIDATOR, MINER, STRANGER = "5Validator", "5Miner", "5Stranger"


def snapshot(*neurons):
    return ChainSnapshot.build(72, 100, list(neurons))


def neurons():
    return (
        NeuronStanding(0, VALIDATOR, "ck", stake=5000.0, validator_permit=True),
        NeuronStanding(1, MINER, "ck", stake=10.0, validator_permit=False),
    )


def request_from(hotkey):
    synapse = ImageSynapse()
    synapse.dendrite = bt.TerminalInfo(hotkey=hotkey)
    return synapse


def test_refuses_unregistered_and_non_validators_allows_validators():
    guard = Guard(GuardPolicy(), snapshot(*neurons()))
    assert guard.check(request_from(VALIDATOR)) == (False, "allowed")
    refused, reason = guard.check(request_from(STRANGER))
    assert refused and "not registered" in reason
    refused, reason = guard.check(request_from(MINER))
    assert refused and "no validator permit" in reason
    refused, _ = guard.check(request_from(None))
    assert refused
    assert guard.refusals == {"unregistered": 1, "no_validator_permit": 1, "missing_hotkey": 1}


def test_permit_can_be_waived_but_registration_cannot():
    guard = Guard(GuardPolicy(force_validator_permit=False), snapshot(*neurons()))
    assert guard.check(request_from(MINER))[0] is False
    assert guard.check(request_from(STRANGER))[0] is True


def test_minimum_stake():
    guard = Guard(GuardPolicy(force_validator_permit=False, min_stake=100.0), snapshot(*neurons()))
    assert guard.check(request_from(VALIDATOR))[0] is False
    refused, reason = guard.check(request_from(MINER))
    assert refused and "stake" in reason


def test_rate_limit_allows_a_burst_then_refills_at_the_rate():
    clock = FakeClock()
    guard = Guard(GuardPolicy(rate_per_s=2.0, burst=3), snapshot(*neurons()), clock=clock)
    assert [guard.check(request_from(VALIDATOR))[0] for _ in range(4)] == [False, False, False, True]
    clock.now += 0.5  # one token back at 2/s
    assert guard.check(request_from(VALIDATOR))[0] is False
    assert guard.check(request_from(VALIDATOR))[0] is True
    assert guard.refusals["rate_limited"] == 2


def test_priority_follows_stake():
    guard = Guard(GuardPolicy(), snapshot(*neurons()))
    assert guard.priority(request_from(VALIDATOR)) > guard.priority(request_from(MINER)) > guard.priority(request_from(STRANGER))


def test_update_swaps_the_view_and_forgets_departed_hotkeys():
    guard = Guard(GuardPolicy(), snapshot(*neurons()))
    guard.check(request_from(VALIDATOR))
    guard.update(snapshot(NeuronStanding(0, "5Other", "ck", 1.0, True)))
    assert guard.check(request_from(VALIDATOR))[0] is True
    assert VALIDATOR not in guard._buckets


# --- issue 17, item 1: a forged request naming a validator's public hotkey ------------------------


def test_a_forged_request_naming_a_validator_spends_none_of_its_tokens_and_is_charged_to_its_address():
    from bittensor.core.errors import NotVerifiedException

    from natix_miner.serving.caller_gate import RefusalThrottle
    from natix_miner.serving.signatures import SignatureVerifier
    from tests.wire.forge import signed_request

    miner, alice, mallory = (bt.Keypair.create_from_uri(uri) for uri in ("//Miner", "//Alice", "//Mallory"))
    throttle = RefusalThrottle(max_refusals_per_s=5)
    guard = Guard(GuardPolicy(rate_per_s=0.001, burst=2), snapshot(NeuronStanding(0, alice.ss58_address, "ck", 5000.0, True)),
                  verify=SignatureVerifier(miner.ss58_address).verify, throttle=throttle)

    def arriving(keypair, address, **forgery):
        synapse = ImageSynapse.from_headers(signed_request(keypair, miner.ss58_address, "abc", **forgery)[0])
        synapse.dendrite.ip = address  # what the axon fills in from the TCP peer
        return synapse

    for _ in range(6):  # Mallory names Alice's hotkey but cannot sign as her
        with pytest.raises(NotVerifiedException, match="signature"):
            guard.check(arriving(mallory, "203.0.113.66", claimed_hotkey=alice.ss58_address))
    assert guard.refusals == {"unverified": 6}
    assert throttle.is_banned("203.0.113.66"), "the forger's address pays for its refusals and is never vouched for"
    # Alice's whole burst is still hers, and her address is vouched for by her verified requests
    assert [guard.check(arriving(alice, "198.51.100.7"))[0] for _ in range(3)] == [False, False, True]
    for _ in range(20):
        throttle.refused("198.51.100.7")
    assert not throttle.is_banned("198.51.100.7")
