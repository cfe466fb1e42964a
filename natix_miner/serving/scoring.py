"""The SN72 validator's scoring of one miner, replayed locally.

Per response: the (prediction, label) pair joins a history of the last 100; predictions of -1 are
dropped from the metrics (but keep their slot); the rest are rounded at 0.5 (numpy rounds half to
even, so 0.5 counts as 0). reward = (0.5 * MCC(last 100) + 0.5 * accuracy(last 10)) ** 3, with MCC
clipped at 0 and taken as 0 unless labels and predictions both hold two classes; a prediction of
-1 earns 0, one outside [0, 1] earns 0.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from cascade.calibration import matthews

HISTORY = 100
ACCURACY_WINDOW = 10
REWARD_EXPONENT = 3.0


@dataclass(frozen=True)
class WindowMetrics:
    accuracy: float
    mcc: float


def window_metrics(history: list[tuple[float, int]], window: int) -> WindowMetrics:
    recent = history[-window:]
    kept = [(p, y) for p, y in recent if p != -1]
    if not kept:
        return WindowMetrics(0.0, 0.0)
    predictions = np.round(np.array([p for p, _ in kept], dtype=float))
    labels = np.array([y for _, y in kept], dtype=float)
    accuracy = float(np.mean(predictions == labels))
    two_classes = len(np.unique(labels)) > 1 and len(np.unique(predictions)) > 1
    mcc = max(0.0, matthews(labels, predictions)) if two_classes else 0.0
    return WindowMetrics(accuracy, mcc)


class ValidatorScore:
    """One validator's view of one miner: feed it responses in order, read the rewards."""

    def __init__(self):
        self.history: deque[tuple[float, int]] = deque(maxlen=HISTORY)

    def record(self, prediction: float, label: int) -> float:
        self.history.append((prediction, label))
        if prediction == -1:
            return 0.0
        history = list(self.history)
        base = 0.5 * window_metrics(history, HISTORY).mcc + 0.5 * window_metrics(history, ACCURACY_WINDOW).accuracy
        if not 0.0 <= prediction <= 1.0:
            base = 0.0
        return base**REWARD_EXPONENT
