"""Tier kinds: each kind's YAML section (its fields and checks) and how it builds its tier.

`TIER_KINDS` maps a kind's name to its section, and `TierSection`, the union of them told apart by
`kind`, is what a cascade YAML's `tiers:` holds. A section imports its tier's module only in
`build`, so reading a config, or building a CPU cascade, never loads a model library it does not
use. A new kind is one section class here and one entry in TIER_KINDS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from .batching import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_MS
from .calibration import Calibration
from .engine import BREAKER_COOLDOWN_S, BREAKER_FAILURES
from .tiers.vlm import DEFAULT_PROMPT

BUILTIN_PREFIX = "builtin:"
CPU_RUNTIMES = ("torch", "onnxruntime")  # classifier and detector tiers; torch when none is named


class StrictSection(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CalibrationSection(StrictSection):
    """P = sigmoid((logit(p) - threshold) / temperature): written by `natix-miner calibrate --config`."""

    threshold: float
    temperature: float = Field(gt=0.0)

    def build(self) -> Calibration:
        return Calibration(self.threshold, self.temperature)


class TokenPruningSection(StrictSection):
    """ViT tiers only (cascade/token_pruning.py): after block `after_layer`, keep this share of patch tokens."""

    keep_ratio: float = Field(gt=0.0, le=1.0)
    after_layer: int = Field(3, ge=0)


class TierBase(StrictSection):
    """What every tier has: where its model is, where it runs, when it settles an image, and how it
    is batched and taken out when it fails."""

    RUNTIMES: ClassVar[tuple[str, ...]] = ()  # what may run this kind (`runtime:`); none: no choice
    RUNTIME_REQUIRED: ClassVar[bool] = False

    name: str
    kind: str
    # "builtin:NAME", or a folder, absolute or relative to the YAML file (a preset: to the working
    # directory, see config.relative_base).
    model: str | None = None
    # The hub repository `model` is fetched from (`natix-miner fetch-model REPO --out FOLDER`): the
    # folder's layout is then checked at load, and a missing one names that command.
    hub_repo: str | None = None
    device: str = "cpu"
    exit_below: float = Field(0.0, ge=0.0, le=1.0)
    exit_above: float = Field(1.0, ge=0.0, le=1.0)
    weight: float = Field(1.0, gt=0.0)  # in the log-odds fusion of the tiers that answered
    max_batch: int = Field(DEFAULT_MAX_BATCH, ge=1, le=256)
    max_wait_ms: float = Field(DEFAULT_MAX_WAIT_MS, ge=0.0, le=1000.0)
    breaker_failures: int = Field(BREAKER_FAILURES, ge=1)
    breaker_cooldown_s: float = Field(BREAKER_COOLDOWN_S, gt=0.0)
    calibration: CalibrationSection | None = None  # of this tier's answers, before the fusion
    runtime: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_field_of_another_kind(cls, data: Any) -> Any:
        """`street_prompts` on a classifier says which kinds take it, not just 'extra input'."""
        for key in data if isinstance(data, dict) else ():
            owners = [kind for kind, section in TIER_KINDS.items() if key not in cls.model_fields and key in section.model_fields]
            if owners:
                raise ValueError(f"{key} applies to {' and '.join(owners)} tiers only")
        return data

    @model_validator(mode="after")
    def _consistent(self):
        self.check()
        return self

    def check(self) -> None:
        """Raise ValueError, naming the fields, where the section contradicts itself."""
        if self.exit_below > self.exit_above:
            raise ValueError(f"exit_below ({self.exit_below}) must not exceed exit_above ({self.exit_above})")
        if self.RUNTIME_REQUIRED and self.runtime not in self.RUNTIMES:
            raise ValueError(f"a {self.kind} tier needs runtime: {', '.join(self.RUNTIMES)}")
        if self.runtime is not None and self.runtime not in self.RUNTIMES:
            choose = f" (choose {' or '.join(self.RUNTIMES)})" if self.RUNTIMES else ""
            raise ValueError(f"runtime {self.runtime} does not apply to a {self.kind} tier{choose}")
        if self.runtime == "onnxruntime" and self.device != "cpu":
            raise ValueError(f"runtime onnxruntime runs on the CPU; for device {self.device} use runtime torch")
        self.check_model()
        if self.hub_repo and (self.model is None or self.model.startswith(BUILTIN_PREFIX)):
            raise ValueError("hub_repo needs model: the local folder the repository is fetched into")

    def check_model(self) -> None:
        if self.model is None:
            raise ValueError(f"a {self.kind} tier needs model")

    def build(self, folder: Path | None):
        """The tier itself, its model loaded from `folder` (where `model` resolves)."""
        raise NotImplementedError


class ClassifierSection(TierBase):
    RUNTIMES = CPU_RUNTIMES

    kind: Literal["classifier"]
    token_pruning: TokenPruningSection | None = None  # with a ViT backbone

    def check(self) -> None:
        super().check()
        if self.runtime == "onnxruntime" and self.token_pruning:
            raise ValueError("token_pruning runs in torch: use runtime torch with it")

    def build(self, folder):
        from .tiers.classifier import ClassifierTier  # torch import deferred until a cascade is built

        return ClassifierTier(folder, name=self.name, device=self.device, token_pruning=self.token_pruning, runtime=self.runtime or "torch")


class HFClassifierSection(TierBase):
    kind: Literal["hf_classifier"]
    positive_label: str = "Roadwork"  # the label whose probability is P(roadwork)
    token_pruning: TokenPruningSection | None = None  # with a ViT backbone

    def build(self, folder):
        from .tiers.hf_classifier import HFClassifierTier

        return HFClassifierTier(folder, self.name, self.device, self.positive_label, self.token_pruning)


class DetectorSection(TierBase):
    """`model`: ultralytics weights, a .pt file or a folder holding detector.pt, and for runtime
    onnxruntime detector.onnx beside it (`natix-miner export-onnx FOLDER`)."""

    RUNTIMES = CPU_RUNTIMES

    kind: Literal["detector"]
    classes: dict[str, str] | None = None  # model class name -> roadwork category; default: all
    min_confidence: float = Field(0.25, gt=0.0, lt=1.0)
    floor: float = Field(0.1, ge=0.0, le=1.0)  # P(roadwork) when nothing is detected
    ceiling: float = Field(0.97, ge=0.0, le=1.0)  # P(roadwork) approached as detections pile up
    image_size: int = Field(224, ge=32, le=4096)

    def check(self) -> None:
        super().check()
        if self.floor >= self.ceiling:
            raise ValueError(f"floor ({self.floor}) must be below ceiling ({self.ceiling})")

    def build(self, folder):
        from .tiers.detector import DetectorTier

        return DetectorTier(folder, self.name, self.device, self.classes, self.min_confidence, self.floor, self.ceiling, self.image_size,
                            self.runtime or "torch")


class ZeroShotSection(TierBase):
    """CLIP / SigLIP: prompts describing roadwork, and streets without it (default: the tier's)."""

    kind: Literal["zero_shot"]
    roadwork_prompts: list[str] | None = Field(None, min_length=1)
    street_prompts: list[str] | None = Field(None, min_length=1)

    def build(self, folder):
        from .tiers.zero_shot import ZeroShotTier

        return ZeroShotTier(folder, self.name, self.device, self.roadwork_prompts, self.street_prompts)


def _transformers(tier: VLMSection, folder: Path | None):
    from .runtimes.transformers_runtime import TransformersRuntime

    return TransformersRuntime(folder, tier.device, tier.prompt_template)


def _sglang(tier: VLMSection, folder: Path | None):
    from .runtimes.sglang_runtime import SGLangRuntime

    return SGLangRuntime(tier.sglang_server_args(folder), tier.prompt_template, tier.top_logprobs)


def _sglang_http(tier: VLMSection, folder: Path | None):
    from .runtimes.prompting import prompt_pattern
    from .runtimes.sglang_runtime import SGLangHTTPRuntime

    return SGLangHTTPRuntime(tier.url, prompt_pattern(folder, tier.prompt_template), tier.timeout_s, tier.top_logprobs)


def _tensorrt_llm(tier: VLMSection, folder: Path | None):
    from .runtimes.tensorrt_llm_runtime import TensorRTLLMRuntime

    return TensorRTLLMRuntime(str(folder), tier.kv_cache_dtype, tier.prompt_template, tier.top_logprobs)


JUDGE_RUNTIMES = {"transformers": _transformers, "sglang": _sglang, "sglang_http": _sglang_http, "tensorrt_llm": _tensorrt_llm}


class VLMSection(TierBase):
    """A VLM judge. `model`: the model folder (Hugging Face layout, or a compression/ export);
    sglang_http may do without one."""

    RUNTIMES = tuple(JUDGE_RUNTIMES)
    RUNTIME_REQUIRED = True

    kind: Literal["vlm"]
    prompt: str = DEFAULT_PROMPT
    prompt_template: str | None = None  # the chat-formatted prompt with {prompt}; default: the model's chat template
    url: str | None = None  # sglang_http: the server or router, e.g. http://10.0.0.5:30000
    server_args: dict[str, Any] = {}  # sglang: keyword arguments of sglang.Engine / ServerArgs
    kv_cache_dtype: str = "auto"  # tensorrt_llm
    top_logprobs: int = Field(20, ge=2, le=100)
    timeout_s: float = Field(8.0, gt=0.0)  # sglang_http request timeout

    def check_model(self) -> None:
        if self.runtime == "sglang_http":
            if not self.url:
                raise ValueError("runtime sglang_http needs url")
            if self.model is None and self.prompt_template is None:
                raise ValueError("runtime sglang_http needs model (for its chat template) or prompt_template")
        elif self.model is None:
            raise ValueError(f"runtime {self.runtime} needs model")

    def check(self) -> None:
        super().check()
        if self.server_args and self.runtime != "sglang":
            raise ValueError("server_args apply to runtime sglang only")

    def sglang_server_args(self, folder: Path | None) -> dict[str, Any]:
        """What the tier hands to sglang.Engine: its server_args, with model_path resolved."""
        return {"model_path": str(folder), **self.server_args}

    def build(self, folder):
        from .tiers.vlm import VLMJudgeTier

        return VLMJudgeTier(JUDGE_RUNTIMES[self.runtime](self, folder), self.name, self.prompt)


TIER_KINDS: dict[str, type[TierBase]] = {
    "classifier": ClassifierSection,
    "hf_classifier": HFClassifierSection,
    "detector": DetectorSection,
    "zero_shot": ZeroShotSection,
    "vlm": VLMSection,
}



def _kind_of(section: Any) -> str | None:
    return section.get("kind") if isinstance(section, dict) else getattr(section, "kind", None)


TierSection = Annotated[
    Union[tuple(Annotated[section, Tag(kind)] for kind, section in TIER_KINDS.items())],  # noqa: UP007 - built from the registry
    Discriminator(_kind_of, custom_error_type="tier_kind", custom_error_message=f"kind must be one of {', '.join(TIER_KINDS)}"),
]
