"""Retrieval metrics on embedding matrices: recall@k, MRR@k and xsim error (margin scoring).

Definitions (kept exactly as in DESIGN.md):

- **recall@k**: the fraction of queries whose gold item is among the top k; with several gold
  items, a hit on any of them counts.
- **MRR@k**: the mean of 1/rank of the first gold item; a rank above k counts 0.
- **xsim error**: the fraction of queries whose nearest candidate under ratio-margin scoring
  (Artetxe & Schwenk 2019) is not a gold item, with
  ``margin(x, y) = cos(x, y) / (sum_{z in NN_k(x)} cos(x, z) / 2k + sum_{z in NN_k(y)} cos(y, z) / 2k)``
  where ``NN_k(x)`` are the k nearest candidates of query x and ``NN_k(y)`` the k nearest queries
  of candidate y. With ``scoring="cosine"`` it is ``1 - recall@1``, computed the same way.

Ranks are 1-based; ties in score are broken by the lower candidate index, the same rule as
:func:`speechx.retrieval.exact_topk`. Scores are cosines: the embeddings are L2-normalised here.
Everything is computed in blocks of whole query rows, bounded to about :data:`BLOCK_ELEMENTS`
float32 values, so a 50k x 50k evaluation never holds the full score matrix.

``gold`` is, for each query, the correct candidate indices: an ``int`` or an iterable of ints
per query (or an int array ``[Q]``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from speechx.errors import MetricError

BLOCK_ELEMENTS = 1 << 24  # 64 MB of float32 scores per block
SCORINGS = ("ratio", "distance", "cosine")

Gold = Sequence[int | Iterable[int]] | np.ndarray


# ------------------------------------------------------------------------ gold
def gold_matrix(gold: Gold, n_queries: int, pool_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pack ``gold`` into a padded matrix.

    Returns:
        ``(indices int64 [Q, G], valid bool [Q, G])``: each row holds that query's gold indices
        sorted ascending, padded with 0 where ``valid`` is False.

    Raises:
        MetricError: the wrong number of entries, a query with no gold item, or an index outside
            ``[0, pool_size)`` (naming the query).
    """
    if len(gold) != n_queries:
        raise MetricError(f"gold has {len(gold)} entries for {n_queries} queries")
    rows: list[np.ndarray] = []
    for q, g in enumerate(gold):
        scalar = isinstance(g, int | np.integer) or (isinstance(g, np.ndarray) and g.ndim == 0)
        try:
            arr = np.unique(np.asarray([g] if scalar else list(g), dtype=np.int64))
        except (TypeError, ValueError):
            raise MetricError(
                f"query {q}: gold {g!r} is not an index or a set of indices"
            ) from None
        if arr.size == 0:
            raise MetricError(f"query {q} has no gold candidate")
        if arr[0] < 0 or arr[-1] >= pool_size:
            raise MetricError(
                f"query {q}: gold index {int(arr[0] if arr[0] < 0 else arr[-1])} is outside "
                f"the candidate pool of size {pool_size}"
            )
        rows.append(arr)
    width = max((r.size for r in rows), default=1)
    idx = np.zeros((n_queries, width), dtype=np.int64)
    valid = np.zeros((n_queries, width), dtype=bool)
    for q, r in enumerate(rows):
        idx[q, : r.size] = r
        valid[q, : r.size] = True
    return idx, valid


# ----------------------------------------------------------------------- ranks
def rank_of_gold(scores: np.ndarray, gold: Gold) -> np.ndarray:
    """1-based rank of the first (best-ranked) gold item in each row of ``scores``.

    Args:
        scores: ``[Q, M]`` similarity of each query to each candidate (higher is better).
        gold: the correct candidate indices of each query.

    Returns:
        int64 ``[Q]``. The rank of candidate ``g`` is 1 + the number of candidates scoring
        higher, + the number of lower-index candidates scoring the same.

    Raises:
        MetricError: a non-2-D or non-finite score matrix, or bad gold (see :func:`gold_matrix`).

    Example:
        >>> rank_of_gold(np.array([[0.1, 0.9, 0.5]]), [2]).tolist()
        [2]
    """
    s = np.asarray(scores)
    if s.ndim != 2:
        raise MetricError(f"scores must be a 2-D [queries, candidates] array, got {s.shape}")
    if not np.isfinite(s).all():
        raise MetricError("scores hold NaN or inf")
    g_idx, g_valid = gold_matrix(gold, s.shape[0], s.shape[1])
    return _ranks_block(s, g_idx, g_valid)


