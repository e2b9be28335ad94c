"""recall@k and MRR@k: recall is monotone in k and reaches 1 at the pool size, MRR stays within
its bounds, and permuting the candidate pool (or the queries) changes nothing on tie-free data;
with ties, ranks follow the documented rule (ties go to the lower candidate index)."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from speechx.metrics.retrieval import (
    gold_ranks,
    mrr_at_k,
    rank_of_gold,
    recall_at_k,
    retrieval_metrics,
)

from .conftest import PROFILE, examples, seeds, unit_rows

Problem = tuple[np.ndarray, np.ndarray, list[set[int]]]


@st.composite
def problems(draw: st.DrawFn, *, max_gold: int = 3) -> Problem:
    """Random unit query and candidate embeddings and 1..max_gold gold candidates per query."""
    n_q, n_c, dim = draw(st.integers(1, 8)), draw(st.integers(1, 12)), draw(st.integers(2, 6))
    rng = np.random.default_rng(draw(seeds))
    gold = [
        set(draw(st.lists(st.integers(0, n_c - 1), min_size=1, max_size=max_gold)))
        for _ in range(n_q)
    ]
    return unit_rows(rng, n_q, dim), unit_rows(rng, n_c, dim), gold


def tie_free(q: np.ndarray, c: np.ndarray, gap: float = 1e-5) -> bool:
    """No two candidates of a query score within ``gap`` of each other."""
    s = np.sort(q.astype(np.float64) @ c.T.astype(np.float64), axis=1)
    return bool(s.shape[1] < 2 or np.diff(s, axis=1).min() > gap)


@settings(PROFILE, max_examples=examples(300), deadline=None)
@given(problems())
def test_recall_is_monotone_in_k_and_mrr_is_bounded(problem: Problem) -> None:
    q, c, gold = problem
    n = c.shape[0]
    ranks = gold_ranks(q, c, [sorted(g) for g in gold])
    assert ranks.min() >= 1 and ranks.max() <= n
    recalls = [recall_at_k(ranks, k) for k in range(1, n + 2)]
    assert all(a <= b for a, b in zip(recalls, recalls[1:], strict=False))
    assert recalls[n - 1] == 1.0  # every gold item is in the pool
    for k in range(1, n + 1):
        mrr = mrr_at_k(ranks, k)
        assert recalls[0] <= mrr <= recalls[k - 1]  # 1/rank is 1 at rank 1 and <= 1 within k
        assert mrr >= recalls[k - 1] / k
    full = mrr_at_k(ranks, n)
    assert 1.0 / n <= full <= 1.0
    assert (full == 1.0) == (recalls[0] == 1.0)
    # the one-pass evaluator gives the same numbers
    ks = tuple(range(1, n + 1))
    out = retrieval_metrics(q, c, [sorted(g) for g in gold], ks=ks, mrr_k=n)
    assert [out[f"recall@{k}"] for k in ks] == recalls[:n]
    assert out[f"mrr@{n}"] == full


@settings(PROFILE, max_examples=examples(300), deadline=None)
@given(problems(), seeds)
def test_permuting_pool_and_queries_keeps_recall_and_mrr(problem: Problem, seed: int) -> None:
    q, c, gold = problem
    assume(tie_free(q, c))
    rng = np.random.default_rng(seed)
    pc, pq = rng.permutation(c.shape[0]), rng.permutation(q.shape[0])
    new_pos = np.argsort(pc)  # candidate i is now at row new_pos[i]
    gold2 = [sorted(int(new_pos[g]) for g in gold[i]) for i in pq]
    ranks = gold_ranks(q, c, [sorted(g) for g in gold])
    ranks2 = gold_ranks(q[pq], c[pc], gold2)
    assert ranks2.tolist() == ranks[pq].tolist()
    n = c.shape[0]
    for k in range(1, n + 1):
        assert recall_at_k(ranks2, k) == recall_at_k(ranks, k)
        assert np.isclose(mrr_at_k(ranks2, k), mrr_at_k(ranks, k), rtol=0, atol=1e-12)


@settings(PROFILE, max_examples=examples(300), deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda n_c: st.tuples(
            st.lists(st.lists(st.integers(-2, 2), min_size=n_c, max_size=n_c), min_size=1),
            st.lists(st.frozensets(st.integers(0, n_c - 1), min_size=1), min_size=1),
        )
    )
)
def test_ties_follow_the_lower_index_rule(case) -> None:
    """Scores with many exact ties: the rank is the position of the first gold item in a stable
    sort by descending score (so ties go to the lower candidate index)."""
    rows, gold_sets = case
    n_q = min(len(rows), len(gold_sets))
    scores = np.asarray(rows[:n_q], dtype=np.float64)
    gold = [sorted(g) for g in gold_sets[:n_q]]
    ranks = rank_of_gold(scores, gold)
    for i in range(n_q):
        order = sorted(range(scores.shape[1]), key=lambda j: (-scores[i, j], j))
        assert ranks[i] == 1 + min(order.index(g) for g in gold[i])
