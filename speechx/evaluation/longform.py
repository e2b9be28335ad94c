"""Long-form search evaluation: find each query utterance's span in hours of audio.

The long recordings and their truth table come from ``speechx prepare longform``
(:mod:`data_prep.longform`, :mod:`speechx.data.spans`); the index from ``speechx index-audio``
(:class:`speechx.audio_search.AudioIndex`).  Each query utterance is searched for

- by text, in each requested language, through the teacher (``text:<lang>``: its
  ``text.<lang>``, or its transcript when that is the language spoken; queries without that text
  are left out of the row and counted in ``n_missing``);
- optionally by speech (``speech:alt``): another rendering of the same sentence that is not in
  the recordings (another language or voice), through the speech encoder.

Metrics (:mod:`speechx.metrics.longform`): hit@1/5/10 with IoU >= 0.5 against the true span,
the same with the looser "the hit contains the true span's centre", MRR@10, the median absolute
start-time error of the timed hit, and the mean IoU of the first hit; per row, and per source
dir of the speech (``by_source``).  Written to ``<out_dir>/longform.json``::

    {"task": "longform", "split": ..., "model": ..., "teacher": ...,
     "results": [{"query": "text:en", "n_queries": N, "n_missing": M, "hit@1": x, ...,
                  "by_source": {"fillets_nl_test": {...}, ...}}, ...],
     "index": {"recordings", "windows", "hours", "seconds", "hours_per_hour", "window", "hop",
               "boundaries", "backend"},
     "merge": {...}, "iou": 0.5}

plus the ``## Long-form search`` section of ``summary.md``, ``longform_hit_vs_iou.png``
(hit@1 and hit@5 against the IoU threshold) and ``longform_hits.jsonl`` (each query's true
span and its first hits).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from speechx.audio import load_audio
from speechx.audio_search import AudioHit, AudioIndex, MergeConfig
from speechx.data.kaldi import atomic_write_text
from speechx.data.spans import PlacedUtterance
from speechx.errors import EvaluationError
from speechx.evaluation.summary import write_results
from speechx.metrics.longform import Span, hit_rate_curve, longform_metrics

logger = logging.getLogger(__name__)

IOU_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
_SEGMENT = re.compile(r"^(.*)@(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)?$")


def evaluate_longform(
    index: AudioIndex,
    truth: Sequence[PlacedUtterance],
    out_dir: str | os.PathLike,
    *,
    teacher: Any,
    query_langs: Sequence[str] = ("en",),
    encoder: Any = None,
    top_k: int = 10,
    merge: MergeConfig | None = None,
    iou: float = 0.5,
    split: str = "test",
    model_name: str | None = None,
    teacher_name: str | None = None,
) -> Path:
    """Search for every query of ``truth`` and write the results (see the module docstring).

    Args:
        index: the audio index over the truth's recordings.
        truth: the truth table's rows (the ``query`` rows are searched for).
        out_dir: the results dir (``exp/<tag>/results``).
        teacher: embeds the text queries.
        query_langs: a ``text:<lang>`` row for each.
        encoder: when given, also the ``speech:alt`` row (spoken queries).
        top_k: hits kept per query (hit@k for k up to 10).
        merge: how windows merge into hits.
        iou: the IoU threshold of a correct hit.

    Returns:
        The path of ``longform.json``.

    Raises:
        EvaluationError: no query rows, a query whose recording is not in the index, or a
            language no query has text in.
    """
    queries = [r for r in truth if r.role == "query"]
    if not queries:
        raise EvaluationError("the truth table has no query rows")
    indexed = {r.id for r in index.recordings}
    missing = sorted({q.recording for q in queries} - indexed)
    if missing:
        raise EvaluationError(
            f"the index does not hold recording(s) {', '.join(missing[:3])} of the truth table; "
            "index the truth's data dir"
        )
    merge = merge or MergeConfig()
    rows: list[dict[str, Any]] = []
    curves: dict[str, dict[int, list[float]]] = {}
    dump: list[dict[str, Any]] = []
    for lang in query_langs:
        have = [(q, q.text_in(lang)) for q in queries]
        usable = [(q, t) for q, t in have if t]
        if not usable:
            raise EvaluationError(f"no query has text in {lang!r} (no text.{lang} in the truth)")
        logger.info("text:%s: %d queries", lang, len(usable))
        hits = index.search_text(teacher, [t for _, t in usable], top_k=top_k, merge=merge)
        name = f"text:{lang}"
        rows.append(_row(name, [q for q, _ in usable], hits, len(queries) - len(usable), iou))
        curves[name] = _curves([q for q, _ in usable], hits)
        dump += _dump(name, usable, hits)
    if encoder is not None:
        usable = [(q, q.alt_audio) for q in queries if q.alt_audio]
        if usable:
            sr = int(encoder.sample_rate)
            sources = [(_load_alt(a, sr), sr) for _, a in usable]
            hits = index.search_audio(encoder, sources, top_k=top_k, merge=merge)
            qs = [q for q, _ in usable]
            row = _row("speech:alt", qs, hits, len(queries) - len(usable), iou)
            langs: dict[str, int] = {}
            for q in qs:
                langs[q.alt_lang] = langs.get(q.alt_lang, 0) + 1
            row["alt_langs"] = dict(sorted(langs.items()))
            rows.append(row)
            curves["speech:alt"] = _curves(qs, hits)
            dump += _dump("speech:alt", [(q, q.alt_utt) for q in qs], hits)
        else:
            logger.warning("no query has an alt_audio rendering: no speech:alt row")
    return write_longform_results(
        out_dir,
        split=split,
        model=model_name or index.model,
        teacher=teacher_name or str(getattr(teacher, "teacher_id", "")),
        results=rows,
        index=index_summary(index),
        merge=asdict(merge),
        iou=iou,
        curves=curves,
        hits=dump,
    )


def index_summary(index: AudioIndex) -> dict[str, Any]:
    """The ``index`` entry of ``longform.json``: size, build time and windowing."""
    return {
        "recordings": len(index.recordings),
        "windows": len(index),
        "hours": round(index.hours, 4),
        "seconds": round(index.seconds, 2),
        "hours_per_hour": None if index.hours_per_hour is None else round(index.hours_per_hour, 2),
        "window": index.config.window,
        "hop": index.config.hop_seconds,
        "boundaries": index.config.boundaries,
        "backend": index.index.config.backend,
        "model": index.model,
    }


def write_longform_results(
    out_dir: str | os.PathLike,
    *,
    split: str,
    model: str,
    teacher: str,
    results: Sequence[Mapping[str, Any]],
    index: Mapping[str, Any],
    merge: Mapping[str, Any],
    iou: float = 0.5,
    curves: Mapping[str, Mapping[int, Sequence[float]]] | None = None,
    hits: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write ``longform.json``, the summary section, the plot and the per-query hits.

    Returns:
        The path of ``longform.json``.

    Raises:
        EvaluationError: a result row without ``query``.
    """
    for i, row in enumerate(results):
        if "query" not in row:
            raise EvaluationError(f"longform result row {i} has no 'query': {dict(row)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "task": "longform",
        "split": split,
        "model": model,
        "teacher": teacher,
        "results": [dict(r) for r in results],
        "index": dict(index),
        "merge": dict(merge),
        "iou": iou,
    }
    path = write_results(out, doc, render_summary(doc))
    if hits:
        atomic_write_text(
            out / "longform_hits.jsonl",
            "".join(json.dumps(h, ensure_ascii=False) + "\n" for h in hits),
        )
    if curves:
        plot_hit_vs_iou(out / "longform_hit_vs_iou.png", curves, title=f"{split}, {model}")
    logger.info("wrote %s", path)
    return path


