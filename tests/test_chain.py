import bittensor as bt
import pytest

from natix_miner.serving.chain import connect_real_chain
from natix_miner.errors import SetupError
from natix_miner.serving.local_chain import LocalChain


def test_connect_retries_with_exponential_backoff_then_explains():
    sleeps, calls = [], []

    def refuse(network):
        calls.append(network)
        raise ConnectionError("Name or service not known")

    with pytest.raises(SetupError) as caught:
        connect_real_chain("finney", attempts=4, first_delay_s=2.0, sleep=sleeps.append, connect=refuse)
    assert calls == ["finney"] * 4
    assert sleeps == [2.0, 4.0, 8.0]
    message = str(caught.value)
    assert "cannot reach the chain at finney" in message and "--local" in message


def test_connect_succeeds_after_a_transient_failure():
    attempts = []

    def flaky(network):
        attempts.append(network)
        if len(attempts) < 2:
            raise ConnectionError("temporary")
        return object()

    chain = connect_real_chain("test", attempts=3, sleep=lambda s: None, connect=flaky)
    assert chain.network == "test" and len(attempts) == 2


def test_local_chain_registers_serves_and_snapshots():
    chain = LocalChain(netuid=72)
    miner = bt.Keypair.create_from_uri("//Miner").ss58_address
    validator = bt.Keypair.create_from_uri("//Alice").ss58_address
    assert chain.register(miner, "coldkey") == 0
    assert chain.register(validator, validator, stake=10_000, validator_permit=True) == 1
    assert chain.register(miner, "coldkey") == 0  # idempotent
    assert chain.uid_for_hotkey(72, validator) == 1
    assert chain.uid_for_hotkey(72, bt.Keypair.create_from_uri("//Bob").ss58_address) is None
    assert chain.uid_for_hotkey(1, miner) is None and not chain.subnet_exists(1)
    view = chain.snapshot(72)
    assert view.by_hotkey[validator].validator_permit and view.by_hotkey[validator].stake == 10_000
    assert not view.by_hotkey[miner].validator_permit


def test_local_chain_refuses_to_serve_an_unregistered_axon(tmp_path):
    chain = LocalChain(netuid=72)
    wallet = bt.Wallet(name="w", hotkey="h", path=str(tmp_path))
    wallet.create_new_coldkey(use_password=False, suppress=True)
    wallet.create_new_hotkey(use_password=False, suppress=True)
    axon = bt.Axon(wallet=wallet, port=18999, ip="127.0.0.1", external_ip="127.0.0.1")
    with pytest.raises(ValueError, match="not registered"):
        chain.serve_axon(netuid=72, axon=axon)
    chain.register(wallet.hotkey.ss58_address, wallet.coldkeypub.ss58_address)
    axon.serve(netuid=72, subtensor=chain)
    served = chain.served_axon(wallet.hotkey.ss58_address)
    assert served.ip == "127.0.0.1" and served.port == 18999
