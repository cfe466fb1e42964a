"""A build recipe (YAML in compression/recipes/): which model, which formats, how to calibrate and
check it, where the artifact goes and how SGLang / TensorRT-LLM will serve it. Validated at load;
every problem is named at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cascade.config import ConfigError, load_yaml, relative_base
from cascade.tiers.vlm import DEFAULT_PROMPT

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
Format = Literal["none", "fp8", "nvfp4"]
SGLANG_QUANTIZATION = {"fp8": "modelopt_fp8", "nvfp4": "modelopt_fp4"}
SGLANG_KV_CACHE_DTYPE = {"none": "auto", "fp8": "fp8_e4m3", "nvfp4": "nvfp4"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CalibrationSection(_Strict):
    images: str = "scenes"  # "scenes" (procedural roadwork scenes) or a folder of images
    count: int = Field(128, gt=0)
    batch_size: int = Field(8, gt=0)
    seed: int = 0
    prompt: str = DEFAULT_PROMPT


class AccuracySection(_Strict):
    heldout: int = Field(32, gt=0)  # inputs never used for calibration
    max_relative_logit_error: float = Field(0.1, gt=0)  # ||q - ref|| / ||ref|| of next-token logits, mean
    min_agreement: float = Field(0.95, ge=0, le=1)  # judge's yes/no decision, quantized vs unquantized


class SGLangSection(_Strict):
    tp_size: int = Field(1, gt=0)
    dp_size: int = Field(1, gt=0)  # data-parallel replicas: SGLang's own scale-out, never ours
    server_args: dict[str, Any] = {}  # anything else ServerArgs takes; checked against it


class TensorRTLLMSection(_Strict):
    warm_up: bool = False  # load the checkpoint with tensorrt_llm.LLM and judge one image
    required: bool = False  # fail the build when tensorrt_llm is not installed (else: skip, say so)
    max_batch_size: int = Field(32, gt=0)


class Recipe(_Strict):
    name: str
    model: str  # a local Hugging Face VLM folder (relative to the recipe; a shipped one's to the working directory), or tiny:llava
    device: Literal["auto", "cpu", "cuda"] = "auto"
    weights: Format = "fp8"
    kv_cache: Format = "fp8"
    out: str  # the artifact folder (relative as `model`)
    calibration: CalibrationSection = CalibrationSection()
    accuracy: AccuracySection = AccuracySection()
    sglang: SGLangSection = SGLangSection()
    tensorrt_llm: TensorRTLLMSection = TensorRTLLMSection()
    source: Path | None = None  # the YAML file, set by load_recipe

    @model_validator(mode="after")
    def _something_to_do(self) -> "Recipe":
        if self.weights == "none" and self.kv_cache == "none":
            raise ValueError("weights and kv_cache are both none: nothing to quantize")
        return self

    def base(self) -> Path | None:
        """Where the recipe's relative paths start (cascade.config.relative_base)."""
        return None if self.source is None else relative_base(self.source, RECIPES_DIR)

    def path(self, value: str) -> Path:
        """A path from the recipe: relative to its own folder, or for a shipped recipe to the working directory."""
        path = Path(value).expanduser()
        return path if path.is_absolute() or self.source is None else (self.base() / path).resolve()

    def sglang_server_args(self, model_path: str | Path) -> dict[str, Any]:
        """What the cascade's `sglang` runtime hands to sglang.Engine for this artifact."""
        args: dict[str, Any] = {"model_path": str(model_path), "kv_cache_dtype": SGLANG_KV_CACHE_DTYPE[self.kv_cache]}
        if self.weights != "none":
            args["quantization"] = SGLANG_QUANTIZATION[self.weights]
        if self.sglang.tp_size > 1:
            args["tp_size"] = self.sglang.tp_size
        if self.sglang.dp_size > 1:
            args["dp_size"] = self.sglang.dp_size
        if self.sglang.tp_size * self.sglang.dp_size > 1:
            args["mm_enable_dp_encoder"] = True  # the vision encoder runs data-parallel across the GPUs
        return {**args, **self.sglang.server_args}


def resolve_recipe_path(name_or_path: str) -> Path:
    path = Path(name_or_path).expanduser()
    if path.suffix not in (".yaml", ".yml") and not path.exists():
        path = RECIPES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))
        raise ConfigError(f"no recipe {name_or_path!r} (a YAML file, or one of {known})")
    return path


def load_recipe(name_or_path: str) -> Recipe:
    path = resolve_recipe_path(name_or_path)
    recipe = load_yaml(path, Recipe)
    recipe.source = path.resolve()
    return recipe
