"""Every validator request the miner answered, in SQLite, so that a restart or a crash loses nothing.

Each answer is committed before the forward returns it (WAL journal: a killed process keeps every
committed row). Retention is bounded by age and by row count. On testnet, where requests carry the
true label, the validator's own scoring is replayed per validator from these rows.

The journal is a record, never a reason to stop serving. When SQLite fails (a damaged file, a full
disk, a read-only file, the file deleted under the miner) the answers go on: rows wait in a bounded
queue in memory, the problem is said once with what to do, and `maintain` (the sync loop, off the
request path) repairs what it can: a damaged file is moved aside and a fresh one started with every
row that can still be read, a full disk or a read-only file is retried until the rows can be written.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from .logs import logger
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
CREATE TABLE IF NOT EXISTS refusals (  -- requests refused before the forward (never in `requests`), per sync
    ts REAL NOT NULL,             -- the sync that wrote them: they were refused since the previous one
    reason TEXT NOT NULL,         -- the guard's: rate_limited, unregistered, no_validator_permit, ...
    hotkey TEXT NOT NULL,         -- the registered hotkey refused, or "" (a hotkey the chain does not vouch for)
    count INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS refusals_ts ON refusals (ts);
"""


INSERT_REQUEST = (
    "INSERT INTO requests (ts, hotkey, synapse, latency_ms, tier, prediction, outcome, in_time, testnet_label)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_FIGURES = (
    "INSERT INTO chain_figures (ts, block, registered, uid, stake, incentive, emission, validator_trust)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_REFUSALS = "INSERT INTO refusals (ts, reason, hotkey, count) VALUES (?, ?, ?, ?)"
REQUEST_COLUMNS = "id, ts, hotkey, synapse, latency_ms, tier, prediction, outcome, in_time, testnet_label"
FIGURE_COLUMNS = "ts, block, registered, uid, stake, incentive, emission, validator_trust"
REFUSAL_COLUMNS = "ts, reason, hotkey, count"
LOW_DISK_BYTES = 64 * 1024**2  # below this the journal will soon fail: status and doctor say so
SALVAGE_CHUNK = 512  # rows read at once from a damaged file; a chunk that fails is read row by row


def is_damage(exc: sqlite3.Error) -> bool:
    """A damaged file (as opposed to a full disk or a permission): only moving it aside helps."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith("SQLITE_CORRUPT") or name == "SQLITE_NOTADB"


def advice(path: Path, exc: sqlite3.Error) -> str:
    name = getattr(exc, "sqlite_errorname", "") or ""
    if is_damage(exc):
        return f"journal {path} is damaged ({exc}): it is moved aside and a fresh one started with every row still readable"
    if name == "SQLITE_FULL":
        return f"the disk under {path.parent} is full ({exc}): free some space; the rows wait in memory until then"
    if name.startswith(("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_CANTOPEN")):
        return f"journal {path} cannot be written ({exc}): make it and its folder writable by the miner's user; the rows wait in memory until then"
    return f"journal {path} failed ({exc}): retrying at the next sync; the rows wait in memory until then"


@dataclass(frozen=True)
class ReplayedScore:
    hotkey: str
    scored: int  # labelled requests seen
    reward: float  # what the validator would give for the last one
    mcc: float  # over the last 100
    accuracy: float  # over the last 10


class RequestJournal:
    def __init__(self, path: Path, retention_days: float = 30.0, max_rows: int = 2_000_000, queue_rows: int = 50_000,
                 read_only: bool = False):
        """`read_only`: for the operator's tools (status, report) beside a running miner; they read what
        they can and never repair, which is the miner's job."""
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.retention_s, self.max_rows = path, retention_days * 86400.0, max_rows
        self.problem: str | None = None  # what is wrong now, in words; None when every row is on disk
        self.dropped = 0  # rows lost because the queue was full while the journal could not be written
        self._damaged = False
        self._said: str | None = None  # the problem last logged: each is said once, until it clears
        self._queue: deque[tuple[str, tuple]] = deque(maxlen=queue_rows)
        # Held only around the queue's own operations, never across I/O: a flush must not pop a row
        # that arrived (and, the queue being full, pushed a written one out) while it was writing.
        self._queue_lock = threading.Lock()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._inode: int | None = None
        if read_only:
            self._db = sqlite3.connect(read_only_uri(path), uri=True, check_same_thread=False)
            return
        with self._lock:
            self._open()
            self._guarded(_check_whole_file, None)
        if self.problem is not None:
            self.maintain()  # at start nothing is waiting on the lock: repair now

    # --- writing: never raises, never waits on a repair -------------------------------------------

    def record(self, hotkey: str, synapse: str, latency_ms: float, tier: str, prediction: float,
               outcome: str, in_time: bool, testnet_label: int = -1, ts: float | None = None) -> None:
        self._write(INSERT_REQUEST, (time.time() if ts is None else ts, hotkey, synapse, latency_ms, tier, prediction,
                                     outcome, int(in_time), testnet_label))

    def record_figures(self, block: int, standing=None, ts: float | None = None) -> None:
        """This miner's figures at `block` (`standing`: a chain.NeuronStanding, None if deregistered)."""
        values = (None,) * 5 if standing is None else (
            standing.uid, standing.stake, standing.incentive, standing.emission, standing.validator_trust)
        self._write(INSERT_FIGURES, (time.time() if ts is None else ts, block, int(standing is not None), *values))

    def record_refusals(self, counts: dict[tuple[str, str], int], ts: float | None = None) -> None:
        """Requests refused since the last call, {(reason, hotkey): count} (Guard.take_refusals)."""
        ts = time.time() if ts is None else ts
        for (reason, hotkey), count in sorted(counts.items()):
            if count > 0:
                self._write(INSERT_REFUSALS, (ts, reason, hotkey, count))

    def _write(self, sql: str, row: tuple) -> None:
        if self.problem is None:
            with self._lock:
                if self.problem is None:
                    self._flush_queue()  # rows queued just as a repair finished go first, in order
                    if self._guarded(lambda db: db.execute(sql, row), False) is not False:
                        return
        self._enqueue(sql, row)

    def _enqueue(self, sql: str, row: tuple) -> None:
        with self._queue_lock:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append((sql, row))

    def _flush_queue(self) -> None:
        """Write what waited, in order, in one transaction: all of it or (on a failure) none."""
        if not self._queue or self.problem is not None:
            return
        with self._queue_lock:
            waiting = list(self._queue)

        def write(db):
            db.execute("BEGIN")
            try:
                for sql, row in waiting:
                    db.execute(sql, row)
                db.execute("COMMIT")
            except sqlite3.Error:
                db.execute("ROLLBACK")
                raise
            return True

        if self._guarded(write, False):
            written = {id(item) for item in waiting}  # `waiting` keeps them alive: ids stay unique
            with self._queue_lock:  # rows queued meanwhile stay for the next flush
                while self._queue and id(self._queue[0]) in written:
                    self._queue.popleft()

    # --- keeping it healthy (the sync loop) ---------------------------------------------------------

    def maintain(self, now: float | None = None) -> int:
        """Notice a file deleted or replaced under the miner, prune (which reads the table, and so finds
        damage too), repair what failed and write what waited; returns how many rows the prune removed.
        Called off the request path."""
        with self._lock:
            if self.problem is None and self._db is not None and self._replaced():
                self._recreate()
            removed = self._prune(time.time() if now is None else now) if self.problem is None else 0
            if self.problem is not None:
                self._repair()
            self._flush_queue()
            return removed

    def prune(self, now: float | None = None) -> int:
        with self._lock:
            return self._prune(time.time() if now is None else now)

    def _prune(self, now: float) -> int:
        """Drop rows past the retention age or beyond the row budget; returns how many went."""
        def prune(db):
            before = db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
            db.execute("DELETE FROM requests WHERE ts < ?", (now - self.retention_s,))
            db.execute("DELETE FROM chain_figures WHERE ts < ?", (now - self.retention_s,))
            db.execute("DELETE FROM refusals WHERE ts < ?", (now - self.retention_s,))
            db.execute("DELETE FROM requests WHERE id <= (SELECT MAX(id) FROM requests) - ?", (self.max_rows,))
            return before - db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        return self._guarded(prune, 0)

    def _open(self) -> None:
        try:
            db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            self._note(exc)
            return
        self._db = db
        if self._guarded(self._prepare, False) is not False:
            self._inode = os.stat(self.path).st_ino

    @staticmethod
    def _prepare(db: sqlite3.Connection) -> bool:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # durable against process crashes
        db.executescript(SCHEMA)
        return True

    def _guarded(self, work, default):
        """work(db) under the lock; on a SQLite failure, say what is wrong and return `default`."""
        if self._db is None:
            return default
        try:
            return work(self._db)
        except sqlite3.Error as exc:
            self._note(exc)
            return default

    def _note(self, exc: sqlite3.Error) -> None:
        problem = advice(self.path, exc)
        if problem != self._said:
            logger.error(f"{problem}; answers go on")
            self._said = problem
        self.problem, self._damaged = problem, self._damaged or is_damage(exc)

    def _repair(self) -> None:
        queued = len(self._queue)
        self._close()
        self.problem = None
        if self._damaged:
            aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            for suffix in ("", "-wal", "-shm"):  # the WAL holds committed rows too: it moves with its file
                source = Path(f"{self.path}{suffix}")
                if source.exists():
                    shutil.move(source, f"{aside}{suffix}")
            self._damaged = False
            self._open()
            if self.problem is None:
                kept = self._salvage(aside)
                logger.warning(f"journal: moved the damaged file to {aside}; {kept} rows read back into a fresh {self.path}")
            return
        self._open()
        self._flush_queue()
        if self.problem is None:
            logger.info(f"journal {self.path} is writable again: wrote the {queued} rows that waited"
                        + (f" ({self.dropped} dropped while the queue was full)" if self.dropped else ""))
            self._said = None

    def _salvage(self, damaged: Path) -> int:
        """Copy every row SQLite can still read from `damaged` into the open journal, ids kept."""
        try:
            old = sqlite3.connect(read_only_uri(damaged), uri=True)
        except sqlite3.Error:
            return 0
        kept = 0
        try:
            for table, columns, insert_columns in (("requests", REQUEST_COLUMNS, REQUEST_COLUMNS), ("chain_figures", f"rowid, {FIGURE_COLUMNS}", FIGURE_COLUMNS),
                                                   ("refusals", f"rowid, {REFUSAL_COLUMNS}", REFUSAL_COLUMNS)):
                rows = _readable_rows(old, table, columns)
                marks = ", ".join("?" * len(insert_columns.split(",")))
                if table != "requests":
                    rows = [row[1:] for row in rows]
                self._guarded(lambda db: db.executemany(f"INSERT OR IGNORE INTO {table} ({insert_columns}) VALUES ({marks})", rows), None)
                kept += len(rows) if table == "requests" else 0
        finally:
            old.close()
        return kept

    def _replaced(self) -> bool:
        try:
            return os.stat(self.path).st_ino != self._inode
        except OSError:
            return True

    def _recreate(self) -> None:
        """The file was deleted (or replaced) under the running miner: the open connection still reads
        the old one, so copy it whole to the path, then carry on there."""
        old = self._db
        try:
            if self.path.exists():  # replaced, not deleted: keep what is there now beside it
                shutil.move(self.path, self.path.with_name(f"{self.path.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"))
            fresh = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            old.backup(fresh)
            self._db, self._inode = fresh, os.stat(self.path).st_ino
            self._prepare(fresh)
        except (sqlite3.Error, OSError) as exc:
            logger.error(f"journal {self.path} was deleted under the miner and could not be recreated ({exc}); retrying at the next sync")
            return
        old.close()
        count = fresh.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        logger.warning(f"journal {self.path} was deleted or replaced while the miner ran: recreated it with the {count} rows it held")

    def _close(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None

    # --- reading ------------------------------------------------------------------------------------

    def latest_figures(self) -> sqlite3.Row | None:
        def read(db):
            cursor = db.execute("SELECT * FROM chain_figures ORDER BY ts DESC LIMIT 1")
            cursor.row_factory = sqlite3.Row
            return cursor.fetchone()
        with self._lock:
            return self._guarded(read, None)

    def count(self) -> int:
        with self._lock:
            return self._guarded(lambda db: db.execute("SELECT COUNT(*) FROM requests").fetchone()[0], 0)

    def rows(self, since: float = 0.0) -> list[sqlite3.Row]:
        def read(db):
            cursor = db.execute("SELECT * FROM requests WHERE ts >= ? ORDER BY id", (since,))
            cursor.row_factory = sqlite3.Row
            return cursor.fetchall()
        with self._lock:
            return self._guarded(read, [])

    def figures(self, since: float = 0.0) -> list[tuple]:
        """(ts, registered, incentive, emission) of every chain figure since `since`, oldest first."""
        with self._lock:
            return self._guarded(lambda db: db.execute(
                "SELECT ts, registered, incentive, emission FROM chain_figures WHERE ts >= ? ORDER BY ts", (since,)).fetchall(), [])

    def refusals(self, since: float = 0.0) -> dict[tuple[str, str], int]:
        """{(reason, hotkey): count} refused since `since`; empty for a journal older than the table."""
        def read(db):
            try:
                rows = db.execute("SELECT reason, hotkey, SUM(count) FROM refusals WHERE ts >= ? GROUP BY reason, hotkey", (since,)).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):  # written by a miner from before refusals were kept
                    return {}
                raise
            return {(reason, hotkey): count for reason, hotkey, count in rows}
        with self._lock:
            return self._guarded(read, {})

    def testnet_scores(self) -> list[ReplayedScore]:
        """Per validator, its scoring replayed over the labelled requests in order (testnet only)."""
        def labelled(db):
            return db.execute("SELECT hotkey, prediction, testnet_label FROM requests WHERE testnet_label != -1 ORDER BY id").fetchall()
        with self._lock:
            rows = self._guarded(labelled, [])
        replays: dict[str, tuple[ValidatorScore, list[float]]] = {}
        for hotkey, prediction, label in rows:
            replay, rewards = replays.setdefault(hotkey, (ValidatorScore(), []))
            rewards.append(replay.record(prediction, label))
        scores = []
        for hotkey, (replay, rewards) in replays.items():
            history = list(replay.history)
            scores.append(ReplayedScore(hotkey, len(rewards), rewards[-1], window_metrics(history, HISTORY).mcc,
                                        window_metrics(history, ACCURACY_WINDOW).accuracy))
        return scores

    def close(self) -> None:
        with self._lock:
            self._flush_queue()
            self._close()


def read_only_uri(path: Path) -> str:
    """SQLite's URI for reading `path` without ever writing it (as_uri escapes spaces, '?' and '#')."""
    return f"{Path(path).resolve().as_uri()}?mode=ro"


def state_name_of(wallet_name: str, wallet_hotkey: str, netuid: int, local: bool) -> str:
    """What tells one miner's files apart from another's in the same state folder."""
    return f"{wallet_name}-{wallet_hotkey}-{netuid}{'-local' if local else ''}"


def journal_path(state_dir: Path, state_name: str) -> Path:
    return state_dir / f"journal-{state_name}.sqlite"


def journal_health(path: Path) -> list[str]:
    """What is wrong with a journal file, in words an operator can act on; empty when nothing is."""
    problems = []
    try:
        db = sqlite3.connect(read_only_uri(path), uri=True)
        try:
            _check_whole_file(db)
        finally:
            db.close()
    except sqlite3.Error as exc:
        problems.append(f"DAMAGED ({exc}): the miner moves it aside and starts a fresh one at its next sync or start")
    if path.exists() and not os.access(path, os.W_OK):
        problems.append("NOT WRITABLE by this user: answers go on but are not recorded; fix its owner or mode")
    free = shutil.disk_usage(path.parent).free
    if free < LOW_DISK_BYTES:
        problems.append(f"DISK NEARLY FULL ({free / 1024**2:.0f} MiB free under {path.parent}): rows wait in the miner's memory; free some space")
    aside = sorted(p.name for p in path.parent.glob(f"{path.name}.damaged-*") if not p.name.endswith(("-wal", "-shm")))
    if aside:
        problems.append(f"{len(aside)} damaged file(s) moved aside earlier ({aside[-1]}, ...): what they held was read back; delete them when done")
    return problems


def _check_whole_file(db: sqlite3.Connection) -> None:
    """Raise if any page is damaged. Reading every page takes well under a second for a typical journal
    (a few requests an hour per validator); once, at start, it finds damage before any request does."""
    found = [line for (line,) in db.execute("PRAGMA quick_check(5)")]
    if found != ["ok"]:
        damage = sqlite3.DatabaseError(f"database disk image is malformed ({'; '.join(found)})")
        damage.sqlite_errorname = "SQLITE_CORRUPT"
        raise damage


def _readable_rows(db: sqlite3.Connection, table: str, columns: str) -> list[tuple]:
    """Every row of `table` that a damaged file still gives up, by rowid range; unreadable ones skipped."""
    try:
        highest = db.execute(f"SELECT MAX(rowid) FROM {table}").fetchone()[0] or 0
    except sqlite3.Error:
        return []
    rows: list[tuple] = []
    for low in range(0, highest + 1, SALVAGE_CHUNK):
        query = f"SELECT {columns} FROM {table} WHERE rowid >= ? AND rowid < ?"
        try:
            rows += db.execute(query, (low, low + SALVAGE_CHUNK)).fetchall()
        except sqlite3.Error:
            for rowid in range(low, low + SALVAGE_CHUNK):
                try:
                    rows += db.execute(query, (rowid, rowid + 1)).fetchall()
                except sqlite3.Error:
                    continue
    return rows
