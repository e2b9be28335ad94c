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

Decisions (shared with :mod:`data_prep.seame`):

* **text** is the transcript after :class:`CleanConfig` (see :func:`clean_transcript`): NFKC
  (full-width Latin and digits to ASCII), non-speech markers removed (``[UNK]``, ``<unk>``,
  ``<noise>``, ``(ppl)`` ...), brackets around real words dropped, punctuation replaced by
  spaces (apostrophes inside words kept), Latin lower-cased, spaces collapsed.  Chinese
  spacing is kept as published: MER tokens count each CJK character anyway.
* **text.langtags** has one tag per MER token (:func:`speechx.metrics.asr.mixed_tokens`): a CJK
  character is ``zh``, a token with a letter of another script is ``en``, and a token with no
  letter (digits, ``%``) takes the language of the nearest tagged token before it, else after
  it, else the utterance's own label (see :func:`token_langtags`).
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

import argparse
import csv
import io
import json
import os
import re
import sys
import time
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from data_prep import PrepReport
from speechx.audio import audio_info, load_audio, save_audio
from speechx.data.kaldi import KaldiDir, atomic_write_text, write_mapping
from speechx.errors import AudioError, DataDirError, SpeechxError
from speechx.metrics.asr import is_cjk, mixed_tokens

ZH, EN = "zh", "en"
MIXED = "zh-en"
SAMPLE_RATE = 16000

#: upstream split name -> speechx split name (``<out>/ascend_zh-en_<speechx name>``)
SPLIT_NAMES: dict[str, str] = {"train": "train", "validation": "dev", "test": "test"}
#: the corpus's ``language`` label -> ``utt2lang`` value
LANGUAGE_LABELS: dict[str, str] = {"zh": ZH, "en": EN, "mixed": MIXED}

CORPUS_LANG_FILE = "utt2lang.corpus"
UTT2LANG_MODES: tuple[str, ...] = ("pair", "label")

REPORT_JSON = "local/ascend_prep.json"
SKIPPED_TSV = "local/ascend_skipped.tsv"
LANGTAGS_FILE = "text.langtags"

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_SPLIT_FILE = re.compile(r"^(train|validation|test)(?:[-_.].*)?\.parquet$")
_CSV_FILE = re.compile(r"^(train|validation|test)_metadata\.csv$")


class AscendError(SpeechxError, ValueError):
    """An ASCEND copy that cannot be read: no data files, ambiguous layout, missing columns."""


class CorpusWarning(UserWarning):
    """An utterance of a real corpus left out during preparation (the message names it)."""


# --------------------------------------------------------------------------- text cleaning
#: Bracketed non-speech markers of ASCEND and SEAME, removed whole: ``[UNK]``, ``[noise]``,
#: ``<unk>``, ``< unk >``, ``<v-noise>``, ``(ppl)``/``(ppc)``/``(ppb)``/``(ppo)`` ...
DEFAULT_MARKERS: tuple[str, ...] = (
    r"\[[^\[\]]*\]",
    r"<[^<>]*>",
    r"\(\s*pp[a-z]*\s*\)",
)
#: Bare marker words removed after the bracketed ones (SEAME writes paralinguistics unbracketed
#: too): ``ppl`` laughter, ``ppc`` cough, ``ppb`` breath, ``ppo`` other.
DEFAULT_MARKER_WORDS: tuple[str, ...] = ("ppl", "ppc", "ppb", "ppo")
#: Hesitations dropped when ``CleanConfig.drop_fillers`` is set.
DEFAULT_FILLERS: tuple[str, ...] = ("嗯", "呃", "啊", "哦", "um", "uh", "uhm", "erm", "hmm", "mm")

_APOSTROPHES = "'\u2019\u2018\u02bc"


@dataclass(frozen=True)
class CleanConfig:
    """How a raw corpus transcript becomes the ``text`` of a data dir.

    Attributes:
        nfkc: apply Unicode NFKC first (full-width ``ｏｋ`` / ``１２`` become ``ok`` / ``12``).
        markers: regular expressions (case-insensitive) of markup removed whole.
        marker_words: whitespace-separated words removed whole (case-insensitive).
        strip_punctuation: replace Unicode punctuation by a space; apostrophes between letters
            are kept (as ``'``).  Brackets that survive the markers (``(um)``) only lose the
            bracket characters.
        lowercase: lower-case the text (only cased scripts change).
        drop_fillers: also remove the hesitation words in ``fillers``.
        fillers: the hesitation words (whole words, or single CJK characters).
    """

    nfkc: bool = True
    markers: tuple[str, ...] = DEFAULT_MARKERS
    marker_words: tuple[str, ...] = DEFAULT_MARKER_WORDS
    strip_punctuation: bool = True
    lowercase: bool = True
    drop_fillers: bool = False
    fillers: tuple[str, ...] = DEFAULT_FILLERS

    def settings(self) -> dict[str, Any]:
        """A JSON-ready description, recorded in the preparation report."""
        return {
            "nfkc": self.nfkc,
            "markers": list(self.markers),
            "marker_words": list(self.marker_words),
            "strip_punctuation": self.strip_punctuation,
            "lowercase": self.lowercase,
            "drop_fillers": self.drop_fillers,
            "fillers": list(self.fillers) if self.drop_fillers else [],
        }


