"""The old install against the new, side by side in one run: what a new operator pays before the
miner answers, and what the running miner holds.

    .venv/bin/python benchmarks/install.py --old-ref 371c6eb        # the commit before the split
    .venv/bin/python benchmarks/install.py --old-ref 371c6eb --keep # leave both venvs for load.py

For each of `old` (the tree at --old-ref: torch, timm, ultralytics, transformers, onnx in the base)
and `new` (this checkout: the base install, no extra), in a work folder (default /tmp):
  - a fresh venv (`python3.11 -m venv`) and `pip install -e SRC`, as each version's run_miner.sh
    does for cpu-default: its size on disk (the venv only, not the source) and the install's time;
  - `natix-miner --help`: median wall time of 5 calls after one warm-up;
  - start to ready: `neurons/miner.py --local ...` of that version until its ready file appears
    (median of 3 starts, a fresh state folder each);
  - resident memory after warm-up: after 16 v0.4 challenges answered over the 9.12.2 dendrite.
Packages come from PyPI or the machine's pip cache and wheelhouse (what pip would use for an
operator); nothing from a model hub. The work folder is deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import bittensor as bt  # noqa: E402

from natix_miner.tools.evaluate import build_cases  # noqa: E402
from tests.wire.harness import CLIENT, client_python, client_reply, free_port  # noqa: E402

NEW_FILES = ("pyproject.toml", "README.md", "natix_miner", "cascade", "compression", "neurons")
TARGETS = {"venv_mb": 600, "ready_s": 3.0, "rss_mib": 350, "help_s": 1.0}


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def old_source(ref: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def new_source(into: Path) -> Path:
    into.mkdir(parents=True)
    for name in NEW_FILES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, into / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, into / name)
    return into


def install(source: Path, venv: Path, log) -> float:
    """Seconds for `python3.11 -m venv` plus `pip install -e source` (base dependencies only)."""
    started = time.perf_counter()
    subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True, env=clean_env())
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--progress-bar", "off", "-e", str(source)],
                          capture_output=True, text=True, env=clean_env(), cwd=venv.parent)
    if done.returncode != 0:
        raise SystemExit(f"pip install -e {source} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    seconds = time.perf_counter() - started
    log(f"  installed in {seconds:.0f} s, venv {folder_mb(venv):.0f} MB")
    return seconds


def help_seconds(venv: Path, source: Path) -> float:
    calls = []
    for i in range(6):
        started = time.perf_counter()
        subprocess.run([str(venv / "bin" / "natix-miner"), "--help"], check=True, capture_output=True, env=clean_env(), cwd=source)
        if i:  # the first call pays for the disk cache: operators type it more than once
            calls.append(time.perf_counter() - started)
    return statistics.median(calls)


class Miner:
    """That version's neurons/miner.py in local mode, //Alice registered as its validator."""

    def __init__(self, venv: Path, source: Path, work: Path):
        self.ready = work / "ready.json"
        self.log = (work / "miner.log").open("w")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(venv / "bin" / "python"), str(source / "neurons" / "miner.py"), "--local",
             "--wallet.path", str(work / "wallets"), "--neuron.state_dir", str(work / "state"),
             "--axon.ip", "127.0.0.1", "--axon.port", str(free_port()), "--local.ready_file", str(self.ready),
             "--local.validator_hotkey", bt.Keypair.create_from_uri("//Alice").ss58_address,
             "--blacklist.rate_limit", "1000", "--blacklist.rate_burst", "1000"],
            stdout=self.log, stderr=subprocess.STDOUT, env=clean_env(), cwd=source,
        )
        while not self.ready.exists():
            if self.process.poll() is not None or time.perf_counter() - started > 300:
                self.stop()
                raise SystemExit(f"miner did not start:\n{(work / 'miner.log').read_text()[-3000:]}")
            time.sleep(0.02)
        self.ready_s = time.perf_counter() - started
        self.info = json.loads(self.ready.read_text())

    def ask(self, payloads: list[str]) -> list[dict]:
        job = {"axon": {"ip": self.info["ip"], "port": self.info["port"], "hotkey": self.info["hotkey"]},
               "signer": {"uri": "//Alice"}, "concurrency": 4, "timeout": 9,
               "requests": [{"synapse": "ImageSynapse", "image": p} for p in payloads]}
        done = subprocess.run([client_python(), str(CLIENT), "--job", "-"], input=json.dumps(job), capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise SystemExit(f"dendrite client failed:\n{done.stderr[-3000:]}")
        return client_reply(done.stdout)["results"]

    def rss_mib(self) -> float:
        return psutil.Process(self.process.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(60)
        self.log.close()


def measure(name: str, source: Path, work: Path, payloads: list[str], log) -> dict:
    log(f"{name}: {source}")
    venv = work / f"{name}-venv"
    row = {"install_s": install(source, venv, log), "venv_mb": folder_mb(venv)}
    row["torch_installed"] = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"], capture_output=True, env=clean_env()).returncode == 0
    row["help_s"] = help_seconds(venv, source)
    log(f"  natix-miner --help {row['help_s']:.2f} s")
    starts = []
    for attempt in range(3):
        folder = Path(tempfile.mkdtemp(dir=work, prefix=f"{name}-run{attempt}-"))
        miner = Miner(venv, source, folder)
        starts.append(miner.ready_s)
        if attempt < 2:
            miner.stop()
    try:
        answers = miner.ask(payloads)
        row["rss_mib"] = miner.rss_mib()
    finally:
        miner.stop()
    row["ready_s"] = statistics.median(starts)
    row["answered"] = sum(a["status_code"] == 200 for a in answers)
    row["predictions"] = [a["prediction"] for a in answers]
    log(f"  ready in {', '.join(f'{s:.1f}' for s in starts)} s; RSS after {row['answered']}/{len(answers)} answers {row['rss_mib']:.0f} MiB")
    return row


def table(rows: dict[str, dict]) -> str:
    lines = ["| | old (full install) | new (base install) | target |", "|---|---|---|---|"]
    old, new = rows["old"], rows["new"]
    lines.append(f"| fresh venv size | {old['venv_mb']:,.0f} MB | {new['venv_mb']:,.0f} MB | <= {TARGETS['venv_mb']} MB |")
    lines.append(f"| install time (venv + pip) | {old['install_s']:.0f} s | {new['install_s']:.0f} s | |")
    lines.append(f"| torch installed | {'yes' if old['torch_installed'] else 'no'} | {'yes' if new['torch_installed'] else 'no'} | no |")
    lines.append(f"| miner start to ready (median of 3) | {old['ready_s']:.1f} s | {new['ready_s']:.1f} s | <= {TARGETS['ready_s']:g} s |")
    lines.append(f"| RSS after warm-up (16 v0.4 challenges) | {old['rss_mib']:.0f} MiB | {new['rss_mib']:.0f} MiB | <= {TARGETS['rss_mib']} MiB |")
    lines.append(f"| `natix-miner --help` (median of 5) | {old['help_s']:.2f} s | {new['help_s']:.2f} s | <= {TARGETS['help_s']:g} s |")
    gap = max(abs(a - b) for a, b in zip(old["predictions"], new["predictions"]))
    lines.append(f"| max answer difference on those 16 | | {gap:.1g} | <= 1e-3 |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old-ref", required=True, help="the commit to compare with (git archive of this repository)")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a new one under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (both venvs and sources)")
    parser.add_argument("--only", choices=("old", "new"), help="measure one side only")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="natix-install-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    log = lambda line: print(line, flush=True)  # noqa: E731
    payloads = [base64.b64encode(c.jpeg).decode() for c in build_cases(16, seed=5, pipeline="v0.4")]
    rows = {}
    try:
        sources = {"old": lambda: old_source(args.old_ref, work / "old-src"), "new": lambda: new_source(work / "new-src")}
        for name in ("old", "new"):
            if args.only in (None, name):
                rows[name] = measure(name, sources[name](), work, payloads, log)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if len(rows) == 2:
        print(table(rows))
    else:
        print(json.dumps(rows, indent=2))
    if args.keep:
        print(f"kept {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
