"""ModelOpt post-training quantization of a VLM judge, calibrated on roadwork images and the
judge's own prompt, and the accuracy check of the result against the unquantized model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cascade.lab.challenge import make_challenge
from cascade.lab.datasets import IMAGE_SUFFIXES
from cascade.runtimes.prompting import prompt_from_processor
from cascade.runtimes.transformers_runtime import answer_logprobs, answer_token_ids
from cascade.scenes import generate_scene
from cascade.tiers.vlm import yes_probability
from cascade.lab.training import HELDOUT_SCENE_SEED, SCENE_SIZE

from .recipe import Recipe

# Export keeps the vision encoder and projector in bf16, so calibration must not quantize them
# either (KV quantizers included): the accuracy check then measures what will be served.
UNQUANTIZED_MODULES = ("*vision_tower*", "*visual*", "*vision_model*", "*multi_modal_projector*", "*lm_head*")


def modelopt_config(weights: str, kv_cache: str) -> dict:
    """ModelOpt's own configs for the formats, concatenated (`quant_cfg` is a list: later entries win)."""
    import modelopt.torch.quantization as mtq

    weight_configs = {"fp8": mtq.FP8_DEFAULT_CFG, "nvfp4": mtq.NVFP4_DEFAULT_CFG}
    kv_configs = {"fp8": mtq.FP8_KV_CFG, "nvfp4": mtq.NVFP4_KV_CFG}
    entries = list(weight_configs[weights]["quant_cfg"]) if weights != "none" else [{"quantizer_name": "*", "enable": False}]
    if kv_cache != "none":
        entries += list(kv_configs[kv_cache]["quant_cfg"])
    entries += [{"quantizer_name": pattern, "enable": False} for pattern in UNQUANTIZED_MODULES]
    return {"quant_cfg": entries, "algorithm": "max"}


def judge_images(source: str, count: int, seed: int, heldout_after: int | None = None, base: Path | None = None) -> list[Image.Image]:
    """Validator-like 224 px challenges, from procedural scenes or from a folder of images.

    `heldout_after=None` gives the calibration set; `heldout_after=N` (N = the calibration count)
    gives held-out images that never overlap it: other scene seeds, or the folder's images after
    the first N in sorted order."""
    heldout = heldout_after is not None
    rng = np.random.default_rng([seed, int(heldout)])
    if source == "scenes":
        first = HELDOUT_SCENE_SEED + (10_000_000 if heldout else 0) + seed * 100_000
        originals = [generate_scene(first + i, size=SCENE_SIZE).image for i in range(count)]
    else:
        folder = Path(source) if base is None else base / source
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        skip = heldout_after or 0
        if len(files) < skip + count:
            raise ValueError(f"{folder} holds {len(files)} images; calibration and the accuracy check need {skip + count}")
        originals = [Image.open(p) for p in files[skip : skip + count]]
    return [make_challenge(image, rng, pipeline="v0.2").image for image in originals]


@dataclass
class JudgeInputs:
    """The judge's prompt around each image, tokenized for the model, in batches."""

    batches: list[dict[str, torch.Tensor]]

    @classmethod
    def build(cls, processor, images: list[Image.Image], prompt: str, batch_size: int, device: str) -> "JudgeInputs":
        processor.tokenizer.padding_side = "left"  # the last position is the answer's in every row
        text = prompt_from_processor(processor, prompt)
        batches = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            encoded = processor(images=chunk, text=[text] * len(chunk), return_tensors="pt", padding=True)
            batches.append({k: v.to(device) for k, v in encoded.items()})
        return cls(batches)

    def next_token_logits(self, model) -> torch.Tensor:
        with torch.inference_mode():
            return torch.cat([model(**batch).logits[:, -1, :].float().cpu() for batch in self.batches])

    def forward_loop(self) -> Callable:
        def loop(model) -> None:
            with torch.no_grad():
                for batch in self.batches:
                    model(**batch)

        return loop


@dataclass
class AccuracyCheck:
    inputs: int
    mean_relative_logit_error: float
    max_relative_logit_error: float
    yes_no_agreement: float
    mean_abs_p_yes_change: float
    max_relative_logit_error_allowed: float
    min_agreement_allowed: float

    @property
    def passed(self) -> bool:
        return (self.mean_relative_logit_error <= self.max_relative_logit_error_allowed
                and self.yes_no_agreement >= self.min_agreement_allowed)

    def summary(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (f"accuracy check {verdict} on {self.inputs} held-out images: relative logit error "
                f"{self.mean_relative_logit_error:.4f} (max {self.max_relative_logit_error:.4f}, allowed "
                f"{self.max_relative_logit_error_allowed}), yes/no agreement {self.yes_no_agreement:.3f} "
                f"(needed {self.min_agreement_allowed}), mean |dP(yes)| {self.mean_abs_p_yes_change:.4f}")

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def compare(reference: torch.Tensor, quantized: torch.Tensor, tokenizer, recipe: Recipe) -> AccuracyCheck:
    errors = (quantized - reference).norm(dim=-1) / reference.norm(dim=-1).clamp_min(1e-12)
    answer_ids = answer_token_ids(tokenizer)
    p_ref = np.array([yes_probability(lp) for lp in answer_logprobs(reference, answer_ids)])
    p_q = np.array([yes_probability(lp) for lp in answer_logprobs(quantized, answer_ids)])
    return AccuracyCheck(
        inputs=len(reference),
        mean_relative_logit_error=float(errors.mean()),
        max_relative_logit_error=float(errors.max()),
        yes_no_agreement=float(np.mean((p_ref > 0.5) == (p_q > 0.5))),
        mean_abs_p_yes_change=float(np.mean(np.abs(p_ref - p_q))),
        max_relative_logit_error_allowed=recipe.accuracy.max_relative_logit_error,
        min_agreement_allowed=recipe.accuracy.min_agreement,
    )
