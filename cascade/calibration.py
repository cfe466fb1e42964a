"""Put a tier's decision threshold exactly on 0.5 and make its probabilities honest.

Validators round predictions at 0.5, so the threshold that maximises MCC on labelled challenges is
moved to logit 0, and a temperature is fitted (by likelihood) on the shifted logits:
    p = sigmoid((logit - threshold) / temperature)
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


def best_threshold(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The logit cut that maximises MCC (midway between neighbours), and that MCC."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    ordered = np.unique(logits)
    candidates = np.concatenate([[ordered[0] - 1.0], (ordered[:-1] + ordered[1:]) / 2.0, [ordered[-1] + 1.0]])
    scores = [matthews(labels, logits > cut) for cut in candidates]
    best = int(np.argmax(scores))
    return float(candidates[best]), float(scores[best])


def fit_temperature(shifted: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood, searched on a log grid then refined."""
    y = np.asarray(labels, dtype=np.float64)

    def nll(temperature: float) -> float:
        z = shifted / temperature
        return float(np.mean(np.logaddexp(0.0, z) - y * z))

    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))
    best = grid[int(np.argmin([nll(t) for t in grid]))]
    fine = best * np.exp(np.linspace(-0.06, 0.06, 41))
    return float(fine[int(np.argmin([nll(t) for t in fine]))])


def calibrate(logits: np.ndarray, labels: np.ndarray) -> tuple[Calibration, float]:
    """Returns the calibration and the MCC it achieves at 0.5 on these data."""
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        raise ValueError("calibration needs labelled examples of both classes")
    threshold, mcc = best_threshold(logits, labels)
    temperature = fit_temperature(np.asarray(logits, dtype=np.float64) - threshold, labels)
    return Calibration(threshold, temperature), mcc
