"""Our replay of the validator's scoring against the validator's own recipe, written with the
library the validator uses (scikit-learn)."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, matthews_corrcoef

from natix_miner.serving.scoring import ValidatorScore


def validator_reward(predictions, labels, i):
    """The reward the validator computes for response i, from the whole sequence up to i."""
    recent_p, recent_y = predictions[max(0, i - 99): i + 1], labels[max(0, i - 99): i + 1]

    def metrics(window):
        p, y = recent_p[-window:], recent_y[-window:]
        keep = [k for k, value in enumerate(p) if value != -1]
        p = np.round(np.array([p[k] for k in keep]))
        y = np.array([y[k] for k in keep])
        if len(y) == 0:
            return 0.0, 0.0
        acc = accuracy_score(y, p)
        mcc = max(0, matthews_corrcoef(y, p)) if len(np.unique(y)) > 1 and len(np.unique(p)) > 1 else 0.0
        return acc, mcc

    if predictions[i] == -1:
        return 0.0
    _, mcc100 = metrics(100)
    acc10, _ = metrics(10)
    reward = 0.5 * mcc100 + 0.5 * acc10
    reward *= 0.0 if (predictions[i] < 0.0 or predictions[i] > 1.0) else 1.0
    return reward**3.0


@pytest.mark.parametrize("seed", range(5))
def test_replay_matches_the_validator_on_random_histories(seed):
    rng = np.random.default_rng(seed)
    n = 250
    labels = rng.integers(0, 2, n).tolist()
    skill = rng.uniform(0.5, 0.95)
    predictions = []
    for y in labels:
        roll = rng.random()
        if roll < 0.05:
            predictions.append(-1.0)  # no answer
        elif roll < 0.08:
            predictions.append(0.5)  # exactly on the threshold: rounds to 0
        elif roll < 0.10:
            predictions.append(float(rng.choice([1.3, -0.2])))  # out of range
        else:
            correct = rng.random() < skill
            p = rng.uniform(0.5001, 1.0) if (y == 1) == correct else rng.uniform(0.0, 0.4999)
            predictions.append(float(p))
    score = ValidatorScore()
    ours = [score.record(p, y) for p, y in zip(predictions, labels)]
    theirs = [validator_reward(predictions, labels, i) for i in range(n)]
    assert ours == pytest.approx(theirs, abs=1e-12)
    assert max(ours) > 0.0


def test_constant_answers_earn_nothing_from_mcc():
    score = ValidatorScore()
    rewards = [score.record(0.9, y) for y in [0, 1] * 50]
    assert rewards[-1] == pytest.approx((0.5 * 0.0 + 0.5 * 0.5) ** 3)


def test_half_rounds_down_to_no_roadwork():
    score = ValidatorScore()
    for _ in range(10):
        score.record(0.5, 0)
    assert score.record(0.5, 0) == pytest.approx(0.5**3)  # all correct, but one class: MCC 0
