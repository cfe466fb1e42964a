"""Fit a calibration: put a tier's decision threshold exactly on 0.5 and make its probabilities honest.

Validators round predictions at 0.5, so the threshold that maximises MCC on labelled challenges is
moved to logit 0, and a temperature is fitted (by likelihood) on the shifted logits:
    p = sigmoid((logit - threshold) / temperature)
"""

from __future__ import annotations

import numpy as np

from ..calibration import Calibration, matthews


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
