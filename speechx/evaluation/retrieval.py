"""Speech-to-text (and text-to-text) retrieval evaluation on precomputed embeddings.

Callers encode; this module scores. A *view* is one set of embeddings named
``<modality>:<language>`` (``speech:nl``, ``text:en``), with an utterance id and a sentence id
per row. A query's gold items are the target rows that share its sentence id::

    views = {"speech:nl": View(utt_ids, sent_ids, speech_emb), "text:en": View(...), ...}
    rows = evaluate_retrieval_pairs({"speech:nl": views["speech:nl"]}, text_views)
    ceiling = evaluate_ceiling(text_views, rows)
    write_retrieval_results("exp/demo/results", split="test", model="exp/demo/model",
                            teacher="use-multilingual", results=rows, ceiling=ceiling, peers=[])

Each row follows DESIGN.md: ``{"query", "target", "n_queries", "pool_size", "recall@1",
"recall@5", "recall@10", "mrr@10", "xsim_error"}``. The language-agnostic pool (LAReQA style) is
the target ``text:all``: the texts of every language at once, where any text of the query's
sentence is gold; its rows add ``own_language_top1``, how often the top hit is a text in the
query's own language.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speechx.errors import EvaluationError
from speechx.evaluation.summary import jsonable_row
from speechx.metrics.retrieval import retrieval_metrics
from speechx.retrieval import EmbeddingIndex

logger = logging.getLogger(__name__)

ALL_TEXT = "text:all"
ROW_METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10", "xsim_error")
_SECTION_BEGIN = "<!-- speechx:retrieval:begin -->"
_SECTION_END = "<!-- speechx:retrieval:end -->"


@dataclass(frozen=True)
class View:
    """Embeddings of one modality and language.

    Attributes:
        ids: one id per row (utterance ids).
        sentence_ids: the sentence each row renders; rows of different views that share a
            sentence id are each other's gold items.
        embeddings: float ``[N, D]``.
    """

    ids: list[str]
    sentence_ids: list[str]
    embeddings: np.ndarray

    @classmethod
    def coerce(cls, name: str, value: View | Sequence[Any]) -> View:
        """Accept a :class:`View` or an ``(ids, sentence_ids, embeddings)`` tuple.

        Raises:
            EvaluationError: a malformed tuple, or lengths that disagree (naming the view).
        """
        if isinstance(value, View):
            view = value
        else:
            try:
                ids, sents, emb = value
            except (TypeError, ValueError):
                raise EvaluationError(
                    f"view {name!r}: expected View or (ids, sentence_ids, embeddings)"
                ) from None
            view = cls([str(i) for i in ids], [str(s) for s in sents], np.asarray(emb))
        emb = view.embeddings
        if emb.ndim != 2:
            raise EvaluationError(f"view {name!r}: embeddings must be 2-D, got {emb.shape}")
        if not len(view.ids) == len(view.sentence_ids) == emb.shape[0]:
            raise EvaluationError(
                f"view {name!r}: {len(view.ids)} ids, {len(view.sentence_ids)} sentence ids "
                f"and {emb.shape[0]} embedding rows"
            )
        if emb.shape[0] == 0:
            raise EvaluationError(f"view {name!r} is empty")
        return view


def parse_view_name(name: str) -> tuple[str, str]:
    """Split ``"speech:nl"`` into ``("speech", "nl")``.

    Raises:
        EvaluationError: a name without exactly one ``:`` or with an empty part.
    """
    parts = name.split(":")
    if len(parts) != 2 or not all(parts):
        raise EvaluationError(f"view name {name!r} is not '<modality>:<language>'")
    return parts[0], parts[1]


def evaluate_retrieval_pairs(
    queries: Mapping[str, View | Sequence[Any]],
    targets: Mapping[str, View | Sequence[Any]],
    pairs: Iterable[tuple[str, str]] | None = None,
    *,
    language_agnostic: bool = True,
    ks: Sequence[int] = (1, 5, 10),
    mrr_k: int = 10,
    xsim_k: int = 4,
    system: str | None = None,
) -> list[dict[str, Any]]:
    """Score each (query view, target view) pair; gold is the same sentence id.

    Args:
        queries: query views by name, e.g. ``{"speech:nl": View(...)}``.
        targets: target views by name, e.g. ``{"text:en": ..., "text:nl": ...}``.
        pairs: ``(query_name, target_name)`` pairs to score. ``target_name`` may be
            ``"text:all"``: the pool of every ``text:*`` target except the one named like the
            query. Default: every query against every target of another name, plus
            ``text:all`` when ``language_agnostic`` and there are two or more text targets.
        ks, mrr_k, xsim_k: metric settings (see :func:`speechx.metrics.retrieval_metrics`).
        system: if given, every row gets ``"system": system`` (for peer rows).

    Returns:
        One row dict per pair, in pair order. Queries whose sentence has no counterpart in the
        pool are left out of that row (with a warning); ``n_queries`` counts the rest.

    Raises:
        EvaluationError: malformed views or names, an unknown view in ``pairs``, a pair of a
            view with itself, or a pair in which no query has a gold item.
    """
    qv = {name: View.coerce(name, v) for name, v in queries.items()}
    tv = {name: View.coerce(name, v) for name, v in targets.items()}
    for name in [*qv, *tv]:
        parse_view_name(name)
    if ALL_TEXT in tv:
        raise EvaluationError(f"{ALL_TEXT!r} is reserved for the language-agnostic pool")
    text_targets = [t for t in tv if parse_view_name(t)[0] == "text"]
    if pairs is None:
        pair_list = [(q, t) for q in qv for t in tv if q != t]
        if language_agnostic and len(text_targets) >= 2:
            pair_list += [(q, ALL_TEXT) for q in qv]
    else:
        pair_list = [(str(q), str(t)) for q, t in pairs]
    rows = []
    for q, t in pair_list:
        if q not in qv:
            raise EvaluationError(f"pair ({q!r}, {t!r}): no query view {q!r}")
        if q == t:
            raise EvaluationError(f"pair ({q!r}, {t!r}): a view cannot be scored against itself")
        if t == ALL_TEXT:
            pool_names = [name for name in text_targets if name != q]
            if not pool_names:
                raise EvaluationError(f"pair ({q!r}, {t!r}): no text targets to pool")
            row = _score_pool(q, qv[q], {n: tv[n] for n in pool_names}, ks, mrr_k, xsim_k)
        elif t in tv:
            row = _score_pool(q, qv[q], {t: tv[t]}, ks, mrr_k, xsim_k)
        else:
            raise EvaluationError(f"pair ({q!r}, {t!r}): no target view {t!r}")
        row["target"] = t
        if system is not None:
            row = {"system": system, **row}
        rows.append(row)
    return rows


def _score_pool(
    q_name: str,
    query: View,
    pool: dict[str, View],
    ks: Sequence[int],
    mrr_k: int,
    xsim_k: int,
) -> dict[str, Any]:
    pool_sents: list[str] = []
    pool_langs: list[str] = []
    pool_emb = []
    for name, view in pool.items():
        pool_sents += view.sentence_ids
        pool_langs += [parse_view_name(name)[1]] * len(view.ids)
        pool_emb.append(view.embeddings)
    cand = np.concatenate(pool_emb, axis=0) if len(pool_emb) > 1 else pool_emb[0]
    if cand.shape[1] != query.embeddings.shape[1]:
        raise EvaluationError(
            f"{q_name!r} has dimension {query.embeddings.shape[1]} but the pool "
            f"{sorted(pool)} has dimension {cand.shape[1]}"
        )
    by_sent: dict[str, list[int]] = {}
    for j, s in enumerate(pool_sents):
        by_sent.setdefault(s, []).append(j)
    keep = [i for i, s in enumerate(query.sentence_ids) if s in by_sent]
    target_desc = ALL_TEXT if len(pool) > 1 else next(iter(pool))
    if not keep:
        raise EvaluationError(
            f"pair ({q_name!r}, {target_desc!r}): no query sentence occurs in the pool"
        )
    if len(keep) < len(query.ids):
        missing = len(query.ids) - len(keep)
        first = query.ids[next(i for i, s in enumerate(query.sentence_ids) if s not in by_sent)]
        # Expected with partial translations, so a log line rather than a warning.
        logger.info(
            "pair (%r, %r): %d of %d queries have no gold item in the pool (first %r) and are "
            "left out",
            q_name,
            target_desc,
            missing,
            len(query.ids),
            first,
        )
    q_emb = query.embeddings[keep]
    gold = [by_sent[query.sentence_ids[i]] for i in keep]
    m = retrieval_metrics(q_emb, cand, gold, ks=ks, mrr_k=mrr_k, xsim_k=xsim_k)
    row: dict[str, Any] = {
        "query": q_name,
        "target": target_desc,
        "n_queries": m.pop("n_queries"),
        "pool_size": m.pop("pool_size"),
        **m,
    }
    if len(pool) > 1:
        index = EmbeddingIndex.build(cand, backend="exact", normalize=True)
        top1 = index.search(q_emb, top_k=1).indices[:, 0]
        own = parse_view_name(q_name)[1]
        row["own_language_top1"] = float(np.mean([pool_langs[j] == own for j in top1]))
    return row


def pad_pool(
    keys: View | Sequence[Any],
    distractors: np.ndarray,
    *,
    prefix: str = "distractor",
) -> View:
    """The key view with distractor rows appended (the XTREME-S FLEURS-Retrieval pool).

    Each distractor gets the sentence id ``f"{prefix}:{i}"``, which no query shares, so a
    distractor is never gold: it can only push the gold key down the ranking.

    Args:
        keys: the key view (e.g. the English texts of the test sentences).
        distractors: float ``[M, D]`` embeddings of the distractor sentences (``M`` may be 0).

    Returns:
        A :class:`View` of ``len(keys) + M`` rows.

    Raises:
        EvaluationError: the distractors are not 2-D or their dimension differs from the keys'.
    """
    view = View.coerce("keys", keys)
    d = np.asarray(distractors)
    if d.ndim != 2 or (d.shape[0] and d.shape[1] != view.embeddings.shape[1]):
        raise EvaluationError(
            f"distractors of shape {d.shape} do not fit keys of dimension "
            f"{view.embeddings.shape[1]}"
        )
    if d.shape[0] == 0:
        return view
    ids = [f"{prefix}:{i}" for i in range(d.shape[0])]
    emb = np.concatenate([view.embeddings, d.astype(view.embeddings.dtype)], axis=0)
    return View(view.ids + ids, view.sentence_ids + ids, emb)


def evaluate_ceiling(
    text_views: Mapping[str, View | Sequence[Any]],
    results: Iterable[Mapping[str, Any]],
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """The teacher's text-to-text retrieval on the pools of ``results``.

    For each result row ``speech:X -> text:Y`` this scores ``text:X -> text:Y`` (and
    ``text:X -> text:all``) with the teacher's text embeddings, when ``text:X`` exists and
    ``X != Y``: the ceiling a speech encoder distilled into that teacher can reach.

    Args:
        text_views: the teacher's text views by name.
        results: rows from :func:`evaluate_retrieval_pairs`.
        **kwargs: passed on to :func:`evaluate_retrieval_pairs`.

    Returns:
        Ceiling rows (``"query": "text:X"``), one per distinct pair.
    """
    pairs: list[tuple[str, str]] = []
    for row in results:
        lang = parse_view_name(str(row["query"]))[1]
        q, t = f"text:{lang}", str(row["target"])
        usable = q in text_views and q != t and (t in text_views or t == ALL_TEXT)
        if usable and (q, t) not in pairs:
            pairs.append((q, t))
    if not pairs:
        return []
    return evaluate_retrieval_pairs(text_views, text_views, pairs, **kwargs)


# ----------------------------------------------------------------------- writing
def write_retrieval_results(
    out_dir: str | os.PathLike,
    *,
    split: str,
    model: str,
    teacher: str,
    results: Sequence[Mapping[str, Any]],
    ceiling: Sequence[Mapping[str, Any]] = (),
    peers: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write ``retrieval.json``, the retrieval section of ``summary.md`` and a heatmap.

    ``out_dir`` is the results directory itself (``exp/<tag>/results``). ``retrieval.json``
    follows DESIGN.md exactly. ``summary.md`` may be shared with other tasks: only the part
    between ``<!-- speechx:retrieval:begin/end -->`` markers is replaced. The heatmap
    ``retrieval_heatmap.png`` shows recall@1 per query view (rows) and target view (columns).
    Every file is written to a temporary file and renamed into place.

    Returns:
        The path of ``retrieval.json``.

    Raises:
        EvaluationError: a row without ``query``/``target``, or a peer row without ``system``.
    """
    for kind, rows in (("results", results), ("ceiling", ceiling), ("peers", peers)):
        for i, row in enumerate(rows):
            if "query" not in row or "target" not in row:
                raise EvaluationError(f"{kind} row {i} has no 'query' or 'target': {dict(row)}")
            if kind == "peers" and "system" not in row:
                raise EvaluationError(f"peers row {i} has no 'system' field: {dict(row)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "task": "retrieval",
        "split": split,
        "model": model,
        "teacher": teacher,
        "results": [jsonable_row(r) for r in results],
        "ceiling": [jsonable_row(r) for r in ceiling],
        "peers": [jsonable_row(r) for r in peers],
    }
    json_path = out / "retrieval.json"
    _atomic_write(json_path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    summary_path = out / "summary.md"
    old = summary_path.read_text(encoding="utf-8") if summary_path.exists() else ""
    _atomic_write(summary_path, _splice_section(old, render_summary(doc)))
    if results:
        write_heatmap(out / "retrieval_heatmap.png", results, title=f"recall@1 ({split}, {model})")
    logger.info("wrote %s", json_path)
    return json_path


def render_summary(doc: Mapping[str, Any]) -> str:
    """The markdown retrieval section of ``summary.md`` for a ``retrieval.json`` document."""
    lines = [
        "## Retrieval",
        "",
        f"split `{doc['split']}`, model `{doc['model']}`, teacher `{doc['teacher']}`",
        "",
        "### recall@1 (rows: query, columns: target)",
        "",
        *_grid(doc["results"], "recall@1"),
    ]
    if doc["ceiling"]:
        lines += ["", "### Teacher ceiling, text to text recall@1", "", *_grid(doc["ceiling"])]
    lines += ["", "### All metrics", "", *_table(doc["results"])]
    if doc["ceiling"]:
        lines += ["", "### Ceiling, all metrics", "", *_table(doc["ceiling"])]
    if doc["peers"]:
        lines += ["", "### Peers", "", *_table(doc["peers"])]
    return "\n".join(lines) + "\n"


def row_label(row: Mapping[str, Any]) -> str:
    """The query label of a row: ``speech:nl``, or ``speech:nl (fillets_nl_test)`` when the row
    names its data set (several sets can hold speech of one language)."""
    q = str(row["query"])
    return f"{q} ({row['set']})" if row.get("set") else q


def _grid(rows: Sequence[Mapping[str, Any]], metric: str = "recall@1") -> list[str]:
    qs = list(dict.fromkeys(row_label(r) for r in rows))
    ts = sorted({str(r["target"]) for r in rows}, key=lambda t: (t == ALL_TEXT, t))
    cell = {(row_label(r), str(r["target"])): r.get(metric) for r in rows}
    out = ["| query \\ target | " + " | ".join(ts) + " |", "|---" * (len(ts) + 1) + "|"]
    for q in qs:
        out.append(f"| {q} | " + " | ".join(_fmt(cell.get((q, t))) for t in ts) + " |")
    return out


def _table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    out = ["| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
    out += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def _splice_section(old: str, section: str) -> str:
    block = f"{_SECTION_BEGIN}\n{section}{_SECTION_END}\n"
    start, end = old.find(_SECTION_BEGIN), old.find(_SECTION_END)
    if start >= 0 and end > start:
        return old[:start] + block + old[end + len(_SECTION_END) :].lstrip("\n")
    if not old:
        return block
    return old.rstrip("\n") + "\n\n" + block


def write_heatmap(
    path: str | os.PathLike,
    rows: Sequence[Mapping[str, Any]],
    *,
    metric: str = "recall@1",
    title: str | None = None,
) -> Path:
    """Draw ``metric`` per (query, target) as an annotated heatmap PNG, written atomically.

    Uses matplotlib's Agg canvas directly, so no pyplot state or display is touched.

    Returns:
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    qs = list(dict.fromkeys(row_label(r) for r in rows))
    ts = sorted({str(r["target"]) for r in rows}, key=lambda t: (t == ALL_TEXT, t))
    grid = np.full((len(qs), len(ts)), np.nan)
    for r in rows:
        v = r.get(metric)
        if v is not None:
            grid[qs.index(row_label(r)), ts.index(str(r["target"]))] = float(v)
    fig = Figure(figsize=(1.2 + 0.9 * len(ts), 1.0 + 0.6 * len(qs)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(np.ma.masked_invalid(grid), vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(ts)), ts, rotation=45, ha="right")
    ax.set_yticks(range(len(qs)), qs)
    for i in range(len(qs)):
        for j in range(len(ts)):
            if not np.isnan(grid[i, j]):
                color = "black" if grid[i, j] > 0.6 else "white"
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", color=color)
    ax.set_title(title or metric, fontsize=9)
    fig.colorbar(im, ax=ax, label=metric)
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Write a matplotlib figure as PNG, atomically (temporary file, then rename); returns the
    path.  The figure is closed afterwards."""
    import matplotlib.pyplot as plt

    out = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".png", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return out


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------- evaluator
class RetrievalEvaluator:
    """Retrieval on a dev set during training, in sentence-transformers' evaluator shape.

    The target views (teacher text embeddings) are fixed; the query views are recomputed from
    the model by ``encode_queries(model) -> {"speech:nl": View, ...}``, so this class imports no
    model code.

    ``evaluator(model)`` returns ``{f"{name}_{query}_to_{target}_{metric}": value}`` for every
    pair and metric, plus ``{f"{name}_{metric}": mean over the non-``text:all`` pairs}``. The
    primary metric, higher is better, is :attr:`primary_metric` (``f"{name}_recall@1"``).
    """

    greater_is_better = True

    def __init__(
        self,
        targets: Mapping[str, View | Sequence[Any]],
        encode_queries: Callable[[Any], Mapping[str, View | Sequence[Any]]],
        *,
        pairs: Iterable[tuple[str, str]] | None = None,
        name: str = "retrieval",
        primary: str = "recall@1",
        language_agnostic: bool = False,
    ) -> None:
        if primary not in ROW_METRICS:
            raise EvaluationError(f"primary metric {primary!r} is not one of {ROW_METRICS}")
        if primary == "xsim_error":
            self.greater_is_better = False
        self.targets = {n: View.coerce(n, v) for n, v in targets.items()}
        self.encode_queries = encode_queries
        self.pairs = list(pairs) if pairs is not None else None
        self.name = name
        self.language_agnostic = language_agnostic
        self.primary_metric = f"{name}_{primary}"

    def __call__(
        self,
        model: Any,
        output_path: str | os.PathLike | None = None,
        epoch: int = -1,
        steps: int = -1,
    ) -> dict[str, float]:
        """Encode the queries with ``model``, score every pair and return the metrics dict.

        If ``output_path`` is given, one JSON line per call is appended to
        ``<output_path>/<name>_retrieval.jsonl`` with ``epoch``, ``steps`` and the rows.
        """
        queries = self.encode_queries(model)
        rows = evaluate_retrieval_pairs(
            queries, self.targets, self.pairs, language_agnostic=self.language_agnostic
        )
        out: dict[str, float] = {}
        for row in rows:
            for metric in (*ROW_METRICS, "own_language_top1"):
                if metric in row:
                    out[f"{self.name}_{row['query']}_to_{row['target']}_{metric}"] = float(
                        row[metric]
                    )
        per_pair = [r for r in rows if r["target"] != ALL_TEXT] or rows
        for metric in ROW_METRICS:
            vals = [float(r[metric]) for r in per_pair if metric in r]
            if vals:
                out[f"{self.name}_{metric}"] = float(np.mean(vals))
        if output_path is not None:
            path = Path(output_path)
            path.mkdir(parents=True, exist_ok=True)
            record = {"epoch": epoch, "steps": steps, "rows": [jsonable_row(r) for r in rows]}
            with open(path / f"{self.name}_retrieval.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        return out
