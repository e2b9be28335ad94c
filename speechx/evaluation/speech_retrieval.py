"""Speech retrieval on Kaldi test sets: encode, score, write ``results/``.

This is what ``speechx evaluate-retrieval`` and the recipes' last stage run.  For every test
data dir (one speech language each) it scores

* ``speech:X -> text:Y`` for every text language Y the dir has (transcripts and translations),
  plus the language-agnostic pool ``text:all``;
* ``text:Y -> speech:X`` (text queries finding the utterance);
* ``speech:X -> speech:Y`` across the dirs of one corpus that share sentences;
* the teacher's own ``text:X -> text:Y`` on the same pools, as the ceiling.

Pools are the sentences of the query's own data dir, so each row is a bitext-mining style
evaluation: queries and candidates render the same sentence set.  Text embeddings come from the
teacher stage (``data/<set>/teacher/<teacher_id>/``) and are computed (and cached) if missing.

**The XTREME-S protocol** (FLEURS-Retrieval, the speech retrieval task of XTREME-S; see the
``google/xtreme_s`` dataset card and the FLEURS paper, arXiv:2205.12446): queries are the test
utterances in each source language, keys are English texts, and the system must retrieve the
English sentence each utterance translates; the key pool is augmented with many extra English
sentences to make the task harder, and precision@1 (our ``recall@1``: one gold key per query) is
reported.  With ``distractors`` (:func:`evaluate_speech_retrieval`, ``speechx
evaluate-retrieval --distractors``) this module adds such rows: for every test set whose speech
is not in ``key_lang`` (default ``en``), ``speech:X -> text:en+distractors``, where the pool is

* the ``key_lang`` texts of *every* evaluated test set (n-way: one key per sentence id, shared
  by all source languages, so the pool is the same for every language), plus
* the distractor sentences (text files with one sentence per line, or Kaldi dirs whose
  ``text.<key_lang>``, or ``text`` when their speech is in ``key_lang``, is used), embedded by
  the teacher, without repeats and without any sentence equal to a key (compared after
  lower-casing and collapsing blanks), so a distractor is never a hidden gold item.

These rows carry ``"protocol": "xtreme-s"`` and ``"n_distractors"``; their ceiling rows are the
teacher's ``text:X -> text:en+distractors`` on the same pool.  For FLEURS, distractors come from
any English text outside the test sentences (e.g. FLEURS train/dev English, or a news corpus).
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from speechx.audio import load_audio
from speechx.data.kaldi import KaldiDir
from speechx.errors import EvaluationError, SpeechxError
from speechx.evaluation.retrieval import (
    View,
    evaluate_ceiling,
    evaluate_retrieval_pairs,
    pad_pool,
    write_retrieval_results,
)
from speechx.teachers.embed import embed_data_dir, load_teacher_embeddings

logger = logging.getLogger(__name__)


class _Encoder(Protocol):
    def encode(self, inputs: Sequence[Any], batch_size: int = 16) -> np.ndarray: ...


@dataclass
class TestSet:
    """One evaluated data dir: its speech language, utterances, sentences and text views."""

    name: str
    corpus: str
    lang: str
    speech: View
    texts: dict[str, View]


def speech_language(kdir: KaldiDir, name: str) -> str:
    """The (majority) language of the speech in ``kdir``, from ``utt2lang``.

    Raises:
        EvaluationError: the dir has no ``utt2lang``.
    """
    if not kdir.utt2lang:
        raise EvaluationError(f"{name}: no utt2lang, so the speech language is unknown")
    return Counter(kdir.utt2lang.values()).most_common(1)[0][0]


def corpus_of(name: str, lang: str) -> str:
    """``fillets_nl_test`` -> ``fillets``; ``synth_de_test`` -> ``synth``."""
    m = re.match(rf"^(.*?)_{re.escape(lang)}(_.*)?$", name)
    return m.group(1) if m else name


def audio_inputs(kdir: KaldiDir, ids: list[str], sample_rate: int) -> list[Any]:
    """The speech encoder's inputs for utterances ``ids`` of ``kdir``.

    Returns:
        One input per id: the audio path, or for a dir with ``segments`` the loaded segment as
        an ``(array, sample_rate)`` tuple.

    Raises:
        EvaluationError: a segment that cannot be loaded (naming the utterance).
    """
    if not kdir.segments:
        return [kdir.audio_path(u) for u in ids]
    out = []
    for u in ids:
        start, end = kdir.segment(u)
        try:
            out.append(
                (load_audio(kdir.audio_path(u), sample_rate, start=start, end=end), sample_rate)
            )
        except SpeechxError as exc:
            raise EvaluationError(f"utterance {u!r}: {exc}") from None
    return out


def load_test_set(
    data_dir: str | os.PathLike,
    encoder: _Encoder,
    teacher_id: str,
    *,
    text_langs: Sequence[str] | None = None,
    teacher: Any = None,
    cache_dir: str | os.PathLike | None = None,
    sample_rate: int = 16000,
    batch_size: int = 16,
) -> TestSet:
    """Encode the speech of ``data_dir`` and gather the teacher's text views of its sentences.

    Text views hold one row per sentence (the first utterance that renders it).  When the
    teacher stage has not run for this dir, ``teacher`` (an object or a name) computes it.

    Raises:
        EvaluationError: no ``utt2lang``, or teacher embeddings missing and no ``teacher``.
    """
    d = Path(data_dir)
    kdir = KaldiDir.read(d)
    lang = speech_language(kdir, d.name)
    ids = kdir.utt_ids
    sents = [kdir.utt2sent.get(u, u) for u in ids]
    fields = {lang: "text"}
    for t in kdir.languages:
        fields.setdefault(t, f"text.{t}")
    if text_langs is not None:
        fields = {k: v for k, v in fields.items() if k in set(text_langs)}
    emb_dir = d / "teacher" / teacher_id
    if not all((emb_dir / f"{f}.npy").is_file() for f in fields.values()):
        if teacher is None:
            raise EvaluationError(
                f"{d}: no teacher embeddings under {emb_dir}; run `speechx teacher-embed {d}`"
            )
        embed_data_dir(d, teacher, fields=sorted(set(fields.values())), cache_dir=cache_dir)
    texts: dict[str, View] = {}
    for tl, field in sorted(fields.items()):
        t_ids, emb = load_teacher_embeddings(d, teacher_id, field)
        row = {u: i for i, u in enumerate(t_ids)}
        seen: dict[str, int] = {}
        for u, s in zip(ids, sents, strict=True):
            i = row.get(u)
            if i is not None and s not in seen and np.all(np.isfinite(emb[i])):
                seen[s] = i
        if seen:
            keep = list(seen.values())
            texts[f"text:{tl}"] = View([t_ids[i] for i in keep], list(seen), emb[keep])
    logger.info("%s: encoding %d utterances of %s speech", d.name, len(ids), lang)
    speech = encoder.encode(audio_inputs(kdir, ids, sample_rate), batch_size=batch_size)
    return TestSet(d.name, corpus_of(d.name, lang), lang, View(ids, sents, speech), texts)


def score_test_sets(sets: Sequence[TestSet]) -> tuple[list[dict], list[dict]]:
    """Result rows and ceiling rows for ``sets`` (each row carries its ``set``)."""
    results: list[dict] = []
    ceiling: list[dict] = []
    for ts in sets:
        q = f"speech:{ts.lang}"
        rows = evaluate_retrieval_pairs({q: ts.speech}, ts.texts)
        rows += evaluate_retrieval_pairs(
            ts.texts, {q: ts.speech}, [(t, q) for t in ts.texts], language_agnostic=False
        )
        for other in sets:
            if other is not ts and other.corpus == ts.corpus and other.lang != ts.lang:
                target = f"speech:{other.lang}"
                if set(ts.speech.sentence_ids) & set(other.speech.sentence_ids):
                    rows += [
                        {**r, "target_set": other.name}
                        for r in evaluate_retrieval_pairs(
                            {q: ts.speech}, {target: other.speech}, [(q, target)]
                        )
                    ]
        results += [{"set": ts.name, **r} for r in rows]
        speech_rows = [r for r in rows if r["query"] == q and r["target"].startswith("text:")]
        ceiling += [{"set": ts.name, **r} for r in evaluate_ceiling(ts.texts, speech_rows)]
    return results, ceiling


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def read_distractor_texts(paths: Sequence[str | os.PathLike], lang: str = "en") -> list[str]:
    """The distractor sentences of ``paths``, in order, without repeats or blank lines.

    Args:
        paths: text files (one sentence per line) or Kaldi dirs (their ``text.<lang>``, or
            their ``text`` when ``utt2lang`` says the speech is in ``lang``).
        lang: the key language.

    Returns:
        The sentences (first occurrence kept, compared after lower-casing and collapsing
        blanks).

    Raises:
        EvaluationError: a path that does not exist, or a dir without text in ``lang``.
    """
    out: dict[str, str] = {}
    for p in map(Path, paths):
        if p.is_dir():
            kdir = KaldiDir.read(p)
            if lang in kdir.translations:
                texts = list(kdir.translations[lang].values())
            elif kdir.utt2lang and speech_language(kdir, p.name) == lang:
                texts = list(kdir.text.values())
            else:
                raise EvaluationError(
                    f"{p}: distractor dir has no text.{lang} and its speech is not {lang}"
                )
        elif p.is_file():
            texts = p.read_text(encoding="utf-8").splitlines()
        else:
            raise EvaluationError(f"{p}: distractor file or dir not found")
        for t in texts:
            if t.strip():
                out.setdefault(_norm(t), " ".join(t.split()))
    return list(out.values())


def xtreme_s_rows(
    sets: Sequence[TestSet],
    distractors: np.ndarray,
    *,
    key_lang: str = "en",
) -> tuple[list[dict], list[dict]]:
    """Rows of the XTREME-S protocol (see the module docstring) and their teacher ceiling.

    Args:
        sets: the loaded test sets; their ``text:<key_lang>`` views make the key pool.
        distractors: teacher embeddings ``[M, D]`` of the distractor sentences.
        key_lang: the language of the keys.

    Returns:
        ``(results, ceiling)``: one row per set whose speech is not in ``key_lang``, with
        ``"set"``, ``"protocol": "xtreme-s"`` and ``"n_distractors"``.

    Raises:
        EvaluationError: no set has ``text:<key_lang>`` texts.
    """
    key = f"text:{key_lang}"
    ids: list[str] = []
    sents: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    for ts in sets:
        view = ts.texts.get(key)
        if view is None:
            continue
        for i, (u, s) in enumerate(zip(view.ids, view.sentence_ids, strict=True)):
            if s not in seen:
                seen.add(s)
                ids.append(u)
                sents.append(s)
                rows.append(view.embeddings[i])
    if not ids:
        raise EvaluationError(f"XTREME-S: no evaluated set has {key} texts to use as keys")
    pool = pad_pool(View(ids, sents, np.stack(rows)), distractors)
    target = f"{key}+distractors"
    extra = {"protocol": "xtreme-s", "n_distractors": int(distractors.shape[0])}
    results: list[dict] = []
    ceiling: list[dict] = []
    for ts in sets:
        if ts.lang == key_lang:
            continue
        q = f"speech:{ts.lang}"
        for r in evaluate_retrieval_pairs({q: ts.speech}, {target: pool}, [(q, target)]):
            results.append({"set": ts.name, **r, **extra})
        tq = f"text:{ts.lang}"
        if tq in ts.texts:
            for r in evaluate_retrieval_pairs({tq: ts.texts[tq]}, {target: pool}, [(tq, target)]):
                ceiling.append({"set": ts.name, **r, **extra})
    return results, ceiling


def evaluate_speech_retrieval(
    encoder: _Encoder,
    data_dirs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    teacher_id: str,
    teacher: Any = None,
    text_langs: Sequence[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    model_name: str = "",
    split: str = "test",
    sample_rate: int = 16000,
    batch_size: int = 16,
    cascade: Any = None,
    cascade_beams: int = 1,
    cascade_batch_size: int = 8,
    cascade_sets: Sequence[str] | None = None,
    distractors: Sequence[str | os.PathLike] | None = None,
    key_lang: str = "en",
) -> Path:
    """Encode and score every dir of ``data_dirs``; write ``out_dir/retrieval.json`` and friends.

    Args:
        cascade: if given, a cascade peer is scored on the same pools and written to the
            ``peers`` rows (see :mod:`speechx.evaluation.cascade`): a Whisper name such as
            ``"whisper-base"``, a local transformers Whisper directory, or a transcriber
            object.  Transcripts, WER and CER go to ``out_dir/cascade/<set>/``.
        cascade_beams, cascade_batch_size: Whisper decoding options (1 beam is greedy).
        cascade_sets: names (or paths) of the data dirs the cascade is scored on; None = all.
            Decoding is slow (Whisper pads every clip to 30 s), so recipes limit it to the real
            speech.
        distractors: text files or Kaldi dirs of distractor sentences: adds the XTREME-S rows
            (see the module docstring and :func:`xtreme_s_rows`); needs ``teacher``.
        key_lang: the language of the XTREME-S keys and distractors.

    Returns:
        The path of ``retrieval.json``.

    Raises:
        EvaluationError: the encoder's and the teacher's dimensions differ; distractors
            without a ``teacher``, or unreadable (see
            :func:`read_distractor_texts`); as :func:`load_test_set`; a cascade without a
            ``teacher`` to embed its transcripts, or a teacher whose id is not ``teacher_id``.
        ModelError: an unknown cascade model or missing Whisper packages.
    """
    enc_dim = getattr(encoder, "embed_dim", None)
    t_dim = None if teacher is None or isinstance(teacher, str) else getattr(teacher, "dim", None)
    if enc_dim is not None and t_dim is not None and int(enc_dim) != int(t_dim):
        raise EvaluationError(
            f"{model_name or 'the speech encoder'}: embeddings have dimension {enc_dim} but "
            f"teacher {teacher_id} has dimension {t_dim}; evaluate with the teacher the model was "
            "distilled into"
        )
    distractor_texts: list[str] | None = None
    if distractors is not None:
        if teacher is None:
            raise EvaluationError("distractors need the teacher to embed them")
        distractor_texts = read_distractor_texts(distractors, key_lang)
    transcriber = None
    if cascade is not None:
        transcriber, teacher = _cascade_setup(
            cascade, teacher, teacher_id, cache_dir, cascade_beams, cascade_batch_size
        )
    sets = [
        load_test_set(
            d,
            encoder,
            teacher_id,
            text_langs=text_langs,
            teacher=teacher,
            cache_dir=cache_dir,
            sample_rate=sample_rate,
            batch_size=batch_size,
        )
        for d in data_dirs
    ]
    results, ceiling = score_test_sets(sets)
    if distractor_texts is not None:
        keys = _key_texts(data_dirs, key_lang)
        kept = [t for t in distractor_texts if _norm(t) not in keys]
        logger.info(
            "XTREME-S: %d distractors (%d equal to a key left out)",
            len(kept),
            len(distractor_texts) - len(kept),
        )
        if isinstance(teacher, str):
            from speechx.teachers import load_teacher

            teacher = load_teacher(teacher)
        emb = (
            np.asarray(teacher.encode(kept), dtype=np.float32)
            if kept
            else np.zeros((0, sets[0].speech.embeddings.shape[1]), dtype=np.float32)
        )
        x_rows, x_ceiling = xtreme_s_rows(sets, emb, key_lang=key_lang)
        results += x_rows
        ceiling += x_ceiling
    peers: list[dict] = []
    if transcriber is not None:
        from speechx.evaluation.cascade import evaluate_cascade

        wanted = None if cascade_sets is None else {Path(c).name for c in cascade_sets}
        unknown = sorted((wanted or set()) - {ts.name for ts in sets})
        if unknown:
            logger.warning("cascade: %s not among the evaluated sets; ignored", ", ".join(unknown))
        for ts, d in zip(sets, data_dirs, strict=True):
            if wanted is None or ts.name in wanted:
                peers += evaluate_cascade(ts, d, transcriber, teacher, out_dir, results=results)
    return write_retrieval_results(
        out_dir,
        split=split,
        model=model_name,
        teacher=teacher_id,
        results=results,
        ceiling=ceiling,
        peers=peers,
    )


def _key_texts(data_dirs: Sequence[str | os.PathLike], lang: str) -> set[str]:
    """Normalised ``lang`` texts of the test dirs (what a distractor must not repeat)."""
    out: set[str] = set()
    for d in data_dirs:
        kdir = KaldiDir.read(d)
        texts = kdir.translations.get(lang)
        if texts is None and kdir.utt2lang and speech_language(kdir, Path(d).name) == lang:
            texts = kdir.text
        out.update(_norm(t) for t in (texts or {}).values())
    return out


def _cascade_setup(
    cascade: Any,
    teacher: Any,
    teacher_id: str,
    cache_dir: str | os.PathLike | None,
    num_beams: int,
    batch_size: int,
) -> tuple[Any, Any]:
    """The cascade's transcriber and a caching teacher, checked before any encoding starts."""
    from speechx.evaluation.cascade import build_transcriber
    from speechx.teachers import CachedTeacher, load_teacher

    if teacher is None:
        raise EvaluationError(
            f"the cascade {cascade!r} needs the teacher ({teacher_id}) to embed its transcripts"
        )
    if isinstance(teacher, str):
        teacher = load_teacher(teacher)
    if getattr(teacher, "teacher_id", teacher_id) != teacher_id:
        raise EvaluationError(
            f"cascade: the teacher is {teacher.teacher_id!r} but the text views are {teacher_id!r}"
        )
    transcriber = build_transcriber(cascade, num_beams=num_beams, batch_size=batch_size)
    if not isinstance(teacher, CachedTeacher) and hasattr(teacher, "teacher_id"):
        teacher = CachedTeacher(teacher, cache_dir)
    return transcriber, teacher
