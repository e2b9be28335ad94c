"""Dev evaluation during distillation: speech -> text retrieval against teacher embeddings.

For every dev data dir the speech of each utterance is encoded and searched among the teacher
embeddings of the dev texts (one candidate per distinct text of the evaluation field).  A hit on
any text of the utterance's sentence group counts (see :mod:`speechx.distill.targets`).  Metrics
come from :func:`speechx.metrics.retrieval.retrieval_metrics`, plus the mean cosine distance
between each utterance and its own target.

Keys follow ``{name}_{metric}``: ``dev_<dir>_recall@1`` per dir and ``dev_recall@1`` (the mean
over dirs, weighted by queries).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechx.distill.data import DistillData, collate_distill
from speechx.metrics.retrieval import retrieval_metrics

#: Metrics where smaller is better; every other metric is "larger is better".
LOWER_IS_BETTER = frozenset({"xsim_error", "cosine_distance"})


def duration_batches(durations: list[float], max_seconds: float) -> Iterator[list[int]]:
    """Indices sorted by duration, cut into batches of at most ``max_seconds`` (padded) audio."""
    order = sorted(range(len(durations)), key=lambda i: durations[i])
    batch: list[int] = []
    for i in order:
        longest = max([durations[j] for j in batch] + [durations[i]])
        if batch and longest * (len(batch) + 1) > max_seconds:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


@torch.no_grad()
def encode_data(
    model: torch.nn.Module,
    data: DistillData,
    max_batch_seconds: float,
    features: Any = None,
) -> np.ndarray:
    """L2-normalised speech embeddings of every item of ``data`` (float32 ``[N, D]``).

    With ``features`` (a :class:`speechx.distill.features.FeatureStore` built from ``data``),
    the cached frozen-part features are used instead of the audio.  The model is put in eval
    mode for the call and its previous mode restored.
    """
    from speechx.distill.features import FeatureData, collate_features

    was_training = model.training
    model.eval()
    cached = FeatureData(data, features) if features is not None else None
    try:
        out = np.zeros((len(data), data.dim), dtype=np.float32)
        for idx in duration_batches(data.durations, max_batch_seconds):
            if cached is not None:
                batch = collate_features([cached[i] for i in idx])
                res = model(features=batch["features"], frame_lengths=batch["frame_lengths"])
            else:
                batch = collate_distill([data[i] for i in idx])
                res = model(batch["input_values"], batch["lengths"])
            out[idx] = res["embeddings"].float().cpu().numpy()
        return out
    finally:
        model.train(was_training)


def retrieval_pool(targets: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, list[set[int]]]:
    """Distinct target vectors as candidates and, per query, the candidates of its group.

    Returns:
        ``(candidates [M, D], gold)`` where ``gold[i]`` is the set of candidate rows sharing
        query ``i``'s sentence group.
    """
    first: dict[bytes, int] = {}
    cand_rows: list[int] = []
    for i, vec in enumerate(targets):
        key = vec.tobytes()
        if key not in first:
            first[key] = len(cand_rows)
            cand_rows.append(i)
    cand_groups = groups[cand_rows]
    by_group: dict[int, set[int]] = {}
    for c, g in enumerate(cand_groups):
        by_group.setdefault(int(g), set()).add(c)
    gold = [by_group[int(g)] for g in groups]
    return targets[cand_rows], gold


def evaluate_dev(
    model: torch.nn.Module,
    dev: DistillData,
    *,
    max_batch_seconds: float = 120.0,
    features: Any = None,
    references: Mapping[str, np.ndarray] | None = None,
) -> dict[str, float]:
    """Speech -> text retrieval of ``dev`` (one pool per dev data dir).

    Args:
        model: the (unwrapped) speech encoder, called as ``model(input_values, lengths)``.
        dev: dev data whose targets are the evaluation field.
        max_batch_seconds: padded audio per encoding batch.
        features: a feature store of ``dev`` (cached frozen-part output), or None for audio.
        references: other embeddings of the dev items to compare with, by name: float32
            ``[len(dev), D]`` rows (NaN rows: none for that item), e.g. a speech teacher's.

    Returns:
        ``dev_<dir>_<metric>`` for each dir and ``dev_<metric>`` averaged over dirs (weighted
        by the number of queries); metrics are those of ``retrieval_metrics`` plus
        ``cosine_distance`` (mean 1 - cos to the own target), ``mean_pairwise_cos`` (mean
        cosine between the speech embeddings: near 1 means they collapsed onto one point) and
        ``n_queries`` / ``pool_size``; for each of ``references``, ``<name>_cos``: the mean
        cosine to its rows (over the items that have one; averaged over dirs by that count).
    """
    emb = encode_data(model, dev, max_batch_seconds, features)
    targets = dev.target_matrix()
    source_of = np.array([s for s, _ in dev.index])
    out: dict[str, float] = {}
    weighted: dict[str, float] = {}
    total = 0
    for s, src in enumerate(dev.sources):
        rows = np.flatnonzero(source_of == s)
        if not len(rows):
            continue
        cands, gold = retrieval_pool(targets[rows], dev.groups[rows])
        metrics = {
            k: float(v)
            for k, v in retrieval_metrics(emb[rows], cands, gold).items()
            if isinstance(v, int | float | np.floating | np.integer)
        }
        metrics["cosine_distance"] = float(np.mean(1.0 - np.sum(emb[rows] * targets[rows], 1)))
        metrics["mean_pairwise_cos"] = mean_pairwise_cosine(emb[rows])
        metrics["n_queries"] = float(len(rows))
        metrics["pool_size"] = float(len(cands))
        name = Path(src.dir).name
        for k, v in metrics.items():
            out[f"dev_{name}_{k}"] = v
            if k not in ("n_queries", "pool_size"):
                weighted[k] = weighted.get(k, 0.0) + v * len(rows)
        total += len(rows)
    for k, v in weighted.items():
        out[f"dev_{k}"] = v / total
    out["dev_n_queries"] = float(total)
    for ref_name, ref in (references or {}).items():
        out.update(_reference_cosines(ref_name, ref, emb, source_of, dev))
    return out


def _reference_cosines(
    name: str, ref: np.ndarray, emb: np.ndarray, source_of: np.ndarray, dev: DistillData
) -> dict[str, float]:
    """``dev_<dir>_<name>_cos`` and ``dev_<name>_cos``: mean cosine of ``emb`` to ``ref`` rows."""
    if ref.shape != emb.shape:
        raise ValueError(f"reference {name!r}: shape {ref.shape}, expected {emb.shape}")
    norms = np.linalg.norm(ref, axis=1)
    ok = np.isfinite(norms) & (norms > 0)
    cos = np.full(len(emb), np.nan)
    cos[ok] = np.sum(emb[ok] * ref[ok], axis=1) / norms[ok]
    out: dict[str, float] = {}
    for s, src in enumerate(dev.sources):
        mine = (source_of == s) & ok
        if mine.any():
            out[f"dev_{Path(src.dir).name}_{name}_cos"] = float(np.mean(cos[mine]))
    if ok.any():
        out[f"dev_{name}_cos"] = float(np.mean(cos[ok]))
    return out


def mean_pairwise_cosine(emb: np.ndarray) -> float:
    """Mean cosine between distinct rows of L2-normalised ``emb`` (1.0 = collapsed to one point).

    Returns NaN for fewer than two rows.
    """
    n = emb.shape[0]
    if n < 2:
        return float("nan")
    total = emb.astype(np.float64).sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))


def is_better(metric: str, new: float, best: float | None) -> bool:
    """Whether ``new`` improves on ``best`` for ``metric`` (None = no best yet)."""
    if best is None or not np.isfinite(best):
        return bool(np.isfinite(new))
    return new < best if metric in LOWER_IS_BETTER else new > best
