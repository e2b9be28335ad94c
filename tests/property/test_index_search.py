"""EmbeddingIndex search equals numpy brute force (argsort of dot products), for the exact
backend with any chunk sizes and for faiss-flat, up to ties; the exact backend breaks exact ties
by the lower corpus index whatever the chunking."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from speechx.retrieval import EmbeddingIndex

from .conftest import PROFILE, examples, seeds, unit_rows

EPS = 1e-5  # float32 dot products of unit vectors agree to about 1e-7


def brute_force(queries: np.ndarray, corpus: np.ndarray) -> np.ndarray:
    """float64 scores and the stable descending order (ties to the lower index)."""
    return queries.astype(np.float64) @ corpus.astype(np.float64).T


def assert_top_k(idx: np.ndarray, sc: np.ndarray, full: np.ndarray, k: int) -> None:
    """``idx``/``sc`` are a correct top-k of ``full`` up to scores within EPS of each other."""
    assert idx.shape == sc.shape == (full.shape[0], k)
    for row in range(full.shape[0]):
        exact = np.sort(full[row])[::-1][:k]
        np.testing.assert_allclose(sc[row], exact, atol=EPS, rtol=0)  # the k best scores
        np.testing.assert_allclose(sc[row], full[row, idx[row]], atol=EPS, rtol=0)
        assert len(set(idx[row].tolist())) == k
        # every corpus row clearly above the k-th best score is returned
        must = np.flatnonzero(full[row] > exact[-1] + EPS)
        assert set(must.tolist()) <= set(idx[row].tolist())


@st.composite
def search_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    n, n_q, dim = draw(st.integers(1, 40)), draw(st.integers(1, 6)), draw(st.integers(2, 8))
    rng = np.random.default_rng(draw(seeds))
    return unit_rows(rng, n_q, dim), unit_rows(rng, n, dim), draw(st.integers(1, n + 3))


@settings(PROFILE, max_examples=examples(150), deadline=None)
@given(search_cases(), st.integers(1, 4), st.integers(1, 7))
def test_exact_and_faiss_flat_equal_brute_force(case, query_chunk: int, corpus_chunk: int) -> None:
    queries, corpus, top_k = case
    n = corpus.shape[0]
    ids = [f"doc-{i}" for i in range(n)]
    full = brute_force(queries, corpus)
    k = min(top_k, n)
    results = {}
    for backend in ("exact", "faiss-flat"):
        index = EmbeddingIndex.build(
            corpus, ids, backend=backend, query_chunk=query_chunk, corpus_chunk=corpus_chunk
        )
        res = index.search(queries, top_k=top_k)
        assert_top_k(res.indices, res.scores, full, k)
        assert res.ids == [[ids[j] for j in row] for row in res.indices.tolist()]
        assert np.all(np.diff(res.scores, axis=1) <= EPS)  # best first
        results[backend] = res
    # chunking never changes the exact backend's answer
    whole = EmbeddingIndex.build(corpus, ids, backend="exact").search(queries, top_k=top_k)
    np.testing.assert_allclose(results["exact"].scores, whole.scores, atol=EPS, rtol=0)
    gaps = np.diff(np.sort(full, axis=1), axis=1)
    if gaps.size == 0 or gaps.min() > EPS:  # no near-ties: the same rows in the same order
        assert results["exact"].indices.tolist() == whole.indices.tolist()
        assert results["faiss-flat"].indices.tolist() == whole.indices.tolist()


@settings(PROFILE, max_examples=examples(150), deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda n: st.tuples(
            st.lists(st.lists(st.integers(-1, 1), min_size=3, max_size=3), min_size=n, max_size=n),
            st.lists(st.lists(st.integers(-1, 1), min_size=3, max_size=3), min_size=1, max_size=4),
        )
    ),
    st.integers(1, 14),
    st.integers(1, 3),
    st.integers(1, 5),
)
def test_exact_backend_breaks_ties_by_lower_index(
    case, top_k: int, query_chunk: int, corpus_chunk: int
) -> None:
    """Small integer vectors (exact float32 arithmetic, many tied scores), inner product: the
    exact backend returns a stable descending sort whatever the chunk sizes; faiss-flat returns
    the same scores."""
    corpus = np.asarray(case[0], dtype=np.float32)
    queries = np.asarray(case[1], dtype=np.float32)
    full = brute_force(queries, corpus)
    k = min(top_k, corpus.shape[0])
    order = np.argsort(-full, axis=1, kind="stable")[:, :k]
    res = EmbeddingIndex.build(
        corpus, backend="exact", metric="ip", query_chunk=query_chunk, corpus_chunk=corpus_chunk
    ).search(queries, top_k=top_k)
    assert res.indices.tolist() == order.tolist()
    assert res.scores.tolist() == np.take_along_axis(full, order, axis=1).tolist()
    flat = EmbeddingIndex.build(corpus, backend="faiss-flat", metric="ip").search(queries, top_k)
    assert flat.scores.tolist() == res.scores.tolist()
    assert (np.take_along_axis(full, flat.indices, axis=1) == flat.scores).all()
