"""How often validators should reach this miner, and a warning when they have been quiet far longer.

Since 2026-01-03 each SN72 validator walks a shuffled deck of all serving uids (`UIDDeck`), 10 per
step, a step every 60-66 s (FACTS.md): one validator reaches a given miner about once every
ceil(serving / 10) steps. Silence for several such rounds means the axon is unreachable, or the
validators are not querying at all (as during the subnet halt).
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .journal import read_only_uri

SAMPLE_SIZE = 10  # uids a validator queries per step
STEP_S = 63.0  # the middle of the 60-66 s a step takes
FAR_PAST = 3.0  # rounds of silence before it is worth a warning


def expected_interval_s(serving: int) -> float:
    """Seconds between one validator's visits to a given miner when `serving` uids are dealt."""
    return max(1, math.ceil(serving / SAMPLE_SIZE)) * STEP_S


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


@dataclass(frozen=True)
class Quiet:
    last_request_s: float | None  # since the last request ever journalled; None: never
    silent_s: float  # since the last request or since watching began, whichever is later
    expected_s: float

    @property
    def overdue(self) -> bool:
        return self.silent_s > FAR_PAST * self.expected_s

    def line(self, serving: int, subnet_halted: bool = False) -> str:
        schedule = f"one validator's schedule ({serving} serving uids, {SAMPLE_SIZE} per ~{STEP_S:.0f} s step)"
        last = "no validator request yet" if self.last_request_s is None else f"last validator request {_duration(self.last_request_s)} ago"
        if not self.overdue:
            return f"{last}; {schedule} reaches this miner about every {_duration(self.expected_s)}"
        advice = ("expected while the subnet is not paying: its validators stopped querying miners at the halt" if subnet_halted
                  else "check that validators can reach the axon (port open, --axon.external_ip, `natix-miner doctor`)")
        return (f"WARNING: {last}, silent for {_duration(self.silent_s)}, over {FAR_PAST:g}x the ~{_duration(self.expected_s)} "
                f"{schedule} implies: {advice}")


def quiet(last_request_ts: float | None, watching_since: float, serving: int, now: float) -> Quiet:
    """`watching_since`: when the miner began listening (silence before that is not the validators')."""
    reference = watching_since if last_request_ts is None else max(last_request_ts, watching_since)
    last = None if last_request_ts is None else max(0.0, now - last_request_ts)
    return Quiet(last, max(0.0, now - reference), expected_interval_s(serving))


def last_journalled_request(journal_path: Path) -> float | None:
    """When the journal's latest request arrived (read-only; None when it holds none or cannot be read)."""
    try:
        db = sqlite3.connect(read_only_uri(journal_path), uri=True)
        try:
            return db.execute("SELECT MAX(ts) FROM requests").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return None
