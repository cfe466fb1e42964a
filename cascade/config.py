"""Cascade presets: YAML validated once at load, with errors that name the field to fix."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError

from .batching import BatchingTier
from .calibration import CalibratedTier
from .engine import DEFAULT_CACHE_SIZE, DEFAULT_WORKERS, Cascade, CircuitBreaker, Stage
from .extras import names_the_tier_extra
from .model_folder import ModelFolderError, check_model_folder
from .tier_kinds import BUILTIN_PREFIX, TIER_KINDS, CalibrationSection, StrictSection, TierBase, TierSection
from .tier_kinds import TokenPruningSection  # noqa: F401 - benchmarks read it from here
from .image import DEFAULT_DECODE_PX, DEFAULT_FORMATS, DEFAULT_MAX_ASPECT_RATIO, DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_MAX_PIXELS, ImageLimits

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
# Validators wait 9 s; keep room for the network and the HTTP stack on both ends.
VALIDATOR_TIMEOUT_S = 9.0


class ConfigError(ValueError):
    pass


Section = TypeVar("Section", bound=BaseModel)


class ImageSection(StrictSection):
    max_payload_bytes: int = Field(DEFAULT_MAX_PAYLOAD_BYTES, gt=0)
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, gt=0)
    formats: list[Literal["JPEG", "PNG", "WEBP", "BMP"]] = list(DEFAULT_FORMATS)
    max_aspect_ratio: float = Field(DEFAULT_MAX_ASPECT_RATIO, ge=1.0)  # longer frames are refused as hostile
    decode_px: int = Field(DEFAULT_DECODE_PX, ge=32, le=4096)  # JPEGs decode at the smallest scale keeping both sides >= this

    def limits(self) -> ImageLimits:
        return ImageLimits(self.max_payload_bytes, self.max_pixels, tuple(self.formats), self.max_aspect_ratio, self.decode_px)


class CascadeConfig(StrictSection):
    # Install extras the tiers need beyond the base (pyproject.toml): scripts/setup_venv.sh reads
    # this line of a preset to install them; tests/test_extras.py checks it against the tiers.
    requires: list[Literal["train", "vlm", "gpu"]] = []
    deadline_s: float = Field(6.5, gt=0.0, lt=VALIDATOR_TIMEOUT_S)
    workers: int = Field(DEFAULT_WORKERS, ge=1, le=256)
    # Answered when the cascade fails or misses the deadline. 0.5 rounds to 0 (no roadwork) at the
    # validator; a valid guess scores better than -1, which earns 0 for the request.
    fallback_probability: float = Field(0.5, ge=0.0, le=1.0)
    cache_size: int = Field(DEFAULT_CACHE_SIZE, ge=0)  # 0 turns the cache off
    calibration: CalibrationSection | None = None  # of the fused answer: puts the decision on 0.5
    image: ImageSection = ImageSection()
    tiers: list[TierSection] = Field(min_length=1)

    source: Path | None = Field(None, exclude=True)

    def model_folder(self, tier: TierBase) -> Path | None:
        if tier.model is None:
            return None
        if tier.model.startswith(BUILTIN_PREFIX):
            return builtin_model_folder(tier.model)
        path = Path(tier.model).expanduser()
        if not path.is_absolute() and self.source is not None:
            path = (relative_base(self.source, PRESETS_DIR) / path).resolve()
        return path


def relative_base(source: Path, shipped_dir: Path) -> Path:
    """Where a YAML file's relative paths start: its own folder, but for a preset or recipe shipped
    with the code (in `shipped_dir`), whose `artifacts/...` are the operator's, the working directory."""
    folder = Path(source).resolve().parent
    return Path.cwd() if folder == Path(shipped_dir).resolve() else folder


