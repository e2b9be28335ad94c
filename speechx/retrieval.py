"""Nearest-neighbour search over embedding matrices: exact (chunked numpy) or FAISS.

This module knows only arrays. Build an index over a corpus of embeddings, then search it with
query embeddings::

    index = EmbeddingIndex.build(text_emb, ids=text_ids)      # float32 [N, D]
    hits = index.search(speech_emb, top_k=10)                  # SearchResult
    hits.ids[0]         # ids of the 10 best corpus rows for query 0, best first
    index.save("exp/demo/index"); EmbeddingIndex.load("exp/demo/index")

Backends:

``exact``       numpy matrix products, chunked over queries *and* corpus with a running top-k,
                so memory stays bounded whatever N is. Ties are broken by the lower corpus index.
``faiss-flat``  ``faiss.IndexFlatIP``: the same exact scores, computed by FAISS.
``faiss-ivf``   ``faiss.IndexIVFFlat``: approximate (inverted lists, ``nprobe`` of ``nlist`` cells).
                The k-means quantiser is trained on a random sample of at most
                ``ivf_train_size`` rows (default ``64 * nlist``), so building over millions of
                rows takes seconds rather than minutes; every row is then added.
``faiss-hnsw``  ``faiss.IndexHNSWFlat`` with inner product: approximate (a graph with ``hnsw_m``
                links per node, built with ``ef_construction``, searched with ``ef_search``).
                No training; the fastest queries, the slowest build.
``auto``        ``exact`` below :data:`AUTO_FAISS_MIN_ROWS` rows, ``faiss-flat`` from there on.

``benchmarks/retrieval.py`` compares them at 1M x 512 (queries/s, build time, memory, recall@10).

Scores are inner products. With ``metric="cosine"`` (the default) the corpus must hold unit-length
rows (pass ``normalize=True`` to have them normalised) and queries are always L2-normalised, so
the scores are cosines.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speechx.errors import RetrievalError, SpeechxError

BACKENDS = ("exact", "faiss-flat", "faiss-ivf", "faiss-hnsw", "auto")
METRICS = ("cosine", "ip")
AUTO_FAISS_MIN_ROWS = 100_000
#: IVF k-means is trained on at most this many rows per cell unless ``ivf_train_size`` is given.
IVF_TRAIN_ROWS_PER_LIST = 64
_FORMAT_VERSION = 1
_NORM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class IndexConfig:
    """How an :class:`EmbeddingIndex` is built and searched.

    Attributes:
        backend: the backend actually used (``auto`` is resolved at build time).
        metric: ``cosine`` (unit-length rows, scores are cosines) or ``ip`` (raw inner product).
        nlist: number of IVF cells (``faiss-ivf``); ``None`` picks about ``4 * sqrt(N)``.
        nprobe: IVF cells visited per query (``faiss-ivf``).
        ivf_train_size: rows sampled to train the IVF k-means (``faiss-ivf``); ``None`` means
            ``min(N, 64 * nlist)``.
        hnsw_m: graph links per node (``faiss-hnsw``); more links, better recall, more memory.
        ef_construction: candidate list size while building the graph (``faiss-hnsw``).
        ef_search: candidate list size per query (``faiss-hnsw``); raised to ``top_k`` when
            smaller.
        query_chunk: queries scored at once by the exact backend.
        corpus_chunk: corpus rows scored at once by the exact backend; the score block held in
            memory is at most ``query_chunk * corpus_chunk`` float32 values.
    """

    backend: str = "exact"
    metric: str = "cosine"
    nlist: int | None = None
    nprobe: int = 16
    query_chunk: int = 1024
    corpus_chunk: int = 16384
    ivf_train_size: int | None = None
    hnsw_m: int = 32
    ef_construction: int = 64
    ef_search: int = 64


@dataclass
class SearchResult:
    """Hits of a search, best first.

    Attributes:
        indices: int64 ``[Q, k]`` corpus row numbers.
        scores: float32 ``[Q, k]`` similarity of each hit (cosine or inner product).
        ids: ``ids[q][j]`` is the corpus id of ``indices[q, j]``.
    """

    indices: np.ndarray
    scores: np.ndarray
    ids: list[list[str]]

    def __len__(self) -> int:
        return int(self.indices.shape[0])


class EmbeddingIndex:
    """A searchable set of embeddings with string ids. Build it with :meth:`build`."""

    def __init__(
        self,
        config: IndexConfig,
        ids: list[str],
        dim: int,
        embeddings: np.ndarray | None = None,
        faiss_index: Any = None,
    ) -> None:
        self.config = config
        self.ids = ids
        self.dim = dim
        self._embeddings = embeddings
        self._faiss = faiss_index

    # ----------------------------------------------------------------- build
    @classmethod
    def build(
        cls,
        embeddings: np.ndarray,
        ids: Sequence[str] | None = None,
        *,
        backend: str = "auto",
        metric: str = "cosine",
        normalize: bool = False,
        nlist: int | None = None,
        nprobe: int = 16,
        query_chunk: int = 1024,
        corpus_chunk: int = 16384,
        ivf_train_size: int | None = None,
        hnsw_m: int = 32,
        ef_construction: int = 64,
        ef_search: int = 64,
        seed: int = 0,
    ) -> EmbeddingIndex:
        """Index the rows of ``embeddings`` (float32 ``[N, D]``).

        Args:
            embeddings: the corpus, one row per item.
            ids: one string id per row (unique); default ``"0" .. "N-1"``.
            backend: one of :data:`BACKENDS`.
            metric: ``cosine`` or ``ip``.
            normalize: L2-normalise the rows first (``cosine`` only); otherwise they must
                already have unit length.
            nlist, nprobe, ivf_train_size: IVF settings (``faiss-ivf`` only), see
                :class:`IndexConfig`.
            query_chunk, corpus_chunk: memory bound of the exact backend.
            hnsw_m, ef_construction, ef_search: HNSW settings (``faiss-hnsw`` only).
            seed: seed of the IVF training sample and k-means.

        Returns:
            The index. The embeddings are copied, so later changes to the input do not leak in.

        Raises:
            RetrievalError: an unknown backend or metric, an empty corpus, a non-2-D array,
                NaN/inf or (for cosine) non-unit rows (naming the first such row and its id),
                wrong or duplicate ids, bad chunk sizes, or IVF/HNSW settings out of range
                (``nlist`` not in ``[1, N]``, ``ivf_train_size < nlist``, a non-positive
                ``nprobe``, ``hnsw_m``, ``ef_construction`` or ``ef_search``).
        """
        if backend not in BACKENDS:
            raise RetrievalError(f"unknown index backend {backend!r}; expected one of {BACKENDS}")
        if metric not in METRICS:
            raise RetrievalError(f"unknown metric {metric!r}; expected one of {METRICS}")
        if query_chunk < 1 or corpus_chunk < 1:
            raise RetrievalError(
                f"chunk sizes must be positive, got query_chunk={query_chunk}, "
                f"corpus_chunk={corpus_chunk}"
            )
        emb = _as_matrix(embeddings, "corpus embeddings")
        n, dim = emb.shape
        if n == 0:
            raise RetrievalError("cannot build an index over an empty corpus (0 rows)")
        if ids is None:
            id_list = [str(i) for i in range(n)]
        else:
            id_list = [str(x) for x in ids]
            if len(id_list) != n:
                raise RetrievalError(f"got {len(id_list)} ids for {n} embedding rows")
            _check_unique(id_list)
        _check_finite(emb, "corpus embeddings", id_list)
        emb = np.array(emb, dtype=np.float32, copy=True, order="C")
        if metric == "cosine":
            if normalize:
                emb = _normalize(emb, "corpus embeddings", id_list)
            else:
                _check_unit(emb, id_list)
        elif normalize:
            raise RetrievalError("normalize=True only makes sense with metric='cosine'")

        if backend == "auto":
            backend = "faiss-flat" if n >= AUTO_FAISS_MIN_ROWS else "exact"
        if backend == "faiss-ivf":
            nlist = nlist if nlist is not None else max(1, min(n // 39, int(4 * math.sqrt(n))))
            if not 1 <= nlist <= n:
                raise RetrievalError(f"nlist must be in [1, {n}] for {n} rows, got {nlist}")
            if ivf_train_size is not None and not nlist <= ivf_train_size:
                raise RetrievalError(
                    f"ivf_train_size must be at least nlist={nlist}, got {ivf_train_size}"
                )
        for name, value in (
            ("nprobe", nprobe),
            ("hnsw_m", hnsw_m),
            ("ef_construction", ef_construction),
            ("ef_search", ef_search),
        ):
            if value < 1:
                raise RetrievalError(f"{name} must be positive, got {value}")
        config = IndexConfig(
            backend=backend,
            metric=metric,
            nlist=nlist if backend == "faiss-ivf" else None,
            nprobe=nprobe,
            query_chunk=query_chunk,
            corpus_chunk=corpus_chunk,
            ivf_train_size=ivf_train_size if backend == "faiss-ivf" else None,
            hnsw_m=hnsw_m,
            ef_construction=ef_construction,
            ef_search=ef_search,
        )
        if backend == "exact":
            return cls(config, id_list, dim, embeddings=emb)
        return cls(config, id_list, dim, faiss_index=_build_faiss(emb, config, seed))

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (
            f"EmbeddingIndex(n={len(self)}, dim={self.dim}, backend={self.config.backend!r}, "
            f"metric={self.config.metric!r})"
        )

    @property
    def embeddings(self) -> np.ndarray:
        """The indexed rows, float32 ``[N, D]`` (reconstructed from FAISS when needed)."""
        if self._embeddings is not None:
            return self._embeddings
        return self._faiss.reconstruct_n(0, self._faiss.ntotal)

    # ---------------------------------------------------------------- search
    def search(
        self,
        queries: np.ndarray,
        top_k: int = 10,
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> SearchResult:
        """Return the ``top_k`` best corpus rows for each query, best first.

        Args:
            queries: float ``[Q, D]`` (or one query ``[D]``, treated as ``[1, D]``).
            top_k: hits per query; values above the corpus size return every row (so the
                result has ``min(top_k, N)`` columns).
            nprobe: IVF cells to visit for this search (``faiss-ivf`` only); default
                ``config.nprobe``.
            ef_search: HNSW candidate list size for this search (``faiss-hnsw`` only); default
                ``config.ef_search``; values below ``top_k`` are raised to ``top_k``.

        Returns:
            A :class:`SearchResult` with ``[Q, min(top_k, N)]`` arrays. The exact backend breaks
            score ties by the lower corpus index; FAISS backends make no such promise, and
            ``faiss-ivf`` returns index -1 (id ``""``, score about -3.4e38) when the probed cells
            hold fewer than ``k`` rows.

        Raises:
            RetrievalError: ``top_k < 1``, a non-positive ``nprobe`` or ``ef_search``, a
                dimension mismatch, NaN/inf or all-zero (cosine) query rows.
        """
        if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
            raise RetrievalError(f"top_k must be a positive integer, got {top_k!r}")
        q = np.asarray(queries)
        if q.ndim == 1:
            q = q[None, :]
        q = _as_matrix(q, "queries")
        if q.shape[1] != self.dim:
            raise RetrievalError(
                f"queries have dimension {q.shape[1]} but the index has dimension {self.dim}"
            )
        _check_finite(q, "queries", None)
        q = np.ascontiguousarray(q, dtype=np.float32)
        if self.config.metric == "cosine":
            q = _normalize(q, "queries", None)
        k = min(int(top_k), len(self))
        if q.shape[0] == 0:
            idx = np.zeros((0, k), dtype=np.int64)
            sc = np.zeros((0, k), dtype=np.float32)
        elif self.config.backend == "exact":
            idx, sc = exact_topk(
                q,
                self._embeddings,
                k,
                query_chunk=self.config.query_chunk,
                corpus_chunk=self.config.corpus_chunk,
            )
        else:
            sc, idx = self._faiss.search(q, k, params=self._search_params(k, nprobe, ef_search))
            idx = idx.astype(np.int64, copy=False)
            sc = sc.astype(np.float32, copy=False)
        ids = [[self.ids[j] if j >= 0 else "" for j in row] for row in idx.tolist()]
        return SearchResult(indices=idx, scores=sc, ids=ids)

    def _search_params(self, k: int, nprobe: int | None, ef_search: int | None) -> Any:
        """FAISS per-call search parameters (the index itself is never mutated by a search)."""
        import faiss

        if self.config.backend == "faiss-ivf":
            probe = self.config.nprobe if nprobe is None else nprobe
            if probe < 1:
                raise RetrievalError(f"nprobe must be positive, got {probe}")
            return faiss.SearchParametersIVF(nprobe=min(int(probe), self.config.nlist or 1))
        if self.config.backend == "faiss-hnsw":
            ef = self.config.ef_search if ef_search is None else ef_search
            if ef < 1:
                raise RetrievalError(f"ef_search must be positive, got {ef}")
            return faiss.SearchParametersHNSW(efSearch=max(int(ef), k))
        return None

    # ------------------------------------------------------------- save/load
    def save(self, directory: str | os.PathLike) -> Path:
        """Write the index to ``directory`` atomically and return its path.

        Layout: ``index.json`` (config, dim, size, format version), ``ids.txt`` (one id per line),
        and ``embeddings.npy`` (exact backend) or ``index.faiss`` (FAISS backends). The files are
        written to a temporary sibling directory that then replaces ``directory``.
        """
        out = Path(directory)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            meta = {
                "format_version": _FORMAT_VERSION,
                "size": len(self),
                "dim": self.dim,
                "config": asdict(self.config),
            }
            (tmp / "index.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            (tmp / "ids.txt").write_text("".join(f"{i}\n" for i in self.ids), encoding="utf-8")
            if self._embeddings is not None:
                np.save(tmp / "embeddings.npy", self._embeddings)
            else:
                import faiss

                faiss.write_index(self._faiss, str(tmp / "index.faiss"))
            _replace_dir(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike) -> EmbeddingIndex:
        """Read an index written by :meth:`save`.

        Raises:
            RetrievalError: a missing or inconsistent file (named in the message).
        """
        d = Path(directory)
        meta_path = d / "index.json"
        meta = read_index_meta(meta_path, _FORMAT_VERSION, what="an index directory")
        try:
            config = IndexConfig(**meta["config"])
            size, dim = int(meta["size"]), int(meta["dim"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RetrievalError(f"{meta_path}: malformed index metadata ({exc})") from None
        ids_path = d / "ids.txt"
        try:
            ids = ids_path.read_text(encoding="utf-8").split("\n")[:-1]
        except FileNotFoundError:
            raise RetrievalError(f"{ids_path}: not found") from None
        if len(ids) != size:
            raise RetrievalError(f"{ids_path}: {len(ids)} ids but index.json says {size}")
        if config.backend == "exact":
            emb_path = d / "embeddings.npy"
            try:
                emb = np.load(emb_path, allow_pickle=False)
            except FileNotFoundError:
                raise RetrievalError(f"{emb_path}: not found") from None
            if emb.shape != (size, dim) or emb.dtype != np.float32:
                raise RetrievalError(
                    f"{emb_path}: expected float32 {(size, dim)}, got {emb.dtype} {emb.shape}"
                )
            return cls(config, ids, dim, embeddings=emb)
        import faiss

        faiss_path = d / "index.faiss"
        if not faiss_path.is_file():
            raise RetrievalError(f"{faiss_path}: not found")
        index = faiss.read_index(str(faiss_path))
        if index.ntotal != size or index.d != dim:
            raise RetrievalError(
                f"{faiss_path}: holds {index.ntotal} x {index.d}, index.json says {size} x {dim}"
            )
        return cls(config, ids, dim, faiss_index=index)


# --------------------------------------------------------------------- exact top-k
def exact_topk(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    *,
    query_chunk: int = 1024,
    corpus_chunk: int = 16384,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` inner-product search, chunked over queries and corpus.

    The score block in memory is at most ``query_chunk x corpus_chunk``; a running top-k per
    query is merged with each corpus chunk. Ties are broken by the lower corpus index, so the
    result equals a stable sort of the full score matrix by descending score.

    Args:
        queries: float32 ``[Q, D]``.
        corpus: float32 ``[N, D]``.
        k: hits per query, ``1 <= k <= N``.

    Returns:
        ``(indices int64 [Q, k], scores float32 [Q, k])``, best first.
    """
    n_q, n = queries.shape[0], corpus.shape[0]
    if not 1 <= k <= n:
        raise RetrievalError(f"k must be in [1, {n}], got {k}")
    out_idx = np.empty((n_q, k), dtype=np.int64)
    out_sc = np.empty((n_q, k), dtype=np.float32)
    for qs in range(0, n_q, query_chunk):
        qb = queries[qs : qs + query_chunk]
        best_sc = np.empty((qb.shape[0], 0), dtype=np.float32)
        best_idx = np.empty((qb.shape[0], 0), dtype=np.int64)
        for cs in range(0, n, corpus_chunk):
            block = qb @ corpus[cs : cs + corpus_chunk].T
            c_idx, c_sc = _block_topk(block, min(k, block.shape[1]))
            best_idx, best_sc = _merge(
                np.concatenate([best_idx, c_idx + cs], axis=1),
                np.concatenate([best_sc, c_sc], axis=1),
                k,
            )
        out_idx[qs : qs + qb.shape[0]] = best_idx
        out_sc[qs : qs + qb.shape[0]] = best_sc
    return out_idx, out_sc


