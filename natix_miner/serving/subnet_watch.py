"""The running miner's watch on the subnet: is it paying, and are validators reaching this miner?

Each metagraph sync hands the snapshot here; the validators' weights are read at most every
WEIGHTS_EVERY_S (they change once an epoch). The payout sentence goes to the log at start, when
the state changes and hourly; the figures to the Prometheus gauges; the states to the ledger that
`natix-miner status` reads. Nothing here may stop the miner: a failed read keeps the last view.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Callable

from .cadence import last_journalled_request, quiet
from .chain import Chain, ChainSnapshot
from .logs import logger
from .payout import NOT_PAYING, PAYING, Observed, PayoutLedger, assess

WEIGHTS_EVERY_S = 600.0
LOG_EVERY_S = 3600.0
STATE_GAUGE = {PAYING: 1.0, NOT_PAYING: 0.0}


def serving_count(snapshot: ChainSnapshot) -> int:
    return sum(n.serving for n in snapshot.by_hotkey.values())


class SubnetWatch:
    def __init__(self, ledger_path: Path, hotkey: str, metrics=None, last_request: Callable[[], float | None] = lambda: None,
                 journal_path: Path | None = None, clock: Callable[[], float] = time.time):
        self.ledger = PayoutLedger(ledger_path)
        self.hotkey, self.metrics, self._last_request, self._clock = hotkey, metrics, last_request, clock
        self._journalled = last_journalled_request(journal_path) if journal_path is not None else None
        self._started = clock()
        self._weights_at = self._logged_at = self._quiet_logged_at = float("-inf")
        self.observed: Observed | None = None

    def observe(self, chain: Chain, snapshot: ChainSnapshot) -> None:
        try:
            self._observe(chain, snapshot, self._clock())
        except Exception as exc:  # a report, never a reason to stop serving
            logger.error(f"the subnet watch failed ({type(exc).__name__}: {exc}); serving goes on")

    def _observe(self, chain: Chain, snapshot: ChainSnapshot, now: float) -> None:
        if now - self._weights_at >= WEIGHTS_EVERY_S:
            try:
                view = assess(snapshot, chain.weights(snapshot.netuid), self.hotkey)
                previous, self.observed = self.observed, self.ledger.record(view, serving_count(snapshot), ts=now, watching_since=self._started)
                self._weights_at = now
            except (Exception, sqlite3.Error) as exc:  # RPC failures, a bad ledger file: keep the last view
                logger.warning(f"reading the validators' weights failed, keeping the last payout view: {type(exc).__name__}: {exc}")
                previous = self.observed
            changed = previous is not None and self.observed is not None and previous.view.state != self.observed.view.state
            if self.observed is not None and (changed or now - self._logged_at >= LOG_EVERY_S):
                (logger.info if self.observed.view.state == PAYING else logger.warning)(self.observed.sentence())
                self._logged_at = now
        self._report_quiet(snapshot, now)

    def last_request(self) -> float | None:
        live = self._last_request()
        return max((t for t in (live, self._journalled) if t is not None), default=None)

    def _report_quiet(self, snapshot: ChainSnapshot, now: float) -> None:
        serving = serving_count(snapshot)
        state = quiet(self.last_request(), self._started, serving, now)
        halted = self.observed is not None and self.observed.view.state == NOT_PAYING
        if state.overdue and now - self._quiet_logged_at >= LOG_EVERY_S:
            logger.warning(state.line(serving, halted))
            self._quiet_logged_at = now
        if self.metrics is not None:
            self.metrics.validator_requests.labels("seconds_since_last").set(state.silent_s)
            self.metrics.validator_requests.labels("expected_interval_s").set(state.expected_s)
            self.metrics.validator_requests.labels("overdue").set(float(state.overdue))
            if self.observed is not None:
                view = self.observed.view
                self.metrics.payout.labels("paying").set(STATE_GAUGE.get(view.state, -1.0))
                self.metrics.payout.labels("paying_share").set(view.paying_share)
                self.metrics.payout.labels("owner_only_share").set(view.owner_only_share)
                self.metrics.payout.labels("own_share").set(view.own_share)
                self.metrics.payout.labels("since_block").set(self.observed.since_block)

    def close(self) -> None:
        self.ledger.close()
