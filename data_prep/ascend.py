"""ASCEND: spontaneous Mandarin–English code-switching conversation (CAiRE/HKUST, CC BY-SA 4.0).

The corpus is published on the Hugging Face hub as ``CAiRE/ASCEND`` (10.6 h, about 12.3k
utterances, 23 speakers, splits ``train`` / ``validation`` / ``test``).  Every row has the columns

==========================  ===============================================================
``id``                      ``"00644"``: a running number, unique over the whole corpus
``path``                    the original wave name, e.g. ``.../waves/ses2_spk3_L13101_189.900_5.490.wav``
``audio``                   ``{"bytes": <wav bytes>, "path": <name>}`` (HF ``Audio``, 16 kHz)
``transcription``           the transcript, e.g. ``"是 啊 我 觉 得 it's ok"``; may hold ``[UNK]``
``duration``                seconds (float32)
``language``                ``"zh"``, ``"en"`` or ``"mixed"`` (the corpus's utterance label)
``original_speaker_id``     int, ``session_id`` int, ``topic`` str (``"persona"``, ...)
==========================  ===============================================================

:func:`prepare_ascend` reads a local copy in any of these layouts (found by :func:`find_ascend`):

* **parquet** (the hub layout today): ``main/{train,validation,test}-NNNNN-of-NNNNN.parquet``
  (any directory; the split is the file-name prefix or the parent directory name);
* **arrow**: the output of ``DatasetDict.save_to_disk`` (``dataset_dict.json`` and one directory
  per split with ``data-*.arrow``);
* **csv** (the first hub revision): ``{split}_metadata.csv`` with ``file_name, transcription,
  duration, language, original_speaker_id, session_id, topic`` next to ``waves/*.wav``.

The files are read with :mod:`datasets` (parquet streamed, arrow memory-mapped), with the audio
column cast to ``Audio(decode=False)`` so that the raw bytes are decoded here with soundfile
(no torchcodec needed).  Each utterance is written as a 16-bit 16 kHz WAV under
``<out>/ascend_wav/<split>/<utt>.wav`` with :func:`speechx.audio.save_audio`; a rerun reuses
the WAVs already written (the preparation is resumable).

Output: ``<out>/ascend_zh-en_<split>`` with ``split`` one of ``train``, ``dev`` (upstream
``validation``) and ``test``, holding ``wav.scp``, ``text``, ``text.langtags``, ``utt2spk``,
``spk2utt``, ``utt2lang``, ``utt2lang.corpus``, ``utt2dur`` and ``utt2sent``; plus ``<out>/local/ascend_prep.json``
(the :class:`~data_prep.PrepReport`) and ``<out>/local/ascend_skipped.tsv`` (every utterance left
out, with its reason).

Decisions (shared with :mod:`data_prep.seame`; the code is in :mod:`data_prep.codeswitch`):

* **text** is the transcript after :class:`~data_prep.codeswitch.CleanConfig` (see
  :func:`~data_prep.codeswitch.clean_transcript`): NFKC
  (full-width Latin and digits to ASCII), non-speech markers removed (``[UNK]``, ``<unk>``,
  ``<noise>``, ``(ppl)`` ...), brackets around real words dropped, punctuation replaced by
  spaces (apostrophes inside words kept), Latin lower-cased, spaces collapsed.  Chinese
  spacing is kept as published: MER tokens count each CJK character anyway.
* **text.langtags** has one tag per MER token (:func:`speechx.metrics.asr.mixed_tokens`): a CJK
  character is ``zh``, a token with a letter of another script is ``en``, and a token with no
  letter (digits, ``%``) takes the language of the nearest tagged token before it, else after
  it, else the utterance's own label (see :func:`~data_prep.codeswitch.token_langtags`).
* **utt2lang** is the corpus pair ``zh-en`` for every utterance (the shared code-switching
  contract: ``utt2lang`` of a code-switched dir is ``<matrix>-<embedded>``, and
  :func:`speechx.evaluation.codeswitch.read_codeswitch_dir` rejects anything else).  The
  corpus's own label is kept in **utt2lang.corpus**: ``zh``, ``en``, or ``zh-en`` for
  ``mixed``; a missing or unknown label is replaced by what the tags say.  With
  ``utt2lang="label"`` that label goes to ``utt2lang`` instead (monolingual utterances then
  read ``zh``/``en``, which per-language ASR scoring wants but the code-switching evaluator
  refuses).  Disagreements between the label and the tags are counted in the report
  (``extra["label_tag_disagreements"]``), not corrected.
* **utt2sent** maps every utterance to itself: a real corpus has no sentence shared between
  utterances, and the file lets :func:`speechx.data.splits.check_no_leak` run on these dirs.
* Utterance ids are ``ascend_spkNN-<id>`` and speakers ``ascend_spkNN`` (Kaldi wants the speaker
  as a prefix of the utterance id).
* Skipped, each with a warning naming the utterance and a row in ``ascend_skipped.tsv``:
  ``empty_transcript`` (nothing left after cleaning), ``missing_audio`` (no bytes and no file at
  the path), ``unreadable_audio`` (bytes or file that do not decode, or hold no samples) and
  ``duplicate_id``.

Run ``python -m data_prep.ascend --help``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from data_prep import PrepReport, SkipLog, existing_duration, prep_parser, run_preparer, safe_id
from data_prep.codeswitch import (
    EN,
    MIXED,
    UTT2LANG_MODES,
    ZH,
    CleanConfig,
    CodeSwitchSplits,
    add_clean_args,
    clean_config_from_args,
    clean_transcript,
)
from speechx.audio import load_audio, save_audio
from speechx.errors import AudioError, SpeechxError

SAMPLE_RATE = 16000

#: upstream split name -> speechx split name (``<out>/ascend_zh-en_<speechx name>``)
SPLIT_NAMES: dict[str, str] = {"train": "train", "validation": "dev", "test": "test"}
#: the corpus's ``language`` label -> ``utt2lang`` value
LANGUAGE_LABELS: dict[str, str] = {"zh": ZH, "en": EN, "mixed": MIXED}

_SPLIT_FILE = re.compile(r"^(train|validation|test)(?:[-_.].*)?\.parquet$")
_CSV_FILE = re.compile(r"^(train|validation|test)_metadata\.csv$")


class AscendError(SpeechxError, ValueError):
    """An ASCEND copy that cannot be read: no data files, ambiguous layout, missing columns."""


# --------------------------------------------------------------------------- ASCEND layouts
@dataclass(frozen=True)
class AscendSource:
    """Where the rows of one upstream split are stored.

    Attributes:
        split: upstream split name (``train``, ``validation``, ``test``).
        kind: ``parquet``, ``arrow`` or ``csv``.
        paths: the parquet files, the ``save_to_disk`` split directory, or the metadata CSV.
        base_dir: directory against which relative audio paths are resolved.
    """

    split: str
    kind: str
    paths: tuple[Path, ...]
    base_dir: Path


def find_ascend(corpus_dir: str | os.PathLike) -> dict[str, AscendSource]:
    """Find the data files of every split of a local ASCEND copy.

    Returns:
        upstream split name -> :class:`AscendSource`, in the order train, validation, test.

    Raises:
        AscendError: the directory does not exist, holds none of the known layouts, or holds
            parquet files of one split in several directories (e.g. two configurations);
            point ``corpus_dir`` at one of them.
    """
    root = Path(corpus_dir)
    if not root.is_dir():
        raise AscendError(f"{root}: ASCEND corpus directory not found")
    found: dict[str, AscendSource] = {}
    if (root / "dataset_dict.json").is_file():
        try:
            names = json.loads((root / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
        except (ValueError, KeyError) as exc:
            raise AscendError(f"{root / 'dataset_dict.json'}: unreadable ({exc})") from None
        for name in names:
            if name in SPLIT_NAMES and (root / name).is_dir():
                found[name] = AscendSource(name, "arrow", (root / name,), root)
    if not found:
        by_split: dict[str, dict[Path, list[Path]]] = {}
        for f in sorted(root.rglob("*.parquet")):
            m = _SPLIT_FILE.match(f.name)
            split = m.group(1) if m else (f.parent.name if f.parent.name in SPLIT_NAMES else None)
            if split is None:
                continue
            by_split.setdefault(split, {}).setdefault(f.parent, []).append(f)
        for split, dirs in by_split.items():
            if len(dirs) > 1:
                listed = ", ".join(str(d) for d in sorted(dirs))
                raise AscendError(
                    f"{root}: parquet files of split {split!r} in several directories "
                    f"({listed}); pass one of them as the corpus directory"
                )
            ((d, files),) = dirs.items()
            found[split] = AscendSource(split, "parquet", tuple(files), root)
    if not found:
        for f in sorted(root.glob("*_metadata.csv")):
            m = _CSV_FILE.match(f.name)
            if m:
                found[m.group(1)] = AscendSource(m.group(1), "csv", (f,), root)
    if not found:
        raise AscendError(
            f"{root}: no ASCEND data found (expected {{train,validation,test}}-*.parquet, a "
            "save_to_disk directory with dataset_dict.json, or {split}_metadata.csv)"
        )
    return {s: found[s] for s in SPLIT_NAMES if s in found}


@dataclass
class AscendRow:
    """One row of ASCEND, whatever the layout it came from."""

    id: str
    transcription: str
    language: str | None
    speaker: int | str | None
    session: int | str | None
    topic: str | None
    audio_bytes: bytes | None
    audio_path: str | None


REQUIRED_COLUMNS: tuple[str, ...] = ("id", "audio", "transcription", "original_speaker_id")


def _row(ex: Mapping[str, Any], index: int) -> AscendRow:
    audio = ex.get("audio")
    a_bytes = a_path = None
    if isinstance(audio, Mapping):
        a_bytes = audio.get("bytes")
        a_path = audio.get("path")
    elif isinstance(audio, str):
        a_path = audio
    a_path = a_path or ex.get("path") or None
    rid = ex.get("id")
    return AscendRow(
        id=str(rid) if rid not in (None, "") else f"{index:05d}",
        transcription=ex.get("transcription") or "",
        language=ex.get("language"),
        speaker=ex.get("original_speaker_id"),
        session=ex.get("session_id"),
        topic=ex.get("topic"),
        audio_bytes=a_bytes,
        audio_path=a_path,
    )


def iter_ascend_rows(source: AscendSource) -> Iterator[AscendRow]:
    """Yield the rows of one split, with the audio left undecoded.

    Raises:
        AscendError: a required column (``id``, ``audio``, ``transcription``,
            ``original_speaker_id``) is missing, or a file cannot be read (both named).
    """
    if source.kind == "csv":
        yield from _iter_csv(source)
        return
    import datasets  # heavy import, only when a HF layout is read

    try:
        if source.kind == "arrow":
            ds: Any = datasets.load_from_disk(str(source.paths[0]))
        else:
            ds = datasets.load_dataset(
                "parquet",
                data_files={source.split: [str(p) for p in source.paths]},
                split=source.split,
                streaming=True,
            )
    except Exception as exc:  # datasets/pyarrow raise many types for a broken file
        names = ", ".join(str(p) for p in source.paths)
        raise AscendError(f"{names}: cannot read split {source.split!r} ({exc})") from None
    columns = list(ds.features or {}) if ds.features is not None else []
    missing = [c for c in REQUIRED_COLUMNS if columns and c not in columns]
    if missing:
        raise AscendError(
            f"{source.paths[0]}: split {source.split!r} lacks column(s) {missing}; has {columns}"
        )
    if "audio" in columns and isinstance(ds.features["audio"], datasets.Audio):
        ds = ds.cast_column("audio", datasets.Audio(decode=False))
    for i, ex in enumerate(ds):
        yield _row(ex, i)


def _iter_csv(source: AscendSource) -> Iterator[AscendRow]:
    path = source.paths[0]
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        need = {"file_name", "transcription", "original_speaker_id"}
        if not need <= set(reader.fieldnames or []):
            raise AscendError(
                f"{path}: lacks column(s) {sorted(need - set(reader.fieldnames or []))}"
            )
        for i, rec in enumerate(reader):
            # the CSV has no id column: rows are numbered like the HF layouts without one
            yield _row({**rec, "id": None, "audio": rec["file_name"]}, i)


def _resolve_audio(path: str | None, source: AscendSource) -> Path | None:
    if not path:
        return None
    p = Path(path)
    candidates = [p] if p.is_absolute() else []
    candidates += [source.base_dir / p, source.paths[0].parent / p]
    candidates += [source.base_dir / "waves" / p.name, source.base_dir / p.name]
    for c in candidates:
        if c.is_file():
            return c
    return None


def speaker_id(speaker: int | str | None) -> str:
    """``ascend_spkNN`` for ``original_speaker_id`` NN (``ascend_spkx`` when it is missing)."""
    if speaker is None or str(speaker).strip() == "":
        return "ascend_spkx"
    s = str(speaker).strip()
    return f"ascend_spk{int(s):02d}" if s.isdigit() else f"ascend_spk{safe_id(s)}"


def _decode(row: AscendRow, source: AscendSource) -> tuple[np.ndarray | None, str, str]:
    """``(wave at 16 kHz, "", "")`` or ``(None, reason, detail)``."""
    if row.audio_bytes:
        try:
            data, sr = sf.read(io.BytesIO(row.audio_bytes), dtype="float32", always_2d=True)
        except Exception as exc:  # libsndfile raises several types
            return None, "unreadable_audio", f"audio bytes do not decode ({exc})"
        src: Any = (data, int(sr))
    else:
        path = _resolve_audio(row.audio_path, source)
        if path is None:
            where = row.audio_path or "(no path)"
            return None, "missing_audio", f"no audio bytes and no file at {where}"
        src = path
    try:
        wav = load_audio(src, SAMPLE_RATE, warn_silence=False)
    except AudioError as exc:
        return None, "unreadable_audio", str(exc)
    return wav, "", ""


def prepare_ascend(
    corpus_dir: str | os.PathLike,
    out_dir: str | os.PathLike = "data",
    *,
    splits: Sequence[str] | None = None,
    audio_dir: str | os.PathLike | None = None,
    clean: CleanConfig | None = None,
    overwrite_audio: bool = False,
    utt2lang: str = "pair",
    max_warnings: int | None = 20,
    verbose: bool = False,
) -> PrepReport:
    """Write ``<out_dir>/ascend_zh-en_<split>`` Kaldi dirs from a local ASCEND copy.

    Args:
        corpus_dir: the local copy (any layout of :func:`find_ascend`).
        out_dir: where the data dirs, ``local/ascend_prep.json`` and
            ``local/ascend_skipped.tsv`` go.
        splits: upstream splits to prepare (default: all found); ``dev`` is accepted for
            ``validation``.
        audio_dir: where the 16 kHz WAVs go (default ``<out_dir>/ascend_wav``), one
            sub-directory per split.
        clean: transcript normalisation (default :class:`CleanConfig`).
        overwrite_audio: rewrite WAVs that already exist (default: reuse them).
        utt2lang: ``"pair"`` (``zh-en`` everywhere) or ``"label"`` (the corpus label); the
            label is always in ``utt2lang.corpus``.
        max_warnings: warnings issued per skip reason (the TSV lists every skip).
        verbose: print the summary.

    Returns:
        A :class:`PrepReport`; ``skipped`` counts ``empty_transcript``, ``missing_audio``,
        ``unreadable_audio`` and ``duplicate_id``; ``extra`` holds the cleaning settings,
        WAVs written vs. reused, utterances per corpus label, tokens tagged by context
        and label/tag disagreements.

    Raises:
        AscendError: the corpus is not found or unreadable, an unknown split is requested, or
            ``utt2lang`` is not ``"pair"`` or ``"label"``.
    """
    t0 = time.perf_counter()
    if utt2lang not in UTT2LANG_MODES:
        raise AscendError(f"utt2lang must be one of {UTT2LANG_MODES}, got {utt2lang!r}")
    cfg = clean or CleanConfig()
    out = Path(out_dir)
    wav_root = Path(audio_dir) if audio_dir is not None else out / "ascend_wav"
    sources = find_ascend(corpus_dir)
    if splits is not None:
        wanted = ["validation" if s == "dev" else s for s in splits]
        unknown = [s for s in wanted if s not in sources]
        if unknown:
            raise AscendError(f"{corpus_dir}: split(s) {unknown} not found; have {sorted(sources)}")
        sources = {s: sources[s] for s in wanted}

    report = PrepReport(corpus="ascend", out_dir=str(out))
    log = SkipLog(report, max_warnings=max_warnings)
    dirs = CodeSwitchSplits(f"ascend_{MIXED}", LANGUAGE_LABELS, utt2lang_mode=utt2lang)
    written = reused = 0
    seen: set[str] = set()
    for split, source in sources.items():
        name = SPLIT_NAMES[split]
        dirs.for_split(name)
        for row in iter_ascend_rows(source):
            report.n_sentences += 1
            spk = speaker_id(row.speaker)
            utt = f"{spk}-{safe_id(row.id)}"
            if utt in seen:
                log.skip(utt, "duplicate_id", f"id {row.id!r} occurs twice ({split})")
                continue
            seen.add(utt)
            text = clean_transcript(row.transcription, cfg)
            if not text:
                raw = row.transcription.strip() or "(empty)"
                log.skip(utt, "empty_transcript", f"nothing left of transcript {raw!r}")
                continue
            wav_path = wav_root / name / f"{utt}.wav"
            dur = None if overwrite_audio else existing_duration(wav_path, SAMPLE_RATE)
            if dur is None:
                wav, reason, detail = _decode(row, source)
                if wav is None:
                    log.skip(utt, reason, detail)
                    continue
                save_audio(wav_path, wav, SAMPLE_RATE)
                dur = wav.shape[0] / SAMPLE_RATE
                written += 1
            else:
                reused += 1
            dirs.add(
                name,
                utt,
                text=text,
                speaker=spk,
                label=row.language,
                duration=dur,
                wav=str(wav_path.resolve()),
            )

    extra = {"wav_written": written, "wav_reused": reused}
    return dirs.finish(out, report, log, started=t0, clean=cfg, extra=extra, verbose=verbose)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m data_prep.ascend``: parse arguments, run :func:`prepare_ascend`, print."""
    ap = prep_parser(
        "ascend",
        "Prepare a local copy of ASCEND (CAiRE/ASCEND: parquet, save_to_disk "
        "arrow, or metadata CSV + waves/) as Kaldi dirs ascend_zh-en_{train,dev,test} with "
        "16 kHz WAVs, text, text.langtags, utt2lang, utt2spk, spk2utt, utt2dur.",
    )
    ap.add_argument("--corpus-dir", required=True, help="the local ASCEND copy")
    ap.add_argument(
        "--splits", nargs="+", default=None, help="train validation test (default: all found)"
    )
    ap.add_argument(
        "--audio-dir", default=None, help="where the WAVs go (default: <out-dir>/ascend_wav)"
    )
    ap.add_argument("--overwrite-audio", action="store_true", help="rewrite existing WAVs")
    add_clean_args(ap, drop_fillers=True)
    args = ap.parse_args(argv)
    return run_preparer(
        lambda: prepare_ascend(
            args.corpus_dir,
            args.out_dir,
            splits=args.splits,
            audio_dir=args.audio_dir,
            clean=clean_config_from_args(args),
            overwrite_audio=args.overwrite_audio,
            utt2lang=args.utt2lang,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