def _ranks_block(block: np.ndarray, g_idx: np.ndarray, g_valid: np.ndarray) -> np.ndarray:
    g_sc = np.take_along_axis(block, g_idx, axis=1)
    g_sc = np.where(g_valid, g_sc, -np.inf)
    best = np.argmax(g_sc, axis=1)  # first maximum = lowest index among tied gold items
    g_best = g_idx[np.arange(block.shape[0]), best]
    s_best = g_sc[np.arange(block.shape[0]), best][:, None]
    higher = (block > s_best).sum(axis=1)
    tied_before = ((block == s_best) & (np.arange(block.shape[1]) < g_best[:, None])).sum(axis=1)
    return (1 + higher + tied_before).astype(np.int64)


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """Fraction of queries whose first gold item has rank ``<= k``.

    Args:
        ranks: 1-based ranks from :func:`rank_of_gold` (or :func:`gold_ranks`).
        k: cut-off, ``>= 1``.

    Returns:
        A float in [0, 1].

    Raises:
        MetricError: ``k < 1`` or no queries.
    """
    r = _check_ranks(ranks, k)
    return float(np.mean(r <= k))


def mrr_at_k(ranks: np.ndarray, k: int) -> float:
    """Mean of ``1 / rank`` of the first gold item, counting ranks above ``k`` as 0.

    Returns:
        A float in [0, 1].

    Raises:
        MetricError: ``k < 1`` or no queries.
    """
    r = _check_ranks(ranks, k)
    return float(np.mean(np.where(r <= k, 1.0 / r, 0.0)))


def _check_ranks(ranks: np.ndarray, k: int) -> np.ndarray:
    r = np.asarray(ranks)
    if r.ndim != 1 or r.size == 0:
        raise MetricError(f"ranks must be a non-empty 1-D array, got shape {r.shape}")
    if k < 1:
        raise MetricError(f"k must be >= 1, got {k}")
    if r.min() < 1:
        raise MetricError(f"ranks are 1-based, got a rank of {int(r.min())}")
    return r


