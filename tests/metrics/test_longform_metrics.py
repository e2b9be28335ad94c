"""speechx.metrics.longform on hand-made spans: IoU, the two criteria, hit@k, MRR, start error."""

from __future__ import annotations

import pytest

from speechx.errors import MetricError
from speechx.metrics.longform import (
    hit_rate_curve,
    interval_iou,
    is_correct,
    longform_metrics,
    span_iou,
    start_error,
)


def test_interval_iou() -> None:
    assert interval_iou((0, 4), (2, 6)) == pytest.approx(2 / 6)
    assert interval_iou((1, 3), (0, 4)) == pytest.approx(0.5)  # nested
    assert interval_iou((0, 2), (2, 4)) == 0.0  # touching only
    assert interval_iou((0, 2), (5, 6)) == 0.0
    assert interval_iou((1.5, 2.5), (1.5, 2.5)) == 1.0
    with pytest.raises(MetricError, match="end before start"):
        interval_iou((3, 1), (0, 1))


def test_recordings_must_match_and_criteria() -> None:
    truth = ("rec1", 10.0, 14.0)
    assert span_iou(("rec2", 10.0, 14.0), truth) == 0.0
    assert is_correct(("rec1", 11.0, 15.0), truth)  # IoU 3/5
    assert not is_correct(("rec1", 12.5, 16.0), truth)  # IoU 1.5/6
    assert is_correct(("rec1", 12.0, 16.0), truth, "centre")  # contains 12.0
    assert not is_correct(("rec1", 12.01, 16.0), truth, "centre")
    assert not is_correct(("rec9", 9.0, 16.0), truth, "centre")
    assert is_correct(("rec1", 12.5, 16.0), truth, iou=0.25)
    with pytest.raises(MetricError, match="unknown criterion"):
        is_correct(truth, truth, "overlap")


def test_start_error_takes_the_best_ranked_overlapping_hit() -> None:
    truth = ("a", 10.0, 12.0)
    hits = [("b", 10.0, 12.0), ("a", 30.0, 32.0), ("a", 11.5, 13.0), ("a", 10.0, 12.0)]
    assert start_error(hits, truth) == pytest.approx(1.5)  # the third hit, not the exact fourth
    assert start_error(hits, truth, k_time=2) is None
    assert start_error([("a", 12.0, 13.0)], truth) is None  # touching is not overlapping


def test_longform_metrics_by_hand() -> None:
    truths = [("a", 0.0, 2.0), ("a", 10.0, 12.0), ("b", 5.0, 6.0), ("b", 20.0, 24.0)]
    hits = [
        [("a", 0.2, 2.1)],  # rank 1 correct, start error 0.2
        [("b", 10.0, 12.0), ("a", 40.0, 41.0), ("a", 11.0, 12.5)],  # IoU 1/2.5 < 0.5; centre hit
        [("a", 5.0, 6.0), ("b", 4.9, 6.1)],  # rank 2 correct, start error 0.1
        [],  # nothing
    ]
    m = longform_metrics(hits, truths, ks=(1, 2, 5))
    assert m["n_queries"] == 4
    assert m["hit@1"] == 0.25 and m["hit@2"] == 0.5 and m["hit@5"] == 0.5
    assert m["hit@1_centre"] == 0.25 and m["hit@5_centre"] == 0.75
    assert m["mrr@10"] == pytest.approx((1 + 0.5) / 4)
    assert m["n_timed"] == 3
    assert m["median_start_error"] == pytest.approx(0.2)  # errors 0.2, 1.0, 0.1
    assert m["mean_start_error"] == pytest.approx(1.3 / 3)
    assert m["mean_iou@1"] == pytest.approx((1.8 / 2.1 + 0 + 0 + 0) / 4)


def test_no_timed_query_and_bad_input() -> None:
    m = longform_metrics([[("x", 0.0, 1.0)]], [("a", 0.0, 1.0)])
    assert m["median_start_error"] is None and m["n_timed"] == 0 and m["hit@1"] == 0.0
    with pytest.raises(MetricError, match="2 hit lists for 1"):
        longform_metrics([[], []], [("a", 0.0, 1.0)])
    with pytest.raises(MetricError, match="no queries"):
        longform_metrics([], [])
    with pytest.raises(MetricError, match="k must be >= 1"):
        longform_metrics([[]], [("a", 0.0, 1.0)], ks=(0,))


def test_hit_rate_curve_falls_with_the_threshold() -> None:
    truths = [("a", 0.0, 4.0), ("a", 10.0, 14.0)]
    hits = [[("a", 0.0, 4.0)], [("a", 11.0, 15.0)]]  # IoU 1 and 0.6
    assert hit_rate_curve(hits, truths, [0.5, 0.6, 0.7, 1.0]) == [1.0, 1.0, 0.5, 0.5]
