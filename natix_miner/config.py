"""Command-line flags, validated once at start into `MinerSettings`.

The flags are those SN72 operators already use (the reference start_miner.sh), bittensor's own
wallet/subtensor/axon/logging flags, and ours. Every problem found is reported at once.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import bittensor as bt
from bittensor.utils import is_valid_ss58_address

from cascade.config import ConfigError, CascadeConfig, list_presets, load_config

from .argparsing import Parser, hide
from .local_chain import SUBNET_STATES
from .logs import COMPRESSIONS, logger, parse_size

DEFAULT_PRESET = "cpu-default"
LOCAL_VALIDATOR_STAKE = 10_000.0


def parse_bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


REAL_RATE_LIMIT, REAL_RATE_BURST = 5.0, 20  # a real validator reaches a miner every few minutes
LOCAL_RATE_LIMIT, LOCAL_RATE_BURST = 1e6, 1_000_000  # local mode's validators are the operator's own keys


def rate_limits(local: bool, rate_limit: float | None, rate_burst: int | None) -> tuple[float, int]:
    """The flags as given, else the mode's defaults: an operator trying the miner locally (eval, the
    client) must not be refused by his own miner."""
    default_limit, default_burst = (LOCAL_RATE_LIMIT, LOCAL_RATE_BURST) if local else (REAL_RATE_LIMIT, REAL_RATE_BURST)
    return (default_limit if rate_limit is None else rate_limit), (default_burst if rate_burst is None else rate_burst)


def build_parser(prog: str = "neurons/miner.py") -> argparse.ArgumentParser:
    """`prog`: how the operator started it (`natix-miner run` says so in its usage)."""
    parser = Parser(prog=prog, description="NATIX StreetVision (SN72) miner: answers validators with P(roadwork).")
    parser.add_argument("--netuid", type=int, default=72, help="subnet to mine on: 72 mainnet, 323 testnet")
    parser.add_argument("--model_url", type=str, default="", help="Hugging Face repo of your model (SN72 requires it)")
    parser.add_argument(
        "--config",
        type=str,
        default=None,
        help=f"cascade preset ({', '.join(list_presets())}) or a YAML file; default {DEFAULT_PRESET}",
    )
    neuron = parser.add_argument_group("neuron (reference miner flags)")
    neuron.add_argument(
        "--neuron.image_detector_device",
        type=str,
        default=None,
        help="device for every tier (cpu, cuda, cuda:N); default: as the cascade config says",
    )
    neuron.add_argument(
        "--neuron.image_detector_config",
        type=str,
        default=None,
        help="accepted for start-script compatibility: a .yaml path here is used as --config",
    )
    neuron.add_argument(
        "--neuron.image_detector",
        type=str,
        default=None,
        help="accepted for start-script compatibility; the cascade config chooses the models",
    )
    guard = parser.add_argument_group("blacklist")
    guard.add_argument(
        "--blacklist.force_validator_permit",
        type=parse_bool,
        nargs="?",
        const=True,
        default=True,
        help="refuse hotkeys without a validator permit ('false' to allow any registered hotkey)",
    )
    guard.add_argument("--blacklist.min_stake", type=float, default=0.0, help="refuse callers with less stake (TAO)")
    guard.add_argument("--blacklist.rate_limit", type=float, default=None,
                       help=f"sustained requests/s allowed per hotkey (default {REAL_RATE_LIMIT:g}; unlimited in local mode, "
                            "whose validators are your own keys)")
    guard.add_argument("--blacklist.rate_burst", type=int, default=None,
                       help=f"requests a hotkey may send at once (default {REAL_RATE_BURST}; unlimited in local mode)")
    parser.add_argument(
        "--neuron.state_dir",
        type=Path,
        default=Path("~/.natix-miner"),
        help="where the request journal (SQLite) lives; one file per wallet/hotkey/netuid",
    )
    logs = parser.add_argument_group("logs (the miner's own, besides bittensor's --logging flags)")
    logs.add_argument(
        "--logging.rotation", default="50 MB", help="start a new file in STATE_DIR/logs once the log reaches this size (B, KB, MB, GB, KiB, MiB, GiB)"
    )
    logs.add_argument("--logging.retention", type=int, default=10, help="log files kept, the live one included; the oldest go first")
    logs.add_argument("--logging.compression", default="", help=f"compress rotated files: {', '.join(COMPRESSIONS)} (default: none)")
    parser.add_argument("--metrics.port", type=int, default=0, help="serve Prometheus metrics at http://HOST:PORT/metrics (0: off)")
    parser.add_argument("--metrics.ip", default="0.0.0.0", help="address the metrics server binds to")
    parser.add_argument("--active.margin", type=float, default=0.15, help="keep images answered within this of 0.5, for labelling (0: keep none)")
    parser.add_argument("--active.max_images", type=int, default=5000, help="uncertain images kept in STATE_DIR/uncertain; oldest go first")
    parser.add_argument("--active.max_mb", type=float, default=500.0, help="disk the uncertain images may fill (MiB); oldest go first")
    parser.add_argument(
        "--neuron.harvest_dir", type=Path, default=None,
        help="testnet: keep every image a validator sends with its label here (roadwork/, none/: what `natix-miner train --data` reads)",
    )
    parser.add_argument("--neuron.harvest_max_mb", type=float, default=2048.0, help="disk the harvested images may fill (MiB); oldest go first")
    parser.add_argument("--neuron.journal_days", type=float, default=30.0, help="days of requests the journal keeps")
    parser.add_argument(
        "--neuron.chain_retries", type=int, default=3, help="retries (with backoff 2, 4, 8 s ...) before giving up on the chain"
    )
    guard.add_argument(
        "--neuron.sync_interval", type=float, default=120.0, help="seconds between metagraph refreshes"
    )
    local = parser.add_argument_group("local mode (no chain needed)")
    local.add_argument(
        "--local",
        action="store_true",
        help="run against an in-process chain where this hotkey is registered; creates a missing wallet",
    )
    local.add_argument(
        "--local.validator_hotkey",
        action="append",
        default=[],
        metavar="SS58",
        help="register this hotkey as a validator with stake and permit (repeatable)",
    )
    local.add_argument(
        "--local.subnet_state", choices=SUBNET_STATES, default="paying",
        help="the local validators' weights: spread over the miners (paying) or all on the subnet owner's uid (halted, as SN72 since 2026-05-06)",
    )
    local.add_argument("--local.ready_file", type=Path, default=None, help="write {hotkey,ip,port,uid,netuid} here once the axon answers")
    bt.Wallet.add_args(parser)
    bt.Subtensor.add_args(parser)
    hide(parser, "subtensor._mock")  # bittensor's testing switch: a miner on a mocked chain serves nobody
    bt.Axon.add_args(parser)
    bt.logging.add_args(parser)
    return parser


@dataclass
class MinerSettings:
    netuid: int
    model_url: str
    cascade: CascadeConfig
    wallet_name: str
    wallet_hotkey: str
    wallet_path: str
    network: str  # what bt.Subtensor is given: a network name or a ws(s):// endpoint
    axon_ip: str
    axon_port: int
    axon_external_ip: str | None
    axon_external_port: int | None
    axon_max_workers: int
    force_validator_permit: bool
    min_stake: float
    rate_limit: float
    rate_burst: int
    sync_interval_s: float
    chain_retries: int
    state_dir: Path
    journal_days: float
    metrics_port: int
    metrics_ip: str
    active_margin: float
    active_max_images: int
    local: bool
    active_max_bytes: int = 500 * 1024**2
    harvest_dir: Path | None = None
    harvest_max_bytes: int = 2048 * 1024**2
    local_subnet_state: str = "paying"
    local_validator_hotkeys: list[str] = field(default_factory=list)
    ready_file: Path | None = None
    log_level: str = "info"
    log_rotation: str = "50 MB"
    log_retention: int = 10
    log_compression: str | None = None


def _network(args: argparse.Namespace) -> str:
    """As bittensor does: an explicit endpoint wins, else the network name."""
    endpoint = getattr(args, "subtensor.chain_endpoint")
    network = getattr(args, "subtensor.network")
    explicit_endpoint = endpoint and endpoint != bt.DEFAULTS.subtensor.chain_endpoint
    return endpoint if explicit_endpoint else network


def settings_from_args(args: argparse.Namespace) -> MinerSettings:
    """Validate everything; raise ConfigError listing every problem with its fix."""
    get = lambda name: getattr(args, name)  # noqa: E731 - dotted dests need getattr
    problems: list[str] = []
    if not 0 <= args.netuid <= 65535:
        problems.append(f"--netuid {args.netuid} is not a subnet id (0..65535)")
    port = get("axon.port")
    if not 1 <= port <= 65535:
        problems.append(f"--axon.port {port} must be within 1..65535")
    rate_limit, rate_burst = rate_limits(args.local, get("blacklist.rate_limit"), get("blacklist.rate_burst"))
    if rate_limit <= 0 or rate_burst < 1:
        problems.append("--blacklist.rate_limit must be > 0 and --blacklist.rate_burst >= 1")
    if not 0 <= get("metrics.port") <= 65535 or (get("metrics.port") and get("metrics.port") == port):
        problems.append(f"--metrics.port {get('metrics.port')} must be 0 (off) or a free port other than --axon.port")
    if not 0 <= get("active.margin") <= 0.5 or get("active.max_images") < 0:
        problems.append("--active.margin must be within 0..0.5 and --active.max_images 0 or more")
    if get("active.max_mb") < 0 or get("neuron.harvest_max_mb") <= 0:
        problems.append("--active.max_mb must be 0 or more and --neuron.harvest_max_mb more than 0")
    if get("neuron.journal_days") <= 0:
        problems.append("--neuron.journal_days must be more than 0")
    if get("neuron.chain_retries") < 0:
        problems.append("--neuron.chain_retries must be 0 or more")
    if get("neuron.sync_interval") < 1:
        problems.append("--neuron.sync_interval must be at least 1 second")
    try:
        parse_size(get("logging.rotation"))
    except ValueError as exc:
        problems.append(f"--logging.rotation {exc}")
    if get("logging.retention") < 1:
        problems.append("--logging.retention must be at least 1 (the live file)")
    compression = get("logging.compression") or None
    if compression not in (None, *COMPRESSIONS):
        problems.append(f"--logging.compression {compression!r} is not one of {', '.join(COMPRESSIONS)}")
    hotkeys = get("local.validator_hotkey")
    for hotkey in hotkeys:
        if not is_valid_ss58_address(hotkey):
            problems.append(f"--local.validator_hotkey {hotkey!r} is not an SS58 address")
    if hotkeys and not args.local:
        problems.append("--local.validator_hotkey only makes sense with --local")
    if args.model_url and "/" not in args.model_url:
        problems.append(f"--model_url {args.model_url!r} should name a Hugging Face repo, like user/model")

    config_name = args.config
    detector_config = get("neuron.image_detector_config")
    if config_name is None and detector_config and str(detector_config).endswith((".yaml", ".yml")) and Path(detector_config).is_file():
        config_name = detector_config
    elif detector_config not in (None, "", "None"):
        logger.warning(f"--neuron.image_detector_config {detector_config} ignored: the cascade comes from --config")
    cascade = None
    try:
        device = get("neuron.image_detector_device")
        cascade = load_config(config_name or DEFAULT_PRESET, device if device not in (None, "", "None", "auto") else None)
    except ConfigError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(f"  - {p}" for p in problems))

    level = "trace" if get("logging.trace") else "debug" if get("logging.debug") else "info"
    return MinerSettings(
        netuid=args.netuid,
        model_url=args.model_url,
        cascade=cascade,
        wallet_name=get("wallet.name"),
        wallet_hotkey=get("wallet.hotkey"),
        wallet_path=get("wallet.path"),
        network=_network(args),
        axon_ip=get("axon.ip"),
        axon_port=port,
        axon_external_ip=get("axon.external_ip"),
        axon_external_port=get("axon.external_port"),
        axon_max_workers=get("axon.max_workers"),
        force_validator_permit=get("blacklist.force_validator_permit"),
        min_stake=get("blacklist.min_stake"),
        rate_limit=rate_limit,
        rate_burst=rate_burst,
        sync_interval_s=get("neuron.sync_interval"),
        chain_retries=get("neuron.chain_retries"),
        state_dir=Path(get("neuron.state_dir")).expanduser(),
        journal_days=get("neuron.journal_days"),
        metrics_port=get("metrics.port"),
        metrics_ip=get("metrics.ip"),
        active_margin=get("active.margin"),
        active_max_images=get("active.max_images"),
        local=args.local,
        active_max_bytes=int(get("active.max_mb") * 1024**2),
        harvest_dir=None if get("neuron.harvest_dir") is None else Path(get("neuron.harvest_dir")).expanduser(),
        harvest_max_bytes=int(get("neuron.harvest_max_mb") * 1024**2),
        local_subnet_state=get("local.subnet_state"),
        local_validator_hotkeys=list(hotkeys),
        ready_file=get("local.ready_file"),
        log_level=level,
        log_rotation=get("logging.rotation"),
        log_retention=get("logging.retention"),
        log_compression=compression,
    )
