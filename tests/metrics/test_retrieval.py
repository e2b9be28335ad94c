"""Tests of speechx.metrics.retrieval: hand-computed cases, properties, naive reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import speechx.metrics.retrieval as mr
from speechx.errors import MetricError
from speechx.metrics.retrieval import (
    gold_ranks,
    knn_mean,
    margin_scores,
    mrr_at_k,
    rank_of_gold,
    recall_at_k,
    retrieval_metrics,
    xsim_error,
)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ------------------------------------------------------------------ naive reference
def _naive_ranks(scores: np.ndarray, gold: list[set[int]]) -> np.ndarray:
    out = []
    for q, row in enumerate(scores):
        order = sorted(range(len(row)), key=lambda j: (-row[j], j))
        out.append(min(order.index(g) for g in gold[q]) + 1)
    return np.array(out)


def _naive_xsim(q: np.ndarray, c: np.ndarray, gold: list[set[int]], k: int) -> float:
    q, c = _unit(q).astype(np.float64), _unit(c).astype(np.float64)
    sim = q @ c.T
    kx, ky = min(k, c.shape[0]), min(k, q.shape[0])
    errors = 0
    for i in range(q.shape[0]):
        best, best_j = -np.inf, -1
        rx = sum(sorted(sim[i], reverse=True)[:kx]) / (2 * kx)
        for j in range(c.shape[0]):
            ry = sum(sorted(sim[:, j], reverse=True)[:ky]) / (2 * ky)
            m = sim[i, j] / (rx + ry)
            if m > best:
                best, best_j = m, j
        errors += best_j not in gold[i]
    return errors / q.shape[0]


# ------------------------------------------------------------------- hand computed
def test_hand_computed_ranks_recall_mrr() -> None:
    scores = np.array(
        [
            [0.9, 0.1, 0.5, 0.3],  # gold 0 -> rank 1
            [0.2, 0.8, 0.6, 0.9],  # gold 2 -> rank 3
            [0.4, 0.3, 0.2, 0.1],  # gold 3 -> rank 4
        ]
    )
    ranks = rank_of_gold(scores, [0, 2, 3])
    assert ranks.tolist() == [1, 3, 4]
    assert recall_at_k(ranks, 1) == pytest.approx(1 / 3)
    assert recall_at_k(ranks, 3) == pytest.approx(2 / 3)
    assert recall_at_k(ranks, 4) == 1.0
    assert mrr_at_k(ranks, 10) == pytest.approx((1 + 1 / 3 + 1 / 4) / 3)
    assert mrr_at_k(ranks, 3) == pytest.approx((1 + 1 / 3) / 3)  # rank 4 > k counts 0


def test_several_gold_items_first_one_counts() -> None:
    scores = np.array([[0.1, 0.7, 0.9, 0.8]])
    assert rank_of_gold(scores, [{0, 3}]).tolist() == [2]
    assert rank_of_gold(scores, [[1, 0]]).tolist() == [3]
    assert rank_of_gold(scores, np.array([2])).tolist() == [1]


def test_ties_go_to_lower_index() -> None:
    scores = np.array([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]])
    assert rank_of_gold(scores, [2, {1, 2}]).tolist() == [3, 2]


def test_margin_scores_k1_known_case() -> None:
    # x1 = e1, x2 = e2; candidates y1 = e1, y2 = (e1 + e2)/sqrt2
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    c = _unit(np.array([[1.0, 0.0], [1.0, 1.0]]))
    s = 1 / np.sqrt(2)
    np.testing.assert_allclose(knn_mean(q, c, 1), [1.0, s], rtol=1e-6)  # best candidate
    np.testing.assert_allclose(knn_mean(c, q, 1), [1.0, s], rtol=1e-6)  # best query
    sim = q @ c.T
    m = margin_scores(sim, knn_mean(q, c, 1), knn_mean(c, q, 1))
    # margin(x, y) = cos / ((knn(x) + knn(y)) / 2)
    expected = np.array([[1.0, s / ((1 + s) / 2)], [0.0, s / s]])
    np.testing.assert_allclose(m, expected, rtol=1e-6)
    dist = margin_scores(sim, knn_mean(q, c, 1), knn_mean(c, q, 1), scoring="distance")
    np.testing.assert_allclose(dist, [[0.0, s - (1 + s) / 2], [-(s + 1) / 2, 0.0]], atol=1e-6)
    assert margin_scores(sim, np.zeros(2), np.zeros(2), scoring="cosine") is sim


def test_margin_fixes_a_hub() -> None:
    # candidate 2 is a hub: it is the cosine nearest neighbour of x2, whose gold is y2,
    # but it is also very close to x3, so margin scoring discounts it.
    q = _unit(np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0.1]]))
    c = _unit(np.array([[1, 0.1, 0], [0, 1, 1.2], [1, 1, 0]]))
    gold = [0, 1, 2]
    assert xsim_error(q, c, gold, k=1, scoring="cosine") == pytest.approx(1 / 3)
    assert xsim_error(q, c, gold, k=1, scoring="ratio") == 0.0
    assert _naive_xsim(q, c, [{0}, {1}, {2}], 1) == 0.0
    m = retrieval_metrics(q, c, gold, ks=(1, 2), mrr_k=2, xsim_k=1)
    assert m == pytest.approx(
        {
            "recall@1": 2 / 3,
            "recall@2": 1.0,
            "mrr@2": (1 + 0.5 + 1) / 3,
            "xsim_error": 0.0,
            "n_queries": 3,
            "pool_size": 3,
        }
    )


def test_default_keys() -> None:
    e = np.eye(12, dtype=np.float32)
    m = retrieval_metrics(e, e, list(range(12)))
    assert list(m) == [
        "recall@1",
        "recall@5",
        "recall@10",
        "mrr@10",
        "xsim_error",
        "n_queries",
        "pool_size",
    ]
    assert m["recall@1"] == 1.0 and m["xsim_error"] == 0.0 and m["pool_size"] == 12


def test_unnormalised_inputs_are_scored_as_cosines() -> None:
    rng = np.random.default_rng(0)
    q, c = rng.standard_normal((6, 5)), rng.standard_normal((9, 5))
    gold = [1, 2, 3, 4, 5, 6]
    scale = np.arange(1, 7)[:, None]
    assert retrieval_metrics(q * scale, c * 3, gold) == retrieval_metrics(q, c, gold)


# ---------------------------------------------------------------- naive agreement
@pytest.mark.parametrize("block", [1 << 24, 7])
def test_chunked_agrees_with_naive(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    monkeypatch.setattr(mr, "BLOCK_ELEMENTS", block)  # 7 -> one query row per block
    rng = np.random.default_rng(1)
    q, c = rng.standard_normal((25, 6)), rng.standard_normal((30, 6))
    gold = [set(rng.choice(30, size=rng.integers(1, 4), replace=False).tolist()) for _ in q]
    sim = _unit(q) @ _unit(c).T
    np.testing.assert_array_equal(gold_ranks(q, c, gold), _naive_ranks(sim, gold))
    for k in (1, 4, 40):
        assert xsim_error(q, c, gold, k=k) == pytest.approx(_naive_xsim(q, c, gold, k))


def test_blocks_stay_within_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mr, "BLOCK_ELEMENTS", 100)
    seen = []
    real = mr._ranks_block

    def spy(block, g_idx, g_valid):  # noqa: ANN001, ANN202
        seen.append(block.shape)
        return real(block, g_idx, g_valid)

    monkeypatch.setattr(mr, "_ranks_block", spy)
    rng = np.random.default_rng(2)
    m = retrieval_metrics(rng.standard_normal((50, 3)), rng.standard_normal((40, 3)), [0] * 50)
    assert m["n_queries"] == 50
    assert all(r * c <= 100 for r, c in seen) and sum(r for r, _ in seen) == 50


# ------------------------------------------------------------- property tests
@st.composite
def _problem(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, list[set[int]]]:
    n_q = draw(st.integers(1, 8))
    n_c = draw(st.integers(1, 10))
    dim = draw(st.integers(2, 5))  # in 1-D every cosine is +-1: all ties
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    q = rng.standard_normal((n_q, dim)) + 0.01
    c = rng.standard_normal((n_c, dim)) + 0.01
    gold = [
        set(draw(st.lists(st.integers(0, n_c - 1), min_size=1, max_size=3))) for _ in range(n_q)
    ]
    return q, c, gold


@settings(max_examples=60, deadline=None)
@given(_problem())
def test_recall_monotone_and_mrr_bounded(problem) -> None:
    q, c, gold = problem
    ranks = gold_ranks(q, c, gold)
    recalls = [recall_at_k(ranks, k) for k in range(1, c.shape[0] + 2)]
    assert all(a <= b for a, b in zip(recalls, recalls[1:], strict=False))
    assert recalls[-1] == 1.0
    for k in (1, 3, 10):
        assert recall_at_k(ranks, 1) <= mrr_at_k(ranks, k) + 1e-12
        assert mrr_at_k(ranks, k) <= recall_at_k(ranks, k) + 1e-12


@settings(max_examples=60, deadline=None)
@given(_problem(), st.integers(0, 2**32 - 1))
def test_candidate_permutation_invariance(problem, seed: int) -> None:
    q, c, gold = problem
    perm = np.random.default_rng(seed).permutation(c.shape[0])
    inv = np.argsort(perm)  # new position of old candidate j
    gold_p = [{int(inv[j]) for j in g} for g in gold]
    a = retrieval_metrics(q, c, gold, ks=(1, 2, 5), mrr_k=5, xsim_k=2)
    b = retrieval_metrics(q, c[perm], gold_p, ks=(1, 2, 5), mrr_k=5, xsim_k=2)
    assert a == pytest.approx(b)


@settings(max_examples=40, deadline=None)
@given(_problem())
def test_cosine_xsim_is_one_minus_recall_at_1(problem) -> None:
    q, c, gold = problem
    ranks = gold_ranks(q, c, gold)
    assert xsim_error(q, c, gold, scoring="cosine") == pytest.approx(1 - recall_at_k(ranks, 1))


# ------------------------------------------------------------------------ errors
def test_errors() -> None:
    e = np.eye(3, dtype=np.float32)
    with pytest.raises(MetricError, match="query 1 has no gold"):
        retrieval_metrics(e, e, [0, [], 2])
    with pytest.raises(MetricError, match="query 2: gold index 3 is outside the candidate pool"):
        retrieval_metrics(e, e, [0, 1, 3])
    with pytest.raises(MetricError, match="gold has 2 entries for 3 queries"):
        retrieval_metrics(e, e, [0, 1])
    with pytest.raises(MetricError, match="dimension 3, candidates 2"):
        retrieval_metrics(e, np.ones((3, 2)), [0, 1, 2])
    bad = e.copy()
    bad[1, 1] = np.nan
    with pytest.raises(MetricError, match="candidate embeddings: row 1 holds NaN"):
        retrieval_metrics(e, bad, [0, 1, 2])
    with pytest.raises(MetricError, match="query embeddings: row 0 is all zeros"):
        retrieval_metrics(np.zeros((1, 3)), e, [0])
    with pytest.raises(MetricError, match="unknown scoring"):
        xsim_error(e, e, [0, 1, 2], scoring="csls")
    with pytest.raises(MetricError, match="k must be >= 1"):
        recall_at_k(np.array([1, 2]), 0)
    with pytest.raises(MetricError, match="non-empty"):
        mrr_at_k(np.array([], dtype=np.int64), 1)
