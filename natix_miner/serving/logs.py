"""The miner's own log: loguru, to stderr (what pm2 captures) and to a size-rotated file.

bittensor keeps its own logging (`bt.logging`) for its internals. The miner's messages, and one
line per answered request, go through `logger` from here. Both sinks are queued (enqueue=True):
the thread that logs hands the line over and never waits on the disk or on pm2's pipe.
`diagnose` is off everywhere: a traceback must never print local variables (an image payload).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
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
            compression=compression or None, encoding="utf-8", colorize=False, **common,
        ))


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class PlainText(logging.Formatter):
    """Another formatter's lines without their ANSI colour codes."""

    def __init__(self, coloured: logging.Formatter):
        super().__init__()
        self.coloured = coloured

    def format(self, record: logging.LogRecord) -> str:
        return ANSI_ESCAPE.sub("", self.coloured.format(record))


def uncolour(handlers: list[logging.Handler], stream) -> int:
    """bittensor colours its console lines whether or not a terminal reads them, and pm2 writes that
    stream to its log files: when `stream` is no terminal, strip the colours from the handlers that
    write to it. Returns how many handlers were changed."""
    if stream.isatty():
        return 0
    changed = 0
    for handler in handlers:
        if getattr(handler, "stream", None) is stream and handler.formatter is not None and not isinstance(handler.formatter, PlainText):
            handler.setFormatter(PlainText(handler.formatter))
            changed += 1
    return changed


def flush() -> None:
    """Wait until every queued line has been written."""
    logger.complete()


def close() -> None:
    """Write what is queued and remove the sinks configure() added."""
    logger.complete()
    while _handlers:
        logger.remove(_handlers.pop())


class BoundedLog(logging.Filter):
    """Keeps a library's log small whatever callers send: each line cut to `max_chars`, and at most
    `per_minute` lines of one kind (its first word, e.g. bittensor's `SynapseParsingError#<uuid>: ...`)
    a minute; the next line that passes says how many were held back.

    bittensor logs every malformed request at ERROR with all its headers (about 60 KB), before any
    check of who sent it: unbounded, a keyless caller could fill the disk that pm2 logs to.
    """

    def __init__(self, max_chars: int = 400, per_minute: int = 10, clock=time.monotonic):
        super().__init__()
        self.max_chars, self.per_minute, self._clock = max_chars, per_minute, clock
        self._windows: dict[str, tuple[float, int, int]] = {}  # kind -> (window start, passed, held back)
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        kind = re.match(r"[\w.]*", message)[0][:40] or "?"
        now = self._clock()
        with self._lock:
            start, passed, held = self._windows.get(kind, (now, 0, 0))
            if now - start >= 60.0:
                start, passed = now, 0
            if passed >= self.per_minute:
                self._windows[kind] = (start, passed, held + 1)
                return False
            self._windows[kind] = (start, passed + 1, 0)
            if len(self._windows) > 1000:  # bounded: many kinds at once means noise; start over
                self._windows = {kind: self._windows[kind]}
        if len(message) > self.max_chars:
            message = f"{message[:self.max_chars]}... ({len(message) - self.max_chars} more characters cut)"
        if held:
            message = f"({held} more like this held back) {message}"
        record.msg, record.args = message, ()
        return True
