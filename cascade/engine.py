"""Run the tiers in order and stop at the first one that is confident enough."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from PIL import Image

from .tier import Tier


@dataclass(frozen=True)
class Stage:
    tier: Tier
    # A tier settles the image when its probability falls outside (exit_below, exit_above).
    exit_below: float = 0.0
    exit_above: float = 1.0


@dataclass(frozen=True)
class CascadeResult:
    probability: float
    explanation: str
    settled_by: str  # name of the tier whose answer stands
    tier_ms: dict[str, float] = field(default_factory=dict)


class Cascade:
    def __init__(self, stages: list[Stage]):
        if not stages:
            raise ValueError("a cascade needs at least one tier")
        self.stages = stages

    def predict(self, image: Image.Image) -> CascadeResult:
        tier_ms: dict[str, float] = {}
        for stage in self.stages:
            started = time.perf_counter()
            output = stage.tier.predict([image])[0]
            tier_ms[stage.tier.name] = (time.perf_counter() - started) * 1000.0
            if not stage.exit_below < output.probability < stage.exit_above:
                break
        probability = float(output.probability)
        if not math.isfinite(probability):  # clamping would hide a broken model behind a valid answer
            raise ValueError(f"tier {stage.tier.name} returned a non-finite probability {probability}")
        probability = min(1.0, max(0.0, probability))
        explanation = output.evidence or _default_explanation(stage.tier.name, probability)
        return CascadeResult(probability, explanation, stage.tier.name, tier_ms)

    def describe(self) -> list[str]:
        return [stage.tier.describe() for stage in self.stages]


def _default_explanation(tier_name: str, probability: float) -> str:
    verdict = "roadwork likely present" if probability > 0.5 else "no roadwork seen"
    return f"{verdict} (P={probability:.2f}, {tier_name})"
