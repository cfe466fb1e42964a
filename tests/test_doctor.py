"""`natix-miner doctor`: every check green on a good local set-up; each problem named with its fix."""

import socket

import pytest

from cascade.config import load_config
from natix_miner.tools.cli import main
from natix_miner.tools.doctor import FAIL, OK, check_extras, check_gpu
from natix_miner.serving.wallet import load_wallet

CHECKS = ["flags", "wallet", "registration", "payout", "requests", "axon port", "external ip", "models", "disk", "journal", "extras", "gpu"]
PUBLIC_IP = "93.184.216.34"  # only advertised, never contacted


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def doctor(capsys, tmp_path, port, *extra, wallet_path=None):
    code = main(["doctor", "--wallet.name", "miner", "--wallet.hotkey", "hot",
                 "--wallet.path", str(wallet_path or tmp_path / "wallets"), "--neuron.state_dir", str(tmp_path / "state"),
                 "--axon.ip", "127.0.0.1", "--axon.port", str(port), *extra])
    out = capsys.readouterr().out
    lines = {line[6:19].strip(): line for line in out.splitlines()[1:-1]}
    return code, out, lines


@pytest.fixture
def wallet_path(tmp_path):
    path = tmp_path / "wallets"
    load_wallet("miner", "hot", str(path), create_missing=True)
    return path


def test_a_good_local_setup_is_all_green(capsys, tmp_path, wallet_path):
    code, out, lines = doctor(capsys, tmp_path, free_port(), "--local", "--config", "cpu-default")
    assert code == 0, out
    assert list(lines) == CHECKS
    assert all(line.startswith("OK ") for line in lines.values()), out
    assert "uid 0" in lines["registration"] and "127.0.0.1" in lines["external ip"]
    assert out.rstrip().endswith("ready to start")
    assert not (tmp_path / "state").exists()  # the doctor only looks


def test_a_taken_port_fails_and_says_how_to_fix_it(capsys, tmp_path, wallet_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, out, lines = doctor(capsys, tmp_path, port, "--local")
    assert code == 1
    assert lines["axon port"].startswith("FAIL") and f"127.0.0.1:{port}" in lines["axon port"]
    assert "choose another --axon.port" in lines["axon port"]
    assert [name for name, line in lines.items() if line.startswith("FAIL")] == ["axon port"]
    assert "1 check(s) failed (axon port)" in out


def test_a_missing_wallet_fails_with_the_btcli_commands(capsys, tmp_path):
    with socket.socket() as probe:  # a chain endpoint nobody listens on
        probe.bind(("127.0.0.1", 0))
        endpoint = f"ws://127.0.0.1:{probe.getsockname()[1]}"
    code, out, lines = doctor(capsys, tmp_path, free_port(), "--subtensor.chain_endpoint", endpoint, "--axon.external_ip", PUBLIC_IP)
    assert code == 1
    assert lines["wallet"].startswith("FAIL") and str(tmp_path / "wallets" / "miner" / "hotkeys" / "hot") in lines["wallet"]
    assert "btcli wallet new_hotkey --wallet.name miner --wallet.hotkey hot" in lines["wallet"]
    assert "btcli wallet new_coldkey --wallet.name miner" in lines["wallet"]
    assert lines["registration"].startswith("WARN") and "not checked" in lines["registration"]


def test_local_mode_only_warns_about_a_missing_wallet_it_will_create(capsys, tmp_path):
    code, out, lines = doctor(capsys, tmp_path, free_port(), "--local")
    assert code == 0 and lines["wallet"].startswith("WARN") and "throwaway keys" in lines["wallet"]


def test_an_unreachable_chain_is_a_warning_naming_the_endpoint(capsys, tmp_path, wallet_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        endpoint = f"ws://127.0.0.1:{probe.getsockname()[1]}"
    code, out, lines = doctor(capsys, tmp_path, free_port(), "--subtensor.chain_endpoint", endpoint,
                              "--axon.external_ip", PUBLIC_IP, "--netuid", "323")
    assert code == 0, out
    assert lines["registration"].startswith("WARN") and f"chain {endpoint} unreachable" in lines["registration"]
    assert lines["external ip"].startswith("OK") and f"{PUBLIC_IP}:" in lines["external ip"]


def test_a_private_external_ip_is_a_warning(capsys, tmp_path, wallet_path):
    code, out, lines = doctor(capsys, tmp_path, free_port(), "--subtensor.chain_endpoint", "ws://127.0.0.1:9",
                              "--axon.external_ip", "192.168.1.20")
    assert lines["external ip"].startswith("WARN") and "--axon.external_ip YOUR_PUBLIC_IP" in lines["external ip"]


def test_missing_models_and_bad_flags_are_named(capsys, tmp_path, wallet_path):
    code, out, lines = doctor(capsys, tmp_path, free_port(), "--local", "--config", "h100",
                              "--neuron.image_detector_device", "cpu", "--blacklist.rate_limit", "0")
    assert code == 1
    assert lines["models"].startswith("FAIL") and "tier 'vlm-judge' model" in lines["models"] and "does not exist" in lines["models"]
    assert lines["flags"].startswith("FAIL") and "--blacklist.rate_limit" in lines["flags"]
    assert "vlm-judge" not in lines["flags"]  # the models problem is reported once, on its own line
    assert lines["gpu"].startswith("OK")  # every tier moved to the CPU


class FakeCuda:
    """torch.cuda as seen on a machine with one GPU of the given compute capability (or none)."""

    def __init__(self, capability=None, name="Test GPU"):
        self.capability, self.name = capability, name

    def is_available(self):
        return self.capability is not None

    def device_count(self):
        return int(self.capability is not None)

    def get_device_capability(self, index):
        return self.capability

    def get_device_name(self, index):
        return self.name


@pytest.mark.parametrize("preset, capability, status, text", [
    ("h100", (9, 0), OK, "FP8 needs 8.9"),
    ("h100", (8, 9), OK, "compute capability 8.9"),
    ("h100", (8, 6), FAIL, "FP8 needs 8.9 or more"),
    ("blackwell", (10, 0), OK, "NVFP4 needs 10.0"),
    ("blackwell", (9, 0), FAIL, "NVFP4 needs 10.0 or more"),
    ("h100", None, FAIL, "torch sees no CUDA GPU"),
])
def test_the_gpu_must_run_the_presets_formats(preset, capability, status, text):
    check = check_gpu(load_config(preset, check_models=False), cuda=FakeCuda(capability))
    assert check.status == status and text in check.line()


def test_the_cpu_preset_needs_no_gpu():
    class NoCuda:
        def __getattr__(self, name):
            raise AssertionError("cpu-default must not ask torch.cuda anything")

    check = check_gpu(load_config("cpu-default"), cuda=NoCuda())
    assert check.status == OK and "not needed" in check.detail


def test_the_extras_a_presets_tiers_need_are_checked():
    nothing_extra = lambda module: False  # a base install: no torch, transformers, sglang
    assert check_extras(load_config("cpu-default"), nothing_extra).status == OK
    check = check_extras(load_config("cpu-zeroshot", check_models=False), nothing_extra)
    assert check.status == FAIL and "the vlm extra (torch is not installed)" in check.detail
    assert "pip install 'natix-miner[vlm]'" in check.fix
    check = check_extras(load_config("h100", check_models=False), lambda module: module != "sglang")
    assert check.status == FAIL and check.detail.endswith("the gpu extra (sglang is not installed)")
