"""Which miner's journal `status` and `report` read: the one the operator means, said out loud.

A state folder can hold several journals (other hotkeys, other netuids, local-mode runs). The miner
names each after its wallet, hotkey, netuid and mode (journal.state_name_of), so the tools take the
flags the miner takes, or the miner.env that run_miner.sh reads, and build the same name. With
neither, one journal is read only when it is the only one; with several the operator is told which
exist and the flags that choose each, never shown a guess.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..argparsing import parse_bool
from ..serving.journal import journal_path, state_name_of

# The miner's defaults for these flags (bittensor's for the wallet); tests check they still agree.
DEFAULT_WALLET, DEFAULT_HOTKEY, DEFAULT_NETUID, DEFAULT_STATE_DIR = "default", "default", 72, Path("~/.natix-miner")
JOURNAL_NAME = re.compile(r"journal-(?P<pair>.+)-(?P<netuid>\d+)(?P<local>-local)?\.sqlite")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "which miner (the miner's own flags, else miner.env, else the only journal in the state folder)")
    group.add_argument("--journal", type=Path, help="read this journal file, whoever wrote it")
    group.add_argument("--wallet.name", dest="wallet_name", help=f"the miner's wallet (default: miner.env's WALLET_NAME, else {DEFAULT_WALLET})")
    group.add_argument("--wallet.hotkey", dest="wallet_hotkey", help=f"the miner's hotkey (default: miner.env's WALLET_HOTKEY, else {DEFAULT_HOTKEY})")
    group.add_argument("--netuid", type=int, help=f"the miner's netuid (default: miner.env's NETUID, else {DEFAULT_NETUID})")
    group.add_argument("--local", type=parse_bool, nargs="?", const=True, help="the miner ran with --local (default: as miner.env says)")
    group.add_argument("--neuron.state_dir", "--state-dir", dest="state_dir", type=Path,
                       help=f"the miner's --neuron.state_dir (default: {DEFAULT_STATE_DIR})")
    group.add_argument("--env", type=Path, help="run_miner.sh's settings file (default: $MINER_ENV, else ./miner.env if it exists)")


@dataclass(frozen=True)
class Chosen:
    path: Path
    miner: str  # whose journal, in words: "wallet w, hotkey h, netuid 72, local mode"
    how: str  # what chose it: "--journal", "flags", "miner.env ...", "the only journal in ..."

    def title(self) -> str:
        return f"{self.miner} (journal {self.path}, chosen by {self.how})"


def read_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as bash reads them for run_miner.sh (comments and quotes allowed)."""
    settings = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise ValueError(f"{path} line {number} cannot be read ({exc}): {line.strip()}") from None
        if words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
            key, _, value = words[0].partition("=")
            settings[key] = value
    return settings


def _env_file(args: argparse.Namespace) -> Path | None:
    """The settings file asked for (must exist), or ./miner.env when it exists, else None."""
    given = args.env or (Path(os.environ["MINER_ENV"]) if os.environ.get("MINER_ENV") else None)
    if given is not None:
        if not given.is_file():
            raise FileNotFoundError(f"settings file {given} does not exist (from {'--env' if args.env else 'MINER_ENV'})")
        return given
    default = Path("miner.env")
    return default if default.is_file() else None


def _from_env(path: Path) -> dict:
    """The identity run_miner.sh gives the miner from this file: in real mode WALLET_NAME, WALLET_HOTKEY
    and NETUID; with LOCAL=true local mode with the default wallet and NETUID (72 if unset)."""
    env = read_env(path)
    netuid = env.get("NETUID") or None
    if netuid is not None and not netuid.isdigit():
        raise ValueError(f"{path} sets NETUID={netuid!r}, not a number: 72 mainnet, 323 testnet")
    if env.get("LOCAL", "false") == "true":
        return {"local": True, "netuid": int(netuid or DEFAULT_NETUID)}
    found = {"local": False, "wallet_name": env.get("WALLET_NAME"), "wallet_hotkey": env.get("WALLET_HOTKEY"),
             "netuid": int(netuid) if netuid else None}
    return {key: value for key, value in found.items() if value not in (None, "")}


