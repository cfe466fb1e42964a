"""`natix-miner status`: the miner's latest chain figures and the last day's traffic, from its journal."""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path

from ..serving.cadence import last_journalled_request, quiet
from ..serving.journal import RequestJournal, journal_health
from ..serving.logs import logger
from ..serving.payout import NOT_PAYING, Observed, PayoutLedger
from . import which_journal


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which_journal.add_arguments(parser)
    parser.add_argument("--hours", type=float, default=24.0, help="traffic window")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def describe(journal: RequestJournal, hours: float, now: float | None = None) -> str:
    now = time.time() if now is None else now
    lines = [f"  journal: {problem}" for problem in journal_health(journal.path)]
    figures = journal.latest_figures()
    if figures is None:
        lines.append("  chain: no figures recorded yet")
    elif not figures["registered"]:
        lines.append(f"  chain: NOT REGISTERED at block {figures['block']}")
    else:
        lines.append(
            f"  chain at block {figures['block']} ({(now - figures['ts']) / 60:.0f} min ago): uid {figures['uid']}  "
            f"stake {figures['stake']:.2f}  incentive {figures['incentive']:.5f}  emission {figures['emission']:.5f}  "
            f"validator trust {figures['validator_trust']:.4f}"
        )
    lines += [f"  {line}" for line in subnet_lines(journal.path, now)]
    rows = journal.rows(since=now - hours * 3600)
    lines += traffic_lines(rows, journal.refusals(since=now - hours * 3600), hours)
    for score in journal.testnet_scores():
        lines.append(f"  testnet replay for {score.hotkey}: reward {score.reward:.3f} (MCC100 {score.mcc:.3f}, acc10 {score.accuracy:.2f}, {score.scored} labelled)")
    return "\n".join(lines)


def traffic_lines(rows: list, refused: dict[tuple[str, str], int], hours: float) -> list[str]:
    """Requests per validator, ok as a share of every request that reached the miner: the answered ones
    (journalled) and the ones refused before the forward (counted per sync), so that no share of ok
    hides refusals."""
    refused_total = sum(refused.values())
    reasons: Counter[str] = Counter()
    refused_by: Counter[str] = Counter()
    for (reason, hotkey), count in refused.items():
        reasons[reason] += count
        refused_by[hotkey] += count
    ok_total = sum(r["outcome"] == "ok" for r in rows)
    total = len(rows) + refused_total
    lines = [f"  last {hours:g} h: {total} requests, {len(rows)} answered, {refused_total} refused before the forward"
             + (f" ({', '.join(f'{reason} {count}' for reason, count in reasons.most_common())})" if refused_total else "")
             + (f"; ok {ok_total / total:.1%} of all" if total else "")]
    by_validator: dict[str, list] = defaultdict(list)
    for row in rows:
        by_validator[row["hotkey"]].append(row)
    callers = set(by_validator) | set(refused_by)
    if callers:
        lines.append(f"  {'validator':<50} {'requests':>8} {'ok':>6} {'refused':>7} {'late':>5} {'p50 ms':>7} {'p99 ms':>7}")
    for hotkey in sorted(callers, key=lambda h: (h == "", -len(by_validator[h]) - refused_by[h])):
        mine, refusals = by_validator[hotkey], refused_by[hotkey]
        ok = sum(r["outcome"] == "ok" for r in mine) / (len(mine) + refusals)
        latencies = [r["latency_ms"] for r in mine]
        late = sum(not r["in_time"] for r in mine)
        timing = f"{statistics.median(latencies):>7.0f} {_percentile(latencies, 0.99):>7.0f}" if latencies else f"{'-':>7} {'-':>7}"
        name = hotkey or "(unregistered or unverified callers)"
        lines.append(f"  {name:<50} {len(mine) + refusals:>8} {ok:>6.1%} {refusals:>7} {late:>5} {timing}")
    return lines


def recorded_payout(journal_path: Path) -> Observed | None:
    """The latest payout figures the miner recorded beside this journal, if any."""
    ledger_path = PayoutLedger.beside(journal_path)
    if not ledger_path.is_file():
        return None
    try:
        ledger = PayoutLedger(ledger_path, read_only=True)
        try:
            return ledger.latest()
        finally:
            ledger.close()
    except sqlite3.Error as exc:  # a damaged record is reported as missing, never a crash
        logger.warning(f"cannot read the payout record {ledger_path}: {exc}")
        return None


def quiet_line(journal_path: Path, observed: Observed, now: float) -> tuple[str, bool]:
    """Time since the last validator request against the schedule's interval; True when overdue."""
    state = quiet(last_journalled_request(journal_path), observed.watching_since, observed.serving, now)
    return state.line(observed.serving, observed.view.state == NOT_PAYING), state.overdue


def subnet_lines(journal_path: Path, now: float) -> list[str]:
    """Whether the subnet pays and whether validators come."""
    observed = recorded_payout(journal_path)
    if observed is None:
        return ["payout: not recorded yet (the miner writes it at start and every sync)"]
    return [f"{observed.sentence()} (read {(now - observed.ts) / 60:.0f} min ago)", quiet_line(journal_path, observed, now)[0]]


def run_status(args: argparse.Namespace) -> None:
    chosen = which_journal.choose(args)
    print(f"natix-miner status: {chosen.title()}")
    journal = RequestJournal(chosen.path, read_only=True)
    try:
        print(describe(journal, args.hours))
    finally:
        journal.close()
