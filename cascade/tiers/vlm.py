"""A vision-language judge: ask whether the image shows roadwork and read P(yes) from the
log-probabilities of the first answer token. No sampling: one forward, a deterministic answer.

The model behind it is reached through a runtime (cascade/runtimes/): transformers in-process,
SGLang in-process or over HTTP (a server or SGLang's router), or a TensorRT-LLM engine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from PIL import Image

from ..tier import Tier, TierOutput

DEFAULT_PROMPT = (
    "Does this street image show roadwork or construction (cones, barriers, roadwork signs, "
    "workers, construction machinery)? Answer yes or no."
)
YES, NO = "yes", "no"


class JudgeRuntime(Protocol):
    name: str

    def first_token_logprobs(self, images: Sequence[Image.Image], prompt: str) -> list[dict[str, float]]:
        """Per image: candidate first answer tokens (as text) -> log-probability."""


def yes_probability(logprobs: dict[str, float]) -> float:
    """P(yes) among the yes/no answers, summing the variants ("Yes", " yes", "YES" ...)."""
    mass = {YES: 0.0, NO: 0.0}
    for token, logprob in logprobs.items():
        word = token.strip().strip(".,!").lower()
        if word in mass:
            mass[word] += math.exp(logprob)
    total = mass[YES] + mass[NO]
    if total == 0.0:
        raise ValueError(f"the model's likely answers hold neither yes nor no: {sorted(logprobs)[:10]}")
    return mass[YES] / total


class VLMJudgeTier(Tier):
    def __init__(self, runtime: JudgeRuntime, name: str, prompt: str = DEFAULT_PROMPT):
        self.runtime, self.name, self.prompt = runtime, name, prompt

    def predict(self, images: Sequence[Image.Image]) -> list[TierOutput]:
        return [TierOutput(yes_probability(lp)) for lp in self.runtime.first_token_logprobs(images, self.prompt)]

    def describe(self) -> str:
        return f"{self.name}: VLM judge via {self.runtime.name}"
