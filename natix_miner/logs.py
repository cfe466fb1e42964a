"""The miner's own log: loguru, to stderr (what pm2 captures) and to a size-rotated file.

bittensor keeps its own logging (`bt.logging`) for its internals. The miner's messages, and one
line per answered request, go through `logger` from here. Both sinks are queued (enqueue=True):
the thread that logs hands the line over and never waits on the disk or on pm2's pipe.
`diagnose` is off everywhere: a traceback must never print local variables (an image payload).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from loguru import logger

FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {message}"
COMPRESSIONS = ("gz", "bz2", "xz", "zip", "tar", "tar.gz", "tar.bz2", "tar.xz")
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}

_handlers: list[int] = []  # the sinks configure() added, removed by the next configure() or close()
_default_removed = False


def parse_size(text: str) -> int:
    """'50 MB' -> 50_000_000 bytes (B, KB, MB, GB, KiB, MiB, GiB; case does not matter)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([kmg]i?b|b)?\s*", str(text), re.IGNORECASE)
    if match is None:
        raise ValueError(f"{text!r} is not a size such as '50 MB'")
    size = int(float(match[1]) * _SIZE_UNITS[(match[2] or "b").lower()])
    if size < 1:
        raise ValueError(f"{text!r} must be at least 1 byte")
    return size


def short_hotkey(hotkey: str) -> str:
    return hotkey if len(hotkey) <= 12 else hotkey[:8] + "…"


def configure(
    log_file: Path | None,
    level: str = "info",
    rotation: str = "50 MB",
    retention: int = 10,
    compression: str | None = None,
    stderr: bool = True,
) -> None:
    """(Re)configure the sinks; calling it again replaces them, it never adds a second copy.

    The file rotates when the next line would take it past `rotation` and at most `retention`
    files are kept, the live one included (the rotated ones carry a timestamp in their name).
    """
    global _default_removed
    close()
    if not _default_removed:  # loguru's own stderr sink, added at import: ours replaces it
        try:
            logger.remove(0)
        except ValueError:
            pass
        _default_removed = True
    level = level.upper()
    common = dict(level=level, format=FORMAT, enqueue=True, backtrace=False, diagnose=False)
    if stderr:
        _handlers.append(logger.add(sys.stderr, **common))
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        _handlers.append(logger.add(
            str(log_file), rotation=parse_size(rotation), retention=max(0, retention - 1),
            compression=compression or None, encoding="utf-8", **common,
        ))


def flush() -> None:
    """Wait until every queued line has been written."""
    logger.complete()


def close() -> None:
    """Write what is queued and remove the sinks configure() added."""
    logger.complete()
    while _handlers:
        logger.remove(_handlers.pop())
