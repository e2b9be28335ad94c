"""Bitext mining: find the pairs of two collections of embeddings that say the same thing.

Arrays in, pairs out::

    pairs = mine(speech_emb, text_emb, src_ids=utts, tgt_ids=sents, mode="intersection")
    pairs[0]   # MinedPair(src_id='nl-17', tgt_id='s42', score=1.21, ...), best first

The method is that of Artetxe & Schwenk (2019, "Margin-based parallel corpus mining with
multilingual sentence embeddings"), as in LASER's ``mine_bitexts.py``:

1. **k-NN both ways.** Each source row's ``k`` nearest targets and each target row's ``k``
   nearest sources, by cosine, through :class:`speechx.retrieval.EmbeddingIndex` (``exact``
   chunked numpy, or FAISS for millions of rows). Only ``[N, k]`` arrays are kept, and queries
   are searched in chunks of :data:`SEARCH_CHUNK`, so memory stays bounded.
2. **Scores.** ``ratio`` margin ``cos(x, y) / (sum_{z in NN_k(x)} cos(x, z) / 2k +
   sum_{z in NN_k(y)} cos(y, z) / 2k)``, the ``distance`` margin (cosine minus the same
   denominator) or plain ``cosine`` (no margin), from
   :func:`speechx.metrics.retrieval.pair_margins`; the two k-NN means are those of step 1.
3. **Candidates and modes.** The candidates of a source are its ``k`` nearest targets (its
   nearest one for ``cosine``); ``forward`` keeps each source's best-scoring candidate,
   ``backward`` each target's best-scoring source, ``intersection`` the pairs chosen both ways
   (LASER's default: at most one pair per source and per target) and ``union`` the pairs chosen
   either way. A pair has one score whichever way it was found.
4. **Threshold.** Pairs scoring ``>= threshold`` are kept (no threshold: all of them), sorted by
   descending score (ties by source, then target row).

A ratio margin around 1.0 separates translations from the rest when the embeddings are good;
:mod:`speechx.metrics.mining` picks the threshold with the best F1 on data with gold pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from speechx.errors import MiningError, RetrievalError
from speechx.metrics.retrieval import SCORINGS, pair_margins
from speechx.retrieval import BACKENDS, EmbeddingIndex

MODES = ("forward", "backward", "intersection", "union")
#: queries searched at once: bounds the hit lists held in Python objects
SEARCH_CHUNK = 65536

__all__ = [
    "MODES",
    "SCORINGS",
    "MinedPair",
    "MinedPairs",
    "Neighbours",
    "mine",
    "neighbours",
    "pair_arrays",
    "select_pairs",
]


@dataclass(frozen=True)
class MinedPair:
    """One mined pair.

    Attributes:
        src_id, tgt_id: the ids of the source and target rows.
        score: the pair's score under the scoring it was mined with.
        cosine: the cosine of the two embeddings.
        src_index, tgt_index: the row numbers in the source and target arrays.
    """

    src_id: str
    tgt_id: str
    score: float
    cosine: float
    src_index: int
    tgt_index: int


@dataclass(frozen=True)
class MinedPairs:
    """Mined pairs as arrays (all ``[P]``), best first: what :func:`pair_arrays` returns.

    Attributes:
        src_index, tgt_index: int64 row numbers.
        score: float64 scores.
        cosine: float64 cosines.
    """

    src_index: np.ndarray
    tgt_index: np.ndarray
    score: np.ndarray
    cosine: np.ndarray

    def __len__(self) -> int:
        return int(self.score.shape[0])


@dataclass(frozen=True)
class Neighbours:
    """The k-NN of each side in the other, from :func:`neighbours`.

    Attributes:
        src_ids, tgt_ids: the row ids of each side.
        k: the margin's neighbourhood size.
        fwd_index: int64 ``[Ns, k]`` nearest target rows of each source row, best first (-1
            where an approximate index found fewer).
        fwd_cos: float32 ``[Ns, k]`` their cosines.
        bwd_index, bwd_cos: ``[Nt, k]``, the same for each target row; ``None`` when only the
            forward search was needed (``cosine`` scoring in ``forward`` mode).
        src_knn: float64 ``[Ns]`` mean cosine of each source row to its k nearest targets.
        tgt_knn: float64 ``[Nt]`` the same for targets (zeros without a backward search).
    """

    src_ids: list[str]
    tgt_ids: list[str]
    k: int
    fwd_index: np.ndarray
    fwd_cos: np.ndarray
    bwd_index: np.ndarray | None
    bwd_cos: np.ndarray | None
    src_knn: np.ndarray
    tgt_knn: np.ndarray


def neighbours(
    src: np.ndarray,
    tgt: np.ndarray,
    *,
    k: int = 4,
    src_ids: Sequence[str] | None = None,
    tgt_ids: Sequence[str] | None = None,
    backward: bool = True,
    backend: str = "exact",
    index_options: Mapping[str, Any] | None = None,
    names: tuple[str, str] = ("the source", "the target"),
) -> Neighbours:
    """Search the ``k`` nearest neighbours of every source row among the targets and back.

    Args:
        src: float ``[Ns, D]`` source embeddings (L2-normalised here).
        tgt: float ``[Nt, D]`` target embeddings (L2-normalised here).
        k: neighbourhood size, ``1 <= k <= min(Ns, Nt)`` (``<= Nt`` without ``backward``).
        src_ids, tgt_ids: unique row ids (default ``"0"``, ``"1"``, ...).
        backward: also search the targets' neighbours among the sources.
        backend: an :class:`~speechx.retrieval.EmbeddingIndex` backend (``exact``,
            ``faiss-flat``, ``faiss-ivf``, ``faiss-hnsw``, ``auto``).
        index_options: more keyword arguments of :meth:`EmbeddingIndex.build` (``nprobe``,
            ``ef_search``, ...).
        names: how errors name the two sides (e.g. the command line's specs).

    Returns:
        The :class:`Neighbours` of both sides.

    Raises:
        MiningError: an empty side, arrays that are not 2-D floats, dimensions that differ
            (naming both sides), ``k`` out of range (naming the smaller side), an unknown
            backend, or rows the index rejects (NaN, all zeros, duplicate ids).
    """
    if backend not in BACKENDS:
        raise MiningError(f"unknown index backend {backend!r}; expected one of {BACKENDS}")
    s_name, t_name = names
    s, t = _matrix(src, s_name), _matrix(tgt, t_name)
    if s.shape[1] != t.shape[1]:
        raise MiningError(
            f"{s_name} has dimension {s.shape[1]} but {t_name} has dimension "
            f"{t.shape[1]}; both must be embedded into the same space"
        )
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise MiningError(f"k must be a positive integer, got {k!r}")
    sides = ((s_name, s), (t_name, t)) if backward else ((t_name, t),)
    for name, arr in sides:
        if k > arr.shape[0]:
            raise MiningError(
                f"k={k} is larger than {name} ({arr.shape[0]} rows); use k <= {arr.shape[0]}"
            )
    s_ids = _ids(src_ids, s.shape[0], s_name)
    t_ids = _ids(tgt_ids, t.shape[0], t_name)
    opts = dict(index_options or {})
    tgt_index = _build(t, t_ids, t_name, backend, opts)
    fwd_index, fwd_cos = _search(tgt_index, s, k, s_name)
    bwd_index = bwd_cos = None
    tgt_knn = np.zeros(t.shape[0])
    if backward:
        del tgt_index
        src_index = _build(s, s_ids, s_name, backend, opts)
        bwd_index, bwd_cos = _search(src_index, t, k, t_name)
        tgt_knn = _knn_mean(bwd_index, bwd_cos)
    return Neighbours(
        src_ids=s_ids,
        tgt_ids=t_ids,
        k=int(k),
        fwd_index=fwd_index,
        fwd_cos=fwd_cos,
        bwd_index=bwd_index,
        bwd_cos=bwd_cos,
        src_knn=_knn_mean(fwd_index, fwd_cos),
        tgt_knn=tgt_knn,
    )


def pair_arrays(
    nb: Neighbours,
    *,
    mode: str = "intersection",
    scoring: str = "ratio",
    threshold: float | None = None,
) -> MinedPairs:
    """The pairs that ``mode`` picks from ``nb`` under ``scoring``, as arrays, best first.

    Args:
        nb: from :func:`neighbours` (with ``backward=True`` unless ``mode`` is ``forward``).
        mode: one of :data:`MODES` (see the module docstring).
        scoring: ``ratio``, ``distance`` or ``cosine``.
        threshold: keep pairs scoring ``>= threshold``; ``None`` keeps them all.

    Returns:
        :class:`MinedPairs` sorted by descending score, then source and target row.

    Raises:
        MiningError: an unknown mode or scoring, or a mode that needs the backward search
            when ``nb`` has none.
    """
    if mode not in MODES:
        raise MiningError(f"unknown mining mode {mode!r}; expected one of {MODES}")
    if scoring not in SCORINGS:
        raise MiningError(f"unknown scoring {scoring!r}; expected one of {SCORINGS}")
    parts: list[tuple[np.ndarray, ...]] = []
    if mode != "backward":
        parts.append(_best(nb.fwd_index, nb.fwd_cos, nb.src_knn, nb.tgt_knn, scoring, True))
    if mode != "forward":
        if nb.bwd_index is None or nb.bwd_cos is None:
            raise MiningError(
                f"mode {mode!r} needs the backward search (neighbours(backward=True))"
            )
        parts.append(_best(nb.bwd_index, nb.bwd_cos, nb.tgt_knn, nb.src_knn, scoring, False))
    if mode == "intersection":
        (fs, ft, fsc, fc), (bs, bt, _, _) = parts
        keep = np.isin(_key(fs, ft, len(nb.tgt_ids)), _key(bs, bt, len(nb.tgt_ids)))
        src, tgt, score, cos = fs[keep], ft[keep], fsc[keep], fc[keep]
    elif mode == "union":
        src, tgt, score, cos = (np.concatenate(x) for x in zip(*parts, strict=True))
        # a pair found both ways is listed once (the forward copy comes first)
        _, first = np.unique(_key(src, tgt, len(nb.tgt_ids)), return_index=True)
        first.sort()
        src, tgt, score, cos = src[first], tgt[first], score[first], cos[first]
    else:
        src, tgt, score, cos = parts[0]
    if threshold is not None:
        keep = score >= threshold
        src, tgt, score, cos = src[keep], tgt[keep], score[keep], cos[keep]
    order = np.lexsort((tgt, src, -score))
    return MinedPairs(src[order], tgt[order], score[order], cos[order])


def select_pairs(
    nb: Neighbours,
    *,
    mode: str = "intersection",
    scoring: str = "ratio",
    threshold: float | None = None,
) -> list[MinedPair]:
    """:func:`pair_arrays` as a list of :class:`MinedPair`, best first.

    Raises:
        MiningError: as :func:`pair_arrays`.
    """
    arrs = pair_arrays(nb, mode=mode, scoring=scoring, threshold=threshold)
    return [
        MinedPair(nb.src_ids[i], nb.tgt_ids[j], float(sc), float(c), int(i), int(j))
        for i, j, sc, c in zip(
            arrs.src_index.tolist(),
            arrs.tgt_index.tolist(),
            arrs.score.tolist(),
            arrs.cosine.tolist(),
            strict=True,
        )
    ]


def mine(
    src: np.ndarray,
    tgt: np.ndarray,
    *,
    src_ids: Sequence[str] | None = None,
    tgt_ids: Sequence[str] | None = None,
    mode: str = "intersection",
    scoring: str = "ratio",
    k: int = 4,
    threshold: float | None = None,
    backend: str = "exact",
    index_options: Mapping[str, Any] | None = None,
    names: tuple[str, str] = ("the source", "the target"),
) -> list[MinedPair]:
    """Mine the translation pairs of ``src`` and ``tgt`` (see the module docstring).

    Args:
        src, tgt: float ``[Ns, D]`` and ``[Nt, D]`` embeddings in one space.
        src_ids, tgt_ids: unique row ids (default the row numbers as strings).
        mode: ``forward``, ``backward``, ``intersection`` (default) or ``union``.
        scoring: ``ratio`` (default), ``distance`` or ``cosine``.
        k: the margin's neighbourhood size (Artetxe & Schwenk use 4); not used by ``cosine``.
        threshold: keep pairs scoring ``>= threshold``; ``None`` keeps every pair of the mode.
        backend, index_options: the k-NN search (see :func:`neighbours`).
        names: how errors name the two sides.

    Returns:
        The pairs, best first.

    Raises:
        MiningError: see :func:`neighbours` and :func:`pair_arrays`.

    Example:
        >>> x = np.eye(3, dtype=np.float32)
        >>> [(p.src_id, p.tgt_id) for p in mine(x, x[::-1], k=1, tgt_ids=["c", "b", "a"])]
        [('0', 'a'), ('1', 'b'), ('2', 'c')]
    """
    if mode not in MODES:
        raise MiningError(f"unknown mining mode {mode!r}; expected one of {MODES}")
    if scoring not in SCORINGS:
        raise MiningError(f"unknown scoring {scoring!r}; expected one of {SCORINGS}")
    margin = scoring != "cosine"
    nb = neighbours(
        src,
        tgt,
        k=k if margin else 1,
        src_ids=src_ids,
        tgt_ids=tgt_ids,
        backward=margin or mode != "forward",
        backend=backend,
        index_options=index_options,
        names=names,
    )
    return select_pairs(nb, mode=mode, scoring=scoring, threshold=threshold)


# ------------------------------------------------------------------------- helpers
def _best(
    index: np.ndarray,
    cos: np.ndarray,
    own_knn: np.ndarray,
    other_knn: np.ndarray,
    scoring: str,
    forward: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each row's best-scoring candidate: ``(src rows, tgt rows, scores, cosines)``."""
    valid = index >= 0
    other = np.where(valid, other_knn[np.maximum(index, 0)], 0.0)
    x_knn, y_knn = (own_knn[:, None], other) if forward else (other, own_knn[:, None])
    scores = np.where(
        valid, pair_margins(cos.astype(np.float64), x_knn, y_knn, scoring=scoring), -np.inf
    )
    col = np.argmax(scores, axis=1)  # first maximum: the nearer candidate wins a tie
    rows = np.arange(index.shape[0])
    has = valid.any(axis=1)
    rows, col = rows[has], col[has]
    best = index[rows, col]
    src, tgt = (rows, best) if forward else (best, rows)
    return (
        src.astype(np.int64),
        tgt.astype(np.int64),
        scores[rows, col],
        cos[rows, col].astype(np.float64),
    )


def _key(src: np.ndarray, tgt: np.ndarray, n_tgt: int) -> np.ndarray:
    return src.astype(np.int64) * n_tgt + tgt.astype(np.int64)


def _knn_mean(index: np.ndarray, cos: np.ndarray) -> np.ndarray:
    """Mean cosine over the valid hits of each row (0 for a row without any)."""
    valid = index >= 0
    total = np.where(valid, cos, 0.0).sum(axis=1, dtype=np.float64)
    return total / np.maximum(valid.sum(axis=1), 1)


def _matrix(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise MiningError(f"{name} must be a 2-D [rows, dim] array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise MiningError(f"{name} must be floating point, got dtype {arr.dtype}")
    if arr.shape[0] == 0:
        raise MiningError(f"{name} is empty (0 rows): nothing to mine")
    if arr.shape[1] == 0:
        raise MiningError(f"{name} has dimension 0")
    return arr


def _ids(ids: Sequence[str] | None, n: int, name: str) -> list[str]:
    if ids is None:
        return [str(i) for i in range(n)]
    out = [str(i) for i in ids]
    if len(out) != n:
        raise MiningError(f"{name} has {n} rows but {len(out)} ids")
    return out


def _build(
    emb: np.ndarray, ids: list[str], name: str, backend: str, opts: dict[str, Any]
) -> EmbeddingIndex:
    try:
        return EmbeddingIndex.build(emb, ids=ids, backend=backend, normalize=True, **opts)
    except RetrievalError as exc:
        raise MiningError(f"{name}: {exc}") from None


def _search(
    index: EmbeddingIndex, queries: np.ndarray, k: int, name: str
) -> tuple[np.ndarray, np.ndarray]:
    n = queries.shape[0]
    idx = np.empty((n, k), dtype=np.int64)
    cos = np.empty((n, k), dtype=np.float32)
    for s in range(0, n, SEARCH_CHUNK):
        try:
            hits = index.search(queries[s : s + SEARCH_CHUNK], top_k=k)
        except RetrievalError as exc:
            raise MiningError(f"{name}: {exc}") from None
        idx[s : s + SEARCH_CHUNK] = hits.indices
        cos[s : s + SEARCH_CHUNK] = hits.scores
    return idx, cos
