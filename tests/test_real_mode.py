"""Real mode without a usable chain or wallet ends with one clear line, never a traceback."""

import socket
import subprocess
import sys

import pytest

from natix_miner.serving import neuron
from natix_miner.serving.config import build_parser, settings_from_args
from natix_miner.errors import SetupError
from natix_miner.serving.local_chain import LocalChain
from natix_miner.serving.wallet import load_wallet
from tests.wire.harness import REPO, free_port

MINER = [sys.executable, str(REPO / "neurons" / "miner.py")]


def run_miner(*args, timeout=120):
    done = subprocess.run([*MINER, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def wallet_path(tmp_path):
    load_wallet("default", "default", str(tmp_path), create_missing=True)
    return str(tmp_path)


def test_unreachable_chain_exits_with_the_fix(wallet_path):
    code, output = run_miner("--wallet.path", wallet_path, "--subtensor.chain_endpoint", "ws://127.0.0.1:1", "--neuron.chain_retries", "1")
    assert code == 1
    assert "cannot reach the chain at ws://127.0.0.1:1 after 2 attempts" in output and "--local" in output
    assert "Traceback" not in output


def test_missing_wallet_in_real_mode_exits_without_creating_keys(tmp_path):
    code, output = run_miner("--wallet.path", str(tmp_path), "--wallet.name", "nobody")
    assert code == 1 and "btcli wallet new_hotkey" in output and "Traceback" not in output
    assert not any(tmp_path.rglob("*"))


def test_invalid_flags_exit_2_listing_the_problems():
    code, output = run_miner("--axon.port", "0", "--config", "nope")
    assert code == 2 and "--axon.port 0" in output and "unknown cascade preset 'nope'" in output


def test_port_taken_is_named(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, output = run_miner("--local", "--wallet.path", str(tmp_path), "--axon.ip", "127.0.0.1", "--axon.port", str(port))
    assert code == 1 and "another process holds the port" in output and "Traceback" not in output


def test_unregistered_hotkey_in_real_mode_names_the_register_command(wallet_path, monkeypatch):
    # The chain answers, but this hotkey holds no slot on the subnet.
    monkeypatch.setattr(neuron, "connect_real_chain", lambda network, attempts: LocalChain(netuid=72))
    settings = settings_from_args(build_parser().parse_args(["--wallet.path", wallet_path, "--axon.port", str(free_port())]))
    miner = neuron.Miner(settings)
    with pytest.raises(SetupError) as caught:
        miner.start()
    assert "is not registered on netuid 72" in str(caught.value)
    assert "btcli subnets register --netuid 72" in str(caught.value)
    assert miner.axon is None  # nothing was served


def test_chain_failing_after_connect_is_explained(wallet_path, monkeypatch):
    class FlakyChain(LocalChain):
        def uid_for_hotkey(self, netuid, hotkey):
            raise ConnectionError("websocket closed")

    monkeypatch.setattr(neuron, "connect_real_chain", lambda network, attempts: FlakyChain(netuid=72))
    settings = settings_from_args(build_parser().parse_args(["--wallet.path", wallet_path, "--axon.port", str(free_port())]))
    with pytest.raises(SetupError, match="failed while checking registration .*websocket closed"):
        neuron.Miner(settings).start()