def _strip_punct(text: str) -> str:
    out: list[str] = []
    n = len(text)
    for i, ch in enumerate(text):
        if ch in _APOSTROPHES:
            prev_ok = i > 0 and text[i - 1].isalpha()
            next_ok = i + 1 < n and text[i + 1].isalpha()
            out.append("'" if prev_ok and next_ok else " ")
        elif unicodedata.category(ch).startswith("P"):
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def clean_transcript(text: str, config: CleanConfig | None = None) -> str:
    """Normalise a raw transcript as described by ``config`` (default :class:`CleanConfig`).

    Returns:
        The cleaned text with single spaces and no leading/trailing blanks; ``""`` when
        nothing but markers and punctuation was there.

    Example:
        >>> clean_transcript("我 觉得 [UNK] ＯＫ, (ppl) that's <noise> fine!")
        "我 觉得 ok that's fine"
    """
    cfg = config or CleanConfig()
    s = unicodedata.normalize("NFKC", text) if cfg.nfkc else text
    for pattern in cfg.markers:
        s = re.sub(pattern, " ", s, flags=re.IGNORECASE)
    if cfg.marker_words:
        drop = {w.lower() for w in cfg.marker_words}
        s = " ".join(w for w in s.split() if w.lower() not in drop)
    if cfg.strip_punctuation:
        s = _strip_punct(s)
    if cfg.lowercase:
        s = s.lower()
    words = s.split()
    if cfg.drop_fillers:
        # whole words only: a filler glued to other characters ("嗯对") is left alone
        fillers = {f.lower() for f in cfg.fillers}
        words = [w for w in words if w.lower() not in fillers]
    return " ".join(words)


# --------------------------------------------------------------------------- language tags
def _token_script(token: str) -> str | None:
    """``zh`` for a CJK character, ``en`` for a token with a letter, ``None`` otherwise."""
    if len(token) == 1 and is_cjk(token):
        return ZH
    if any(ch.isalpha() for ch in token):
        return EN
    return None


def token_langtags(text: str, fallback: str = EN) -> list[str]:
    """One language tag per MER token of ``text`` (``speechx.metrics.asr.mixed_tokens``).

    A CJK character is ``zh``; a token holding any other letter is ``en``.  A token without a
    letter (``"3"``, ``"%"``) takes the tag of the nearest tagged token before it, or, at the
    start of the text, the nearest one after it; with no tagged token at all it gets
    ``fallback``.

    Example:
        >>> token_langtags("我 有 3 个 apple")
        ['zh', 'zh', 'zh', 'zh', 'en']
    """
    scripts = [_token_script(t) for t in mixed_tokens(text)]
    tags: list[str] = []
    last: str | None = None
    for s in scripts:
        last = s or last
        tags.append(last or "")
    nxt: str | None = None
    for i in range(len(tags) - 1, -1, -1):
        if scripts[i] is not None:
            nxt = scripts[i]
        if not tags[i]:
            tags[i] = nxt or fallback
    return tags


def count_context_tags(text: str) -> int:
    """How many MER tokens of ``text`` have no letter and are tagged by their context."""
    return sum(_token_script(t) is None for t in mixed_tokens(text))


def language_of_tags(tags: Sequence[str]) -> str:
    """``zh``, ``en`` or ``zh-en`` (both present) for a tag sequence; ``""`` for no tags."""
    present = set(tags)
    if ZH in present and EN in present:
        return MIXED
    if present:
        return next(iter(present))
    return ""