def builtin_model_folder(reference: str) -> Path:
    """Where `builtin:NAME` lives: a model shipped inside the package."""
    return Path(str(importlib.resources.files("cascade") / "builtin" / reference[len(BUILTIN_PREFIX):]))


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def resolve_config_path(name_or_path: str) -> Path:
    """A preset name (`cpu-default`) or a path to a YAML file."""
    path = Path(name_or_path).expanduser()
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"cascade config {path} does not exist")
        return path
    preset = PRESETS_DIR / f"{name_or_path}.yaml"
    if not preset.is_file():
        raise ConfigError(
            f"unknown cascade preset {name_or_path!r}: choose one of {', '.join(list_presets())} or give a .yaml path"
        )
    return preset


def yaml_location(loc: tuple) -> str:
    """pydantic's path to a field as the YAML spells it: `tiers.0.colour`, without the union's tag
    (`tiers.0.classifier.colour`) that pydantic puts after a tier's index."""
    parts = [str(part) for index, part in enumerate(loc) if not (part in TIER_KINDS and index and isinstance(loc[index - 1], int))]
    return ".".join(parts) or "(top level)"


def validation_problems(exc: ValidationError) -> str:
    """Every problem pydantic found, each as `where.in.the.yaml: what`, on one line."""
    return "; ".join(f"{yaml_location(err['loc'])}: {err['msg']}" for err in exc.errors())


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML file's mapping of keys to values (an empty file: none); ConfigError naming the file otherwise."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} holds a YAML {type(raw).__name__}, not a mapping of keys to values")
    return raw


def load_yaml(path: Path, model: type[Section], adjust: Callable[[dict[str, Any]], None] | None = None) -> Section:
    """The one way a YAML file becomes a validated section: `adjust` may edit the raw mapping first;
    every problem is named in one ConfigError, as `FILE: where.in.the.yaml: what`."""
    raw = read_yaml(path)
    if adjust is not None:
        adjust(raw)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problems(exc)}") from None


def _put_every_tier_on(device: str) -> Callable[[dict[str, Any]], None]:
    def adjust(raw: dict[str, Any]) -> None:
        for tier in raw.get("tiers", []) or []:
            if isinstance(tier, dict):
                tier["device"] = device
                if tier.get("runtime") == "onnxruntime" and device != "cpu":
                    tier["runtime"] = "torch"  # the device named wins; our ONNX Runtime path is CPU-only

    return adjust


def load_config(name_or_path: str, device_override: str | None = None, check_models: bool = True) -> CascadeConfig:
    path = resolve_config_path(name_or_path)
    config = load_yaml(path, CascadeConfig, _put_every_tier_on(device_override) if device_override else None)
    config.source = path
    for tier in config.tiers if check_models else []:
        folder = config.model_folder(tier)
        if tier.hub_repo:
            try:
                check_model_folder(folder, tier.hub_repo)
            except ModelFolderError as exc:
                raise ConfigError(f"{path}: tier {tier.name!r} {exc}") from None
        elif folder is not None and not folder.exists():
            raise ConfigError(f"{path}: tier {tier.name!r} model {folder} does not exist")
    return config


def sglang_server_args(config: CascadeConfig, tier: TierBase) -> dict[str, Any]:
    """What an sglang tier hands to sglang.Engine: its server_args, with model_path resolved."""
    return tier.sglang_server_args(config.model_folder(tier))


@names_the_tier_extra
def build_tier(config: CascadeConfig, tier: TierBase):
    """The tier as the config describes it; its kind's section imports the model library (cascade/tier_kinds.py)."""
    return tier.build(config.model_folder(tier))


def build_cascade(config: CascadeConfig) -> Cascade:
    stages, breakers = [], []
    for tier in config.tiers:
        built = build_tier(config, tier)
        if tier.calibration is not None:
            built = CalibratedTier(built, tier.calibration.build())
        if tier.max_batch > 1:
            built = BatchingTier(built, tier.max_batch, tier.max_wait_ms)
        stages.append(Stage(built, tier.exit_below, tier.exit_above, tier.weight))
        breakers.append(CircuitBreaker(tier.breaker_failures, tier.breaker_cooldown_s))
    final = config.calibration.build() if config.calibration else None
    return Cascade(stages, breakers, cache_size=config.cache_size, workers=config.workers, calibration=final)
