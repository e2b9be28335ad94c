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


def _audio_inputs(kdir: KaldiDir, ids: list[str], sample_rate: int) -> list[Any]:
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
    speech = encoder.encode(_audio_inputs(kdir, ids, sample_rate), batch_size=batch_size)
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

    Returns:
        The path of ``retrieval.json``.

    Raises:
        EvaluationError: as :func:`load_test_set`; a cascade without a ``teacher`` to embed
            its transcripts, or a teacher whose id is not ``teacher_id``.
        ModelError: an unknown cascade model or missing Whisper packages.
    """
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
