"""Code-switching evaluation: ASR scoring and mixed-language retrieval -> ``codeswitch.json``.

A code-switched data dir (``synthcs_<pair>_<split>``, ``ascend_zh-en_<split>``, ...) is an
ordinary Kaldi dir with, besides ``wav.scp text utt2spk utt2sent``:

* ``utt2lang``: the pair ``<matrix>-<embedded>`` (``nl-en``), matrix language first;
* ``text.langtags``: one language tag per MER token of ``text``
  (:func:`speechx.metrics.asr.mixed_tokens`);
* ``text.<lang>``: monolingual translations (the matrix, the embedded language and ``en``);
* ``utt2cstype`` (optional): ``inter`` or ``intra``.

:func:`score_codeswitch` scores ASR hypotheses of one dir per pair with
:func:`speechx.metrics.codeswitch.codeswitch_scores` (MER, per-language rates, switch-point
errors, language confusion, and the MER per switching type). :func:`codeswitch_retrieval` scores
code-switched speech -> ``text:<matrix>``, ``text:<embedded>``, ``text:en``, and the monolingual
speech of the same sentences (matched through ``utt2sent``) against the very same pools, with the
drop. :func:`evaluate_codeswitch` runs both and writes, into the results directory:

* ``codeswitch.json``: ``{"task": "codeswitch", "split", "model", "asr", "teacher",
  "normalizer", "window", "results": [row, ...], "missing_hyps", "extra_hyps",
  "alignments"}``, one row per (data dir, pair) with the DESIGN.md keys ``pair``, ``mer``,
  ``per_lang`` and ``switch_point_error`` (``None`` / ``{}`` when no hypotheses were given) and
  ``set``, ``matrix``, ``embedded``, ``n_utts``, the details of
  :meth:`~speechx.metrics.codeswitch.CodeSwitchScores.to_dict`, ``by_cstype`` and, with a speech
  encoder, ``retrieval`` (code-switched queries), ``ceiling`` (the teacher embedding the mixed
  transcript), ``retrieval_mono`` (monolingual queries on the same pools) and
  ``retrieval_drop``;
* ``codeswitch_alignments.<set>.pra``: the MER-token alignments, sclite style;
* the ``## Code-switching`` section of ``summary.md`` (between
  ``<!-- speechx:codeswitch:begin/end -->``): MER, per-language, switch-point, confusion and
  retrieval tables.

A ``_drop`` value is how much worse the code-switched queries do than the monolingual ones on
the same sentences and pool: ``mono - codeswitch`` for recall and MRR, ``codeswitch - mono`` for
the xsim error, so a positive drop always means code-switching hurts.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speechx.data.kaldi import KaldiDir, atomic_write_text, read_mapping
from speechx.errors import DataDirError, EvaluationError, MetricError
from speechx.evaluation.retrieval import ROW_METRICS, View, evaluate_retrieval_pairs
from speechx.evaluation.summary import some_ids, write_results
from speechx.metrics.asr import TextNormalizer, align, format_pra
from speechx.metrics.codeswitch import (
    CodeSwitchScores,
    build_lexicon,
    check_tag_counts,
    normalize_tagged,
    scores_from_alignments,
    tag_alignment,
)

logger = logging.getLogger(__name__)

TAGS_FILE = "text.langtags"
CSTYPE_FILE = "utt2cstype"
#: utterance id -> every sentence id it renders (an inter-sentential utterance has two)
SENTS_FILE = "utt2sents"
_PAIR = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)-([A-Za-z][A-Za-z0-9_]*)$")
#: ``text.<x>`` files of a code-switched dir that are not translations
_NOT_LANGS = frozenset({"langtags"})


def split_pair(pair: str, where: str = "") -> tuple[str, str]:
    """``"nl-en"`` -> ``("nl", "en")``: the matrix and the embedded language.

    Raises:
        DataDirError: not ``<matrix>-<embedded>`` with two different codes (``where`` names the
            file and utterance).
    """
    m = _PAIR.match(pair)
    if m is None or m.group(1) == m.group(2):
        raise DataDirError(
            f"{where or 'pair'}: {pair!r} is not a language pair '<matrix>-<embedded>' "
            "such as 'nl-en'"
        )
    return m.group(1), m.group(2)


@dataclass(frozen=True)
class CodeSwitchSet:
    """The text side of a code-switched data dir.

    Attributes:
        name: the dir's name (``synthcs_nl-en_test``).
        path: the dir.
        refs: utterance id -> mixed transcript (``text``), in C order.
        tags: utterance id -> one language tag per MER token of its transcript.
        utt2pair: utterance id -> ``<matrix>-<embedded>``.
        utt2cstype: utterance id -> ``inter`` / ``intra`` (empty without ``utt2cstype``).
        utt2sent: utterance id -> sentence id (empty without ``utt2sent``).
        translations: language -> utterance id -> monolingual text (``text.<lang>``).
    """

    name: str
    path: Path
    refs: dict[str, str]
    tags: dict[str, list[str]]
    utt2pair: dict[str, str]
    utt2cstype: dict[str, str] = field(default_factory=dict)
    utt2sent: dict[str, str] = field(default_factory=dict)
    translations: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def pairs(self) -> list[str]:
        """The pairs of the dir, sorted."""
        return sorted(set(self.utt2pair.values()))

    def utts_of(self, pair: str) -> list[str]:
        """The utterances of ``pair``, in C order."""
        return [u for u in self.refs if self.utt2pair[u] == pair]


def read_codeswitch_dir(data_dir: str | os.PathLike) -> CodeSwitchSet:
    """Read and check the text side of a code-switched Kaldi dir (see the module docstring).

    Returns:
        A :class:`CodeSwitchSet`.

    Raises:
        DataDirError: no ``text``, ``utt2lang`` or ``text.langtags``; an utterance of ``text``
            without tags or a pair; a pair that is not ``<matrix>-<embedded>``; or a number of
            tags that differs from the MER tokens of the transcript (naming the file and the
            utterance).
    """
    d = Path(data_dir)
    kdir = KaldiDir.read(d)
    for name in ("text", "utt2lang", TAGS_FILE):
        if not (d / name).is_file():
            raise DataDirError(f"{d}: missing {name} (a code-switched data dir needs it)")
    refs = {u: kdir.text[u] for u in kdir.utt_ids if u in kdir.text}
    if not refs:
        raise DataDirError(f"{d / 'text'}: no utterances")
    raw_tags = read_mapping(d / TAGS_FILE, allow_empty=True)
    utt2pair: dict[str, str] = {}
    for u in refs:
        if u not in kdir.utt2lang:
            raise DataDirError(f"{d / 'utt2lang'}: utterance {u!r} has no language pair")
        utt2pair[u] = kdir.utt2lang[u]
        split_pair(utt2pair[u], f"{d / 'utt2lang'}: utterance {u!r}")
    tags = {u: raw_tags[u].split() for u in refs if u in raw_tags}
    try:
        check_tag_counts(refs, tags)
    except MetricError as exc:
        raise DataDirError(f"{d / TAGS_FILE}: {exc}") from None
    cstype = read_mapping(d / CSTYPE_FILE) if (d / CSTYPE_FILE).is_file() else {}
    translations = {k: v for k, v in kdir.translations.items() if k not in _NOT_LANGS}
    return CodeSwitchSet(d.name, d, refs, tags, utt2pair, cstype, kdir.utt2sent, translations)


# ------------------------------------------------------------------------------- ASR
@dataclass(frozen=True)
class CodeSwitchReport:
    """The ASR scores of one code-switched dir.

    Attributes:
        set_name: the dir's name.
        scores: pair -> :class:`~speechx.metrics.codeswitch.CodeSwitchScores`.
        by_cstype: pair -> ``inter``/``intra`` -> the scores of those utterances.
        normalizer: the normaliser both sides went through.
        missing_hyps: utterances without a hypothesis (scored as empty: all deletions).
        extra_hyps: hypotheses without a reference utterance (ignored).
    """

    set_name: str
    scores: dict[str, CodeSwitchScores]
    by_cstype: dict[str, dict[str, CodeSwitchScores]]
    normalizer: TextNormalizer
    missing_hyps: list[str] = field(default_factory=list)
    extra_hyps: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """One ``codeswitch.json`` row per pair (without retrieval)."""
        out = []
        for pair, s in self.scores.items():
            matrix, embedded = split_pair(pair)
            d = s.to_dict()
            d.pop("normalizer")
            missing = set(self.missing_hyps)
            row: dict[str, Any] = {"pair": pair, "set": self.set_name, "matrix": matrix}
            row["embedded"] = embedded
            row.update(d)
            row["n_missing_hyps"] = sum(a.utt_id in missing for a in s.alignments)
            row["by_cstype"] = {
                t: {
                    "n_utts": c.n_utts,
                    "mer": _finite(c.mer.rate),
                    "switch_point_error": _finite(c.switch_point.rate),
                    "per_lang": {k: _finite(v.rate) for k, v in c.per_lang.items()},
                }
                for t, c in self.by_cstype.get(pair, {}).items()
            }
            out.append(row)
        return out


def score_codeswitch(
    data_dir: str | os.PathLike | CodeSwitchSet,
    hyps: str | os.PathLike | Mapping[str, str],
    *,
    normalizer: TextNormalizer | None = None,
    lexicons: Mapping[str, set[str]] | None = None,
    window: int = 1,
) -> CodeSwitchReport:
    """Score ASR hypotheses of a code-switched dir, per language pair.

    Args:
        data_dir: the dir (or its :func:`read_codeswitch_dir`).
        hyps: ``{utt_id: text}``, or a Kaldi text file (``utt-id text``) or a dir holding one.
            A reference utterance without a hypothesis is scored as empty and listed; extra
            hypotheses are listed and ignored.
        normalizer: for both sides (default ``TextNormalizer()``).
        lexicons: language -> vocabulary for the language confusion, merged with the
            vocabularies of the dir itself (each tag's tokens of ``text``, and ``text.<lang>``
            for the pair's languages): a hypothesis word counts as language B only when it is
            in B's vocabulary and no other of the pair.
        window: switch tokens on each side of a switch.

    Returns:
        A :class:`CodeSwitchReport`.

    Raises:
        DataDirError: as :func:`read_codeswitch_dir`.
        EvaluationError: an unreadable hypothesis file, or references that are all empty after
            normalisation (naming the set).
    """
    cs = data_dir if isinstance(data_dir, CodeSwitchSet) else read_codeswitch_dir(data_dir)
    norm = normalizer or TextNormalizer()
    if not isinstance(hyps, Mapping):
        from speechx.evaluation.asr import read_transcripts

        hyps = read_transcripts(hyps, what="hypotheses")
    missing = [u for u in cs.refs if u not in hyps]
    extra = sorted(u for u in hyps if u not in cs.refs)
    if missing:
        logger.warning(
            "%s: %d of %d utterances have no hypothesis and are scored as empty: %s",
            cs.name,
            len(missing),
            len(cs.refs),
            some_ids(missing),
        )
    if extra:
        logger.warning(
            "%s: %d hypotheses without a reference ignored: %s",
            cs.name,
            len(extra),
            some_ids(extra),
        )
    scores: dict[str, CodeSwitchScores] = {}
    by_cstype: dict[str, dict[str, CodeSwitchScores]] = {}
    for pair in cs.pairs:
        ids = cs.utts_of(pair)
        langs = list(split_pair(pair))
        lex = _lexicons(cs, ids, langs, norm, lexicons)
        try:
            al = align(
                [cs.refs[u] for u in ids],
                [str(hyps.get(u, "")) for u in ids],
                ids=ids,
                unit="mixed",
                normalizer=norm,
            )
            tagged = [
                tag_alignment(
                    a, normalize_tagged(cs.refs[u], cs.tags[u], norm, utt_id=u)[1], window
                )
                for a, u in zip(al, ids, strict=True)
            ]
            scores[pair] = scores_from_alignments(
                tagged, normalizer=norm, lexicons=lex, languages=langs, window=window
            )
            groups: dict[str, list[int]] = {}
            for i, u in enumerate(ids):
                if u in cs.utt2cstype:
                    groups.setdefault(cs.utt2cstype[u], []).append(i)
            by_cstype[pair] = {
                t: scores_from_alignments(
                    [tagged[i] for i in idx],
                    normalizer=norm,
                    lexicons=lex,
                    languages=langs,
                    window=window,
                    allow_empty_reference=True,
                )
                for t, idx in sorted(groups.items())
            }
        except MetricError as exc:
            raise EvaluationError(f"{cs.name} ({pair}): {exc}") from None
    return CodeSwitchReport(cs.name, scores, by_cstype, norm, missing, extra)


def _lexicons(
    cs: CodeSwitchSet,
    ids: Sequence[str],
    langs: Sequence[str],
    norm: TextNormalizer,
    extra: Mapping[str, set[str]] | None,
) -> dict[str, set[str]]:
    lex: dict[str, set[str]] = {lang: set() for lang in langs}
    for u in ids:
        tokens, tags = normalize_tagged(cs.refs[u], cs.tags[u], norm, utt_id=u)
        for tok, tag in zip(tokens, tags, strict=True):
            lex.setdefault(tag, set()).add(tok)
    for lang in langs:
        if lang in cs.translations:
            lex[lang] |= build_lexicon(cs.translations[lang].values(), norm)
    for lang, words in (extra or {}).items():
        lex.setdefault(lang, set()).update(words)
    return lex


# ------------------------------------------------------------------------- retrieval
def codeswitch_retrieval(
    cs_set: Any,
    utt2pair: Mapping[str, str],
    mono_sets: Sequence[Any] = (),
    *,
    targets: Sequence[str] | None = None,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Retrieval with code-switched queries, and with monolingual queries on the same pools.

    Args:
        cs_set: the code-switched dir as a :class:`speechx.evaluation.speech_retrieval.TestSet`
            (speech view, and text views ``text:<lang>`` of one row per sentence; the
            ``text:<pair>`` view, if present, is the teacher embedding the mixed transcript).
        utt2pair: utterance id -> pair, for the rows of each pair.
        mono_sets: ``TestSet`` s of monolingual speech (no text views needed); each one spoken
            in the matrix or the embedded language of a pair is compared on the sentences it
            shares with that pair's code-switched queries (via ``utt2sent``); others are skipped.
        targets: target languages (default: the pair's matrix and embedded language and ``en``).

    Returns:
        ``{pair: {"retrieval": rows, "ceiling": rows, "retrieval_mono": rows,
        "retrieval_drop": rows}}``. Every pool is the code-switched dir's text view of that
        language: the same candidates for code-switched and monolingual queries.

    Raises:
        EvaluationError: no target text view for a pair, or malformed views.
    """
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    speech: View = cs_set.speech
    for pair in sorted({utt2pair[u] for u in speech.ids if u in utt2pair}):
        matrix, embedded = split_pair(pair)
        wanted = list(dict.fromkeys(targets or (matrix, embedded, "en")))
        pool = {
            f"text:{t}": cs_set.texts[f"text:{t}"] for t in wanted if f"text:{t}" in cs_set.texts
        }
        absent = [t for t in wanted if f"text:{t}" not in cs_set.texts]
        if absent:
            logger.warning(
                "%s (%s): no text.%s to retrieve; skipped",
                cs_set.name,
                pair,
                ", text.".join(absent),
            )
        if not pool:
            raise EvaluationError(f"{cs_set.name} ({pair}): none of text.{wanted} to retrieve")
        q_name = f"speech:{pair}"
        query = _subset(speech, [i for i, u in enumerate(speech.ids) if utt2pair.get(u) == pair])
        pairs = [(q_name, t) for t in pool]
        rows = [
            {"set": cs_set.name, **r}
            for r in evaluate_retrieval_pairs({q_name: query}, pool, pairs)
        ]
        ceiling: list[dict[str, Any]] = []
        mixed = cs_set.texts.get(f"text:{cs_set.lang}")
        if mixed is not None:
            sents = set(query.sentence_ids)
            text_q = _subset(mixed, [i for i, s in enumerate(mixed.sentence_ids) if s in sents])
            t_name = f"text:{pair}"
            ceiling = [
                {"set": cs_set.name, **r}
                for r in evaluate_retrieval_pairs(
                    {t_name: text_q}, pool, [(t_name, t) for t in pool]
                )
            ]
        mono_rows: list[dict[str, Any]] = []
        drop_rows: list[dict[str, Any]] = []
        for mono in mono_sets:
            if mono.lang not in pair.split("-"):
                continue  # only speech in one of the pair's own languages is the comparison
            shared = set(mono.speech.sentence_ids) & set(query.sentence_ids)
            if not shared:
                logger.warning(
                    "%s shares no sentence with %s (%s); skipped", mono.name, cs_set.name, pair
                )
                continue
            m_view = _subset(
                mono.speech, [i for i, s in enumerate(mono.speech.sentence_ids) if s in shared]
            )
            c_view = _subset(query, [i for i, s in enumerate(query.sentence_ids) if s in shared])
            m_name = f"speech:{mono.lang}"
            m_rows = evaluate_retrieval_pairs({m_name: m_view}, pool, [(m_name, t) for t in pool])
            c_rows = evaluate_retrieval_pairs({q_name: c_view}, pool, [(q_name, t) for t in pool])
            for mr, cr in zip(m_rows, c_rows, strict=True):
                mono_rows.append({"set": mono.name, **mr, "pool_set": cs_set.name})
                drop: dict[str, Any] = {
                    "set": cs_set.name,
                    "pair": pair,
                    "target": mr["target"],
                    "mono_set": mono.name,
                    "mono_query": m_name,
                    "n_sentences": len(shared),
                    "n_queries_mono": mr["n_queries"],
                    "n_queries_codeswitch": cr["n_queries"],
                    "pool_size": mr["pool_size"],
                }
                for metric in ROW_METRICS:
                    sign = -1.0 if metric == "xsim_error" else 1.0
                    drop[f"{metric}_mono"] = mr[metric]
                    drop[f"{metric}_codeswitch"] = cr[metric]
                    drop[f"{metric}_drop"] = sign * (mr[metric] - cr[metric])
                drop_rows.append(drop)
        out[pair] = {
            "retrieval": rows,
            "ceiling": ceiling,
            "retrieval_mono": mono_rows,
            "retrieval_drop": drop_rows,
        }
    return out


def _rekey_by_sentences(ts: Any, path: Path, teacher_id: str) -> Any:
    """Key the views of a code-switched test set by *all* the sentences an utterance renders
    (``utt2sents``: an inter-sentential utterance joins two), so that its gold item is its own
    two-sentence translation and it is never matched with a one-sentence monolingual query."""
    from speechx.teachers.embed import load_teacher_embeddings

    sents = read_mapping(path / SENTS_FILE)
    key = {u: "+".join(v.split()) for u, v in sents.items()}
    speech = ts.speech
    speech = View(
        speech.ids,
        [key.get(u, s) for u, s in zip(speech.ids, speech.sentence_ids, strict=True)],
        speech.embeddings,
    )
    texts = {}
    for name in ts.texts:
        lang = name.split(":", 1)[1]
        field_name = "text" if lang == ts.lang else f"text.{lang}"
        t_ids, emb = load_teacher_embeddings(path, teacher_id, field_name)
        row = {u: i for i, u in enumerate(t_ids)}
        seen: dict[str, int] = {}
        for u, k in zip(speech.ids, speech.sentence_ids, strict=True):
            i = row.get(u)
            if i is not None and k not in seen and np.all(np.isfinite(emb[i])):
                seen[k] = i
        texts[name] = View([t_ids[i] for i in seen.values()], list(seen), emb[list(seen.values())])
    return type(ts)(ts.name, ts.corpus, ts.lang, speech, texts)


def _subset(view: View, idx: Sequence[int]) -> View:
    return View(
        [view.ids[i] for i in idx],
        [view.sentence_ids[i] for i in idx],
        np.asarray(view.embeddings)[list(idx)],
    )


# -------------------------------------------------------------------------- evaluate
def evaluate_codeswitch(
    data_dirs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    hyps: Mapping[str, Mapping[str, str]] | None = None,
    encoder: Any = None,
    teacher: Any = None,
    teacher_id: str | None = None,
    mono_dirs: Sequence[str | os.PathLike] = (),
    normalizer: TextNormalizer | None = None,
    lexicons: Mapping[str, set[str]] | None = None,
    window: int = 1,
    split: str = "test",
    model_name: str | None = None,
    asr_name: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    sample_rate: int = 16000,
    batch_size: int = 16,
) -> Path:
    """Score code-switched dirs (ASR and/or retrieval) and write ``codeswitch.json`` and friends.

    Args:
        data_dirs: code-switched Kaldi dirs.
        out_dir: the results directory (``exp/<tag>/results``).
        hyps: set name (the dir's name) -> ``{utt_id: hypothesis}``; sets without an entry are
            not ASR-scored. See :func:`hypotheses_for_sets`.
        encoder: a speech encoder (``.encode(inputs, batch_size=...)``) for retrieval, or None.
        teacher: the text teacher (object or name) that embeds missing text views.
        teacher_id: the teacher's id (default ``teacher.teacher_id``).
        mono_dirs: monolingual speech dirs of the same sentences (``utt2sent``, ``utt2lang``).
        normalizer, lexicons, window: as for :func:`score_codeswitch`.
        split, model_name, asr_name: recorded in ``codeswitch.json``.
        cache_dir, sample_rate, batch_size: for the teacher cache and the speech encoder.

    Returns:
        The path of ``codeswitch.json``.

    Raises:
        EvaluationError: nothing to evaluate (no hypotheses and no encoder), hypotheses for an
            unknown set, an encoder without a teacher id, or as :func:`score_codeswitch` and
            :func:`codeswitch_retrieval`.
        DataDirError: as :func:`read_codeswitch_dir`.
    """
    if not data_dirs:
        raise EvaluationError("evaluate_codeswitch: no data dirs")
    if not hyps and encoder is None:
        raise EvaluationError(
            "evaluate_codeswitch: nothing to evaluate; give hypotheses and/or a speech encoder"
        )
    norm = normalizer or TextNormalizer()
    sets = [read_codeswitch_dir(d) for d in data_dirs]
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise EvaluationError(f"evaluate_codeswitch: data dirs with the same name: {names}")
    unknown = sorted(set(hyps or {}) - set(names))
    if unknown:
        raise EvaluationError(f"hypotheses for unknown sets {unknown}; the sets are {names}")
    reports = {
        s.name: score_codeswitch(s, hyps[s.name], normalizer=norm, lexicons=lexicons, window=window)
        for s in sets
        if hyps and s.name in hyps
    }
    retrieval: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    if encoder is not None:
        from speechx.evaluation.speech_retrieval import load_test_set

        if teacher_id is None:
            teacher_id = getattr(teacher, "teacher_id", None)
        if teacher_id is None:
            raise EvaluationError("retrieval needs the teacher id of the text embeddings")
        kwargs: dict[str, Any] = {
            "teacher": teacher,
            "cache_dir": cache_dir,
            "sample_rate": sample_rate,
            "batch_size": batch_size,
        }
        monos = [load_test_set(d, encoder, teacher_id, text_langs=[], **kwargs) for d in mono_dirs]
        for s in sets:
            langs = {lang for p in s.pairs for lang in (*split_pair(p), p)} | {"en"}
            ts = load_test_set(s.path, encoder, teacher_id, text_langs=sorted(langs), **kwargs)
            if (s.path / SENTS_FILE).is_file():
                ts = _rekey_by_sentences(ts, s.path, teacher_id)
            retrieval[s.name] = codeswitch_retrieval(ts, s.utt2pair, monos)
    rows: list[dict[str, Any]] = []
    for s in sets:
        asr_rows = {r["pair"]: r for r in reports[s.name].rows()} if s.name in reports else {}
        for pair in s.pairs:
            matrix, embedded = split_pair(pair)
            row = asr_rows.get(pair) or {
                "pair": pair,
                "set": s.name,
                "matrix": matrix,
                "embedded": embedded,
                "n_utts": len(s.utts_of(pair)),
                "mer": None,
                "per_lang": {},
                "switch_point_error": None,
            }
            row.update(retrieval.get(s.name, {}).get(pair, {}))
            rows.append(_jsonable(row))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pra_files = []
    for name, rep in reports.items():
        pra = f"codeswitch_alignments.{name}.pra"
        header = [
            "# speechx code-switching alignments (MER tokens: each CJK character one token)",
            f"# split: {split}   set: {name}   asr: {asr_name or '-'}",
            f"# normalizer: {json.dumps(norm.settings())}",
            "# errors are upper-cased; *** marks the missing side of a deletion or insertion",
        ]
        als = [ta.alignment for s in rep.scores.values() for ta in s.alignments]
        atomic_write_text(out / pra, format_pra(als, header=header))
        pra_files.append(pra)
    doc = {
        "task": "codeswitch",
        "split": split,
        "model": model_name,
        "asr": asr_name,
        "teacher": teacher_id if encoder is not None else None,
        "normalizer": norm.settings(),
        "window": window,
        "results": rows,
        "missing_hyps": {k: r.missing_hyps for k, r in reports.items()},
        "extra_hyps": {k: r.extra_hyps for k, r in reports.items()},
        "alignments": pra_files,
    }
    path = write_results(out, doc, render_summary(doc))
    logger.info("wrote %s", path)
    return path


def add_whisper_peer(
    data_dirs: Sequence[str | os.PathLike],
    results_path: str | os.PathLike,
    model: str,
    *,
    decode_dir: str | os.PathLike,
    normalizer: TextNormalizer | None = None,
    lexicons: Mapping[str, set[str]] | None = None,
    window: int = 1,
    split: str = "test",
    batch_size: int = 8,
) -> list[dict[str, Any]]:
    """Score a zero-shot Whisper on the code-switched dirs as a peer of the main system.

    Each utterance is transcribed with its pair's matrix language forced (transcripts cached
    per set and language under ``decode_dir``, so a rerun decodes nothing), scored exactly like
    the main system into ``<results dir>/peer-<model>/``, and the rows are added to the
    ``codeswitch.json`` at ``results_path`` as ``peers`` (``"system": "whisper:<model>"``,
    replacing that system's earlier rows).

    Returns:
        The peer rows.

    Raises:
        DataDirError: an utterance whose ``utt2lang`` is not a pair.
        speechx.errors.ModelError, EvaluationError: as the Whisper transcriber.
    """
    from speechx.evaluation.cascade import (
        build_transcriber,
        transcribe_cached,
        utterance_sources,
    )

    results_path = Path(results_path)
    transcriber = build_transcriber(model, batch_size=batch_size)
    hyps: dict[str, dict[str, str]] = {}
    for d in data_dirs:
        name = Path(d).name
        kdir = KaldiDir.read(d)
        by_matrix: dict[str, list[str]] = {}
        for u in kdir.utt_ids:
            matrix, _ = split_pair(kdir.utt2lang.get(u, ""), f"{Path(d) / 'utt2lang'}: {u}")
            by_matrix.setdefault(matrix, []).append(u)
        hyps[name] = {}
        for lang, ids in sorted(by_matrix.items()):
            texts, _ = transcribe_cached(
                transcriber, utterance_sources(kdir, ids), ids, lang, Path(decode_dir) / name / lang
            )
            hyps[name].update(zip(ids, texts, strict=True))
    system = f"whisper:{model}"
    peer_path = evaluate_codeswitch(
        data_dirs,
        results_path.parent / f"peer-{model}",
        hyps=hyps,
        normalizer=normalizer,
        lexicons=lexicons,
        window=window,
        split=split,
        asr_name=f"{system} (zero-shot, matrix language forced)",
    )
    rows = [
        {"system": system, **r} for r in json.loads(peer_path.read_text("utf-8")).get("results", [])
    ]
    doc = json.loads(results_path.read_text("utf-8"))
    doc["peers"] = [r for r in doc.get("peers", []) if r.get("system") != system] + rows
    atomic_write_text(results_path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return rows


def hypotheses_for_sets(
    path: str | os.PathLike, set_names: Sequence[str]
) -> dict[str, dict[str, str]]:
    """Read hypotheses for several sets from one place.

    ``path`` is a Kaldi text file (``utt-id text``) shared by every set; or a directory holding
    ``<set>/text`` per set (what ``speechx transcribe --out DIR`` writes for several dirs),
    or a ``text`` file for every set.

    Returns:
        set name -> ``{utt_id: hypothesis}``.

    Raises:
        EvaluationError: no such file or directory, or a directory with neither ``<set>/text``
            nor ``text`` for a set (naming it).
    """
    from speechx.evaluation.asr import read_transcripts

    p = Path(path)
    if p.is_file():
        shared = read_transcripts(p, what="hypotheses")
        return {name: shared for name in set_names}
    if not p.is_dir():
        raise EvaluationError(f"{p}: no such hypothesis file or directory")
    out = {}
    for name in set_names:
        if (p / name / "text").is_file():
            out[name] = read_transcripts(p / name / "text", what=f"{name} hypotheses")
        elif (p / "text").is_file():
            out[name] = read_transcripts(p / "text", what="hypotheses")
        else:
            raise EvaluationError(f"{p}: neither {name}/text nor text holds hypotheses for {name}")
    return out


def lexicons_from_dirs(
    data_dirs: Sequence[str | os.PathLike], normalizer: TextNormalizer | None = None
) -> dict[str, set[str]]:
    """Per-language vocabularies from the transcripts of (training) data dirs, for the
    language confusion.

    A monolingual dir adds the words of each utterance's ``text`` to its ``utt2lang``
    language; a code-switched dir (with ``text.langtags``) adds each token to its tag's set.

    Returns:
        ``{lang: set of normalised MER tokens}``.

    Raises:
        DataDirError: a dir without ``text`` or ``utt2lang``, or as
            :func:`read_codeswitch_dir`.
    """
    norm = normalizer or TextNormalizer()
    out: dict[str, set[str]] = {}
    for d in data_dirs:
        p = Path(d)
        if (p / TAGS_FILE).is_file():
            cs = read_codeswitch_dir(p)
            for u, text in cs.refs.items():
                tokens, tags = normalize_tagged(text, cs.tags[u], norm, utt_id=u)
                for tok, tag in zip(tokens, tags, strict=True):
                    out.setdefault(tag, set()).add(tok)
            continue
        kdir = KaldiDir.read(p)
        if not kdir.text or not kdir.utt2lang:
            raise DataDirError(f"{p}: a lexicon dir needs text and utt2lang")
        for u, text in kdir.text.items():
            if u not in kdir.utt2lang:
                raise DataDirError(f"{p / 'utt2lang'}: utterance {u!r} has no language")
            out.setdefault(kdir.utt2lang[u], set()).update(build_lexicon([text], norm))
    return out


# --------------------------------------------------------------------------- summary
def render_summary(doc: Mapping[str, Any]) -> str:
    """The markdown ``## Code-switching`` section of ``summary.md`` for a ``codeswitch.json``.

    Returns:
        The section, ending in a newline.
    """
    rows = doc["results"]
    norm = TextNormalizer.from_settings(doc["normalizer"])
    lines = [
        "## Code-switching",
        "",
        f"split `{doc['split']}`, ASR `{doc.get('asr') or '-'}`, speech encoder "
        f"`{doc.get('model') or '-'}`; normalisation: {norm.describe()}. Rates in percent, "
        "corpus-level over MER tokens (each CJK character one token). Insertions count for the "
        "language of the preceding reference token; switch points are the "
        + ("token" if doc["window"] == 1 else f"{doc['window']} tokens")
        + " on each side of a language change.",
    ]
    scored = [r for r in rows if r.get("mer") is not None]
    if scored:
        lines += ["", "### MER", ""]
        lines += _table(
            ["set", "pair", "utts", "ref tokens", "MER %", "switch-point %", "non-switch %"]
            + ["inter MER %", "intra MER %"],
            [
                [
                    r["set"],
                    r["pair"],
                    r["n_utts"],
                    r["n_ref_tokens"],
                    _pct(r["mer"]),
                    _pct(r["switch_point_error"]),
                    _pct(r.get("non_switch_error")),
                    _pct(r["by_cstype"].get("inter", {}).get("mer")),
                    _pct(r["by_cstype"].get("intra", {}).get("mer")),
                ]
                for r in scored
            ],
        )
        lines += ["", "### Per language", ""]
        lines += _table(
            ["set", "pair", "lang", "ref tokens", "sub", "del", "ins", "error %"],
            [
                [r["set"], r["pair"], lang, d["ref_tokens"], d["substitutions"], d["deletions"]]
                + [d["insertions"], _pct(d["rate"])]
                for r in scored
                for lang, d in r["per_lang_detail"].items()
            ],
        )
        lines += ["", "### Switch points", ""]
        lines += _table(
            ["set", "pair", "switches", "switch tokens", "sub", "del", "ins", "error %"]
            + ["other tokens", "other errors", "other error %"],
            [
                [r["set"], r["pair"], sp["n_switches"], sp["switch_tokens"], sp["substitutions"]]
                + [sp["deletions"], sp["insertions"], _pct(sp["rate"]), sp["other_tokens"]]
                + [sp["other_errors"], _pct(sp["other_rate"])]
                for r in scored
                for sp in [r["switch_point"]]
            ],
        )
        lines += [
            "",
            "### Language confusion",
            "",
            "Substitutions of a reference token of one language by a word of another (decided by "
            "script for CJK, otherwise by the vocabularies), in percent of that language's "
            "reference tokens.",
            "",
        ]
        conf_rows = []
        for r in scored:
            c = r["confusion"]
            for a in c["languages"]:
                cells = [f"{_pct(c['rates'][a][b])} ({c['counts'][a][b]})" for b in c["languages"]]
                conf_rows.append(
                    [r["set"], r["pair"], a, *cells, c["undecided"][a], _pct(c["cross_rate"][a])]
                )
        langs = scored[0]["confusion"]["languages"]
        if all(r["confusion"]["languages"] == langs for r in scored):
            head = ["set", "pair", "ref lang", *(f"-> {b}" for b in langs), "undecided", "cross %"]
            lines += _table(head, conf_rows)
        else:
            for r in scored:
                c = r["confusion"]
                head = ["set", "pair", "ref lang", *(f"-> {b}" for b in c["languages"])]
                mine = [x for x in conf_rows if x[0] == r["set"] and x[1] == r["pair"]]
                lines += [*_table([*head, "undecided", "cross %"], mine), ""]
    retrieval = [x for r in rows for x in r.get("retrieval", [])]
    if retrieval:
        cols = ["set", "query", "target", "queries", "pool", "R@1", "R@5", "R@10", "MRR@10", "xsim"]
        lines += ["", "### Retrieval with code-switched queries", ""]

        def cells(x: Mapping[str, Any]) -> list[Any]:
            return [x["set"], x["query"], x["target"], x["n_queries"], x["pool_size"]] + [
                _num(x.get(m)) for m in ROW_METRICS
            ]

        lines += _table(cols, [cells(x) for x in retrieval])
        ceiling = [x for r in rows for x in r.get("ceiling", [])]
        if ceiling:
            lines += ["", "Teacher ceiling (the mixed transcript as the query):", ""]
            lines += _table(cols, [cells(x) for x in ceiling])
    drops = [x for r in rows for x in r.get("retrieval_drop", [])]
    if drops:
        lines += [
            "",
            "### Monolingual vs code-switched queries (same sentences, same pool)",
            "",
            "drop = how much worse the code-switched speech does (positive: worse).",
            "",
        ]
        lines += _table(
            ["set", "target", "mono set", "sentences", "R@1 mono", "R@1 cs", "R@1 drop"]
            + ["MRR@10 drop", "xsim mono", "xsim cs", "xsim drop"],
            [
                [x["set"], x["target"], x["mono_set"], x["n_sentences"], _num(x["recall@1_mono"])]
                + [_num(x["recall@1_codeswitch"]), _num(x["recall@1_drop"])]
                + [_num(x["mrr@10_drop"]), _num(x["xsim_error_mono"])]
                + [_num(x["xsim_error_codeswitch"]), _num(x["xsim_error_drop"])]
                for x in drops
            ],
        )
    for key, what in (("missing_hyps", "without a hypothesis (scored as empty)"),):
        for name, ids in (doc.get(key) or {}).items():
            if ids:
                lines += ["", f"**{len(ids)} utterances of {name} {what}**: {some_ids(ids)}"]
    if doc.get("alignments"):
        lines += ["", "Alignments: " + ", ".join(f"`{p}`" for p in doc["alignments"])]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- helpers
def _table(cols: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
    return out


def _pct(v: Any) -> str:
    if not isinstance(v, int | float) or not math.isfinite(v):
        return "–"
    return f"{100 * v:.2f}"


def _num(v: Any) -> str:
    if not isinstance(v, int | float) or not math.isfinite(v):
        return "–"
    return f"{v:.3f}"


def _finite(v: float) -> float | None:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
