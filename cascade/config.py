"""Cascade presets: YAML validated once at load, with errors that name the field to fix."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .batching import BatchingTier
from .calibration import CalibratedTier, Calibration
from .engine import Cascade, CircuitBreaker, Stage
from .extras import names_the_tier_extra
from .model_folder import ModelFolderError, check_model_folder
from .tiers.vlm import DEFAULT_PROMPT
from .image import DEFAULT_DECODE_PX, DEFAULT_FORMATS, DEFAULT_MAX_ASPECT_RATIO, DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_MAX_PIXELS, ImageLimits

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
BUILTIN_PREFIX = "builtin:"
CPU_RUNTIMES = ("torch", "onnxruntime")  # classifier and detector tiers
VLM_RUNTIMES = ("transformers", "sglang", "sglang_http", "tensorrt_llm")
# Validators wait 9 s; keep room for the network and the HTTP stack on both ends.
VALIDATOR_TIMEOUT_S = 9.0


class ConfigError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageSection(_Strict):
    max_payload_bytes: int = Field(DEFAULT_MAX_PAYLOAD_BYTES, gt=0)
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, gt=0)
    formats: list[Literal["JPEG", "PNG", "WEBP", "BMP"]] = list(DEFAULT_FORMATS)
    max_aspect_ratio: float = Field(DEFAULT_MAX_ASPECT_RATIO, ge=1.0)  # longer frames are refused as hostile
    decode_px: int = Field(DEFAULT_DECODE_PX, ge=32, le=4096)  # JPEGs decode at the smallest scale keeping both sides >= this

    def limits(self) -> ImageLimits:
        return ImageLimits(self.max_payload_bytes, self.max_pixels, tuple(self.formats), self.max_aspect_ratio, self.decode_px)


class CalibrationSection(_Strict):
    """P = sigmoid((logit(p) - threshold) / temperature): written by `natix-miner calibrate --config`."""

    threshold: float
    temperature: float = Field(gt=0.0)

    def build(self) -> Calibration:
        return Calibration(self.threshold, self.temperature)


class TokenPruningSection(_Strict):
    """ViT tiers only (cascade/token_pruning.py): after block `after_layer`, keep this share of patch tokens."""

    keep_ratio: float = Field(gt=0.0, le=1.0)
    after_layer: int = Field(3, ge=0)


class TierSection(_Strict):
    name: str
    kind: Literal["classifier", "hf_classifier", "detector", "vlm", "zero_shot"]
    # "builtin:NAME", or a folder, absolute or relative to the YAML file (a preset: to the working
    # directory, see relative_base). For a VLM: the model
    # folder (Hugging Face layout, or a compression/ export); sglang_http may do without one.
    model: str | None = None
    # The hub repository `model` is fetched from (`natix-miner fetch-model REPO --out FOLDER`): the
    # folder's layout is then checked at load, and a missing one names that command.
    hub_repo: str | None = None
    device: str = "cpu"
    exit_below: float = Field(0.0, ge=0.0, le=1.0)
    exit_above: float = Field(1.0, ge=0.0, le=1.0)
    weight: float = Field(1.0, gt=0.0)  # in the log-odds fusion of the tiers that answered
    max_batch: int = Field(8, ge=1, le=256)  # concurrent images coalesced into one call
    max_wait_ms: float = Field(5.0, ge=0.0, le=1000.0)  # how long the first image waits for company
    breaker_failures: int = Field(3, ge=1)  # consecutive errors that take the tier out ...
    breaker_cooldown_s: float = Field(30.0, gt=0.0)  # ... for this long
    calibration: CalibrationSection | None = None  # of this tier's answers, before the fusion
    positive_label: str = "Roadwork"  # hf_classifier: the label whose probability is P(roadwork)
    token_pruning: TokenPruningSection | None = None  # classifier / hf_classifier with a ViT backbone
    # detector (`model`: ultralytics weights, a .pt file or a folder holding detector.pt, and for
    # runtime onnxruntime detector.onnx beside it: `natix-miner export-onnx FOLDER`)
    classes: dict[str, str] | None = None  # model class name -> roadwork category; default: all
    min_confidence: float = Field(0.25, gt=0.0, lt=1.0)
    floor: float = Field(0.1, ge=0.0, le=1.0)  # P(roadwork) when nothing is detected
    ceiling: float = Field(0.97, ge=0.0, le=1.0)  # P(roadwork) approached as detections pile up
    image_size: int = Field(224, ge=32, le=4096)
    # What runs the model. classifier, detector: torch (default) or onnxruntime (CPU only). vlm (required):
    # transformers, sglang, sglang_http or tensorrt_llm.
    runtime: Literal["torch", "onnxruntime", "transformers", "sglang", "sglang_http", "tensorrt_llm"] | None = None
    # VLM judges only
    prompt: str = DEFAULT_PROMPT
    prompt_template: str | None = None  # the chat-formatted prompt with {prompt}; default: the model's chat template
    url: str | None = None  # sglang_http: the server or router, e.g. http://10.0.0.5:30000
    server_args: dict[str, Any] = {}  # sglang: keyword arguments of sglang.Engine / ServerArgs
    kv_cache_dtype: str = "auto"  # tensorrt_llm
    top_logprobs: int = Field(20, ge=2, le=100)
    timeout_s: float = Field(8.0, gt=0.0)  # sglang_http request timeout
    # zero_shot (CLIP / SigLIP): prompts describing roadwork, and streets without it (default: the tier's)
    roadwork_prompts: list[str] | None = Field(None, min_length=1)
    street_prompts: list[str] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _consistent(self):
        if self.exit_below > self.exit_above:
            raise ValueError(f"exit_below ({self.exit_below}) must not exceed exit_above ({self.exit_above})")
        if self.kind != "vlm":
            allowed = CPU_RUNTIMES if self.kind in ("classifier", "detector") else ()
            if self.runtime is not None and self.runtime not in allowed:
                raise ValueError(
                    f"runtime {self.runtime} does not apply to a {self.kind} tier"
                    + (f" (choose {' or '.join(allowed)})" if allowed else "")
                )
            if self.runtime == "onnxruntime" and self.device != "cpu":
                raise ValueError(f"runtime onnxruntime runs on the CPU; for device {self.device} use runtime torch")
            if self.runtime == "onnxruntime" and self.token_pruning:
                raise ValueError("token_pruning runs in torch: use runtime torch with it")
            if self.model is None:
                raise ValueError(f"a {self.kind} tier needs model")
        else:
            if self.runtime not in VLM_RUNTIMES:
                raise ValueError(f"a vlm tier needs runtime: {', '.join(VLM_RUNTIMES)}")
            if self.runtime == "sglang_http":
                if not self.url:
                    raise ValueError("runtime sglang_http needs url")
                if self.model is None and self.prompt_template is None:
                    raise ValueError("runtime sglang_http needs model (for its chat template) or prompt_template")
            elif self.model is None:
                raise ValueError(f"runtime {self.runtime} needs model")
        if self.floor >= self.ceiling:
            raise ValueError(f"floor ({self.floor}) must be below ceiling ({self.ceiling})")
        if self.token_pruning and self.kind not in ("classifier", "hf_classifier"):
            raise ValueError("token_pruning applies to classifier and hf_classifier tiers (ViTs) only")
        if self.server_args and self.runtime != "sglang":
            raise ValueError("server_args apply to runtime sglang only")
        if (self.roadwork_prompts or self.street_prompts) and self.kind != "zero_shot":
            raise ValueError("roadwork_prompts and street_prompts apply to zero_shot tiers only")
        if self.hub_repo and (self.model is None or self.model.startswith(BUILTIN_PREFIX)):
            raise ValueError("hub_repo needs model: the local folder the repository is fetched into")
        return self


class CascadeConfig(_Strict):
    # Install extras the tiers need beyond the base (pyproject.toml): scripts/setup_venv.sh reads
    # this line of a preset to install them; tests/test_extras.py checks it against the tiers.
    requires: list[Literal["train", "vlm", "gpu"]] = []
    deadline_s: float = Field(6.5, gt=0.0, lt=VALIDATOR_TIMEOUT_S)
    workers: int = Field(8, ge=1, le=256)  # images in flight; concurrent ones are batched per tier
    # Answered when the cascade fails or misses the deadline. 0.5 rounds to 0 (no roadwork) at the
    # validator; a valid guess scores better than -1, which earns 0 for the request.
    fallback_probability: float = Field(0.5, ge=0.0, le=1.0)
    cache_size: int = Field(4096, ge=0)  # answers remembered by image content hash; 0 turns it off
    calibration: CalibrationSection | None = None  # of the fused answer: puts the decision on 0.5
    image: ImageSection = ImageSection()
    tiers: list[TierSection] = Field(min_length=1)

    source: Path | None = Field(None, exclude=True)

    def model_folder(self, tier: TierSection) -> Path | None:
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


def validation_problems(exc: ValidationError) -> str:
    """Every problem pydantic found, each as `where.in.the.yaml: what`, on one line."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors())


