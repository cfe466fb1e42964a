"""`natix-miner report`: one PNG of how the miner did over a period, from its journal.

Four panels: incentive and emission over time; forward latency percentiles per hour against the
9 s timeout; requests per validator by outcome; and, on testnet, the validators' replayed reward.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from . import which_journal
from ..serving.journal import RequestJournal
from ..serving.scoring import ValidatorScore

TIMEOUT_S = 9.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which_journal.add_arguments(parser)
    parser.add_argument("--days", type=float, default=7.0, help="period covered, ending now")
    parser.add_argument("--out", type=Path, default=Path("natix-miner-report.png"))


def _times(values) -> list[dt.datetime]:
    return [dt.datetime.fromtimestamp(v) for v in values]


def render(journal: RequestJournal, out: Path, days: float, now: float | None = None, whose: str = "") -> Path:
    import matplotlib.pyplot as plt

    fig = draw(journal, days, now, whose)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def draw(journal: RequestJournal, days: float, now: float | None = None, whose: str = ""):
    """The report's matplotlib figure (render saves it); `whose`: the miner and journal, for the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    now = time.time() if now is None else now
    since = now - days * 86400
    rows = journal.rows(since)
    figures = [(ts, incentive, emission) for ts, registered, incentive, emission in journal.figures(since) if registered]
    fig, axes = plt.subplots(2, 2, figsize=(14, 9), constrained_layout=True)
    period = f"{dt.datetime.fromtimestamp(since):%Y-%m-%d %H:%M} to {dt.datetime.fromtimestamp(now):%Y-%m-%d %H:%M}"
    refusals = journal.refusals(since)
    whose = (whose or str(journal.path)).replace(" (journal ", "\n(journal ")  # the path on a line of its own: it is long
    fig.suptitle(f"natix-miner: {whose}\n{period}: {len(rows)} answered, {sum(refusals.values())} refused before the forward",
                 fontsize=12)

    ax = axes[0][0]
    if figures:
        ts, incentive, emission = zip(*figures)
        ax.plot(_times(ts), incentive, color="tab:blue", marker="o", markersize=3, label="incentive")  # one sync: a point
        ax.set_ylabel("incentive", color="tab:blue")
        twin = ax.twinx()
        twin.plot(_times(ts), emission, color="tab:orange", marker="o", markersize=3, label="emission")
        twin.set_ylabel("emission", color="tab:orange")
    else:
        ax.text(0.5, 0.5, "no chain figures in this period", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Incentive and emission")

    ax = axes[0][1]
    hourly: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        hourly[int(row["ts"] // 3600)].append(row["latency_ms"] / 1000.0)
    if hourly:
        hours = sorted(hourly)
        stamps = _times([h * 3600 for h in hours])
        for q, style in ((50, "-"), (95, "--"), (99, ":")):  # markers: a single hour is a point, not an empty panel
            ax.plot(stamps, [np.percentile(hourly[h], q) for h in hours], style, marker="o", markersize=3, label=f"p{q}")
        ax.axhline(TIMEOUT_S, color="tab:red", linewidth=1, label="validator timeout (9 s)")
        ax.set_yscale("log")
        ax.legend(loc="center right")
    else:
        ax.text(0.5, 0.5, "no requests in this period", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("seconds per answer")
    ax.set_title("Forward latency per hour")

    ax = axes[1][0]
    counts: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        counts[row["hotkey"]][row["outcome"].split(":")[0]] += 1
    for (_, hotkey), count in refusals.items():  # refused before the forward: never in the rows
        counts[hotkey or "(unverified)"]["refused"] += count
    validators = sorted(counts, key=lambda h: -sum(counts[h].values()))[:15]
    outcomes = sorted({o for c in counts.values() for o in c}, key=lambda o: (o != "ok", o))
    bottom = np.zeros(len(validators))
    for outcome in outcomes:
        values = np.array([counts[h][outcome] for h in validators], dtype=float)
        ax.barh([h[:10] + "…" for h in validators], values, left=bottom, label=outcome)
        bottom += values
    if validators:
        ax.legend()
    ax.invert_yaxis()
    ax.set_xlabel("requests")
    ax.set_title("Requests per validator (top 15) by outcome")

    ax = axes[1][1]
    labelled: dict[str, list] = defaultdict(list)
    for row in rows:
        if row["testnet_label"] != -1:
            labelled[row["hotkey"]].append(row)
    for hotkey, mine in list(labelled.items())[:8]:
        replay = ValidatorScore()
        ax.plot(_times([r["ts"] for r in mine]), [replay.record(r["prediction"], r["testnet_label"]) for r in mine], label=hotkey[:10] + "…")
    if labelled:
        ax.set_ylim(0, 1)
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no testnet labels in this period\n(validators label requests on testnet only)", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("(0.5 MCC100 + 0.5 acc10)^3")
    ax.set_title("Validators' reward, replayed (testnet)")

    for ax in (axes[0][0], axes[0][1], axes[1][1]):
        ax.set_xlim(_times([since, now]))  # the period asked for, also when the data span one point
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
        ax.tick_params(axis="x", labelrotation=30)
    return fig


def run_report(args: argparse.Namespace) -> Path:
    chosen = which_journal.choose(args)
    journal = RequestJournal(chosen.path, read_only=True)
    try:
        out = render(journal, args.out, args.days, whose=chosen.title())
    finally:
        journal.close()
    print(f"wrote {out}: {chosen.title()}")
    return out