def write_langtags(
    path: str | os.PathLike, kdir: KaldiDir, langtags: Mapping[str, Sequence[str]]
) -> Path:
    """Write ``text.langtags`` (``utt-id tag tag ...``) next to an already written data dir.

    Call it *after* :meth:`KaldiDir.write`, which removes ``text.<x>`` files it does not know.

    Returns:
        The path of the file written.

    Raises:
        DataDirError: an utterance has no tags, or its tag count differs from the number of
            MER tokens of its ``text`` (the file and the utterance are named).
    """
    p = Path(path) / LANGTAGS_FILE
    rows: list[tuple[str, str]] = []
    for utt in kdir.utt_ids:
        tags = langtags.get(utt)
        n_tok = len(mixed_tokens(kdir.text.get(utt, "")))
        if tags is None or len(tags) != n_tok:
            got = "no tags" if tags is None else f"{len(tags)} tags"
            raise DataDirError(f"{p}: utterance {utt!r} has {got} for {n_tok} MER tokens")
        rows.append((utt, " ".join(tags)))
    write_mapping(p, rows)
    return p


# --------------------------------------------------------------------------- skip bookkeeping
@dataclass
class SkipLog:
    """Counts skipped utterances in a :class:`PrepReport`, warns, and keeps them for a TSV.

    At most ``max_warnings`` warnings are issued per reason (``None``: no limit); the TSV
    written by :meth:`write` always names every skipped utterance.
    """

    report: PrepReport
    max_warnings: int | None = 20
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    _warned: Counter = field(default_factory=Counter)

    def skip(self, utt: str, reason: str, detail: str) -> None:
        """Count ``utt`` as left out for ``reason``; warn with ``detail`` (what is wrong)."""
        self.report.skip(reason)
        self.rows.append((utt, reason, detail))
        n = self._warned[reason]
        if self.max_warnings is None or n < self.max_warnings:
            warnings.warn(
                f"{self.report.corpus}: skipping {utt}: {detail}", CorpusWarning, stacklevel=3
            )
        elif n == self.max_warnings:
            warnings.warn(
                f"{self.report.corpus}: further '{reason}' skips are not shown; every skipped "
                "utterance is listed in the skipped TSV",
                CorpusWarning,
                stacklevel=3,
            )
        self._warned[reason] += 1

    def write(self, path: str | os.PathLike) -> Path:
        """Write ``utt<TAB>reason<TAB>detail`` lines (with a header); returns the path."""
        p = Path(path)
        lines = ["utt\treason\tdetail\n"]
        for utt, reason, detail in self.rows:
            lines.append(f"{utt}\t{reason}\t{' '.join(detail.split())}\n")
        atomic_write_text(p, "".join(lines))
        return p


@dataclass
class CodeSwitchSet:
    """One output Kaldi dir under construction, with its language tags.

    Attributes:
        utt2lang_mode: ``"pair"`` (``utt2lang`` is ``zh-en`` for every utterance) or
            ``"label"`` (``utt2lang`` is the corpus label, ``zh``/``en`` when monolingual).
        corpus_lang: utterance -> corpus label, written as ``utt2lang.corpus``.
    """

    kdir: KaldiDir = field(default_factory=KaldiDir)
    langtags: dict[str, list[str]] = field(default_factory=dict)
    utt2lang_mode: str = "pair"
    corpus_lang: dict[str, str] = field(default_factory=dict)

    def add(
        self, utt: str, *, text: str, speaker: str, lang: str, duration: float, tags: list[str]
    ) -> None:
        """Record one utterance; ``lang`` is its corpus label (``zh``, ``en``, ``zh-en``).

        ``wav.scp`` and ``segments`` are filled by the caller.
        """
        kd = self.kdir
        kd.text[utt] = text
        kd.utt2spk[utt] = speaker
        kd.utt2lang[utt] = MIXED if self.utt2lang_mode == "pair" else lang
        self.corpus_lang[utt] = lang
        kd.utt2dur[utt] = round(duration, 3)
        kd.utt2sent[utt] = utt
        self.langtags[utt] = tags

    def write(self, path: str | os.PathLike) -> Path:
        """Write the Kaldi files and ``text.langtags``; returns the directory."""
        d = self.kdir.write(path)
        write_langtags(d, self.kdir, self.langtags)
        write_mapping(d / CORPUS_LANG_FILE, sorted(self.corpus_lang.items()))
        return d


def utterance_language(label: str | None, tags: Sequence[str], labels: Mapping[str, str]) -> str:
    """The corpus label mapped by ``labels`` (``zh``/``en``/``zh-en``), else the tags' language."""
    if label is not None:
        mapped = labels.get(label.strip().lower()) or labels.get(label.strip())
        if mapped:
            return mapped
    return language_of_tags(tags) or EN


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
            yield AscendRow(
                id=f"{i:05d}",
                transcription=rec.get("transcription") or "",
                language=rec.get("language"),
                speaker=rec.get("original_speaker_id"),
                session=rec.get("session_id"),
                topic=rec.get("topic"),
                audio_bytes=None,
                audio_path=rec["file_name"],
            )


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
    return f"ascend_spk{int(s):02d}" if s.isdigit() else f"ascend_spk{_ID_UNSAFE.sub('_', s)}"


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