def load_config(name_or_path: str, device_override: str | None = None, check_models: bool = True) -> CascadeConfig:
    path = resolve_config_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if device_override:
        for tier in raw.get("tiers", []) or []:
            if isinstance(tier, dict):
                tier["device"] = device_override
                if tier.get("runtime") == "onnxruntime" and device_override != "cpu":
                    tier["runtime"] = "torch"  # the device named wins; our ONNX Runtime path is CPU-only
    try:
        config = CascadeConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problems(exc)}") from None
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


def sglang_server_args(config: CascadeConfig, tier: TierSection) -> dict[str, Any]:
    """What the tier hands to sglang.Engine: its server_args, with model_path resolved."""
    return {"model_path": str(config.model_folder(tier)), **tier.server_args}


@names_the_tier_extra
def build_tier(config: CascadeConfig, tier: TierSection):
    """The tier as the config describes it; GPU runtimes import their engines only here."""
    folder = config.model_folder(tier)
    if tier.kind == "classifier":
        from .tiers.classifier import ClassifierTier  # torch import deferred until a cascade is built

        return ClassifierTier(folder, name=tier.name, device=tier.device, token_pruning=tier.token_pruning, runtime=tier.runtime or "torch")
    if tier.kind == "detector":
        from .tiers.detector import DetectorTier

        return DetectorTier(folder, tier.name, tier.device, tier.classes, tier.min_confidence, tier.floor, tier.ceiling, tier.image_size, tier.runtime or "torch")
    if tier.kind == "hf_classifier":
        from .tiers.hf_classifier import HFClassifierTier

        return HFClassifierTier(folder, tier.name, tier.device, tier.positive_label, tier.token_pruning)
    if tier.kind == "zero_shot":
        from .tiers.zero_shot import ZeroShotTier

        return ZeroShotTier(folder, tier.name, tier.device, tier.roadwork_prompts, tier.street_prompts)
    from .tiers.vlm import VLMJudgeTier

    if tier.runtime == "transformers":
        from .runtimes.transformers_runtime import TransformersRuntime

        runtime = TransformersRuntime(folder, tier.device, tier.prompt_template)
    elif tier.runtime == "sglang":
        from .runtimes.sglang_runtime import SGLangRuntime

        runtime = SGLangRuntime(sglang_server_args(config, tier), tier.prompt_template, tier.top_logprobs)
    elif tier.runtime == "sglang_http":
        from .runtimes.prompting import prompt_pattern
        from .runtimes.sglang_runtime import SGLangHTTPRuntime

        runtime = SGLangHTTPRuntime(tier.url, prompt_pattern(folder, tier.prompt_template), tier.timeout_s, tier.top_logprobs)
    else:
        from .runtimes.tensorrt_llm_runtime import TensorRTLLMRuntime

        runtime = TensorRTLLMRuntime(str(folder), tier.kv_cache_dtype, tier.prompt_template, tier.top_logprobs)
    return VLMJudgeTier(runtime, tier.name, tier.prompt)


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
