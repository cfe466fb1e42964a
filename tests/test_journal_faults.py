"""The journal is a record, never a reason to stop serving (issue 17, item 2): a damaged file, a full
disk, a read-only file and a file deleted under the miner each leave the answers going, say what is
wrong, and lose nothing SQLite can still read. Real faults: pages written over, a tmpfs that is full,
a read-only bind mount (root, as here and in CI), an unlinked file."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import bittensor as bt
import numpy as np
import pytest

from natix_miner.serving.journal import RequestJournal
from tests.payloads import b64, jpeg_bytes
from tests.wire.harness import MinerProcess

PAGE = 4096


def fill(journal: RequestJournal, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        journal.record(f"5V{i % 3}", "ImageSynapse", 10.0 + i, "lite0", (i % 100) / 100, "ok", True, testnet_label=i % 2)


def damage(path: Path, pages: list[int]) -> None:
    """Write random bytes over whole pages of an SQLite file, as a bad disk or a stray write would."""
    rng = np.random.default_rng(0)
    with open(path, "r+b") as f:
        for page in pages:
            f.seek(page * PAGE)
            f.write(rng.integers(0, 256, PAGE, dtype=np.uint8).tobytes())


def sqlite_rows(path: Path) -> dict[int, float]:
    return dict(sqlite3.connect(path).execute("SELECT id, latency_ms FROM requests").fetchall())


@contextlib.contextmanager
def mounted(*command: str):
    """A mount made for one test (root can, as on these machines and in CI); undone after."""
    target = command[-1]
    Path(target).mkdir(exist_ok=True) if "tmpfs" in command else None
    done = subprocess.run(["mount", *command], capture_output=True, text=True)
    if done.returncode != 0:
        message = f"cannot mount for this test ({done.stderr.strip()})"
        pytest.fail(message) if os.environ.get("NATIX_FULL_TEST_ENV") else pytest.skip(message)
    try:
        yield Path(target)
    finally:
        subprocess.run(["umount", "-l", target], capture_output=True)


def test_a_damaged_journal_is_moved_aside_and_every_readable_row_kept(tmp_path):
    path = tmp_path / "journal.sqlite"
    journal = RequestJournal(path)
    fill(journal, 3000)
    journal.close()
    before = sqlite_rows(path)
    pages = path.stat().st_size // PAGE
    damage(path, [pages // 3, pages // 2, 2 * pages // 3])
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(path).execute("SELECT COUNT(*), SUM(latency_ms) FROM requests").fetchone()

    reopened = RequestJournal(path)  # what a restart does: no exception, a fresh file
    assert reopened.problem is None
    kept = {row["id"]: row["latency_ms"] for row in reopened.rows()}
    assert 2500 <= len(kept) < 3000, len(kept)  # only the rows on the damaged pages are gone
    assert all(before[i] == latency for i, latency in kept.items())  # what was kept is what was written
    aside = list(tmp_path.glob("journal.sqlite.damaged-*"))
    assert [p.name for p in aside if not p.name.endswith(("-wal", "-shm"))], "the damaged file is kept for the operator"
    reopened.record("5V", "ImageSynapse", 1.0, "lite0", 0.9, "ok", True)
    assert reopened.count() == len(kept) + 1


def test_damage_found_while_running_queues_the_rows_and_the_next_maintain_repairs(tmp_path):
    path = tmp_path / "journal.sqlite"
    journal = RequestJournal(path)
    fill(journal, 2000)
    journal._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the rows are in the main file
    journal._db.execute("PRAGMA cache_size=4")  # a journal much larger than SQLite's page cache
    pages = path.stat().st_size // PAGE
    damage(path, list(range(pages // 2, pages)))
    fill(journal, 10, start=5000)  # the forward's writes: no exception reaches them
    journal.maintain()  # the sync loop: its prune reads the damaged pages, then repairs
    assert journal.problem is None
    assert list(tmp_path.glob("journal.sqlite.damaged-*"))
    assert sorted(r["latency_ms"] for r in journal.rows())[-10:] == [10.0 + i for i in range(5000, 5010)]


def test_a_full_disk_queues_rows_until_space_is_free(tmp_path):
    with mounted("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(tmp_path / "small")) as disk:
        journal = RequestJournal(disk / "journal.sqlite", queue_rows=500)
        filler = disk / "filler"
        with contextlib.suppress(OSError), open(filler, "wb") as f:
            while True:
                f.write(b"\0" * PAGE)
                f.flush()
        fill(journal, 800)  # 800 answers on a full disk: none raises
        assert journal.problem is not None and "full" in journal.problem
        journal.maintain()  # still full: stays degraded, says so, keeps the newest 500
        assert journal.problem is not None and journal.dropped == 300
        filler.unlink()
        journal.maintain()
        assert journal.problem is None
        assert journal.count() >= 500 and journal.rows()[-1]["latency_ms"] == 10.0 + 799
        journal.close()


def test_a_read_only_journal_at_start_is_written_once_it_is_writable(tmp_path):
    path = tmp_path / "journal.sqlite"
    journal = RequestJournal(path)
    fill(journal, 5)
    journal.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with mounted("--bind", "-o", "ro", str(path), str(path)):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        read_only = RequestJournal(path)  # no exception: the miner starts
        fill(read_only, 3, start=100)  # nor for the answers
        assert read_only.problem is not None and "cannot be written" in read_only.problem
        read_only.maintain()  # still read-only: still waiting
        assert read_only.problem is not None
    read_only.maintain()  # the mount is gone: the same file is writable again
    assert read_only.problem is None
    assert [r["latency_ms"] for r in read_only.rows()] == [10.0 + i for i in (0, 1, 2, 3, 4, 100, 101, 102)]


def test_a_journal_deleted_under_the_miner_is_recreated_with_its_rows(tmp_path):
    path = tmp_path / "journal.sqlite"
    journal = RequestJournal(path)
    fill(journal, 50)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    fill(journal, 5, start=50)
    journal.maintain()
    assert path.exists() and len(sqlite_rows(path)) == 55


def test_the_miner_answers_through_a_damaged_journal_and_restarts_on_it(tmp_path):
    validator = bt.Keypair.create_from_uri("//Alice").ss58_address
    args = ("--local.validator_hotkey", validator, "--neuron.sync_interval", "1")
    images = [{"synapse": "ImageSynapse", "image": b64(jpeg_bytes(seed=i))} for i in range(6)]
    miner = MinerProcess(tmp_path, *args)
    try:
        assert [r["status_code"] for r in miner.query(images, {"uri": "//Alice"})["results"]] == [200] * 6
        journal_file = next((tmp_path / "state").glob("journal-*.sqlite"))
        sqlite3.connect(journal_file).execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = journal_file.stat().st_size // PAGE
        damage(journal_file, list(range(1, pages)))
        assert [r["status_code"] for r in miner.query(images, {"uri": "//Alice"})["results"]] == [200] * 6
        time.sleep(3)  # a sync or two
        assert miner.process.poll() is None
    finally:
        assert miner.stop() == 0
    log = miner.log()
    assert "is damaged" in log and "moved the damaged file" in log

    damage(journal_file, list(range(1, journal_file.stat().st_size // PAGE)))  # and again, while stopped
    restarted = MinerProcess(tmp_path, *args)
    try:
        assert [r["status_code"] for r in restarted.query(images, {"uri": "//Alice"})["results"]] == [200] * 6
    finally:
        assert restarted.stop() == 0
    assert "Traceback" not in restarted.log()
    assert len(sqlite_rows(journal_file)) >= 6


def test_status_and_doctor_say_the_journal_is_degraded(tmp_path, capsys):
    from natix_miner.tools.cli import main

    state = tmp_path / "state"
    path = state / "journal-default-default-72-local.sqlite"
    journal = RequestJournal(path)
    fill(journal, 1500)
    journal.close()
    assert main(["status", "--state-dir", str(state)]) == 0
    assert "DAMAGED" not in capsys.readouterr().out
    damage(path, [path.stat().st_size // PAGE // 2])
    assert main(["status", "--state-dir", str(state)]) == 0
    assert "journal: DAMAGED" in capsys.readouterr().out
    main(["doctor", "--local", "--neuron.state_dir", str(state), "--wallet.path", str(tmp_path / "wallets"), "--axon.port", "0"])
    out = capsys.readouterr().out
    assert "journal" in out and "is degraded: DAMAGED" in out, out
