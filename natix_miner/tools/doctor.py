"""`natix-miner doctor`: check an operator's set-up before the miner starts, and say what to fix.

Takes the miner's own flags (`natix-miner run`'s), so `natix-miner doctor ARGS` checks exactly what
`natix-miner run ARGS` would use. One line per check: OK, WARN (the miner may still run) or FAIL
(it will not, or not well), with the fix. Exit code 0 when nothing FAILs, 1 otherwise. Read-only:
it creates no keys and no folders; network look-ups are bounded by short timeouts.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import bittensor as bt

from cascade.config import CascadeConfig, ConfigError, list_presets, load_config
from cascade.extras import missing_extras
from compression.hardware import FP8_MIN_CC, NVFP4_MIN_CC

from ..serving.chain import connect_real_chain
from ..serving.config import LOCAL_VALIDATOR_STAKE, MinerSettings, build_parser, flags_as_given, settings_from_args
from ..serving.local_chain import build_local_chain
from ..serving.payout import PAYING, UNKNOWN, PayoutView, assess, sentence
from .status import quiet_line, recorded_payout
from ..serving.journal import journal_health, journal_path, state_name_of

MIN_FREE_BYTES = 2 * 1024**3
CHAIN_TIMEOUT_S = 20.0
IP_LOOKUP_TIMEOUT_S = 8.0
OK, WARN, FAIL = "OK", "WARN", "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f"  -> fix: {self.fix}" if self.fix and self.status != OK else ""
        return f"{self.status:<4}  {self.name:<13} {self.detail}{fix}"


def _within(seconds: float, work):
    """Run `work()` in a daemon thread; TimeoutError if it has not returned after `seconds`."""
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the caller
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="doctor-lookup")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def check_models(s: MinerSettings) -> Check:
    name = s.cascade_name
    try:
        config = load_config(name, s.device_override, check_models=True)
    except ConfigError as exc:
        return Check("models", FAIL, str(exc), f"build or copy the model folders it names, or choose another --config ({', '.join(list_presets())})")
    return Check("models", OK, f"{name}: {len(config.tiers)} tier(s), every model folder present")


def check_flags(args: argparse.Namespace, models: Check) -> Check:
    try:
        settings_from_args(args)
    except ConfigError as exc:
        problems = [line.strip()[2:] for line in str(exc).splitlines() if line.strip()[2:] != models.detail]
        if problems:
            return Check("flags", FAIL, "; ".join(problems), "correct these flags (see `natix-miner run --help`)")
    return Check("flags", OK, "valid")


def check_wallet(s: MinerSettings) -> tuple[Check, bt.Wallet | None]:
    name, hotkey, path = s.wallet_name, s.wallet_hotkey, s.wallet_path
    wallet = bt.Wallet(name=name, hotkey=hotkey, path=path)
    files = {"hotkey": wallet.hotkey_file, "coldkeypub": wallet.coldkeypub_file}
    missing = [kind for kind, keyfile in files.items() if not keyfile.exists_on_device()]
    if missing:
        detail = " and ".join(f"{kind} {files[kind].path}" for kind in missing) + " not found"
        fixes = []
        if "coldkeypub" in missing:
            fixes.append(f"`btcli wallet new_coldkey --wallet.name {name}` (or `btcli wallet regen_coldkeypub --wallet.name {name}` for an existing coldkey)")
        if "hotkey" in missing:
            fixes.append(f"`btcli wallet new_hotkey --wallet.name {name} --wallet.hotkey {hotkey}`")
        fix = " then ".join(fixes) + ", or point --wallet.name/--wallet.hotkey/--wallet.path at your keys"
        if s.local:
            return Check("wallet", WARN, f"{detail}; local mode will create unencrypted throwaway keys there", fix), None
        return Check("wallet", FAIL, detail, fix), None
    unreadable = [keyfile.path for keyfile in files.values() if not keyfile.is_readable()]
    if unreadable:
        return Check("wallet", FAIL, f"cannot read {', '.join(unreadable)}", "run the miner as the user who owns the keys, or `chmod u+r` them"), None
    if wallet.hotkey_file.is_encrypted():
        return Check("wallet", WARN, f"hotkey {wallet.hotkey_file.path} is password-protected: the miner will prompt for it at start, which pm2 cannot answer",
                     f"export {wallet.hotkey_file.env_var_name()}=PASSWORD for the miner, or use an unencrypted hotkey"), None
    try:
        hotkey_ss58, coldkey_ss58 = wallet.hotkey.ss58_address, wallet.coldkeypub.ss58_address
    except Exception as exc:
        return Check("wallet", FAIL, f"cannot load the keys under {path}: {type(exc).__name__}: {exc}", "regenerate them with `btcli wallet regen_hotkey` / `regen_coldkeypub`"), None
    return Check("wallet", OK, f"{name}/{hotkey}: hotkey {hotkey_ss58}, coldkey {coldkey_ss58}"), wallet


def check_chain(s: MinerSettings, wallet: bt.Wallet | None) -> list[Check]:
    """Registration, and from the same look at the chain, whether the subnet pays miners."""
    netuid = s.netuid
    if s.local:
        hotkey = wallet.hotkey.ss58_address if wallet is not None else "(this miner)"
        coldkey = wallet.coldkeypub.ss58_address if wallet is not None else hotkey
        chain = build_local_chain(netuid, hotkey, coldkey, s.local_validator_hotkeys, LOCAL_VALIDATOR_STAKE,
                                  s.local_subnet_state)  # as the neuron does in local mode
        view = assess(chain.snapshot(netuid), chain.weights(netuid), hotkey)
        if wallet is None:
            registration = Check("registration", OK, f"local mode: the miner registers its hotkey on its in-process chain, netuid {netuid}")
        else:
            registration = Check("registration", OK, f"local mode: in-process chain, netuid {netuid}, uid {chain.uid_for_hotkey(netuid, hotkey)}")
        return [registration, check_payout(view, "local mode: ")]
    if wallet is None:
        return [Check("registration", WARN, "not checked: no readable hotkey", "fix the wallet first"),
                Check("payout", WARN, "not checked: no readable hotkey", "fix the wallet first")]
    network, hotkey = s.network, wallet.hotkey.ss58_address

    def look_up():
        chain = connect_real_chain(network, attempts=1)
        exists = chain.subnet_exists(netuid)
        uid = chain.uid_for_hotkey(netuid, hotkey) if exists else None
        try:
            view = assess(chain.snapshot(netuid), chain.weights(netuid), hotkey) if exists else None
        except Exception as exc:  # the registration answer still stands
            view = exc
        return exists, uid, view

    try:
        exists, uid, view = _within(CHAIN_TIMEOUT_S, look_up)
    except Exception as exc:
        unreachable = f"chain {network} unreachable, %s not checked ({type(exc).__name__}: {str(exc)[:160]})"
        fix = "check --subtensor.network / --subtensor.chain_endpoint and the connection"
        return [Check("registration", WARN, unreachable % "registration", fix), Check("payout", WARN, unreachable % "payout", fix)]
    if not exists:
        return [Check("registration", FAIL, f"netuid {netuid} does not exist on {network}", "use --netuid 72 on finney (mainnet) or 323 on test (testnet)"),
                Check("payout", WARN, "not checked: no such subnet", "fix the netuid first")]
    payout = check_payout(view) if isinstance(view, PayoutView) else Check(
        "payout", WARN, f"the validators' weights could not be read ({type(view).__name__}: {str(view)[:160]})", "try again later")
    if uid is None:
        return [Check("registration", FAIL, f"hotkey {hotkey} is not registered on netuid {netuid} at {network}",
                      f"`btcli subnets register --netuid {netuid} --subtensor.network {network} --wallet.name {s.wallet_name} "
                      f"--wallet.hotkey {s.wallet_hotkey}`"), payout]
    return [Check("registration", OK, f"uid {uid} on netuid {netuid} at {network}"), payout]


def check_payout(view: PayoutView, prefix: str = "") -> Check:
    """OK when validators pay miners; a warning (not a failure: the miner runs) when they do not."""
    if view.state == PAYING:
        return Check("payout", OK, prefix + sentence(view))
    if view.state == UNKNOWN and prefix:
        return Check("payout", OK, prefix + "no validator given (--local.validator_hotkey), so no weights to read")
    if view.state == UNKNOWN:
        return Check("payout", WARN, prefix + sentence(view), "nothing to fix here; `natix-miner status` says it once validators set weights")
    return Check("payout", WARN, prefix + sentence(view),
                 "nothing to fix on this machine: while it lasts a server costs money and earns nothing; "
                 "`natix-miner status` and the log say when validators pay again")


def check_requests(s: MinerSettings) -> Check:
    """From the miner's own record: has a validator come as often as its schedule implies?"""
    journal = _journal_file(s)
    observed = recorded_payout(journal) if journal.is_file() else None
    if observed is None:
        return Check("requests", OK, f"not checked: no record of a run in {journal.parent} yet")
    line, overdue = quiet_line(journal, observed, time.time())
    if overdue:
        return Check("requests", WARN, line.removeprefix("WARNING: "), "see the advice above, then watch `natix-miner status`")
    return Check("requests", OK, line)


