"""Every validator request the miner answered, in SQLite, so that a restart or a crash loses nothing.

Each answer is committed before the forward returns it (WAL journal: a killed process keeps every
committed row). Retention is bounded by age and by row count. On testnet, where requests carry the
true label, the validator's own scoring is replayed per validator from these rows.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .scoring import ACCURACY_WINDOW, HISTORY, ValidatorScore, window_metrics

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,             -- unix time the answer left
    hotkey TEXT NOT NULL,         -- the validator's
    synapse TEXT NOT NULL,
    latency_ms REAL NOT NULL,
    tier TEXT NOT NULL,           -- the tier whose answer stands, "cache", or "-"
    prediction REAL NOT NULL,
    outcome TEXT NOT NULL,        -- ok, no_answer, deadline, error, rejected:<reason>
    in_time INTEGER NOT NULL,     -- answered inside the caller's timeout
    testnet_label INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
CREATE TABLE IF NOT EXISTS chain_figures (
    ts REAL NOT NULL,
    block INTEGER NOT NULL,
    registered INTEGER NOT NULL,
    uid INTEGER,
    stake REAL,
    incentive REAL,
    emission REAL,
    validator_trust REAL
);
CREATE INDEX IF NOT EXISTS chain_figures_ts ON chain_figures (ts);
CREATE INDEX IF NOT EXISTS requests_hotkey ON requests (hotkey, id);
"""


@dataclass(frozen=True)
class ReplayedScore:
    hotkey: str
    scored: int  # labelled requests seen
    reward: float  # what the validator would give for the last one
    mcc: float  # over the last 100
    accuracy: float  # over the last 10


class RequestJournal:
    def __init__(self, path: Path, retention_days: float = 30.0, max_rows: int = 2_000_000):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.retention_s, self.max_rows = path, retention_days * 86400.0, max_rows
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # durable against process crashes
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def record(self, hotkey: str, synapse: str, latency_ms: float, tier: str, prediction: float,
               outcome: str, in_time: bool, testnet_label: int = -1, ts: float | None = None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO requests (ts, hotkey, synapse, latency_ms, tier, prediction, outcome, in_time, testnet_label)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time() if ts is None else ts, hotkey, synapse, latency_ms, tier, prediction, outcome, int(in_time), testnet_label),
            )

    def record_figures(self, block: int, standing=None, ts: float | None = None) -> None:
        """This miner's figures at `block` (`standing`: a chain.NeuronStanding, None if deregistered)."""
        values = (None,) * 5 if standing is None else (
            standing.uid, standing.stake, standing.incentive, standing.emission, standing.validator_trust)
        with self._lock:
            self._db.execute(
                "INSERT INTO chain_figures (ts, block, registered, uid, stake, incentive, emission, validator_trust)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time() if ts is None else ts, block, int(standing is not None), *values),
            )

    def latest_figures(self) -> sqlite3.Row | None:
        cursor = self._db.execute("SELECT * FROM chain_figures ORDER BY ts DESC LIMIT 1")
        cursor.row_factory = sqlite3.Row
        return cursor.fetchone()

    def prune(self, now: float | None = None) -> int:
        """Drop rows past the retention age or beyond the row budget; returns how many went."""
        now = time.time() if now is None else now
        with self._lock:
            before = self.count()
            self._db.execute("DELETE FROM requests WHERE ts < ?", (now - self.retention_s,))
            self._db.execute("DELETE FROM chain_figures WHERE ts < ?", (now - self.retention_s,))
            self._db.execute(
                "DELETE FROM requests WHERE id <= (SELECT MAX(id) FROM requests) - ?", (self.max_rows,)
            )
            return before - self.count()

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]

    def rows(self, since: float = 0.0) -> list[sqlite3.Row]:
        cursor = self._db.execute("SELECT * FROM requests WHERE ts >= ? ORDER BY id", (since,))
        cursor.row_factory = sqlite3.Row
        return cursor.fetchall()

    def testnet_scores(self) -> list[ReplayedScore]:
        """Per validator, its scoring replayed over the labelled requests in order (testnet only)."""
        scores = []
        hotkeys = [h for (h,) in self._db.execute("SELECT DISTINCT hotkey FROM requests WHERE testnet_label != -1")]
        for hotkey in hotkeys:
            replay, reward, seen = ValidatorScore(), 0.0, 0
            for prediction, label in self._db.execute(
                "SELECT prediction, testnet_label FROM requests WHERE hotkey = ? AND testnet_label != -1 ORDER BY id", (hotkey,)
            ):
                reward = replay.record(prediction, label)
                seen += 1
            history = list(replay.history)
            mcc = window_metrics(history, HISTORY).mcc
            accuracy = window_metrics(history, ACCURACY_WINDOW).accuracy
            scores.append(ReplayedScore(hotkey, seen, reward, mcc, accuracy))
        return scores

    def close(self) -> None:
        with self._lock:
            self._db.close()
