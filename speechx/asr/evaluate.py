"""Decode test sets with a recognizer and score them, with a zero-shot Whisper peer.

:func:`transcribe_data_dir` writes Kaldi-style hypotheses (``utt-id text``);
:func:`evaluate_asr` decodes every test set (reusing finished decodes), optionally transcribes
the same utterances with a Whisper decoder forced to each set's language (the peer row, via
:mod:`speechx.evaluation.cascade`, with its transcript cache), and scores both with the
normalisation recorded in the model directory into ``asr.json`` + ``summary.md``
(:func:`speechx.evaluation.asr.write_asr_results`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from speechx.asr.model import SpeechRecognizer
from speechx.data.dataset import SpeechDataset
from speechx.data.kaldi import KaldiDir, atomic_write_text

log = logging.getLogger("speechx.asr")


def transcribe_data_dir(
    model: SpeechRecognizer,
    data_dir: str | os.PathLike,
    *,
    beam_size: int = 1,
    kenlm_model: str | os.PathLike | None = None,
    batch_size: int = 8,
) -> dict[str, str]:
    """Transcribe every utterance of a Kaldi data dir (segments honoured).

    Returns:
        ``{utt_id: normalised transcript}`` in data dir order.

    Raises:
        speechx.errors.DataDirError, speechx.errors.AudioError: unreadable data (named).
        speechx.asr.decode.DecodeError: an unavailable decoder.
    """
    ds = SpeechDataset(data_dir, sample_rate=model.sample_rate)
    out: dict[str, str] = {}
    chunk = max(batch_size * 8, 1)
    for start in range(0, len(ds), chunk):
        items = [ds[i] for i in range(start, min(start + chunk, len(ds)))]
        texts = model.transcribe(
            [(it["audio"].numpy(), model.sample_rate) for it in items],
            beam_size=beam_size,
            kenlm_model=kenlm_model,
            batch_size=batch_size,
        )
        out.update({it["id"]: t for it, t in zip(items, texts, strict=True)})
    return out


def write_hyps(path: str | os.PathLike, hyps: dict[str, str]) -> Path:
    """Write ``utt-id text`` lines (sorted by id), atomically; returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p, "".join(f"{u} {t}".rstrip() + "\n" for u, t in sorted(hyps.items())))
    return p


def set_language(kdir: KaldiDir) -> str | None:
    """The most frequent ``utt2lang`` value of a data dir (None without utt2lang)."""
    langs = Counter(kdir.utt2lang.values())
    return langs.most_common(1)[0][0] if langs else None


def evaluate_asr(
    model_dir: str | os.PathLike,
    data_dirs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    decode_dir: str | os.PathLike | None = None,
    beam_size: int = 1,
    kenlm_model: str | os.PathLike | None = None,
    peer: str | None = None,
    peer_beams: int = 1,
    split: str = "test",
    model_name: str | None = None,
) -> Path:
    """Decode and score test sets; write ``out_dir/asr.json`` and ``summary.md``.

    Args:
        model_dir: a :class:`SpeechRecognizer` directory.
        data_dirs: Kaldi test dirs (``text`` and ``utt2lang``).
        decode_dir: where hypotheses go (``<decode_dir>/<set>/text``; default
            ``out_dir/../decode``); a set decoded with the same options is not decoded again.
        beam_size, kenlm_model: decoding (1 = greedy).
        peer: a Whisper name or directory (e.g. ``"whisper-base"``) decoding zero-shot with the
            language forced to each set's ``utt2lang``; None = no peer row.
        split, model_name: recorded in ``asr.json``.

    Returns:
        The path of ``asr.json``.

    Raises:
        speechx.errors.SpeechxError: unreadable model, data or peer, or scoring errors.
    """
    from speechx.evaluation.asr import (
        load_normalizer,
        peer_rows,
        score_transcripts,
        write_asr_results,
    )

    out = Path(out_dir)
    decode_root = Path(decode_dir) if decode_dir is not None else out.parent / "decode"
    model = SpeechRecognizer.from_pretrained(model_dir)
    norm = load_normalizer(model_dir)
    options = {
        "model": str(Path(model_dir).resolve()),
        "weights_mtime": (Path(model_dir) / "model.safetensors").stat().st_mtime_ns,
        "beam_size": beam_size,
        "kenlm_model": None if kenlm_model is None else str(kenlm_model),
    }
    transcriber: Any = None
    if peer:
        from speechx.evaluation.cascade import build_transcriber

        transcriber = build_transcriber(peer, num_beams=peer_beams)
    reports, peers = [], []
    for d in data_dirs:
        kdir = KaldiDir.read(d)
        name = Path(d).name
        set_dir = decode_root / name
        done = set_dir / ".done"
        if done.is_file() and json.loads(done.read_text("utf-8")) == options:
            from speechx.evaluation.asr import read_transcripts

            hyps = read_transcripts(set_dir / "text")
            log.info("%s: reusing the hypotheses in %s", name, set_dir / "text")
        else:
            t0 = time.time()
            hyps = transcribe_data_dir(model, d, beam_size=beam_size, kenlm_model=kenlm_model)
            write_hyps(set_dir / "text", hyps)
            atomic_write_text(done, json.dumps(options))
            log.info("%s: decoded %d utterances in %.1f s", name, len(hyps), time.time() - t0)
        lang = set_language(kdir)
        kwargs: dict[str, Any] = {
            "utt2lang": kdir.utt2lang or None,
            "normalizer": norm,
            "lang": None if kdir.utt2lang else (lang or "all"),
            "set_name": name,
        }
        reports.append(score_transcripts(kdir.text, hyps, **kwargs))
        if transcriber is not None:
            from speechx.evaluation.cascade import transcribe_cached, utterance_sources

            ids = kdir.utt_ids
            texts, _ = transcribe_cached(
                transcriber,
                utterance_sources(kdir, ids),
                ids,
                lang or "en",
                out / "peers" / transcriber.name / name,
            )
            peer_hyps = dict(zip(ids, texts, strict=True))
            write_hyps(set_dir / f"text.{transcriber.name}", peer_hyps)
            system = f"{transcriber.name}:zero-shot"
            peers += peer_rows(score_transcripts(kdir.text, peer_hyps, **kwargs), system)
    return write_asr_results(
        out,
        split=split,
        model=model_name or str(model_dir),
        report=reports,
        peers=peers,
        normalizer=norm,
    )
