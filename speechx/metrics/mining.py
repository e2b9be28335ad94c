"""Bitext mining metrics (BUCC style): precision, recall and F1 of mined pairs over thresholds.

A miner proposes scored pairs; a threshold ``t`` keeps the pairs scoring ``>= t``. With ``G``
gold pairs, ``P = |kept and gold| / |kept|``, ``R = |kept and gold| / G`` and
``F1 = 2PR / (P + R)``. As in the BUCC shared task evaluation (Zweigenbaum et al. 2017; LASER's
``bucc.py`` optimises its threshold the same way), every candidate score is tried as the
threshold and the best F1 is reported with the threshold that gave it.

Pairs with equal scores are kept or dropped together, so the curve has one point per distinct
score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speechx.errors import MetricError


@dataclass(frozen=True)
class OperatingPoint:
    """Precision, recall and F1 of the pairs kept at one threshold.

    Attributes:
        threshold: pairs scoring ``>= threshold`` are kept; ``None`` when no threshold keeps a
            correct pair (then every other field but ``n_gold`` is 0).
        precision, recall, f1: as in the module docstring.
        n_kept: pairs kept.
        n_correct: kept pairs that are gold.
        n_gold: gold pairs.
    """

    threshold: float | None
    precision: float
    recall: float
    f1: float
    n_kept: int
    n_correct: int
    n_gold: int


def precision_recall_curve(
    scores: np.ndarray, correct: np.ndarray, n_gold: int
) -> dict[str, np.ndarray]:
    """Precision, recall and F1 at every distinct score used as the threshold.

    Args:
        scores: ``[N]`` score of each mined pair (finite or ``-inf``; higher is better).
        correct: ``[N]`` bool, whether each pair is a gold pair (each gold pair at most once).
        n_gold: number of gold pairs, ``>= 1``.

    Returns:
        ``{"threshold", "precision", "recall", "f1", "n_kept", "n_correct"}``: arrays with one
        entry per distinct score, from the highest threshold to the lowest. Empty arrays when
        ``scores`` is empty.

    Raises:
        MetricError: shapes that differ or are not 1-D, NaN scores, ``n_gold < 1``, or more
            correct pairs than gold pairs.

    Example:
        >>> c = precision_recall_curve(np.array([0.9, 0.5, 0.7]), np.array([1, 0, 1], bool), 3)
        >>> c["f1"].round(3).tolist()
        [0.5, 0.8, 0.667]
    """
    s = np.asarray(scores, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    if s.ndim != 1 or ok.shape != s.shape:
        raise MetricError(f"scores {s.shape} and correct {ok.shape} must be 1-D of one length")
    if np.isnan(s).any():
        raise MetricError("mined pair scores hold NaN")
    if n_gold < 1:
        raise MetricError(f"n_gold must be >= 1, got {n_gold}")
    if int(ok.sum()) > n_gold:
        raise MetricError(f"{int(ok.sum())} correct pairs but only {n_gold} gold pairs")
    order = np.argsort(-s, kind="stable")
    s, ok = s[order], ok[order]
    # the last position of each run of equal scores: a threshold keeps all of a tie or none
    last = np.flatnonzero(np.append(s[1:] != s[:-1], True)) if s.size else np.zeros(0, int)
    n_kept = last + 1
    n_correct = np.cumsum(ok)[last] if s.size else np.zeros(0, int)
    precision = n_correct / np.maximum(n_kept, 1)
    recall = n_correct / n_gold
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(n_correct > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {
        "threshold": s[last],
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "n_kept": n_kept,
        "n_correct": n_correct,
    }


def best_f1(scores: np.ndarray, correct: np.ndarray, n_gold: int) -> OperatingPoint:
    """The threshold with the best F1 (the highest such threshold when several tie).

    Args:
        scores, correct, n_gold: as in :func:`precision_recall_curve`.

    Returns:
        The :class:`OperatingPoint` at that threshold.

    Raises:
        MetricError: as :func:`precision_recall_curve`.

    Example:
        >>> p = best_f1(np.array([0.9, 0.5, 0.7]), np.array([True, False, True]), 3)
        >>> p.threshold, round(p.f1, 3), p.n_kept
        (0.7, 0.8, 2)
    """
    c = precision_recall_curve(scores, correct, n_gold)
    if c["f1"].size == 0 or c["f1"].max() <= 0:
        return OperatingPoint(None, 0.0, 0.0, 0.0, 0, 0, int(n_gold))
    i = int(np.argmax(c["f1"]))  # first maximum = highest threshold
    return OperatingPoint(
        threshold=float(c["threshold"][i]),
        precision=float(c["precision"][i]),
        recall=float(c["recall"][i]),
        f1=float(c["f1"][i]),
        n_kept=int(c["n_kept"][i]),
        n_correct=int(c["n_correct"][i]),
        n_gold=int(n_gold),
    )
