"""Start the real miner as a subprocess and talk to it through a real dendrite."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLIENT = REPO / "natix_miner" / "tools" / "client.py"
BT912_PYTHON = Path(os.environ.get("NATIX_BT912_PYTHON", REPO / ".venv-bt912" / "bin" / "python"))


def client_python() -> str:
    """bittensor 9.12.2 (what validators pin) when its venv exists; run_tests.sh builds it."""
    if BT912_PYTHON.exists():
        return str(BT912_PYTHON)
    if os.environ.get("NATIX_FULL_TEST_ENV"):
        pytest.fail(f"bittensor 9.12.2 client venv missing at {BT912_PYTHON}: run ./run_tests.sh")
    return sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_reply(stdout: str) -> dict:
    """The dendrite client's JSON reply: its last line that is one. bittensor's logging writes to the
    same stdout from its own thread and may land after it (a request cut off by a killed miner)."""
    return json.loads(next(line for line in reversed(stdout.splitlines()) if line.startswith("{")))


class MinerProcess:
    """Our miner (or another entry point taking the same flags, e.g. the benchmarks' reference)."""

    def __init__(self, tmp: Path, *extra: str, script: Path = REPO / "neurons" / "miner.py", python: str = sys.executable):
        self.port = free_port()
        self.ready_file = tmp / "ready.json"
        self.ready_file.unlink(missing_ok=True)  # a restart must not read the last run's
        self.log_path = tmp / "miner.log"
        self.args = [
            python, str(script),
            "--local", "--wallet.path", str(tmp / "wallets"), "--neuron.state_dir", str(tmp / "state"),
            "--axon.ip", "127.0.0.1", "--axon.port", str(self.port),
            "--local.ready_file", str(self.ready_file), *extra,
        ]
        self._log = open(self.log_path, "a")
        self.process = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO)
        self.info = self._wait_ready()

    def _wait_ready(self, timeout_s: float = 90.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.ready_file.exists():
                return json.loads(self.ready_file.read_text())
            if self.process.poll() is not None:
                raise RuntimeError(f"miner exited with {self.process.returncode}:\n{self.log()}")
            time.sleep(0.2)
        self.process.kill()
        raise RuntimeError(f"miner not ready in {timeout_s}s:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def job(self, requests: list[dict], signer: dict, concurrency: int = 1, timeout_s: float = 9.0) -> dict:
        return {
            "axon": {"ip": self.info["ip"], "port": self.info["port"], "hotkey": self.info["hotkey"]},
            "signer": signer, "requests": requests, "concurrency": concurrency, "timeout": timeout_s,
        }

    def query(self, requests: list[dict], signer: dict, concurrency: int = 1, timeout_s: float = 9.0) -> dict:
        job = self.job(requests, signer, concurrency, timeout_s)
        done = subprocess.run(
            [client_python(), str(CLIENT), "--job", "-"], input=json.dumps(job), capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise RuntimeError(f"dendrite client failed:\n{done.stderr[-4000:]}")
        return client_reply(done.stdout)

    def stop(self, sig=signal.SIGTERM, timeout_s: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode
