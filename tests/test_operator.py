"""What a new operator tripped over (issue 16): each a behaviour a test would have caught."""

from __future__ import annotations

import json
import subprocess
import sys

import bittensor as bt

from tests.wire.harness import REPO, MinerProcess, free_port


def test_a_second_miner_on_the_same_wallet_and_state_is_refused_in_one_line(tmp_path):
    validator = bt.Keypair.create_from_uri("//Alice").ss58_address
    first = MinerProcess(tmp_path, "--local.validator_hotkey", validator)
    try:
        before = first.ready_file.read_text()
        second_ready = tmp_path / "second-ready.json"
        second = subprocess.run(
            [sys.executable, str(REPO / "neurons" / "miner.py"), "--local", "--wallet.path", str(tmp_path / "wallets"),
             "--neuron.state_dir", str(tmp_path / "state"), "--axon.ip", "127.0.0.1", "--axon.port", str(free_port()),
             "--local.ready_file", str(second_ready)],
            capture_output=True, text=True, timeout=120, cwd=REPO,
        )
        out = second.stdout + second.stderr
        assert second.returncode == 1, out
        assert f"another miner (pid {first.process.pid}) already runs as default/default on netuid 72" in out
        assert "Traceback" not in out and not second_ready.exists()
        assert first.ready_file.read_text() == before and first.process.poll() is None
        assert json.loads(before)["port"] == first.port
    finally:
        first.stop()


def run_miner_sh(tmp_path, env_text: str | None, *flags: str) -> subprocess.CompletedProcess:
    env_file = tmp_path / "miner.env"
    if env_text is not None:
        env_file.write_text(env_text)
    return subprocess.run(["bash", str(REPO / "run_miner.sh"), *flags, "--help"], capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "MINER_ENV": str(env_file), "HOME": str(tmp_path)})


def test_run_miner_sh_names_unknown_miner_env_keys_and_says_what_is_true(tmp_path):
    done = run_miner_sh(tmp_path, "MINER_AXON_PROT=8096\nLOCAL=true\n")
    assert done.returncode == 0, done.stderr
    assert "sets MINER_AXON_PROT, which nothing reads (known keys: NETUID" in done.stderr
    assert "MINER_AXON_PORT" in done.stderr
    assert "sets LOCAL=true, starting in LOCAL MODE" in done.stdout
    assert "no " not in done.stdout.split("LOCAL MODE")[0]
    quiet = run_miner_sh(tmp_path / "..", None)
    assert "WARNING" not in quiet.stderr and "starting in LOCAL MODE" in quiet.stdout


def test_the_entry_point_outside_its_venv_says_how_in_one_line():
    done = subprocess.run([sys.executable, "-S", str(REPO / "neurons" / "miner.py"), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and "source .venv/bin/activate" in lines[0], lines


def test_the_sglang_check_install_prints_no_error_lines_on_a_good_set_up(tmp_path):
    """Issue 16, item 7: run_tests.sh printed 52 'ERROR: pip's dependency resolver' lines when all was well."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "ensurepip", "--default-pip"], check=True, capture_output=True)
    done = subprocess.run(["bash", str(REPO / "scripts" / "setup_sglang_check.sh")], capture_output=True, text=True,
                          timeout=600, env={**__import__("os").environ, "VENV": str(venv)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ERROR" not in done.stdout + done.stderr
    check = "import importlib.metadata as m; print(m.version('sglang'), m.version('msgspec') != '')"
    assert subprocess.run([str(venv / "bin" / "python"), "-c", check], capture_output=True, text=True).stdout.split() == ["0.5.23", "True"]


def test_the_report_draws_a_single_hour_as_points_on_the_period_asked_for(tmp_path):
    """Issue 16, item 8: one hour of traffic drew an empty latency panel on an axis from 01-01 to 07-01."""
    import time

    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from natix_miner.serving.journal import RequestJournal
    from natix_miner.tools.report import draw

    journal = RequestJournal(tmp_path / "journal.sqlite")
    now = time.time()
    for latency in (40.0, 60.0, 90.0):
        journal.record("5Alice", "ImageSynapse", latency, "lite0", 0.8, "ok", True, ts=now - 600)
    fig = draw(journal, days=1.0, now=now)
    latency = fig.axes[1]
    assert latency.get_title() == "Forward latency per hour"
    p50 = latency.lines[0]
    assert len(p50.get_xdata()) == 1 and p50.get_marker() == "o"
    low, high = latency.get_xlim()
    assert abs(high - low - 1.0) < 1e-3  # one day, in matplotlib's day units
    assert abs(high - mdates.date2num(__import__("datetime").datetime.fromtimestamp(now))) < 1e-3
    plt.close(fig)


def test_local_mode_never_throttles_its_own_validator_and_the_client_prints_why_it_was_refused(tmp_path, capsys):
    """Issue 16, item 1: the README's local eval got 368 of 400 refused by the default 5/s limit, and
    the client showed status=403 with no reason."""
    from tests.payloads import b64, jpeg_bytes

    alice = bt.Keypair.create_from_uri("//Alice").ss58_address
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    miner = MinerProcess(tmp_path / "a", "--local.validator_hotkey", alice)  # no rate flags: local mode's defaults
    try:
        burst = [{"synapse": "ImageSynapse", "image": b64(jpeg_bytes(seed=i))} for i in range(60)]
        results = miner.query(burst, {"uri": "//Alice"}, concurrency=30)["results"]
        assert [r["status_code"] for r in results] == [200] * 60
    finally:
        miner.stop()

    stranger_miner = MinerProcess(tmp_path / "b")  # //Alice is no validator of this one
    try:
        done = subprocess.run([sys.executable, "-m", "natix_miner.tools.client", "--ready-file", str(stranger_miner.ready_file),
                               "--count", "2"], capture_output=True, text=True, timeout=120, cwd=REPO)
        lines = [line for line in done.stdout.splitlines() if "status=" in line]
        assert len(lines) == 2 and all("status=403" in line and "refused:" in line and "is not registered" in line for line in lines), done.stdout
        evaluated = subprocess.run([sys.executable, "-m", "natix_miner.tools.cli", "eval", "--ready-file", str(stranger_miner.ready_file),
                                    "--count", "4", "--pipeline", "v0.2"], capture_output=True, text=True, timeout=300, cwd=REPO)
        assert evaluated.returncode == 1, evaluated.stdout + evaluated.stderr
        assert "UNANSWERED 4: 403" in evaluated.stdout and "is not registered" in evaluated.stdout
        assert "4 of 4 requests were not answered" in evaluated.stderr
    finally:
        stranger_miner.stop()
    # Item 2: the refusals (never journalled one by one) are counted at stop, and status shows them;
    # item 9: bittensor's console lines, which pm2 writes to its log file, carry no colour codes.
    from natix_miner.tools.cli import main

    assert main(["status", "--neuron.state_dir", str(tmp_path / "b" / "state"), "--local"]) == 0
    out = capsys.readouterr().out
    assert "wallet default, hotkey default, netuid 72, local mode" in out.splitlines()[0]
    assert "6 requests, 0 answered, 6 refused before the forward (unregistered 6); ok 0.0% of all" in out
    assert "Info enabled" in stranger_miner.log() and "\x1b" not in stranger_miner.log()