def _identity(path: Path) -> tuple[str, str, str, bool] | None:
    """(wallet, hotkey, netuid, local) from a journal's name, when the name says it unambiguously."""
    match = JOURNAL_NAME.fullmatch(path.name)
    if match is None:
        return None
    wallet, _, hotkey = match["pair"].partition("-")
    if not wallet or not hotkey or "-" in hotkey:  # a name with '-' in it: the file name does not say where it splits
        return None
    return wallet, hotkey, match["netuid"], bool(match["local"])


def _whose(path: Path) -> str:
    found = _identity(path)
    if found is None:
        match = JOURNAL_NAME.fullmatch(path.name)
        return f"miner {match['pair']}, netuid {match['netuid']}" + (", local mode" if match["local"] else "") if match else "a miner"
    wallet, hotkey, netuid, local = found
    return f"wallet {wallet}, hotkey {hotkey}, netuid {netuid}" + (", local mode" if local else "")


def listing(state_dir: Path) -> list[str]:
    """Each journal in the folder with the flags that choose it."""
    lines = []
    for path in sorted(state_dir.glob("journal-*.sqlite")):
        found = _identity(path)
        if found is not None:
            wallet, hotkey, netuid, local = found
            flags = f"--wallet.name {wallet} --wallet.hotkey {hotkey} --netuid {netuid}" + (" --local" if local else "")
        else:
            flags = f"--journal {path}"
        lines.append(f"  {path.name}: {flags}")
    return lines


def choose(args: argparse.Namespace) -> Chosen:
    """The journal these flags (else miner.env) describe; raise FileNotFoundError saying what exists."""
    if args.journal is not None:
        if not args.journal.is_file():
            raise FileNotFoundError(f"{args.journal} does not exist")
        return Chosen(args.journal, _whose(args.journal), "--journal")
    state_dir = Path(args.state_dir or DEFAULT_STATE_DIR).expanduser()
    env_path = _env_file(args)
    identity = {"wallet_name": DEFAULT_WALLET, "wallet_hotkey": DEFAULT_HOTKEY, "netuid": DEFAULT_NETUID, "local": False}
    if env_path is not None:
        identity.update(_from_env(env_path))
    flags = {key: getattr(args, key) for key in ("wallet_name", "wallet_hotkey", "netuid", "local") if getattr(args, key) is not None}
    identity.update(flags)
    existing = listing(state_dir)
    if env_path is None and not flags:
        if len(existing) == 1:
            only = next(state_dir.glob("journal-*.sqlite"))
            return Chosen(only, _whose(only), f"being the only journal in {state_dir}")
        if not existing:
            raise FileNotFoundError(f"no miner journal in {state_dir}: has the miner run with this --neuron.state_dir?")
        raise FileNotFoundError(f"{len(existing)} miners' journals in {state_dir} and no miner.env here: say which with its flags "
                                "(or --env FILE, or --journal FILE):\n" + "\n".join(existing))
    name = state_name_of(identity["wallet_name"], identity["wallet_hotkey"], identity["netuid"], identity["local"])
    path = journal_path(state_dir, name)
    miner = (f"wallet {identity['wallet_name']}, hotkey {identity['wallet_hotkey']}, netuid {identity['netuid']}"
             + (", local mode" if identity["local"] else ""))
    how = " and ".join(part for part in ("flags" if flags else "", f"{env_path}" if env_path else "") if part)
    if not path.is_file():
        there = ("journals there:\n" + "\n".join(existing)) if existing else "there is no journal there at all"
        raise FileNotFoundError(f"no journal for {miner} (from {how}) in {state_dir}: {path.name} does not exist; {there}")
    return Chosen(path, miner, how)
