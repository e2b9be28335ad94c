"""Speed of EmbeddingIndex backends, and of the chunked retrieval metrics.

Exact chunked numpy vs FAISS flat vs FAISS IVF on a random corpus (default 100k x 512, 1k
queries), printing build and search times, ratios, and the recall of IVF against exact search::

    .venv/bin/python benchmarks/retrieval_speed.py
    .venv/bin/python benchmarks/retrieval_speed.py --clusters 1000   # clustered, IVF-friendly data
    .venv/bin/python benchmarks/retrieval_speed.py --metrics-n 20000  # + retrieval_metrics time

Random Gaussian vectors have no cluster structure, which is the worst case for IVF; real
sentence embeddings sit in between (``--clusters``).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from speechx.metrics.retrieval import retrieval_metrics
from speechx.retrieval import EmbeddingIndex


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_data(
    n: int, n_q: int, dim: int, clusters: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length corpus ``[n, dim]`` and queries ``[n_q, dim]`` (near corpus rows)."""
    rng = np.random.default_rng(seed)
    if clusters > 0:
        centres = rng.standard_normal((clusters, dim)).astype(np.float32)
        corpus = centres[rng.integers(0, clusters, n)] + 0.5 * rng.standard_normal(
            (n, dim), dtype=np.float32
        )
    else:
        corpus = rng.standard_normal((n, dim), dtype=np.float32)
    corpus = _unit(corpus)
    queries = _unit(corpus[rng.integers(0, n, n_q)] + 0.05 * rng.standard_normal((n_q, dim)))
    return corpus, queries


def timed(fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--nlist", type=int, default=None)
    p.add_argument("--nprobe", type=int, nargs="+", default=[1, 16, 64])
    p.add_argument("--clusters", type=int, default=0, help="0: plain Gaussian corpus")
    p.add_argument("--metrics-n", type=int, default=0, help="also time an N x N evaluation")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    corpus, queries = make_data(a.n, a.queries, a.dim, a.clusters, a.seed)
    print(f"corpus {a.n} x {a.dim}, {a.queries} queries, top-{a.top_k}, clusters={a.clusters}")

    exact, t_b = timed(EmbeddingIndex.build, corpus, backend="exact")
    ref, t_exact = timed(exact.search, queries, a.top_k)
    print(f"exact       build {t_b:7.2f}s  search {t_exact:7.2f}s  (1.00x)")

    flat, t_b = timed(EmbeddingIndex.build, corpus, backend="faiss-flat")
    res, t_flat = timed(flat.search, queries, a.top_k)
    same = float(np.mean(res.indices == ref.indices))
    print(
        f"faiss-flat  build {t_b:7.2f}s  search {t_flat:7.2f}s  "
        f"(exact/flat time {t_exact / t_flat:.2f}x; same hits as exact {same:.4f})"
    )

    ivf, t_b = timed(EmbeddingIndex.build, corpus, backend="faiss-ivf", nlist=a.nlist)
    print(f"faiss-ivf   build {t_b:7.2f}s  (nlist={ivf.config.nlist}, includes k-means training)")
    for nprobe in a.nprobe:
        res, t_ivf = timed(ivf.search, queries, a.top_k, nprobe=nprobe)
        recall = np.mean(
            [len(set(r) & set(e)) / a.top_k for r, e in zip(res.indices, ref.indices, strict=True)]
        )
        top1 = float(np.mean(res.indices[:, 0] == ref.indices[:, 0]))
        print(
            f"  nprobe={nprobe:<4d} search {t_ivf:7.2f}s  (exact/ivf time {t_exact / t_ivf:6.1f}x)  "
            f"recall@{a.top_k} vs exact {recall:.4f}  top-1 agreement {top1:.4f}"
        )

    if a.metrics_n:
        m = a.metrics_n
        q_emb, c_emb = (
            corpus[:m],
            _unit(corpus[:m] + 0.3 * np.random.default_rng(1).standard_normal((m, a.dim))),
        )
        out, t_m = timed(retrieval_metrics, q_emb, c_emb, list(range(m)))
        print(f"retrieval_metrics {m} x {m}: {t_m:.1f}s  {out}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB (the corpus alone is {corpus.nbytes / 2**20:.0f} MB)")


if __name__ == "__main__":
    main()