def check_port(s: MinerSettings) -> Check:
    """The bind the axon will make, as the neuron's own start-up check does it."""
    ip, port = s.axon_ip, s.axon_port
    host = ip.strip("[]") or "0.0.0.0"
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except (OSError, OverflowError) as exc:
        return Check("axon port", FAIL, f"cannot listen on {ip}:{port} ({getattr(exc, 'strerror', None) or exc})",
                     f"stop what holds it (`ss -ltnp 'sport = :{port}'` shows it) or choose another --axon.port")
    return Check("axon port", OK, f"{ip}:{port} is free")


def check_external_ip(s: MinerSettings) -> Check:
    port = s.axon_external_port or s.axon_port
    given = s.axon_external_ip
    if given is None and s.local:
        return Check("external ip", OK, f"local mode advertises 127.0.0.1:{port}")
    if given is None:
        try:
            given = str(_within(IP_LOOKUP_TIMEOUT_S, bt.utils.networking.get_external_ip)).strip()
        except Exception as exc:
            return Check("external ip", WARN, f"cannot look up this machine's public IP as bittensor does ({type(exc).__name__}: {str(exc) or 'every service failed'})",
                         "pass --axon.external_ip YOUR_PUBLIC_IP, or the miner cannot publish its axon")
        source = "looked up"
    else:
        source = "--axon.external_ip"
    try:
        address = ipaddress.ip_address(given)
    except ValueError:
        return Check("external ip", FAIL, f"{given!r} is not an IP address", "pass --axon.external_ip as a public IPv4 or IPv6 address")
    if not address.is_global and not s.local:
        return Check("external ip", WARN, f"the chain would advertise {given}:{port} ({source}), which validators on the internet cannot reach",
                     "pass --axon.external_ip YOUR_PUBLIC_IP and forward the port to this machine")
    return Check("external ip", OK, f"the chain will advertise {given}:{port} ({source}); make sure the port is open to the internet")