def _reusable(path: Path) -> float | None:
    """Duration of an already written 16 kHz WAV, or ``None`` if it must be (re)written."""
    if not path.is_file():
        return None
    try:
        info = audio_info(path)
    except AudioError:
        return None
    if info.sample_rate != SAMPLE_RATE or info.num_samples == 0 or info.channels != 1:
        return None
    return info.duration


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
    lang_counts: Counter = Counter()
    written = reused = context_tokens = disagreements = 0
    seconds = 0.0
    seen: set[str] = set()
    report.splits = {}
    for split, source in sources.items():
        name = SPLIT_NAMES[split]
        cs = CodeSwitchSet(utt2lang_mode=utt2lang)
        for row in iter_ascend_rows(source):
            report.n_sentences += 1
            spk = speaker_id(row.speaker)
            utt = f"{spk}-{_ID_UNSAFE.sub('_', row.id)}"
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
            dur = None if overwrite_audio else _reusable(wav_path)
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
            label = LANGUAGE_LABELS.get((row.language or "").strip().lower())
            fallback = label if label in (ZH, EN) else EN
            tags = token_langtags(text, fallback=fallback)
            lang = utterance_language(row.language, tags, LANGUAGE_LABELS)
            if label and label != language_of_tags(tags):
                disagreements += 1
            context_tokens += count_context_tags(text)
            cs.kdir.wav_scp[utt] = str(wav_path.resolve())
            cs.add(utt, text=text, speaker=spk, lang=lang, duration=dur, tags=tags)
            lang_counts[lang] += 1
            seconds += dur
        dir_name = f"ascend_{MIXED}_{name}"
        if len(cs.kdir):
            cs.write(out / dir_name)
            report.dirs[dir_name] = len(cs.kdir)
        report.splits[name] = len(cs.kdir)
        report.used += len(cs.kdir)

    report.hours = seconds / 3600.0
    report.extra.update(
        {
            "clean": cfg.settings(),
            "wav_written": written,
            "wav_reused": reused,
            "utt2lang_mode": utt2lang,
            "corpus_lang": dict(sorted(lang_counts.items())),
            "tokens_tagged_by_context": context_tokens,
            "label_tag_disagreements": disagreements,
        }
    )
    log.write(out / SKIPPED_TSV)
    report.write_json(out / REPORT_JSON)
    report.elapsed = time.perf_counter() - t0
    if verbose:
        print(report.summary())
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m data_prep.ascend``: parse arguments, run :func:`prepare_ascend`, print."""
    ap = argparse.ArgumentParser(
        prog="python -m data_prep.ascend",
        description="Prepare a local copy of ASCEND (CAiRE/ASCEND: parquet, save_to_disk "
        "arrow, or metadata CSV + waves/) as Kaldi dirs ascend_zh-en_{train,dev,test} with "
        "16 kHz WAVs, text, text.langtags, utt2lang, utt2spk, spk2utt, utt2dur.",
    )
    ap.add_argument("--corpus-dir", required=True, help="the local ASCEND copy")
    ap.add_argument("--out-dir", default="data", help="where the Kaldi dirs go (default: data)")
    ap.add_argument(
        "--splits", nargs="+", default=None, help="train validation test (default: all found)"
    )
    ap.add_argument(
        "--audio-dir", default=None, help="where the WAVs go (default: <out-dir>/ascend_wav)"
    )
    ap.add_argument("--overwrite-audio", action="store_true", help="rewrite existing WAVs")
    ap.add_argument(
        "--utt2lang",
        default="pair",
        choices=UTT2LANG_MODES,
        help="utt2lang: the pair zh-en for all (default) or the corpus label",
    )
    ap.add_argument("--keep-case", action="store_true", help="do not lower-case transcripts")
    ap.add_argument(
        "--drop-fillers", action="store_true", help="remove hesitations (嗯 呃 um uh ...)"
    )
    args = ap.parse_args(argv)
    cfg = CleanConfig(lowercase=not args.keep_case, drop_fillers=args.drop_fillers)
    try:
        report = prepare_ascend(
            args.corpus_dir,
            args.out_dir,
            splits=args.splits,
            audio_dir=args.audio_dir,
            clean=cfg,
            overwrite_audio=args.overwrite_audio,
            utt2lang=args.utt2lang,
        )
    except SpeechxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
