"""Is the subnet paying miners? Read from the validators' weights, said in one sentence.

On 2026-05-06 SN72's validators stopped querying and put all their weight on the subnet owner's uid
(FACTS.md, "the subnet HALT"): every miner's emission is burned while that holds. Only the chain
can say whether it still does, so the miner reads the validators' weight rows and the owner's
hotkey, and works out:

- paying share: the part of validator stake (each validator's normalised weight, stake-weighted)
  that goes to uids other than the owner's;
- owner-only share: the stake of the validators whose whole weight sits on the owner's uid;
- own share: the part that goes to this miner's uid (an estimate of its share of miner emission).

Yuma consensus keeps for each miner only the weight that validators holding more than half the
stake (kappa 0.5) agree on, so a paying share of half or less pays miners nothing. The states seen
and when they changed are kept in a small SQLite file next to the journal, which gives the "since".
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .chain import ChainSnapshot, SubnetWeights
from .journal import read_only_uri

KAPPA = 0.5
PAYING, NOT_PAYING, UNKNOWN = "paying", "not paying", "unknown"


@dataclass(frozen=True)
class PayoutView:
    netuid: int
    block: int
    owner_uid: int | None  # None: the owner's hotkey holds no uid (or the chain named none)
    validators: int  # validators with a permit, stake and a weight row
    paying_share: float
    owner_only_share: float
    own_share: float

    @property
    def state(self) -> str:
        if self.validators == 0:
            return UNKNOWN
        return PAYING if self.paying_share > KAPPA else NOT_PAYING


def assess(snapshot: ChainSnapshot, weights: SubnetWeights, my_hotkey: str) -> PayoutView:
    """The payout figures from one snapshot (stakes, permits, uids) and the weight rows."""
    by_uid = {n.uid: n for n in snapshot.by_hotkey.values()}
    owner = snapshot.by_hotkey.get(weights.owner_hotkey) if weights.owner_hotkey else None
    owner_uid = None if owner is None else owner.uid
    me = snapshot.by_hotkey.get(my_hotkey)
    stake = paying = owner_only = own = 0.0
    validators = 0
    for uid, row in weights.rows.items():
        setter = by_uid.get(uid)
        total = sum(w for w in row.values() if w > 0)
        if setter is None or not setter.validator_permit or setter.stake <= 0 or total <= 0:
            continue
        validators += 1
        stake += setter.stake
        to_miners = sum(w for target, w in row.items() if w > 0 and target != owner_uid) / total
        paying += setter.stake * to_miners
        owner_only += setter.stake * (to_miners == 0.0)
        if me is not None:
            own += setter.stake * max(0.0, row.get(me.uid, 0.0)) / total
    if stake <= 0:
        return PayoutView(snapshot.netuid, weights.block, owner_uid, 0, 0.0, 0.0, 0.0)
    return PayoutView(snapshot.netuid, weights.block, owner_uid, validators, paying / stake, owner_only / stake, own / stake)


def _percent(share: float) -> str:
    text = f"{share:.0%}"
    if text == "100%" and share < 1.0:
        return "over 99%"
    if text == "0%" and share > 0.0:
        return "under 1%"
    return text


def sentence(view: PayoutView, since_block: int | None = None, seen_change: bool = False) -> str:
    """One sentence for the operator. `since_block`: the first block this state was seen at
    (`seen_change`: the miner saw it begin; otherwise it held already when the miner first looked)."""
    subnet = f"SN{view.netuid}"
    if since_block is None:
        when = f"at block {view.block}"
    else:
        when = f"since block {since_block}" if seen_change else f"since block {since_block} or earlier"
    owner = "the subnet owner, who holds no uid" if view.owner_uid is None else f"uid {view.owner_uid} (the subnet owner)"
    if view.state == UNKNOWN:
        return f"whether {subnet} pays miners is unknown: no validator with a permit and stake has set weights ({when})"
    if view.state == PAYING:
        mine = f"this miner gets {_percent(view.own_share) if view.own_share >= 0.01 else f'{view.own_share:.2%}'} of the validators' weight" if view.own_share > 0 else "this miner gets no validator weight yet"
        return f"{subnet} is paying miners: {_percent(view.paying_share)} of validator stake weights miners other than {owner} {when}; {mine}"
    if view.owner_only_share > KAPPA:
        return (f"{subnet} is not paying miners: validators holding {_percent(view.owner_only_share)} of stake put all weight on "
                f"{owner} {when}; this miner earns nothing now")
    return (f"{subnet} is not paying miners: only {_percent(view.paying_share)} of validator stake weights miners other than {owner}, "
            f"not the majority consensus needs, {when}; this miner earns nothing now")


SCHEMA = """
CREATE TABLE IF NOT EXISTS payout_changes (      -- one row each time the state is seen to differ
    block INTEGER NOT NULL,                      -- first block seen in this state
    ts REAL NOT NULL,
    state TEXT NOT NULL,
    previous_block INTEGER                       -- last block seen in the state before (NULL: first look)
);
CREATE TABLE IF NOT EXISTS payout_latest (       -- the latest figures, one row
    id INTEGER PRIMARY KEY CHECK (id = 0),
    ts REAL NOT NULL, block INTEGER NOT NULL, netuid INTEGER NOT NULL, owner_uid INTEGER,
    validators INTEGER NOT NULL, paying_share REAL NOT NULL, owner_only_share REAL NOT NULL,
    own_share REAL NOT NULL, serving INTEGER NOT NULL,
    watching_since REAL NOT NULL                 -- when the running miner began listening
);
"""


@dataclass(frozen=True)
class Observed:
    view: PayoutView
    ts: float
    serving: int  # uids with a published axon when it was seen
    since_block: int
    seen_change: bool
    watching_since: float  # when the miner that recorded it began listening

    def sentence(self) -> str:
        return sentence(self.view, self.since_block, self.seen_change)


class PayoutLedger:
    """The payout states seen and when they changed, in SQLite (so "since" survives restarts)."""

    def __init__(self, path: Path, read_only: bool = False):
        self.path = path
        if read_only:
            self._db = sqlite3.connect(read_only_uri(path), uri=True, check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    @staticmethod
    def beside(journal_path: Path) -> Path:
        """The ledger file that goes with a journal file (journal-NAME.sqlite -> payout-NAME.sqlite)."""
        return journal_path.with_name("payout-" + journal_path.name.removeprefix("journal-"))

    def record(self, view: PayoutView, serving: int, ts: float | None = None, watching_since: float | None = None) -> Observed:
        ts = time.time() if ts is None else ts
        with self._lock:
            last = self._db.execute("SELECT state FROM payout_changes ORDER BY rowid DESC LIMIT 1").fetchone()
            if last is None or last[0] != view.state:
                previous = self._db.execute("SELECT block FROM payout_latest WHERE id = 0").fetchone()
                self._db.execute("INSERT INTO payout_changes (block, ts, state, previous_block) VALUES (?, ?, ?, ?)",
                                 (view.block, ts, view.state, None if last is None or previous is None else previous[0]))
            self._db.execute(
                "INSERT OR REPLACE INTO payout_latest VALUES (0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ts, view.block, view.netuid, view.owner_uid, view.validators, view.paying_share,
                 view.owner_only_share, view.own_share, serving, ts if watching_since is None else watching_since),
            )
        return self.latest()

    def latest(self) -> Observed | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM payout_latest WHERE id = 0").fetchone()
            change = self._db.execute("SELECT block, previous_block FROM payout_changes ORDER BY rowid DESC LIMIT 1").fetchone()
        if row is None or change is None:
            return None
        _, ts, block, netuid, owner_uid, validators, paying, owner_only, own, serving, watching_since = row
        view = PayoutView(netuid, block, owner_uid, validators, paying, owner_only, own)
        return Observed(view, ts, serving, change[0], change[1] is not None, watching_since)

    def changes(self) -> list[tuple[int, str]]:
        with self._lock:
            return [(block, state) for block, state in self._db.execute("SELECT block, state FROM payout_changes ORDER BY rowid")]

    def close(self) -> None:
        with self._lock:
            self._db.close()
