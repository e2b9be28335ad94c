"""ASR scoring: transcripts against references -> ``asr.json``, ``summary.md``, ``.pra`` files.

Decoding happens elsewhere; this module scores text. Both sides are ``{utt_id: text}``::

    report = score_transcripts(refs, hyps, utt2lang=utt2lang, set_name="fillets_nl_test")
    print(report.format())                        # per-language WER/CER/MER, top errors
    whisper = score_transcripts(refs, whisper_hyps, utt2lang=utt2lang, set_name=...)
    write_asr_results("exp/demo/results", split="test", model="exp/demo/model", report=report,
                      peers=peer_rows(whisper, "whisper-base:zero-shot"))

Every rate is corpus-level (total errors / total reference tokens of that language), computed
after one :class:`~speechx.metrics.asr.TextNormalizer` that is recorded in the results. A
reference utterance without a hypothesis is scored as an empty hypothesis (all deletions) and
named in the report; hypotheses without a reference are named and ignored.

Each result row follows DESIGN.md (``lang``, ``n_utts``, ``n_ref_words``, ``wer``, ``cer``) and
adds ``mer``, ``n_ref_chars``, ``n_ref_tokens`` (MER tokens), the word-level ``substitutions``,
``deletions`` and ``insertions``, ``n_missing_hyps`` and ``n_empty_hyps``, plus ``set`` when the
report names its data set. With several languages an ``"all"`` row follows the per-language ones.

Files written by :func:`write_asr_results` into the results directory:

* ``asr.json``: ``{"task": "asr", "split", "model", "normalizer", "results", "peers",
  "confusions", "missing_hyps", "extra_hyps"}``;
* ``asr_alignments.pra`` (``asr_alignments.<set>.pra`` per named set): word alignments in
  sclite style, and ``asr_alignments[.<set>].mer.pra`` (mixed tokens) when the text has CJK;
* the ``## ASR`` section of ``summary.md`` (between ``<!-- speechx:asr:begin/end -->``);
* ``asr_error_rates.png``: WER and CER per language (and per peer) as bars.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speechx.data.kaldi import atomic_write_text, read_mapping
from speechx.errors import DataDirError, EvaluationError, MetricError
from speechx.evaluation.summary import some_ids, write_results
from speechx.metrics.asr import (
    METRIC_UNIT,
    Alignment,
    ErrorCounts,
    TextNormalizer,
    align,
    count_errors,
    error_rate,
    format_pra,
    is_cjk,
)

logger = logging.getLogger(__name__)

#: the name of the row over every language
OVERALL = "all"
METRICS = ("wer", "cer", "mer")


@dataclass(frozen=True)
class AsrReport:
    """The scores of one set of transcripts.

    Attributes:
        rows: one result row per language (sorted), then an ``"all"`` row when there are two
            or more languages; see the module docstring for the keys.
        alignments: unit -> one :class:`~speechx.metrics.asr.Alignment` per scored utterance,
            in reference order; ``"word"`` always, ``"mixed"`` when any text holds CJK.
        errors: substitution / deletion / insertion counts over the whole set, on MER tokens
            (whitespace words, with each CJK character a token of its own; for text without
            CJK these are exactly the words).
        normalizer: the normaliser every text went through.
        missing_hyps: reference utterances that had no hypothesis (scored as empty).
        extra_hyps: hypothesis utterances without a reference (ignored).
        set_name: the data set scored, if named; rows then carry ``"set"``.
    """

    rows: list[dict[str, Any]]
    alignments: dict[str, list[Alignment]]
    errors: ErrorCounts
    normalizer: TextNormalizer
    missing_hyps: list[str] = field(default_factory=list)
    extra_hyps: list[str] = field(default_factory=list)
    set_name: str | None = None

    @property
    def overall(self) -> dict[str, Any]:
        """The row over every utterance (the only row when there is one language)."""
        return self.rows[-1]

    @property
    def has_cjk(self) -> bool:
        """True when MER alignments were kept because some text holds CJK characters."""
        return "mixed" in self.alignments

    def to_dict(self, top: int | None = 20) -> dict[str, Any]:
        """JSON-ready ``{"set", "normalizer", "results", "confusions", "missing_hyps",
        "extra_hyps"}`` with the ``top`` most frequent confusions."""
        return {
            "set": self.set_name,
            "normalizer": self.normalizer.settings(),
            "results": [_jsonable(r) for r in self.rows],
            "confusions": self.errors.to_dict(top),
            "missing_hyps": list(self.missing_hyps),
            "extra_hyps": list(self.extra_hyps),
        }

    def format(self, metrics: Sequence[str] = METRICS, top: int = 10) -> str:
        """A plain-text summary for a terminal: a table of rates per language, the most
        frequent errors, and the missing / extra hypotheses.

        Raises:
            EvaluationError: an unknown metric.
        """
        _check_metrics(metrics)
        head = f"set {self.set_name}: " if self.set_name else ""
        lines = [
            f"{head}{_n(self.overall['n_utts'], 'utterance')}, normalisation: "
            f"{self.normalizer.describe()}",
            "",
        ]
        cols = ["lang", "utts", "words", *(f"{m.upper()}%" for m in metrics), "sub", "del", "ins"]
        table = [cols]
        for r in self.rows:
            table.append(
                [
                    str(r["lang"]),
                    str(r["n_utts"]),
                    str(r["n_ref_words"]),
                    *(_pct(r.get(m)) for m in metrics),
                    str(r["substitutions"]),
                    str(r["deletions"]),
                    str(r["insertions"]),
                ]
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
        for row in table:
            cells = [
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
        subs = self.errors.top_substitutions(top)
        if subs:
            lines += ["", "most frequent substitutions (ref -> hyp: count):"]
            lines += [f"  {r} -> {h}: {c}" for r, h, c in subs]
        dels = self.errors.top_deletions(top)
        if dels:
            lines += ["", "most frequent deletions: " + ", ".join(f"{w} ({c})" for w, c in dels)]
        ins = self.errors.top_insertions(top)
        if ins:
            lines += ["", "most frequent insertions: " + ", ".join(f"{w} ({c})" for w, c in ins)]
        if self.missing_hyps:
            lines += [
                "",
                f"{_n(len(self.missing_hyps), 'reference utterance')} without a hypothesis (scored as "
                f"all deletions): {some_ids(self.missing_hyps)}",
            ]
        if self.extra_hyps:
            lines += [
                "",
                f"{_n(len(self.extra_hyps), 'hypothesis', 'hypotheses')} without a reference (ignored): "
                f"{some_ids(self.extra_hyps)}",
            ]
        return "\n".join(lines) + "\n"


def score_transcripts(
    refs: Mapping[str, str],
    hyps: Mapping[str, str],
    *,
    utt2lang: Mapping[str, str] | None = None,
    normalizer: TextNormalizer | None = None,
    lang: str | None = None,
    set_name: str | None = None,
) -> AsrReport:
    """Score hypotheses against references: WER, CER and MER per language and overall.

    Args:
        refs: utterance id -> reference transcript (the set that is scored).
        hyps: utterance id -> hypothesis. A reference without one is scored as ``""`` (every
            reference token deleted) and listed in :attr:`AsrReport.missing_hyps`; a hypothesis
            without a reference is listed in :attr:`AsrReport.extra_hyps` and ignored. Both
            are logged as warnings naming the first few utterances.
        utt2lang: utterance id -> language of the speech; every reference needs one.
        normalizer: applied to both sides (default ``TextNormalizer()``: NFKC, case-folded,
            punctuation removed; the same default as the cascade peer's WER).
        lang: the language of every utterance when there is no ``utt2lang`` (default
            ``"all"``).
        set_name: the data set's name, added to every row as ``"set"``.

    Returns:
        An :class:`AsrReport`.

    Raises:
        EvaluationError: no references, a reference without a language in ``utt2lang``, a
            language called ``"all"`` next to others, or references that are all empty after
            normalisation (each names the utterances or the set).
    """
    norm = normalizer or TextNormalizer()
    where = f"set {set_name}" if set_name else "scoring"
    ids = list(refs)
    if not ids:
        raise EvaluationError(f"{where}: no reference utterances")
    if utt2lang is not None:
        unlabelled = [u for u in ids if u not in utt2lang]
        if unlabelled:
            raise EvaluationError(
                f"{where}: {_n(len(unlabelled), 'utterance')} without a language in utt2lang: "
                f"{some_ids(unlabelled)}"
            )
        langs = [str(utt2lang[u]) for u in ids]
    else:
        langs = [lang or OVERALL] * len(ids)
    groups = sorted(set(langs))
    if len(groups) > 1 and OVERALL in groups:
        raise EvaluationError(f"{where}: a language is called {OVERALL!r}, the overall row's name")
    missing = [u for u in ids if u not in hyps]
    extra = sorted(u for u in hyps if u not in refs)
    if missing:
        logger.warning(
            "%s: %d of %d reference utterances have no hypothesis and are scored as empty "
            "(all deletions): %s",
            where,
            len(missing),
            len(ids),
            some_ids(missing),
        )
    if extra:
        logger.warning(
            "%s: %d hypotheses have no reference and are ignored: %s",
            where,
            len(extra),
            some_ids(extra),
        )
    ref_texts = [str(refs[u]) for u in ids]
    hyp_texts = [str(hyps.get(u, "")) for u in ids]
    try:
        al = {
            m: align(ref_texts, hyp_texts, ids=ids, unit=METRIC_UNIT[m], normalizer=norm)
            for m in METRICS
        }
    except MetricError as exc:
        raise EvaluationError(f"{where}: {exc}") from None
    if not any(a.ref_tokens for a in al["wer"]):
        raise EvaluationError(f"{where}: every reference is empty after normalisation")
    missing_set = set(missing)
    members = {g: [i for i, x in enumerate(langs) if x == g] for g in groups}
    if len(groups) > 1:
        members[OVERALL] = list(range(len(ids)))
    rows = []
    for g, idx in members.items():
        row: dict[str, Any] = {} if set_name is None else {"set": set_name}
        rates = {
            m: error_rate([al[m][i] for i in idx], normalizer=norm, allow_empty_reference=True)
            for m in METRICS
        }
        words = rates["wer"]
        row.update(
            lang=g,
            n_utts=len(idx),
            n_ref_words=words.ref_tokens,
            wer=_rate(words.rate),
            cer=_rate(rates["cer"].rate),
            mer=_rate(rates["mer"].rate),
            n_ref_chars=rates["cer"].ref_tokens,
            n_ref_tokens=rates["mer"].ref_tokens,
            substitutions=words.substitutions,
            deletions=words.deletions,
            insertions=words.insertions,
            n_missing_hyps=sum(ids[i] in missing_set for i in idx),
            n_empty_hyps=sum(not al["wer"][i].hyp_tokens for i in idx),
        )
        rows.append(row)
    has_cjk = any(is_cjk(ch) for text in (*ref_texts, *hyp_texts) for ch in text)
    kept = {"word": al["wer"]}
    if has_cjk:
        kept["mixed"] = al["mer"]
    return AsrReport(
        rows=rows,
        alignments=kept,
        errors=count_errors(al["mer"]),
        normalizer=norm,
        missing_hyps=missing,
        extra_hyps=extra,
        set_name=set_name,
    )


def peer_rows(report: AsrReport, system: str) -> list[dict[str, Any]]:
    """The rows of ``report`` as peer rows of another system, e.g.
    ``"whisper-base:zero-shot"``: each row with ``"system"`` first and the normaliser's
    settings under ``"normalizer"`` (so :func:`write_asr_results` can check that both were
    scored alike).

    Returns:
        A list of row dicts.
    """
    return [
        {"system": system, **r, "normalizer": report.normalizer.settings()} for r in report.rows
    ]


# ----------------------------------------------------------------------------- writing
def write_asr_results(
    out_dir: str | os.PathLike,
    *,
    split: str,
    model: str,
    report: AsrReport | Sequence[AsrReport],
    peers: Sequence[Mapping[str, Any]] = (),
    normalizer: TextNormalizer | Mapping[str, Any] | None = None,
    top: int = 20,
) -> Path:
    """Write ``asr.json``, the ``.pra`` alignments, the ASR section of ``summary.md`` and the
    bar chart into ``out_dir`` (the results directory, ``exp/<tag>/results``).

    Args:
        split: the split name recorded in ``asr.json`` (``"test"``).
        model: the model recorded in ``asr.json`` (its directory or tag).
        report: one :class:`AsrReport`, or several (one per data set, each with a distinct
            ``set_name``) whose rows are concatenated.
        peers: rows of other systems on the same utterances, each with a ``"system"`` and a
            ``"lang"`` (see :func:`peer_rows`).
        normalizer: the normaliser the caller meant to score with (e.g. the one recorded in
            the model directory); checked against the reports'. ``None`` skips the check.
        top: how many of the most frequent confusions ``asr.json`` keeps per set.

    Every file is written to a temporary file and renamed into place; ``summary.md`` may be
    shared with other tasks, and only the part between the ASR markers is replaced.

    Returns:
        The path of ``asr.json``.

    Raises:
        EvaluationError: no reports, reports of several sets without distinct names, reports
            (or peer rows, or ``normalizer``) scored with different normalisers, or a peer
            row without ``system`` or ``lang``.
    """
    reports = [report] if isinstance(report, AsrReport) else list(report)
    if not reports:
        raise EvaluationError("write_asr_results: no reports to write")
    names = [r.set_name for r in reports]
    if len(reports) > 1 and (None in names or len(set(names)) != len(names)):
        raise EvaluationError(
            f"write_asr_results: {len(reports)} reports need distinct set names, got {names}"
        )
    norm = reports[0].normalizer
    for r in reports[1:]:
        if r.normalizer != norm:
            raise EvaluationError(
                f"set {r.set_name}: scored with normaliser {r.normalizer.settings()}, but set "
                f"{reports[0].set_name} with {norm.settings()}"
            )
    if normalizer is not None:
        want = (
            normalizer
            if isinstance(normalizer, TextNormalizer)
            else _normalizer_from(normalizer, "normalizer argument")
        )
        if want != norm:
            raise EvaluationError(
                f"the reports were scored with normaliser {norm.settings()}, not the expected "
                f"{want.settings()}"
            )
    peer_list: list[dict[str, Any]] = []
    for i, row in enumerate(peers):
        if "system" not in row or "lang" not in row:
            raise EvaluationError(f"peers row {i} has no 'system' or 'lang': {dict(row)}")
        if "normalizer" in row:
            theirs = _normalizer_from(row["normalizer"], f"peers row {i} ({row['system']})")
            if theirs != norm:
                raise EvaluationError(
                    f"peers row {i} ({row['system']}) was scored with normaliser "
                    f"{theirs.settings()}, the results with {norm.settings()}: not comparable"
                )
        peer_list.append(_jsonable({k: v for k, v in row.items() if k != "normalizer"}))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pra_files: list[str] = []
    for r in reports:
        pra_files += _write_pra(out, r, split=split, model=model)
    key = [r.set_name or OVERALL for r in reports]
    doc: dict[str, Any] = {
        "task": "asr",
        "split": split,
        "model": model,
        "normalizer": norm.settings(),
        "results": [_jsonable(row) for r in reports for row in r.rows],
        "peers": peer_list,
        "confusions": {k: r.errors.to_dict(top) for k, r in zip(key, reports, strict=True)},
        "missing_hyps": {k: r.missing_hyps for k, r in zip(key, reports, strict=True)},
        "extra_hyps": {k: r.extra_hyps for k, r in zip(key, reports, strict=True)},
        "alignments": pra_files,
    }
    json_path = write_results(out, doc, render_summary(doc, reports))
    write_bar_chart(
        out / "asr_error_rates.png", [*doc["results"], *peer_list], title=f"ASR ({split}, {model})"
    )
    logger.info("wrote %s", json_path)
    return json_path


def _write_pra(out: Path, report: AsrReport, *, split: str, model: str) -> list[str]:
    stem = "asr_alignments" + (f".{report.set_name}" if report.set_name else "")
    written = []
    for unit, suffix in (("word", ".pra"), ("mixed", ".mer.pra")):
        if unit not in report.alignments:
            continue
        header = [
            f"# speechx ASR alignments ({'words' if unit == 'word' else 'MER tokens'})",
            f"# split: {split}   model: {model}"
            + (f"   set: {report.set_name}" if report.set_name else ""),
            f"# normalizer: {json.dumps(report.normalizer.settings())}",
            "# errors are upper-cased; *** marks the missing side of a deletion or insertion",
        ]
        name = stem + suffix
        atomic_write_text(out / name, format_pra(report.alignments[unit], header=header))
        written.append(name)
    return written


def render_summary(doc: Mapping[str, Any], reports: Sequence[AsrReport] = (), top: int = 10) -> str:
    """The markdown ``## ASR`` section of ``summary.md`` for an ``asr.json`` document.

    Args:
        doc: the ``asr.json`` document.
        reports: the reports behind it, for the most frequent errors (from ``doc`` alone the
            section shows ``doc["confusions"]``).
        top: errors listed per set.

    Returns:
        The section, ending in a newline.
    """
    norm = TextNormalizer.from_settings(doc["normalizer"])
    lines = [
        "## ASR",
        "",
        f"split `{doc['split']}`, model `{doc['model']}`; normalisation: {norm.describe()}. "
        "Rates are corpus-level (errors / reference tokens), in percent; sub/del/ins count words.",
        "",
        *_rate_table(doc["results"]),
    ]
    if doc["peers"]:
        lines += ["", "### Peers", "", *_rate_table(doc["peers"], system=True)]
    confusions: dict[str, Any] = dict(doc.get("confusions") or {})
    if reports:
        confusions = {r.set_name or OVERALL: r.errors.to_dict(top) for r in reports}
    for key, conf in confusions.items():
        title = "### Most frequent errors" + (f" ({key})" if key != OVERALL else "")
        subs = conf["substitutions"][:top]
        dels = conf["deletions"][:top]
        ins = conf["insertions"][:top]
        if not (subs or dels or ins):
            continue
        lines += ["", title, ""]
        if subs:
            lines += ["| ref | hyp | count |", "|---|---|---|"]
            lines += [f"| {_md(s['ref'])} | {_md(s['hyp'])} | {s['count']} |" for s in subs]
        if dels:
            lines += ["", "Deletions: " + ", ".join(f"`{d['ref']}` ({d['count']})" for d in dels)]
        if ins:
            lines += ["", "Insertions: " + ", ".join(f"`{d['hyp']}` ({d['count']})" for d in ins)]
    for key, missing in (doc.get("missing_hyps") or {}).items():
        if missing:
            where = "" if key == OVERALL else f" in {key}"
            lines += [
                "",
                f"**{_n(len(missing), 'utterance')}{where} without a hypothesis** scored as "
                f"all deletions: {some_ids(missing)}",
            ]
    for key, extra in (doc.get("extra_hyps") or {}).items():
        if extra:
            where = "" if key == OVERALL else f" for {key}"
            lines += [
                "",
                f"{_n(len(extra), 'hypothesis', 'hypotheses')}{where} without a reference (ignored): {some_ids(extra)}",
            ]
    if doc.get("alignments"):
        lines += ["", "Alignments: " + ", ".join(f"`{p}`" for p in doc["alignments"])]
    return "\n".join(lines) + "\n"


def _rate_table(rows: Sequence[Mapping[str, Any]], *, system: bool = False) -> list[str]:
    has_set = any(r.get("set") for r in rows)
    cols = (["system"] if system else []) + (["set"] if has_set else [])
    cols += ["lang", "utts", "ref words", "WER %", "CER %", "MER %", "sub", "del", "ins"]
    keys = (["system"] if system else []) + (["set"] if has_set else [])
    keys += ["lang", "n_utts", "n_ref_words", "wer", "cer", "mer"]
    keys += ["substitutions", "deletions", "insertions"]
    out = ["| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
    for r in rows:
        cells = []
        for k in keys:
            v = r.get(k)
            cells.append(_pct(v) if k in METRICS else ("–" if v is None else _md(str(v))))
        out.append("| " + " | ".join(cells) + " |")
    return out


def write_bar_chart(
    path: str | os.PathLike,
    rows: Sequence[Mapping[str, Any]],
    *,
    metrics: Sequence[str] = ("wer", "cer"),
    title: str | None = None,
) -> Path:
    """Draw grouped bars of ``metrics`` (in percent) per row, written atomically as a PNG.

    A row is labelled by its language, with its set and its system when it has them. Uses
    matplotlib's Agg canvas directly (no pyplot state, no display).

    Returns:
        ``path``.

    Raises:
        EvaluationError: no rows, or an unknown metric.
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    _check_metrics(metrics)
    if not rows:
        raise EvaluationError(f"{path}: no rows to draw")
    labels = []
    for r in rows:
        label = str(r.get("lang"))
        if r.get("set"):
            label = f"{r['set']}\n{label}"
        if r.get("system"):
            label = str(r["system"]).replace(":", ":\n") + f"\n{label}"
        labels.append(label)
    fig = Figure(figsize=(max(4.0, 1.0 + 1.4 * len(rows)), 3.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(rows))
    width = 0.8 / len(metrics)
    for j, m in enumerate(metrics):
        vals = [r.get(m) for r in rows]
        heights = [
            100.0 * v if isinstance(v, int | float) and math.isfinite(v) else 0.0 for v in vals
        ]
        bars = ax.bar(x + (j - (len(metrics) - 1) / 2) * width, heights, width, label=m.upper())
        for b, v in zip(bars, vals, strict=True):
            text = (
                "–" if not isinstance(v, int | float) or not math.isfinite(v) else f"{100 * v:.1f}"
            )
            ax.annotate(
                text,
                (b.get_x() + b.get_width() / 2, b.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
            )
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("error rate (%)")
    ax.set_ylim(0, max(100.0, ax.get_ylim()[1]))
    ax.legend(fontsize=8)
    ax.set_title(title or "ASR error rates", fontsize=9)
    fig.tight_layout()
    from speechx.evaluation.retrieval import save_figure

    return save_figure(fig, path)


# ------------------------------------------------------------------------------ reading
def read_transcripts(path: str | os.PathLike, *, what: str = "transcripts") -> dict[str, str]:
    """Read a Kaldi ``text`` file (``utt-id words...``), or the ``text`` of a Kaldi data dir.

    A line holding only an id is an empty transcript.

    Returns:
        ``{utt_id: text}`` in file order.

    Raises:
        EvaluationError: the path does not exist, a directory without a ``text`` file, or a
            file without any utterance.
        DataDirError: a duplicate id or invalid UTF-8 (naming the file and line).
    """
    p = Path(path)
    if p.is_dir():
        if not (p / "text").is_file():
            raise EvaluationError(f"{p}: a directory without a 'text' file ({what})")
        p = p / "text"
    elif not p.is_file():
        raise EvaluationError(f"{p}: no such file or directory ({what})")
    out = read_mapping(p, allow_empty=True)
    if not out:
        raise EvaluationError(f"{p}: no utterances ({what} file is empty)")
    return out


def read_utt2lang(path: str | os.PathLike) -> dict[str, str]:
    """Read an ``utt2lang`` file (``utt-id lang``), or the ``utt2lang`` of a Kaldi data dir.

    Returns:
        ``{utt_id: lang}``.

    Raises:
        EvaluationError: a missing file or one without entries.
        DataDirError: a duplicate id, a line without a language, or invalid UTF-8 (naming the
            file and line).
    """
    p = Path(path)
    if p.is_dir():
        p = p / "utt2lang"
    if not p.is_file():
        raise EvaluationError(f"{p}: no such utt2lang file")
    out = read_mapping(p)
    if not out:
        raise EvaluationError(f"{p}: utt2lang is empty")
    for utt, lang in out.items():
        if len(lang.split()) != 1:
            raise DataDirError(f"{p}: utterance {utt!r} has language {lang!r}, not one code")
    return out


def load_normalizer(path: str | os.PathLike) -> TextNormalizer:
    """Rebuild the normaliser recorded in a JSON file or a model directory.

    Accepted: a JSON object of :meth:`TextNormalizer.settings`; any JSON object with a
    ``"normalizer"`` (or ``"text_normalizer"``) entry holding them, such as ``asr.json``; an
    ASR model's ``config.json`` with ``vocab.text_normalization`` (its ``digits`` setting is
    not applied to scoring: references keep their digits); or a directory holding
    ``normalizer.json`` or such a ``config.json``.

    Returns:
        The :class:`TextNormalizer`.

    Raises:
        EvaluationError: no such file, invalid JSON, or no normaliser settings in it (naming
            the file).
    """
    p = Path(path)
    if p.is_dir():
        for name in ("normalizer.json", "config.json"):
            if (p / name).is_file():
                p = p / name
                break
        else:
            raise EvaluationError(f"{p}: no normalizer.json or config.json in this directory")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EvaluationError(f"{p}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise EvaluationError(f"{p}: not valid JSON ({exc})") from None
    if isinstance(data, dict):
        for key in ("normalizer", "text_normalizer"):
            if isinstance(data.get(key), dict):
                return _normalizer_from(data[key], str(p))
        vocab = data.get("vocab")
        if isinstance(vocab, dict) and isinstance(vocab.get("text_normalization"), dict):
            settings = dict(vocab["text_normalization"])
            if settings.pop("digits", "keep") != "keep":
                logger.info(
                    "%s: the model drops digits from its training targets; scoring keeps them "
                    "in the references (a digit the model cannot write counts as an error)",
                    p,
                )
            return _normalizer_from(settings, f"{p} (vocab.text_normalization)")
    if p.name == "config.json":
        raise EvaluationError(f"{p}: no 'normalizer' entry with the text normalisation settings")
    return _normalizer_from(data, str(p))


# ------------------------------------------------------------------------------ helpers
def _normalizer_from(settings: Any, where: str) -> TextNormalizer:
    try:
        return TextNormalizer.from_settings(settings)
    except MetricError as exc:
        raise EvaluationError(f"{where}: {exc}") from None


def _check_metrics(metrics: Sequence[str]) -> None:
    bad = [m for m in metrics if m not in METRICS]
    if bad or not metrics:
        raise EvaluationError(f"unknown metric {bad or list(metrics)}; expected some of {METRICS}")


def _rate(v: float) -> float | None:
    return None if math.isnan(v) else v


def _pct(v: Any) -> str:
    if not isinstance(v, int | float) or not math.isfinite(v):
        return "–"
    return f"{100 * v:.2f}"


def _n(count: int, noun: str, plural: str | None = None) -> str:
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if hasattr(v, "item") and callable(v.item):  # numpy scalars
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = None  # JSON has no NaN
        out[str(k)] = v
    return out
