"""The miner's settings: one pydantic model whose fields are its command-line flags.

Each field of `MinerSettings` holds one flag's name, default, help and checks; `build_parser` writes
the flags from the fields (as SGLang's ServerArgs does), adds bittensor's own wallet/subtensor/axon/
logging flags, and `settings_from_args` validates what was given, reporting every problem at once,
one line each. The flags are those SN72 operators already use (the reference start_miner.sh),
bittensor's, and ours.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Annotated, Literal

import bittensor as bt
from bittensor.utils import is_valid_ss58_address
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from cascade.config import CascadeConfig, ConfigError, list_presets, load_config

from ..argparsing import Parser, add_flags, flag, flag_problems, flag_values, hide, library_flag
from .guard import REAL_RATE_BURST, REAL_RATE_LIMIT
from .local_chain import SUBNET_STATES
from .logs import COMPRESSIONS, logger, parse_size

DEFAULT_PRESET = "cpu-default"
LOCAL_VALIDATOR_STAKE = 10_000.0
LOCAL_RATE_LIMIT, LOCAL_RATE_BURST = 1e6, 1_000_000  # local mode's validators are the operator's own keys
UNSET = (None, "", "None")  # what start scripts pass for a flag they leave empty

GROUPS = {  # the --help sections, in this order
    "neuron": "neuron (reference miner flags)",
    "blacklist": "blacklist",
    "logs": "logs (the miner's own, besides bittensor's --logging flags)",
    "local": "local mode (no chain needed)",
}


def _folder(path: Path | None) -> Path | None:
    if path is not None and path.expanduser().is_file():
        raise ValueError(f"{path} is a file: give a folder")
    return None if path is None else path.expanduser()


def _file(path: Path | None) -> Path | None:
    if path is not None and path.expanduser().is_dir():
        raise ValueError(f"{path} is a folder: give a file path")
    return None if path is None else path.expanduser()


class MinerSettings(BaseModel):
    model_config = ConfigDict(validate_default=True, extra="forbid")

    # bittensor's flags (their defaults are bittensor's); read here so that one object holds it all
    wallet_name: str = library_flag("--wallet.name")
    wallet_hotkey: str = library_flag("--wallet.hotkey")
    wallet_path: str = library_flag("--wallet.path")
    subtensor_network: str = library_flag("--subtensor.network")
    subtensor_chain_endpoint: str | None = library_flag("--subtensor.chain_endpoint")
    axon_ip: str = library_flag("--axon.ip")
    axon_port: int = library_flag("--axon.port", ge=1, le=65535)
    axon_external_ip: str | None = library_flag("--axon.external_ip")
    axon_external_port: int | None = library_flag("--axon.external_port", ge=1, le=65535)
    axon_max_workers: int = library_flag("--axon.max_workers", ge=1)
    logging_debug: bool = library_flag("--logging.debug")
    logging_trace: bool = library_flag("--logging.trace")

    # ours, in --help order
    netuid: int = flag("--netuid", 72, "subnet to mine on: 72 mainnet, 323 testnet", ge=0, le=65535)
    model_url: str = flag("--model_url", "", "Hugging Face repo of your model (SN72 requires it)")
    config: str | None = flag("--config", None, f"cascade preset ({', '.join(list_presets())}) or a YAML file; default {DEFAULT_PRESET}")
    image_detector_device: str | None = flag(
        "--neuron.image_detector_device", None, "device for every tier (cpu, cuda, cuda:N); default: as the cascade config says", group="neuron")
    image_detector_config: str | None = flag(
        "--neuron.image_detector_config", None, "accepted for start-script compatibility: a .yaml path here is used as --config", group="neuron")
    image_detector: str | None = flag(
        "--neuron.image_detector", None, "accepted for start-script compatibility; the cascade config chooses the models", group="neuron")
    force_validator_permit: bool = flag(
        "--blacklist.force_validator_permit", True,
        "refuse hotkeys without a validator permit ('false' to allow any registered hotkey)", group="blacklist")
    min_stake: float = flag("--blacklist.min_stake", 0.0, "refuse callers with less stake (TAO)", group="blacklist", ge=0.0)
    rate_limit: float | None = flag(
        "--blacklist.rate_limit", None,
        f"sustained requests/s allowed per hotkey (default {REAL_RATE_LIMIT:g}; unlimited in local mode, whose validators are your own keys)",
        group="blacklist", gt=0.0)
    rate_burst: int | None = flag(
        "--blacklist.rate_burst", None, f"requests a hotkey may send at once (default {REAL_RATE_BURST}; unlimited in local mode)",
        group="blacklist", ge=1)
    state_dir: Annotated[Path, AfterValidator(_folder)] = flag(
        "--neuron.state_dir", Path("~/.natix-miner"), "where the request journal (SQLite) lives; one file per wallet/hotkey/netuid")
    log_rotation: str = flag(
        "--logging.rotation", "50 MB",
        "start a new file in STATE_DIR/logs once the log reaches this size (B, KB, MB, GB, KiB, MiB, GiB)", group="logs")
    log_retention: int = flag("--logging.retention", 10, "log files kept, the live one included; the oldest go first", group="logs", ge=1)
    log_compression: str | None = flag(
        "--logging.compression", None, f"compress rotated files: {', '.join(COMPRESSIONS)} (default: none)", group="logs")
    metrics_port: int = flag("--metrics.port", 0, "serve Prometheus metrics at http://HOST:PORT/metrics (0: off)", ge=0, le=65535)
    metrics_ip: str = flag("--metrics.ip", "0.0.0.0", "address the metrics server binds to")
    active_margin: float = flag("--active.margin", 0.15, "keep images answered within this of 0.5, for labelling (0: keep none)", ge=0.0, le=0.5)
    active_max_images: int = flag("--active.max_images", 5000, "uncertain images kept in STATE_DIR/uncertain; oldest go first", ge=0)
    active_max_mb: float = flag("--active.max_mb", 500.0, "disk the uncertain images may fill (MiB); oldest go first", ge=0.0)
    harvest_dir: Annotated[Path | None, AfterValidator(_folder)] = flag(
        "--neuron.harvest_dir", None,
        "testnet: keep every image a validator sends with its label here (roadwork/, none/: what `natix-miner train --data` reads)")
    harvest_max_mb: float = flag("--neuron.harvest_max_mb", 2048.0, "disk the harvested images may fill (MiB); oldest go first", gt=0.0)
    journal_days: float = flag("--neuron.journal_days", 30.0, "days of requests the journal keeps", gt=0.0)
    chain_retries: int = flag("--neuron.chain_retries", 3, "retries (with backoff 2, 4, 8 s ...) before giving up on the chain", ge=0)
    sync_interval_s: float = flag("--neuron.sync_interval", 120.0, "seconds between metagraph refreshes", group="blacklist", ge=1.0)
    local: bool = flag(
        "--local", False, "run against an in-process chain where this hotkey is registered; creates a missing wallet", group="local")
    local_validator_hotkeys: list[str] = flag(
        "--local.validator_hotkey", [], "register this hotkey as a validator with stake and permit (repeatable)", group="local", metavar="SS58")
    local_subnet_state: Literal[SUBNET_STATES] = flag(
        "--local.subnet_state", "paying",
        "the local validators' weights: spread over the miners (paying) or all on the subnet owner's uid (halted, as SN72 since 2026-05-06)",
        group="local")
    ready_file: Annotated[Path | None, AfterValidator(_file)] = flag(
        "--local.ready_file", None, "write {hotkey,ip,port,uid,netuid} here once the axon answers", group="local")

    # loaded from --config (and the device flag) by settings_from_args, not a flag of its own
    cascade: CascadeConfig | None = Field(None, exclude=True)

    @field_validator("model_url")
    @classmethod
    def _a_hub_repo(cls, url: str) -> str:
        if url and "/" not in url:
            raise ValueError(f"{url!r} should name a Hugging Face repo, like user/model")
        return url

    @field_validator("log_rotation")
    @classmethod
    def _a_size(cls, text: str) -> str:
        parse_size(text)  # its ValueError names the text
        return text

    @field_validator("log_compression")
    @classmethod
    def _a_compression(cls, name: str | None) -> str | None:
        if name not in (None, "", *COMPRESSIONS):
            raise ValueError(f"{name!r} is not one of {', '.join(COMPRESSIONS)}")
        return name or None

    @field_validator("metrics_port")
    @classmethod
    def _apart_from_the_axon(cls, port: int, info: ValidationInfo) -> int:
        if port and port == info.data.get("axon_port"):
            raise ValueError(f"{port} is --axon.port's: choose another, or 0 (off)")
        return port

    @field_validator("local_validator_hotkeys")
    @classmethod
    def _local_validators(cls, hotkeys: list[str], info: ValidationInfo) -> list[str]:
        problems = [f"{hotkey!r} is not an SS58 address" for hotkey in hotkeys if not is_valid_ss58_address(hotkey)]
        if hotkeys and not info.data.get("local"):
            problems.append("only makes sense with --local")
        if problems:
            raise ValueError("\n".join(problems))
        return hotkeys

    @model_validator(mode="after")
    def _mode_rate_limits(self):
        """The flags as given, else the mode's defaults: an operator trying the miner locally (eval, the
        client) must not be refused by his own miner."""
        limit, burst = (LOCAL_RATE_LIMIT, LOCAL_RATE_BURST) if self.local else (REAL_RATE_LIMIT, REAL_RATE_BURST)
        self.rate_limit = limit if self.rate_limit is None else self.rate_limit
        self.rate_burst = burst if self.rate_burst is None else self.rate_burst
        return self

    # --- what the flags mean together --------------------------------------------------------------

    @property
    def network(self) -> str:
        """What bt.Subtensor is given, as bittensor decides it: an explicit endpoint wins, else the network name."""
        endpoint = self.subtensor_chain_endpoint
        return endpoint if endpoint and endpoint != bt.DEFAULTS.subtensor.chain_endpoint else self.subtensor_network

    @property
    def cascade_name(self) -> str:
        """--config, else a .yaml --neuron.image_detector_config (the reference start script's), else the default preset."""
        detector_config = self.image_detector_config
        if self.config is None and detector_config and str(detector_config).endswith((".yaml", ".yml")) and Path(detector_config).is_file():
            return detector_config
        return self.config or DEFAULT_PRESET

    @property
    def device_override(self) -> str | None:
        device = self.image_detector_device
        return None if device in (*UNSET, "auto") else device

    @property
    def active_max_bytes(self) -> int:
        return int(self.active_max_mb * 1024**2)

    @property
    def harvest_max_bytes(self) -> int:
        return int(self.harvest_max_mb * 1024**2)

    @property
    def log_level(self) -> str:
        return "trace" if self.logging_trace else "debug" if self.logging_debug else "info"


def build_parser(prog: str = "neurons/miner.py") -> argparse.ArgumentParser:
    """`prog`: how the operator started it (`natix-miner run` says so in its usage)."""
    parser = Parser(prog=prog, description="NATIX StreetVision (SN72) miner: answers validators with P(roadwork).")
    add_flags(parser, MinerSettings, GROUPS)
    bt.Wallet.add_args(parser)
    bt.Subtensor.add_args(parser)
    hide(parser, "subtensor._mock")  # bittensor's testing switch: a miner on a mocked chain serves nobody
    bt.Axon.add_args(parser)
    bt.logging.add_args(parser)
    return parser


def flags_as_given(args: argparse.Namespace) -> MinerSettings:
    """The settings the flags describe, unchecked: for `doctor`, which reports on them even when some are wrong."""
    return MinerSettings.model_construct(**flag_values(args, MinerSettings))


def settings_from_args(args: argparse.Namespace) -> MinerSettings:
    """Validate everything, the cascade config included; raise ConfigError listing every problem, one line each."""
    problems: list[str] = []
    try:
        settings = MinerSettings.model_validate(flag_values(args, MinerSettings))
    except ValidationError as exc:
        settings, problems = None, flag_problems(exc, MinerSettings)
    given = flags_as_given(args)
    if given.image_detector_config not in (*UNSET, given.cascade_name):
        logger.warning(f"--neuron.image_detector_config {given.image_detector_config} ignored: the cascade comes from --config")
    try:
        cascade = load_config(given.cascade_name, given.device_override)
    except ConfigError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(f"  - {p}" for p in problems))
    settings.cascade = cascade
    return settings
