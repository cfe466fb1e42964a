"""`natix-miner status`: the miner's latest chain figures and the last day's traffic, from its journal."""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
from collections import defaultdict
from pathlib import Path

from .cadence import last_journalled_request, quiet
from .journal import RequestJournal, journal_health
from .logs import logger
from .payout import NOT_PAYING, Observed, PayoutLedger


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, default=Path("~/.natix-miner"), help="the miner's --neuron.state_dir")
    parser.add_argument("--journal", type=Path, help="one journal file (default: every journal in --state-dir)")
    parser.add_argument("--hours", type=float, default=24.0, help="traffic window")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def describe(journal: RequestJournal, hours: float, now: float | None = None) -> str:
    now = time.time() if now is None else now
    lines = [f"journal {journal.path}"]
    lines += [f"  journal: {problem}" for problem in journal_health(journal.path)]
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
    lines.append(f"  last {hours:g} h: {len(rows)} requests")
    by_validator: dict[str, list] = defaultdict(list)
    for row in rows:
        by_validator[row["hotkey"]].append(row)
    if rows:
        lines.append(f"  {'validator':<50} {'requests':>8} {'ok':>6} {'late':>5} {'p50 ms':>7} {'p99 ms':>7}")
    for hotkey, mine in sorted(by_validator.items(), key=lambda item: -len(item[1])):
        latencies = [r["latency_ms"] for r in mine]
        ok = sum(r["outcome"] == "ok" for r in mine) / len(mine)
        late = sum(not r["in_time"] for r in mine)
        lines.append(f"  {hotkey:<50} {len(mine):>8} {ok:>6.1%} {late:>5} {statistics.median(latencies):>7.0f} {_percentile(latencies, 0.99):>7.0f}")
    for score in journal.testnet_scores():
        lines.append(f"  testnet replay for {score.hotkey}: reward {score.reward:.3f} (MCC100 {score.mcc:.3f}, acc10 {score.accuracy:.2f}, {score.scored} labelled)")
    return "\n".join(lines)


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
    paths = [args.journal] if args.journal else sorted(Path(args.state_dir).expanduser().glob("journal-*.sqlite"))
    if not paths or not all(p.is_file() for p in paths):
        raise FileNotFoundError(f"no miner journal found ({args.journal or args.state_dir}): has the miner run with this --neuron.state_dir?")
    for path in paths:
        journal = RequestJournal(path, read_only=True)
        print(describe(journal, args.hours))
        journal.close()