def check_disk(s: MinerSettings) -> Check:
    state_dir = Path(s.state_dir).expanduser()
    existing = next(p for p in (state_dir, *state_dir.parents) if p.exists())
    if not os.access(existing, os.W_OK):
        return Check("disk", FAIL, f"{existing} is not writable, so {state_dir} cannot hold the journal", "choose a writable --neuron.state_dir")
    free = shutil.disk_usage(existing).free
    detail = f"{free / 1024**3:.1f} GiB free under {existing} for the journal and the active-learning images"
    if free < MIN_FREE_BYTES:
        return Check("disk", WARN, detail, "free some space (2 GiB or more) or point --neuron.state_dir at a bigger disk")
    return Check("disk", OK, detail)


def _journal_file(s: MinerSettings) -> Path:
    """The journal of the miner these flags describe."""
    name = state_name_of(s.wallet_name, s.wallet_hotkey, s.netuid, s.local)
    return journal_path(Path(s.state_dir).expanduser(), name)


def check_journal(s: MinerSettings) -> Check:
    path = _journal_file(s)
    if not path.exists():
        return Check("journal", OK, f"{path} will be created at the first start")
    problems = journal_health(path)
    if problems:
        return Check("journal", WARN, f"{path} is degraded: " + "; ".join(problems), "answers go on meanwhile; see `natix-miner status`")
    return Check("journal", OK, f"{path} is readable and writable")


