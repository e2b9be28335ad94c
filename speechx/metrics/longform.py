"""Long-form search metrics: is a timed hit in the right place, and how far off is it?

A query has one true span ``(recording, start, end)``; a search returns ranked hits
``(recording, start, end)``.  Definitions:

- **IoU** of two spans of one recording: the length of their intersection over the length of
  their union (0 for spans of different recordings or that do not overlap).
- A hit is **correct** (``criterion="iou"``) when it is on the true recording and its IoU with
  the true span is at least ``iou`` (default 0.5).  The looser ``criterion="centre"``: the hit
  is on the true recording and contains the centre of the true span (``start <= c <= end``).
- **hit@k**: the fraction of queries with a correct hit among their first k hits.
- **MRR@k**: the mean of 1/rank of the first correct hit, 0 when there is none in the first k.
- **start error** of a query: ``|hit.start - true.start|`` in seconds for its *timed hit*, the
  highest-ranked hit among the first ``k_time`` (default 10) that is on the true recording and
  overlaps the true span (positive intersection); queries without one are not timed.
  **median_start_error** is the median over the timed queries, and ``n_timed`` counts them.
- **mean_iou@1**: the mean IoU of the first hit with the true span (0 for a query with no hit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from speechx.errors import MetricError

Span = tuple[str, float, float]
CRITERIA = ("iou", "centre")


def interval_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """IoU of the intervals ``a = (start, end)`` and ``b``.

    Returns:
        A float in [0, 1]; 0 when they do not overlap (or touch only).

    Raises:
        MetricError: an interval with ``end < start``.
    """
    (a0, a1), (b0, b1) = a, b
    if a1 < a0 or b1 < b0:
        raise MetricError(f"interval with end before start: {a}, {b}")
    inter = min(a1, b1) - max(a0, b0)
    if inter <= 0:
        return 0.0
    return inter / (max(a1, b1) - min(a0, b0))


def span_iou(hit: Span, truth: Span) -> float:
    """IoU of two spans ``(recording, start, end)``: 0 when the recordings differ."""
    if hit[0] != truth[0]:
        return 0.0
    return interval_iou((hit[1], hit[2]), (truth[1], truth[2]))


def is_correct(hit: Span, truth: Span, criterion: str = "iou", iou: float = 0.5) -> bool:
    """Whether ``hit`` finds ``truth`` (see the module docstring for the criteria).

    Raises:
        MetricError: an unknown criterion.
    """
    if criterion == "iou":
        return span_iou(hit, truth) >= iou
    if criterion == "centre":
        centre = (truth[1] + truth[2]) / 2
        return hit[0] == truth[0] and hit[1] <= centre <= hit[2]
    raise MetricError(f"unknown criterion {criterion!r}; expected one of {CRITERIA}")


def first_correct_rank(
    hits: Sequence[Span], truth: Span, criterion: str = "iou", iou: float = 0.5
) -> int | None:
    """1-based rank of the first correct hit, or ``None`` when there is none."""
    for rank, h in enumerate(hits, 1):
        if is_correct(h, truth, criterion, iou):
            return rank
    return None


def start_error(hits: Sequence[Span], truth: Span, k_time: int = 10) -> float | None:
    """``|start - true start|`` of the timed hit (see the module docstring), or ``None``."""
    for h in hits[:k_time]:
        if h[0] == truth[0] and min(h[2], truth[2]) - max(h[1], truth[1]) > 0:
            return abs(h[1] - truth[1])
    return None


def longform_metrics(
    hits: Sequence[Sequence[Span]],
    truths: Sequence[Span],
    *,
    ks: Sequence[int] = (1, 5, 10),
    iou: float = 0.5,
    mrr_k: int = 10,
    k_time: int = 10,
) -> dict[str, Any]:
    """Score ranked hits against true spans.

    Args:
        hits: per query, its hits ``(recording, start, end)`` best first.
        truths: per query, its true span.
        ks: the k of hit@k.
        iou: the IoU threshold of the ``iou`` criterion.
        mrr_k: the cut-off of MRR.
        k_time: how many hits are looked at for the start error.

    Returns:
        ``{"n_queries", "hit@k" (IoU criterion), "hit@k_centre", "mrr@<mrr_k>",
        "median_start_error", "mean_start_error", "n_timed", "mean_iou@1"}``; the errors are
        ``None`` when no query is timed.

    Raises:
        MetricError: lengths that differ, no queries, or a ``k`` < 1.
    """
    if len(hits) != len(truths):
        raise MetricError(f"{len(hits)} hit lists for {len(truths)} true spans")
    if not truths:
        raise MetricError("no queries to score")
    if any(k < 1 for k in (*ks, mrr_k, k_time)):
        raise MetricError(f"every k must be >= 1, got ks={list(ks)}, mrr_k={mrr_k}")
    n = len(truths)
    out: dict[str, Any] = {"n_queries": n}
    ranks = [first_correct_rank(h, t, "iou", iou) for h, t in zip(hits, truths, strict=True)]
    centre = [first_correct_rank(h, t, "centre") for h, t in zip(hits, truths, strict=True)]
    for k in ks:
        out[f"hit@{k}"] = sum(r is not None and r <= k for r in ranks) / n
    for k in ks:
        out[f"hit@{k}_centre"] = sum(r is not None and r <= k for r in centre) / n
    out[f"mrr@{mrr_k}"] = sum(1.0 / r for r in ranks if r is not None and r <= mrr_k) / n
    errors = [start_error(h, t, k_time) for h, t in zip(hits, truths, strict=True)]
    timed = [e for e in errors if e is not None]
    out["median_start_error"] = float(np.median(timed)) if timed else None
    out["mean_start_error"] = float(np.mean(timed)) if timed else None
    out["n_timed"] = len(timed)
    out["mean_iou@1"] = float(
        np.mean([span_iou(h[0], t) if h else 0.0 for h, t in zip(hits, truths, strict=True)])
    )
    return out


def hit_rate_curve(
    hits: Sequence[Sequence[Span]],
    truths: Sequence[Span],
    thresholds: Sequence[float],
    k: int = 1,
) -> list[float]:
    """hit@k (IoU criterion) at each IoU threshold, e.g. for a plot.

    Returns:
        One fraction per threshold.
    """
    if len(hits) != len(truths) or not truths:
        raise MetricError(f"{len(hits)} hit lists for {len(truths)} true spans")
    out = []
    for thr in thresholds:
        ranks = [first_correct_rank(h, t, "iou", thr) for h, t in zip(hits, truths, strict=True)]
        out.append(sum(r is not None and r <= k for r in ranks) / len(truths))
    return out


__all__ = [
    "CRITERIA",
    "first_correct_rank",
    "hit_rate_curve",
    "interval_iou",
    "is_correct",
    "longform_metrics",
    "span_iou",
    "start_error",
]
