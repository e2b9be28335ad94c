"""Tests of speechx.metrics.mining: BUCC-style precision, recall and F1 at the best threshold."""

from __future__ import annotations

import numpy as np
import pytest

from speechx.errors import MetricError
from speechx.metrics.mining import best_f1, precision_recall_curve


def test_best_threshold_on_a_hand_made_case() -> None:
    # 6 mined pairs, 4 gold pairs in all (one gold pair was never mined)
    scores = np.array([1.30, 1.20, 1.10, 1.05, 0.90, 0.80])
    correct = np.array([True, True, False, True, False, False])
    c = precision_recall_curve(scores, correct, n_gold=4)
    assert c["threshold"].tolist() == scores.tolist()
    assert c["n_kept"].tolist() == [1, 2, 3, 4, 5, 6]
    assert c["n_correct"].tolist() == [1, 2, 2, 3, 3, 3]
    np.testing.assert_allclose(c["precision"], [1, 1, 2 / 3, 3 / 4, 3 / 5, 1 / 2])
    np.testing.assert_allclose(c["recall"], [1 / 4, 2 / 4, 2 / 4, 3 / 4, 3 / 4, 3 / 4])
    # F1 = 2PR/(P+R): 0.4, 0.667, 0.571, 0.75, 0.667, 0.6
    best = best_f1(scores, correct, n_gold=4)
    assert best.threshold == 1.05 and best.n_kept == 4 and best.n_correct == 3
    assert (best.precision, best.recall, best.f1) == pytest.approx((0.75, 0.75, 0.75))


def test_ties_are_kept_or_dropped_together() -> None:
    scores = np.array([0.9, 0.5, 0.5, 0.1])
    correct = np.array([True, False, True, False])
    c = precision_recall_curve(scores, correct, n_gold=2)
    assert c["threshold"].tolist() == [0.9, 0.5, 0.1]
    assert c["n_kept"].tolist() == [1, 3, 4]
    best = best_f1(scores, correct, 2)
    # at 0.5: P = 2/3, R = 1, F1 = 0.8 beats 0.9's P = 1, R = 1/2, F1 = 2/3
    assert best.threshold == 0.5 and best.f1 == pytest.approx(0.8)


def test_equal_f1_goes_to_the_higher_threshold() -> None:
    # F1 = 2 * correct / (kept + gold): 2/4 at 5.0 and 4/8 at 1.0
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    correct = np.array([True, False, False, False, True])
    c = precision_recall_curve(scores, correct, n_gold=3)
    np.testing.assert_allclose(c["f1"], [0.5, 0.4, 1 / 3, 2 / 7, 0.5])
    best = best_f1(scores, correct, n_gold=3)
    assert best.threshold == 5.0 and best.n_kept == 1


def test_nothing_correct_and_nothing_mined() -> None:
    none = best_f1(np.array([0.5, 0.4]), np.array([False, False]), n_gold=3)
    assert none.threshold is None and none.f1 == 0.0 and none.n_gold == 3
    empty = best_f1(np.zeros(0), np.zeros(0, bool), n_gold=3)
    assert empty.threshold is None and empty.n_kept == 0
    assert precision_recall_curve(np.zeros(0), np.zeros(0, bool), 1)["f1"].size == 0
    # -inf scores (0/0 ratio margins) are a valid lowest threshold
    assert best_f1(np.array([-np.inf]), np.array([True]), 1).threshold == -np.inf


def test_errors() -> None:
    with pytest.raises(MetricError, match="n_gold must be >= 1"):
        best_f1(np.ones(1), np.ones(1, bool), 0)
    with pytest.raises(MetricError, match="2 correct pairs but only 1 gold"):
        best_f1(np.ones(2), np.ones(2, bool), 1)
    with pytest.raises(MetricError, match="NaN"):
        best_f1(np.array([np.nan]), np.ones(1, bool), 1)
    with pytest.raises(MetricError, match="1-D of one length"):
        best_f1(np.ones(2), np.ones(3, bool), 3)