def required_capability(config: CascadeConfig) -> tuple[tuple[int, int] | None, str]:
    """The compute capability the preset's quantized formats need: NVFP4 10.0, FP8 8.9, else none."""
    formats = " ".join(
        str(value).lower()
        for tier in config.tiers if tier.kind == "vlm"  # only judges are quantized
        for value in (tier.server_args.get("quantization", ""), tier.server_args.get("kv_cache_dtype", ""), tier.kv_cache_dtype)
    )
    if "fp4" in formats:
        return NVFP4_MIN_CC, "NVFP4"
    if "fp8" in formats:
        return FP8_MIN_CC, "FP8"
    return None, ""


def check_extras(config: CascadeConfig, installed=None) -> Check:
    missing = missing_extras(config.tiers, installed)
    if missing:
        names = ",".join(sorted(missing))
        detail = "; ".join(f"the {extra} extra ({module} is not installed)" for extra, module in sorted(missing.items()))
        return Check("extras", FAIL, f"the cascade's tiers need {detail}", f"pip install 'natix-miner[{names}]' (run_miner.sh installs what its preset declares)")
    return Check("extras", OK, "every library the cascade's tiers import is installed")


def check_gpu(config: CascadeConfig, cuda=None) -> Check:
    devices = sorted({tier.device for tier in config.tiers if tier.device.startswith("cuda")})
    if not devices:
        return Check("gpu", OK, "not needed: every tier runs on the CPU")
    if cuda is None:
        try:
            import torch
        except ImportError:
            return Check("gpu", WARN, f"not checked: the cascade runs tiers on {', '.join(devices)} and torch is not installed",
                         "fix the extras line first")
        cuda = torch.cuda
    need, fmt = required_capability(config)
    if not cuda.is_available():
        return Check("gpu", FAIL, f"the cascade runs tiers on {', '.join(devices)} but torch sees no CUDA GPU",
                     "run on a GPU machine with its driver, or --config cpu-default (or --neuron.image_detector_device cpu)")
    found = []
    for device in devices:
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= cuda.device_count():
            return Check("gpu", FAIL, f"a tier asks for {device} but torch sees {cuda.device_count()} GPU(s)", "set the tiers' device to one that exists")
        cc, name = tuple(cuda.get_device_capability(index)), cuda.get_device_name(index)
        if need is not None and cc < need:
            return Check("gpu", FAIL, f"{name} ({device}) has compute capability {cc[0]}.{cc[1]}; the preset's {fmt} needs {need[0]}.{need[1]} or more",
                         "choose the preset for this GPU (h100: FP8 on >= 8.9, blackwell: NVFP4 on >= 10.0) or a tier without quantization")
        found.append(f"{name} ({device}, compute capability {cc[0]}.{cc[1]})")
    wanted = f"; {fmt} needs {need[0]}.{need[1]}" if need else ""
    return Check("gpu", OK, ", ".join(found) + wanted)


def run_checks(args: argparse.Namespace) -> list[Check]:
    given = flags_as_given(args)  # unchecked: every check runs, whatever check_flags finds
    models = check_models(given)
    checks = [check_flags(args, models)]
    wallet_check, wallet = check_wallet(given)
    checks += [wallet_check, *check_chain(given, wallet), check_requests(given), check_port(given), check_external_ip(given), models,
               check_disk(given), check_journal(given)]
    try:
        config = load_config(given.cascade_name, given.device_override, check_models=False)
        checks += [check_extras(config), check_gpu(config)]
    except ConfigError:
        checks.append(Check("gpu", WARN, "not checked: the cascade config does not load", "fix the models line first"))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = build_parser("natix-miner doctor")
    parser.description = __doc__
    args = parser.parse_args(argv)
    given = flags_as_given(args)
    where = "local mode (in-process chain)" if given.local else given.network
    print(f"natix-miner doctor: {where}, netuid {given.netuid}, cascade {given.cascade_name}, "
          f"wallet {given.wallet_name}/{given.wallet_hotkey} under {given.wallet_path}", flush=True)
    checks = run_checks(args)
    for check in checks:
        print(check.line(), flush=True)
    failed = [c.name for c in checks if c.status == FAIL]
    warned = [c.name for c in checks if c.status == WARN]
    if failed:
        print(f"{len(failed)} check(s) failed ({', '.join(failed)}): fix them before starting the miner")
        return 1
    print("ready to start" + (f" (read the warnings: {', '.join(warned)})" if warned else ""))
    return 0
