"""The command line's help and errors: each default said once, and a mistyped flag costs two lines.

argparse's own error prints the whole usage first; the miner's runs to about 36 lines (bittensor's
flags included) before the one line that says what is wrong.
"""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Descriptions kept as written; a flag's default appended unless it is None or "" (nothing to
    say) or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, "") or "default" in text:
            return text
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are the short usage and the error itself (sub-commands inherit it)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"usage: {self.prog} [flags]  (`{self.prog} --help` lists them)\n{self.prog}: error: {message}\n")


def hide(parser: argparse.ArgumentParser, dest: str) -> None:
    """Keep a flag working but out of --help (a library's internal one)."""
    for action in parser._actions:
        if action.dest == dest:
            action.help = argparse.SUPPRESS
            return