def render_summary(doc: Mapping[str, Any]) -> str:
    """The ``## Long-form search`` markdown section for a ``longform.json`` document."""
    ix = doc["index"]
    hph = ix.get("hours_per_hour")
    lines = [
        "## Long-form search",
        "",
        f"split `{doc['split']}`, model `{doc['model']}`, teacher `{doc['teacher']}`; "
        f"{ix['recordings']} recordings, {ix['hours']:.2f} h, {ix['windows']} windows "
        f"({ix['boundaries']}, {ix['window']:g} s every {ix['hop']:g} s, {ix['backend']}); "
        f"indexed in {ix['seconds']:.0f} s"
        + (f" ({hph:.1f} hours of audio per hour)" if hph else ""),
        "",
        f"A hit is correct when its IoU with the true span is >= {doc['iou']:g} "
        "(centre: when it contains the true span's centre). Start error: median "
        "|start - true start| of the best-ranked hit in the top 10 that overlaps the true span.",
        "",
        "| query | n | hit@1 | hit@5 | hit@10 | hit@1 centre | hit@5 centre | MRR@10 "
        "| median start error (s) | timed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["results"]:
        lines.append(
            f"| {r['query']} | {r['n_queries']} | {_f(r.get('hit@1'))} | {_f(r.get('hit@5'))} "
            f"| {_f(r.get('hit@10'))} | {_f(r.get('hit@1_centre'))} "
            f"| {_f(r.get('hit@5_centre'))} | {_f(r.get('mrr@10'))} "
            f"| {_f(r.get('median_start_error'), 2)} | {r.get('n_timed', '')} |"
        )
    lines += [
        "",
        "### By source of the speech (hit@1 / hit@5 / median start error)",
        "",
    ]
    sources = sorted({s for r in doc["results"] for s in r.get("by_source", {})})
    if sources:
        lines.append("| query | " + " | ".join(sources) + " |")
        lines.append("|---|" + "---|" * len(sources))
        for r in doc["results"]:
            cells = []
            for s in sources:
                b = r.get("by_source", {}).get(s)
                cells.append(
                    "-"
                    if b is None
                    else f"{_f(b['hit@1'])} / {_f(b['hit@5'])} / "
                    f"{_f(b['median_start_error'], 2)} (n={b['n_queries']})"
                )
            lines.append(f"| {r['query']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_hit_vs_iou(
    path: str | os.PathLike,
    curves: Mapping[str, Mapping[int, Sequence[float]]],
    *,
    title: str = "",
) -> Path:
    """Draw hit@k against the IoU threshold (:data:`IOU_THRESHOLDS`), one line per row and k.

    Returns:
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for name, by_k in curves.items():
        for k, values in sorted(by_k.items()):
            ax.plot(
                IOU_THRESHOLDS, values, marker="o", ls="-" if k == 1 else "--", label=f"{name} @{k}"
            )
    ax.set_xlabel("IoU threshold")
    ax.set_ylabel("hit@k")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(f"Long-form search: hit@k vs IoU ({title})", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp.png")
    fig.savefig(tmp)
    os.replace(tmp, p)
    return p


# ------------------------------------------------------------------------------ helpers
def _spans(hits: Sequence[AudioHit]) -> list[Span]:
    return [(h.recording, h.start, h.end) for h in hits]


def _row(
    name: str,
    queries: Sequence[PlacedUtterance],
    hits: Sequence[Sequence[AudioHit]],
    n_missing: int,
    iou: float,
) -> dict[str, Any]:
    truths = [(q.recording, q.start, q.end) for q in queries]
    spans = [_spans(h) for h in hits]
    m = longform_metrics(spans, truths, iou=iou)
    row: dict[str, Any] = {"query": name, "n_queries": m.pop("n_queries"), "n_missing": n_missing}
    row.update({k: _round(v) for k, v in m.items()})
    by_source: dict[str, dict[str, Any]] = {}
    for src in sorted({q.source for q in queries}):
        idx = [i for i, q in enumerate(queries) if q.source == src]
        sm = longform_metrics([spans[i] for i in idx], [truths[i] for i in idx], iou=iou)
        by_source[src] = {
            k: _round(sm[k]) for k in ("n_queries", "hit@1", "hit@5", "median_start_error")
        }
    row["by_source"] = by_source
    return row


def _curves(
    queries: Sequence[PlacedUtterance], hits: Sequence[Sequence[AudioHit]]
) -> dict[int, list[float]]:
    truths = [(q.recording, q.start, q.end) for q in queries]
    spans = [_spans(h) for h in hits]
    return {k: hit_rate_curve(spans, truths, IOU_THRESHOLDS, k=k) for k in (1, 5)}


def _dump(
    name: str, usable: Sequence[tuple[PlacedUtterance, str]], hits: Sequence[Sequence[AudioHit]]
) -> list[dict[str, Any]]:
    return [
        {
            "query": name,
            "utt": q.utt,
            "input": text,
            "truth": [q.recording, round(q.start, 3), round(q.end, 3)],
            "hits": [h.to_dict() for h in hs[:5]],
        }
        for (q, text), hs in zip(usable, hits, strict=True)
    ]


def _load_alt(spec: str, sample_rate: int) -> Any:
    m = _SEGMENT.match(spec)
    if m and not Path(spec).exists():
        end = float(m.group(3)) if m.group(3) else None
        return load_audio(m.group(1), sample_rate, start=float(m.group(2)), end=end)
    return load_audio(spec, sample_rate)


def _round(v: Any) -> Any:
    return round(v, 4) if isinstance(v, float) else v


def _f(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


__all__ = [
    "IOU_THRESHOLDS",
    "evaluate_longform",
    "index_summary",
    "plot_hit_vs_iou",
    "render_summary",
    "write_longform_results",
]