# --------------------------------------------------------------------- margins
def knn_mean(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Mean cosine of each row of ``a`` to its ``k`` nearest rows of ``b``.

    ``a`` and ``b`` must be L2-normalised float arrays; ``k`` is capped at ``len(b)``.

    Returns:
        float32 ``[len(a)]``. Computed in row blocks of ``a``.
    """
    if k < 1:
        raise MetricError(f"margin k must be >= 1, got {k}")
    k = min(k, b.shape[0])
    out = np.empty(a.shape[0], dtype=np.float32)
    for s, blk in _blocks(a, b):
        out[s : s + blk.shape[0]] = _topk_mean(blk, k)
    return out


def _topk_mean(block: np.ndarray, k: int) -> np.ndarray:
    m = block.shape[1]
    top = np.partition(block, m - k, axis=1)[:, m - k :] if k < m else block
    return top.mean(axis=1, dtype=np.float64).astype(np.float32)


def margin_scores(
    sim: np.ndarray,
    query_knn: np.ndarray,
    cand_knn: np.ndarray,
    *,
    scoring: str = "ratio",
) -> np.ndarray:
    """Margin-based scores of a block of query-candidate cosines.

    Args:
        sim: ``[Q, M]`` cosines ``cos(x, y)``.
        query_knn: ``[Q]`` mean cosine of each query to its k nearest candidates.
        cand_knn: ``[M]`` mean cosine of each candidate to its k nearest queries.
        scoring: ``ratio`` gives ``cos / ((query_knn + cand_knn) / 2)``, ``distance`` gives
            ``cos - (query_knn + cand_knn) / 2``, ``cosine`` returns ``sim`` unchanged.

    Returns:
        ``[Q, M]`` scores, higher is better.

    Raises:
        MetricError: an unknown scoring or shapes that do not match.
    """
    if scoring not in SCORINGS:
        raise MetricError(f"unknown scoring {scoring!r}; expected one of {SCORINGS}")
    sim = np.asarray(sim)
    qk, ck = np.asarray(query_knn), np.asarray(cand_knn)
    if sim.ndim != 2 or qk.shape != (sim.shape[0],) or ck.shape != (sim.shape[1],):
        raise MetricError(
            f"margin_scores: sim {sim.shape} does not match query_knn {qk.shape} "
            f"and cand_knn {ck.shape}"
        )
    if scoring == "cosine":
        return sim
    return pair_margins(sim, qk[:, None], ck[None, :], scoring=scoring)


def pair_margins(
    cos: np.ndarray,
    x_knn: np.ndarray,
    y_knn: np.ndarray,
    *,
    scoring: str = "ratio",
) -> np.ndarray:
    """Margin scores of pairs, element by element (numpy broadcasting).

    The same definition as :func:`margin_scores`, for pairs that do not form a full matrix,
    such as the k-NN candidates of bitext mining (:mod:`speechx.mining`).

    Args:
        cos: ``cos(x, y)`` of each pair.
        x_knn: mean cosine of ``x`` to its k nearest neighbours on the other side.
        y_knn: mean cosine of ``y`` to its k nearest neighbours on the other side.
        scoring: ``ratio`` gives ``cos / ((x_knn + y_knn) / 2)`` (0/0 gives ``-inf``),
            ``distance`` gives ``cos - (x_knn + y_knn) / 2``, ``cosine`` gives ``cos``.

    Returns:
        The broadcast shape of the three arrays, higher is better.

    Raises:
        MetricError: an unknown scoring.
    """
    if scoring not in SCORINGS:
        raise MetricError(f"unknown scoring {scoring!r}; expected one of {SCORINGS}")
    cos = np.asarray(cos)
    if scoring == "cosine":
        return cos
    denom = (np.asarray(x_knn) + np.asarray(y_knn)) / 2.0
    if scoring == "distance":
        return cos - denom
    with np.errstate(divide="ignore", invalid="ignore"):
        out = cos / denom
    # The ratio assumes positive neighbourhood similarity; 0/0 ranks last rather than first.
    return np.where(np.isnan(out), -np.inf, out)


# ---------------------------------------------------------------- embeddings in
def gold_ranks(query_emb: np.ndarray, cand_emb: np.ndarray, gold: Gold) -> np.ndarray:
    """1-based cosine rank of the first gold candidate of each query, computed in blocks.

    Returns:
        int64 ``[Q]``.

    Raises:
        MetricError: see :func:`retrieval_metrics`.
    """
    q, c = _prepare(query_emb, cand_emb)
    g_idx, g_valid = gold_matrix(gold, q.shape[0], c.shape[0])
    ranks = np.empty(q.shape[0], dtype=np.int64)
    for s, blk in _blocks(q, c):
        e = s + blk.shape[0]
        ranks[s:e] = _ranks_block(blk, g_idx[s:e], g_valid[s:e])
    return ranks


def xsim_error(
    query_emb: np.ndarray,
    cand_emb: np.ndarray,
    gold: Gold,
    k: int = 4,
    scoring: str = "ratio",
) -> float:
    """Fraction of queries whose best candidate under ``scoring`` is not a gold item.

    Args:
        query_emb: ``[Q, D]`` query embeddings (normalised here).
        cand_emb: ``[M, D]`` candidate embeddings (normalised here).
        gold: correct candidate indices per query.
        k: neighbourhood size of the margin (capped at the pool and query counts).
        scoring: ``ratio`` (default, as in LASER/SONAR xsim), ``distance`` or ``cosine``.

    Returns:
        A float in [0, 1]. Ties go to the lower candidate index.

    Raises:
        MetricError: see :func:`retrieval_metrics`.
    """
    q, c = _prepare(query_emb, cand_emb)
    g_idx, g_valid = gold_matrix(gold, q.shape[0], c.shape[0])
    return _scan(q, c, g_idx, g_valid, k=k, scoring=scoring, want_ranks=False)[1]


def retrieval_metrics(
    query_emb: np.ndarray,
    cand_emb: np.ndarray,
    gold: Gold,
    ks: Sequence[int] = (1, 5, 10),
    mrr_k: int = 10,
    *,
    xsim_k: int = 4,
    xsim_scoring: str = "ratio",
) -> dict[str, float | int]:
    """All retrieval metrics of one query set against one candidate pool.

    Args:
        query_emb: ``[Q, D]`` float query embeddings.
        cand_emb: ``[M, D]`` float candidate embeddings.
        gold: for each query, the set of correct candidate indices.
        ks: recall cut-offs.
        mrr_k: MRR cut-off.
        xsim_k, xsim_scoring: margin settings of the xsim error.

    Returns:
        ``{"recall@1": .., "recall@5": .., "recall@10": .., "mrr@10": .., "xsim_error": ..,
        "n_queries": Q, "pool_size": M}`` (one ``recall@k`` per entry of ``ks``).

    Raises:
        MetricError: arrays that are not 2-D, differ in dimension, are empty, hold NaN/inf or
            all-zero rows (naming the first such row), or bad gold indices.
    """
    q, c = _prepare(query_emb, cand_emb)
    g_idx, g_valid = gold_matrix(gold, q.shape[0], c.shape[0])
    ranks, xsim = _scan(q, c, g_idx, g_valid, k=xsim_k, scoring=xsim_scoring, want_ranks=True)
    out: dict[str, float | int] = {f"recall@{k}": recall_at_k(ranks, k) for k in ks}
    out[f"mrr@{mrr_k}"] = mrr_at_k(ranks, mrr_k)
    out["xsim_error"] = xsim
    out["n_queries"] = int(q.shape[0])
    out["pool_size"] = int(c.shape[0])
    return out


def _scan(
    q: np.ndarray,
    c: np.ndarray,
    g_idx: np.ndarray,
    g_valid: np.ndarray,
    *,
    k: int,
    scoring: str,
    want_ranks: bool,
) -> tuple[np.ndarray | None, float]:
    """One pass over query blocks computing ranks (optionally) and xsim misses."""
    if scoring not in SCORINGS:
        raise MetricError(f"unknown scoring {scoring!r}; expected one of {SCORINGS}")
    if k < 1:
        raise MetricError(f"margin k must be >= 1, got {k}")
    margin = scoring != "cosine"
    cand_knn = knn_mean(c, q, k) if margin else None
    kq = min(k, c.shape[0])
    ranks = np.empty(q.shape[0], dtype=np.int64) if want_ranks else None
    misses = 0
    for s, blk in _blocks(q, c):
        e = s + blk.shape[0]
        if ranks is not None:
            ranks[s:e] = _ranks_block(blk, g_idx[s:e], g_valid[s:e])
        scored = (
            margin_scores(blk, _topk_mean(blk, kq), cand_knn, scoring=scoring) if margin else blk
        )
        pred = np.argmax(scored, axis=1)
        hit = ((g_idx[s:e] == pred[:, None]) & g_valid[s:e]).any(axis=1)
        misses += int((~hit).sum())
    return ranks, misses / q.shape[0]


def _blocks(a: np.ndarray, b: np.ndarray) -> Any:
    """Yield ``(start, a[start:start+r] @ b.T)`` with ``r * len(b)`` near BLOCK_ELEMENTS."""
    rows = max(1, BLOCK_ELEMENTS // max(1, b.shape[0]))
    for s in range(0, a.shape[0], rows):
        yield s, a[s : s + rows] @ b.T


def _prepare(query_emb: np.ndarray, cand_emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = _normalized(query_emb, "query embeddings")
    c = _normalized(cand_emb, "candidate embeddings")
    if q.shape[1] != c.shape[1]:
        raise MetricError(f"query embeddings have dimension {q.shape[1]}, candidates {c.shape[1]}")
    return q, c


def _normalized(x: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise MetricError(f"{what} must be a non-empty 2-D array [rows, dim], got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise MetricError(f"{what} must be floating point, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if bad.size:
        raise MetricError(f"{what}: row {int(bad[0])} holds NaN or inf ({bad.size} rows in all)")
    norms = np.linalg.norm(arr, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise MetricError(f"{what}: row {int(zero[0])} is all zeros ({zero.size} rows in all)")
    if np.all(np.abs(norms - 1.0) < 1e-6):
        return np.ascontiguousarray(arr)
    return np.ascontiguousarray(arr / norms[:, None])
