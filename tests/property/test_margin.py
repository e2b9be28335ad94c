"""Margin scoring (ratio margin of Artetxe & Schwenk, as in LASER/SONAR xsim): the scores match a
direct numpy definition, and xsim error and the margin matrix do not depend on the order of the
queries or of the candidates."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from speechx.metrics.retrieval import knn_mean, margin_scores, retrieval_metrics, xsim_error

from .conftest import PROFILE, examples, seeds, unit_rows

Case = tuple[np.ndarray, np.ndarray, list[list[int]], int]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Random unit queries and candidates, 1-2 gold candidates per query, and a margin k."""
    n_q, n_c, dim = draw(st.integers(1, 7)), draw(st.integers(1, 9)), draw(st.integers(2, 5))
    rng = np.random.default_rng(draw(seeds))
    gold = [
        sorted(set(draw(st.lists(st.integers(0, n_c - 1), min_size=1, max_size=2))))
        for _ in range(n_q)
    ]
    return unit_rows(rng, n_q, dim), unit_rows(rng, n_c, dim), gold, draw(st.integers(1, 5))


def direct_ratio_margin(q: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    """``cos(x, y) / (sum_{z in NN_k(x)} cos(x, z) / 2k + sum_{z in NN_k(y)} cos(y, z) / 2k)``,
    written out with loops in float64 (k capped at the other side's size)."""
    cos = q.astype(np.float64) @ c.astype(np.float64).T
    out = np.empty_like(cos)
    kx, ky = min(k, c.shape[0]), min(k, q.shape[0])
    for i in range(q.shape[0]):
        nn_x = sorted(cos[i, :], reverse=True)[:kx]
        for j in range(c.shape[0]):
            nn_y = sorted(cos[:, j], reverse=True)[:ky]
            out[i, j] = cos[i, j] / (sum(nn_x) / (2 * kx) + sum(nn_y) / (2 * ky))
    return out


def denominators(q: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    """speechx's ``(knn(x) + knn(y)) / 2`` for every query-candidate pair."""
    return (knn_mean(q, c, k)[:, None] + knn_mean(c, q, k)[None, :]) / 2


def clear_winners(m: np.ndarray, gap: float = 1e-4) -> bool:
    """Each row's best score beats its second best by ``gap`` (no near-tie for the argmax)."""
    if m.shape[1] < 2:
        return True
    top2 = np.sort(m, axis=1)[:, -2:]
    return bool((top2[:, 1] - top2[:, 0] > gap).all())


@settings(PROFILE, max_examples=examples(200), deadline=None)
@given(cases())
def test_ratio_margin_matches_the_direct_definition(case: Case) -> None:
    q, c, gold, k = case
    assume(np.abs(denominators(q, c, k)).min() > 1e-2)  # the ratio is well conditioned
    direct = direct_ratio_margin(q, c, k)
    ours = margin_scores(q @ c.T, knn_mean(q, c, k), knn_mean(c, q, k), scoring="ratio")
    np.testing.assert_allclose(ours, direct, rtol=1e-4, atol=1e-5)
    assume(clear_winners(direct))
    misses = [int(np.argmax(direct[i])) not in gold[i] for i in range(q.shape[0])]
    assert xsim_error(q, c, gold, k=k) == sum(misses) / q.shape[0]
    assert retrieval_metrics(q, c, gold, xsim_k=k)["xsim_error"] == xsim_error(q, c, gold, k=k)


@settings(PROFILE, max_examples=examples(200), deadline=None)
@given(cases(), seeds, st.sampled_from(["ratio", "distance", "cosine"]))
def test_margin_and_xsim_do_not_depend_on_order(case: Case, seed: int, scoring: str) -> None:
    q, c, gold, k = case
    rng = np.random.default_rng(seed)
    pq, pc = rng.permutation(q.shape[0]), rng.permutation(c.shape[0])
    new_pos = np.argsort(pc)  # candidate j now sits at row new_pos[j]
    q2, c2 = q[pq], c[pc]
    gold2 = [sorted(int(new_pos[g]) for g in gold[i]) for i in pq]
    m = margin_scores(q @ c.T, knn_mean(q, c, k), knn_mean(c, q, k), scoring=scoring)
    m2 = margin_scores(q2 @ c2.T, knn_mean(q2, c2, k), knn_mean(c2, q2, k), scoring=scoring)
    # compare where the ratio is well conditioned (a near-zero denominator turns an ulp of
    # difference in the neighbourhood means into a large one)
    ok = (np.abs(denominators(q, c, k)) > 1e-3)[pq][:, pc]
    np.testing.assert_allclose(m2[ok], m[pq][:, pc][ok], rtol=1e-5, atol=1e-6)
    assume(clear_winners(np.where(np.isfinite(m), m, -1e30)))
    assert xsim_error(q2, c2, gold2, k=k, scoring=scoring) == xsim_error(
        q, c, gold, k=k, scoring=scoring
    )
