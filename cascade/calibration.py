"""A tier's calibration as the cascade applies it, and the MCC that judges it:
    p = sigmoid((logit - threshold) / temperature)
The threshold and temperature are fitted offline (cascade/lab/calibration_fit.py, `natix-miner calibrate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .tier import Tier, TierOutput

EPSILON = 1e-6  # probabilities are clipped this far from 0 and 1 before taking log-odds


def logit(p: float) -> float:
    p = min(1.0 - EPSILON, max(EPSILON, p))
    return math.log(p / (1.0 - p))


def matthews(labels: np.ndarray, predictions: np.ndarray) -> float:
    """MCC of 0/1 (or boolean) arrays; 0 when it is undefined, as scikit-learn answers."""
    tp = float(np.sum((predictions == 1) & (labels == 1)))
    tn = float(np.sum((predictions == 0) & (labels == 0)))
    fp = float(np.sum((predictions == 1) & (labels == 0)))
    fn = float(np.sum((predictions == 0) & (labels == 1)))
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denominator == 0 else (tp * tn - fp * fn) / denominator


@dataclass(frozen=True)
class Calibration:
    threshold: float  # logit at which the tier should say 0.5
    temperature: float

    def apply(self, logits: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(np.asarray(logits, dtype=np.float64) - self.threshold) / self.temperature))

    def apply_probability(self, probability: float) -> float:
        return float(self.apply(np.array([logit(probability)]))[0])


class CalibratedTier(Tier):
    """A tier whose probabilities pass through a fitted calibration (evidence unchanged)."""

    def __init__(self, inner: Tier, calibration: Calibration):
        self.inner, self.calibration, self.name = inner, calibration, inner.name

    def predict(self, images):
        return [TierOutput(self.calibration.apply_probability(o.probability), o.evidence) for o in self.inner.predict(images)]

    def describe(self) -> str:
        c = self.calibration
        return f"{self.inner.describe()}, calibrated (threshold {c.threshold:+.2f}, temperature {c.temperature:.2f})"