def _block_topk(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of each row of ``block`` (any order), ties to the lower column."""
    n_rows, n_cols = block.shape
    if k == n_cols:
        idx = np.broadcast_to(np.arange(n_cols, dtype=np.int64), block.shape).copy()
        return idx, block.copy()
    part = np.argpartition(block, n_cols - k, axis=1)[:, n_cols - k :]  # no negated copy
    part_sc = np.take_along_axis(block, part, axis=1)
    kth = part_sc.min(axis=1)
    # argpartition picks an arbitrary subset of the items tied with the k-th best score;
    # rows with such boundary ties are redone so that the lowest column numbers win.
    n_at_least = (block >= kth[:, None]).sum(axis=1)
    for r in np.flatnonzero(n_at_least > k):
        above = np.flatnonzero(block[r] > kth[r])
        tied = np.flatnonzero(block[r] == kth[r])[: k - above.size]
        part[r] = np.concatenate([above, tied])
        part_sc[r] = block[r, part[r]]
    return part.astype(np.int64, copy=False), part_sc


def _merge(idx: np.ndarray, sc: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row by (descending score, ascending index) and keep the first ``k``."""
    order = np.lexsort((idx, -sc), axis=-1)[:, :k]
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(sc, order, axis=1)


# ------------------------------------------------------------------------- helpers
def _build_faiss(emb: np.ndarray, config: IndexConfig, seed: int) -> Any:
    import faiss

    n, dim = emb.shape
    if config.backend == "faiss-flat":
        index = faiss.IndexFlatIP(dim)
    elif config.backend == "faiss-hnsw":
        index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.ef_construction
        index.hnsw.efSearch = config.ef_search
    else:
        nlist = int(config.nlist or 1)
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        n_train = config.ivf_train_size or IVF_TRAIN_ROWS_PER_LIST * nlist
        index.cp.max_points_per_centroid = max(1, -(-n_train // nlist))  # no re-sampling
        if n_train < n:
            rows = np.sort(np.random.default_rng(seed).choice(n, size=n_train, replace=False))
            index.train(emb[rows])
        else:
            index.train(emb)
        index.nprobe = config.nprobe
    index.add(emb)
    return index


def _as_matrix(x: Any, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise RetrievalError(f"{what} must be a 2-D array [rows, dim], got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise RetrievalError(f"{what} must be floating point, got dtype {arr.dtype}")
    if arr.shape[1] == 0:
        raise RetrievalError(f"{what} have dimension 0")
    return arr


def _row_name(row: int, ids: list[str] | None) -> str:
    return f"row {row} (id {ids[row]!r})" if ids is not None else f"row {row}"


def _check_finite(arr: np.ndarray, what: str, ids: list[str] | None) -> None:
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise RetrievalError(
            f"{what}: {rows.size} row(s) hold NaN or inf, first {_row_name(int(rows[0]), ids)}"
        )


def _normalize(arr: np.ndarray, what: str, ids: list[str] | None) -> np.ndarray:
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        raise RetrievalError(
            f"{what}: {zero.size} all-zero row(s) cannot be L2-normalised, "
            f"first {_row_name(int(zero[0]), ids)}"
        )
    return (arr / norms).astype(np.float32, copy=False)


def _check_unit(arr: np.ndarray, ids: list[str]) -> None:
    norms = np.linalg.norm(arr, axis=1)
    bad = np.flatnonzero(np.abs(norms - 1.0) > _NORM_TOLERANCE)
    if bad.size:
        r = int(bad[0])
        raise RetrievalError(
            f"corpus embeddings: {bad.size} row(s) are not unit length for metric='cosine', "
            f"first {_row_name(r, ids)} with norm {norms[r]:.4g}; pass normalize=True"
        )


def _check_unique(ids: list[str]) -> None:
    seen: set[str] = set()
    for i, x in enumerate(ids):
        if x in seen:
            raise RetrievalError(f"duplicate id {x!r} at row {i}")
        if "\n" in x or "\r" in x:
            raise RetrievalError(f"id at row {i} contains a line break: {x!r}")
        seen.add(x)


def read_index_meta(
    path: Path,
    format_version: int,
    *,
    what: str,
    error: type[SpeechxError] = RetrievalError,
) -> dict[str, Any]:
    """Read the JSON metadata file of an index directory (``path``) and check its version.

    Args:
        path: the metadata file.
        format_version: the ``format_version`` it must have.
        what: what its directory should be, for the message when the file is missing
            (``"an index directory"``).
        error: the error class raised.

    Returns:
        The parsed metadata.

    Raises:
        error: the file is missing, not JSON, or of another format version (named).
    """
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: not found; is {path.parent} {what}?") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON ({exc.msg})") from None
    if meta.get("format_version") != format_version:
        raise error(f"{path}: unsupported format_version {meta.get('format_version')!r}")
    return meta


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move ``tmp`` to ``out``, replacing an existing ``out`` with as short a gap as possible."""
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
