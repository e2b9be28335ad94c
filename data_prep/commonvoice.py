"""Mozilla Common Voice: crowd-read sentences in 100+ languages, one MP3 clip per reading.

A release unpacks to ``cv-corpus-<version>/<locale>/`` with

.. code-block:: text

    clips/common_voice_<locale>_<n>.mp3        48 kHz mono MP3 (older releases: other rates)
    train.tsv dev.tsv test.tsv                 the official sentence-disjoint split
    validated.tsv other.tsv invalidated.tsv    every validated / unreviewed / rejected clip

Each TSV has a header row.  Recent releases (v13+) have the columns ``client_id path sentence_id
sentence sentence_domain up_votes down_votes age gender accents variant locale segment``; older
ones lack ``sentence_id``, ``sentence_domain`` and ``variant`` (and the oldest call ``accents``
``accent``).  Only ``client_id``, ``path`` and ``sentence`` are required.

How the TSVs are read (:func:`read_tsv`): Common Voice writes them unquoted, and sentences may
hold unbalanced ``"`` (so, like lhotse and the Hugging Face loader, quotes are data, not
syntax).  Rows that do not fit the header are repaired where the intent is clear: a sentence
written CSV-style (wrapped in ``"`` with inner quotes doubled, as some releases have it) is
unquoted, a quoted field holding a tab
or a line break is parsed as CSV, and stray tabs inside the sentence (or ``accents``) are
rejoined with a space when the vote counts then land in their columns.  Anything else is
skipped as ``malformed_row`` with its line number.

:func:`prepare_commonvoice` writes ``<out>/commonvoice_<locale>_<split>`` Kaldi dirs (split
``train``/``dev``/``test``, plus ``validated``/``other``/``invalidated`` on request) with
``wav.scp``, ``text``, ``utt2spk`` (``cv-<first 16 hex digits of client_id>``), ``utt2lang``
(the locale), ``utt2dur``, ``utt2sent`` (a hash of the normalised sentence, shared by every
reading of it and by :mod:`data_prep.covost2`) and ``text.<locale>`` (the transcript: Common
Voice has no translations).  By default each clip is decoded (libsndfile reads MP3), resampled
to 16 kHz mono and written as WAV under ``<out>/commonvoice_wav/<locale>/`` (``--nj`` processes);
``--audio-format source`` points ``wav.scp`` at the MP3s instead.

Mapping of the shared recipe options: ``--speech-langs`` are locales (directory names such as
``nl`` or ``zh-CN``; default: every locale directory found), ``--text-langs`` selects which
locales also get ``text.<locale>`` (default: all).

Run ``python -m data_prep.commonvoice --help``; ``--check`` only reports what is missing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import sys
import time
import unicodedata
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from data_prep import (
    PrepReport,
    SkipLog,
    existing_duration,
    parse_list,
    prep_parser,
    preparer_kwargs,
    run_preparer,
    safe_id,
)
from data_prep.fillets import write_sentences_tsv
from speechx.audio import audio_info, load_audio, save_audio
from speechx.data.kaldi import KaldiDir
from speechx.errors import AudioError, SpeechxError

SAMPLE_RATE = 16000
#: The TSVs of a locale directory, in the order they are read.
CV_TSVS: tuple[str, ...] = ("train", "dev", "test", "validated", "other", "invalidated")
#: The splits the shared recipes use.
DEFAULT_SPLITS: tuple[str, ...] = ("train", "dev", "test")
REQUIRED_COLUMNS: tuple[str, ...] = ("client_id", "path", "sentence")
#: Free-text columns into which stray tabs are rejoined, in the order they are tried.
FREE_TEXT_COLUMNS: tuple[str, ...] = ("sentence", "accents", "accent")
INT_COLUMNS: tuple[str, ...] = ("up_votes", "down_votes")
AUDIO_FORMATS: tuple[str, ...] = ("wav", "source")
TRAIN_SOURCES: tuple[str, ...] = ("train", "validated")

REPORT_JSON = "local/commonvoice_prep.json"
SKIPPED_TSV = "local/commonvoice_skipped.tsv"
SENTENCES_TSV = "local/commonvoice_sentences.tsv"

_RFC_QUOTED = re.compile(r'^"((?:[^"]|"")*)"$', re.DOTALL)


class CommonVoiceError(SpeechxError, ValueError):
    """A Common Voice copy that cannot be found or read (the message names the path)."""


# --------------------------------------------------------------------------------- TSV reading
@dataclass(frozen=True)
class TsvRow:
    """One data row of a TSV: its 1-based line number and its cells by column name."""

    line: int
    cells: dict[str, str]


@dataclass
class TsvTable:
    """What :func:`read_tsv` read: the header, the rows, and the lines it could not use.

    Attributes:
        path: the file.
        columns: the header's column names.
        rows: the usable rows, in file order.
        malformed: ``(line number, what is wrong)`` of every row that was left out.
        repaired: number of rows that needed one of the repairs (unquoting, rejoining).
    """

    path: Path
    columns: list[str]
    rows: list[TsvRow] = field(default_factory=list)
    malformed: list[tuple[int, str]] = field(default_factory=list)
    repaired: int = 0


def _split_escaped(line: str, esc: str) -> list[str]:
    """Split at tabs not preceded by ``esc``; ``esc`` + char is the char (pandas' escapechar)."""
    cells: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(line):
        c = line[i]
        if c == esc and i + 1 < len(line):
            cur.append(line[i + 1])
            i += 2
            continue
        if c == "\t":
            cells.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    cells.append("".join(cur))
    return cells


def _csv_cells(text: str) -> list[str] | None:
    """``text`` parsed as one tab-separated CSV record with ``"`` quoting, or None."""
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter="\t", quotechar='"', strict=True))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


def _is_int(s: str) -> bool:
    return s.strip().lstrip("-").isdigit()


def _rejoin(cells: list[str], columns: list[str], int_columns: Sequence[str]) -> list[str] | None:
    """Merge the surplus cells into one free-text column so that the integer columns parse."""
    extra = len(cells) - len(columns)
    checks = [columns.index(c) for c in int_columns if c in columns]
    for name in FREE_TEXT_COLUMNS:
        if name not in columns:
            continue
        i = columns.index(name)
        merged = cells[:i] + [" ".join(cells[i : i + extra + 1])] + cells[i + extra + 1 :]
        if checks and all(_is_int(merged[j]) for j in checks):
            return merged
    return None


def read_tsv(
    path: str | os.PathLike,
    *,
    required: Sequence[str] = (),
    escapechar: str | None = None,
    unquote: Sequence[str] = ("sentence",),
    int_columns: Sequence[str] = INT_COLUMNS,
    max_join: int = 4,
) -> TsvTable:
    """Read a Common Voice style TSV (header row, tab-separated, no quoting) robustly.

    Args:
        path: the TSV file.
        required: columns the header must have.
        escapechar: a character that escapes the next one (CoVoST's TSVs, written by pandas
            with ``escapechar="\\\\"``); ``None`` for Common Voice's own TSVs.
        unquote: columns whose CSV-quoted values (``"..."`` with ``""`` inside) are unquoted.
        int_columns: columns that must hold integers; they decide where stray tabs belong.
        max_join: physical lines a quoted field with line breaks may span.

    Returns:
        A :class:`TsvTable`; rows that cannot be fitted to the header are in ``malformed``.

    Raises:
        CommonVoiceError: the file is missing, not UTF-8, empty, or lacks a required column
            (the message names the file and the columns it has).
    """
    p = Path(path)
    if not p.is_file():
        raise CommonVoiceError(f"{p}: TSV file not found")
    try:
        lines = p.read_text(encoding="utf-8-sig").split("\n")
    except UnicodeDecodeError as exc:
        raise CommonVoiceError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if lines and lines[-1] == "":
        lines.pop()
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    if not lines or not lines[0].strip():
        raise CommonVoiceError(f"{p}: empty file (no header row)")
    columns = lines[0].split("\t")
    missing = [c for c in required if c not in columns]
    if missing:
        raise CommonVoiceError(
            f"{p}: header lacks column(s) {', '.join(missing)}; it has {', '.join(columns)}"
        )
    table = TsvTable(p, columns)
    n = len(columns)
    i = 1
    while i < len(lines):
        lineno, raw = i + 1, lines[i]
        i += 1
        if escapechar is not None:
            # an odd run of escapes at the end escapes the line break
            while (len(raw) - len(raw.rstrip(escapechar))) % 2 == 1 and i < len(lines):
                raw = raw[:-1] + "\n" + lines[i]
                i += 1
        if not raw.strip():
            continue
        cells = _split_escaped(raw, escapechar) if escapechar is not None else raw.split("\t")
        repaired = False
        if len(cells) > n and escapechar is None:
            fixed = _csv_cells(raw)
            if fixed is None or len(fixed) != n:
                fixed = _rejoin(cells, columns, int_columns)
            cells, repaired = (fixed, True) if fixed is not None else (cells, False)
        elif len(cells) < n and raw.count('"') % 2 == 1 and escapechar is None:
            # a quoted field with a line break: read on until the record closes
            for k in range(1, max_join + 1):
                if i - 1 + k >= len(lines):
                    break
                joined = "\n".join(lines[i - 1 : i + k])
                fixed = _csv_cells(joined)
                if fixed is not None and len(fixed) == n:
                    cells, repaired = fixed, True
                    i += k
                    break
        if len(cells) < n and len(cells) >= max(
            (columns.index(c) + 1 for c in required if c in columns), default=0
        ):
            cells = cells + [""] * (n - len(cells))  # trailing optional columns left out
        if len(cells) != n:
            table.malformed.append((lineno, f"{len(cells)} fields, the header has {n}"))
            continue
        row = dict(zip(columns, cells, strict=True))
        for c in unquote:
            v = row.get(c)
            if v and len(v) >= 2:
                m = _RFC_QUOTED.match(v)
                if m:
                    row[c] = m.group(1).replace('""', '"')
                    repaired = True
        table.rows.append(TsvRow(lineno, row))
        table.repaired += repaired
    return table


# ---------------------------------------------------------------------------- corpus layout
def normalise_sentence(text: str) -> str:
    """NFC, whitespace (tabs, line breaks) collapsed to single spaces, stripped."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def sentence_id(locale: str, text: str) -> str:
    """``cv-<locale>-<16 hex digits>``: the same for every reading of one sentence (case and
    spacing ignored), so that splits and retrieval can key on the sentence."""
    key = normalise_sentence(text).casefold().encode("utf-8")
    return f"cv-{safe_id(locale)}-{hashlib.sha1(key).hexdigest()[:16]}"


def speaker_id(client_id: str) -> str:
    """``cv-<first 16 characters of client_id>`` (``cv-unknown`` without one)."""
    cid = safe_id(client_id.strip())[:16]
    return f"cv-{cid}" if cid else "cv-unknown"


def is_locale_dir(path: Path) -> bool:
    """True when ``path`` looks like one locale of a release (``clips/`` or a split TSV)."""
    return (path / "clips").is_dir() or any((path / f"{s}.tsv").is_file() for s in CV_TSVS)


def find_locales(
    corpus_dir: str | os.PathLike, locales: Sequence[str] | None = None
) -> dict[str, Path]:
    """The locale directories of a release.

    ``corpus_dir`` is either the release root (``cv-corpus-17.0-2024-03-15``, holding one
    directory per locale) or one locale directory itself (then its locale is the single
    requested one, else the directory name).

    Returns:
        locale -> directory, for the requested ``locales`` (default: every locale found).

    Raises:
        CommonVoiceError: ``corpus_dir`` does not exist, holds no locale, or lacks a requested
            locale (the message lists the paths looked at and the locales found).
    """
    root = Path(corpus_dir)
    if not root.is_dir():
        raise CommonVoiceError(f"{root}: Common Voice corpus directory not found")
    if is_locale_dir(root):
        if locales and len(locales) == 1:
            return {locales[0]: root}
        if locales and any(loc != root.name for loc in locales):
            raise CommonVoiceError(
                f"{root} is a single locale directory ({root.name}); point --corpus-dir at the "
                f"release root to prepare {', '.join(locales)}"
            )
        return {root.name: root}
    found = {d.name: d for d in sorted(root.iterdir()) if d.is_dir() and is_locale_dir(d)}
    if locales is None:
        if not found:
            raise CommonVoiceError(
                f"{root}: no Common Voice locale directory found (expected <locale>/clips/ and "
                "<locale>/train.tsv)"
            )
        return found
    missing = [loc for loc in locales if loc not in found]
    if missing:
        looked = ", ".join(str(root / loc) for loc in missing)
        have = ", ".join(found) or "none"
        raise CommonVoiceError(
            f"locale(s) {', '.join(missing)} not found: looked for {looked}; "
            f"locales present: {have}"
        )
    return {loc: found[loc] for loc in locales}


def resolve_clip(clips: Path, path: str) -> Path | None:
    """The clip file of a TSV ``path`` value (a bare name; ``.mp3`` is added when the TSV
    left it off, as the oldest releases did), or None when it is not there."""
    name = Path(path.strip()).name
    if not name:
        return None
    p = clips / name
    if p.is_file():
        return p
    alt = clips / f"{name}.mp3"
    return alt if alt.is_file() else None


def check_commonvoice(
    corpus_dir: str | os.PathLike | None,
    speech_langs: Sequence[str] | None = None,
    text_langs: Sequence[str] | None = None,
    *,
    splits: Sequence[str] = DEFAULT_SPLITS,
    train_source: str = "train",
) -> list[str]:
    """What :func:`prepare_commonvoice` would miss, without reading any audio.

    Returns:
        One line per problem, naming the file or directory and where it was looked for
        (an empty list: ready to prepare).
    """
    if corpus_dir is None or str(corpus_dir) == "":
        return ["commonvoice: no corpus directory given (--corpus-dir cv-corpus-<version>)"]
    try:
        dirs = find_locales(corpus_dir, parse_list(speech_langs))
    except CommonVoiceError as exc:
        return [str(exc)]
    problems = []
    for loc, d in dirs.items():
        if not (d / "clips").is_dir():
            problems.append(f"commonvoice {loc}: clips directory {d / 'clips'} not found")
        needed = [train_source if s == "train" else s for s in splits]
        if train_source == "validated":
            needed += ["dev", "test"]
        for name in dict.fromkeys(needed):
            tsv = d / f"{name}.tsv"
            if not tsv.is_file():
                problems.append(f"commonvoice {loc}: {tsv} not found")
                continue
            with open(tsv, encoding="utf-8-sig") as fh:
                header = fh.readline().rstrip("\r\n").split("\t")
            lacking = [c for c in REQUIRED_COLUMNS if c not in header]
            if lacking:
                problems.append(f"commonvoice {loc}: {tsv} lacks column(s) {', '.join(lacking)}")
    return problems


# ------------------------------------------------------------------------------ audio jobs
@dataclass(frozen=True)
class ClipJob:
    """One clip to bring into the data dir: decode ``src`` into ``dst`` (or read its header)."""

    utt: str
    src: Path
    dst: Path | None


def clip_duration(job: ClipJob, overwrite: bool = False) -> tuple[float | None, str, str, bool]:
    """Convert (or inspect) one clip.

    Returns:
        ``(duration, "", "", written)`` or ``(None, reason, detail, False)`` with reason
        ``unreadable_audio`` or ``empty_audio``.
    """
    if job.dst is None:
        try:
            info = audio_info(job.src)
        except AudioError as exc:
            return None, "unreadable_audio", str(exc), False
        if info.num_samples == 0:
            return None, "empty_audio", f"{job.src}: no samples", False
        return info.duration, "", "", False
    dur = None if overwrite else existing_duration(job.dst, SAMPLE_RATE)
    if dur is not None:
        return dur, "", "", False
    try:
        wav = load_audio(job.src, SAMPLE_RATE, warn_silence=False)
    except AudioError as exc:
        reason = "empty_audio" if "zero samples" in str(exc) else "unreadable_audio"
        return None, reason, str(exc), False
    save_audio(job.dst, wav, SAMPLE_RATE)
    return wav.shape[0] / SAMPLE_RATE, "", "", True


def _clip_duration_star(args: tuple[ClipJob, bool]) -> tuple[float | None, str, str, bool]:
    return clip_duration(*args)


def run_clip_jobs(
    jobs: Sequence[ClipJob], nj: int = 1, overwrite: bool = False
) -> list[tuple[float | None, str, str, bool]]:
    """:func:`clip_duration` of every job, in order, over ``nj`` processes."""
    if nj <= 1 or len(jobs) < 2:
        return [clip_duration(j, overwrite) for j in jobs]
    chunk = max(1, min(64, len(jobs) // (nj * 4)))
    with ProcessPoolExecutor(max_workers=nj) as ex:
        return list(ex.map(_clip_duration_star, [(j, overwrite) for j in jobs], chunksize=chunk))


# ------------------------------------------------------------------------------- preparation
@dataclass
class Utterance:
    """A clip accepted for a data dir (before its audio is looked at)."""

    utt: str
    split: str
    locale: str
    speaker: str
    text: str
    sent: str
    clip: Path
    translations: dict[str, str] = field(default_factory=dict)


def write_dirs(
    utts: Iterable[Utterance],
    out: Path,
    corpus: str,
    report: PrepReport,
    log: SkipLog,
    *,
    text_langs: Sequence[str] | None,
    audio_dir: Path,
    audio_format: str,
    nj: int,
    overwrite_audio: bool = False,
) -> dict[tuple[str, str], KaldiDir]:
    """Bring the audio of ``utts`` in and write ``<out>/<corpus>_<locale>_<split>`` dirs.

    ``text.<lang>`` is written for the translations in ``text_langs`` (all when None) and for
    the spoken language itself when it is in ``text_langs``.  Counts go into ``report``.

    Returns:
        ``(locale, split) -> KaldiDir`` of the dirs written.
    """
    utts = list(utts)
    jobs = [
        ClipJob(
            u.utt,
            u.clip,
            None if audio_format == "source" else audio_dir / u.locale / f"{u.utt}.wav",
        )
        for u in utts
    ]
    results = run_clip_jobs(jobs, nj=nj, overwrite=overwrite_audio)
    kdirs: dict[tuple[str, str], KaldiDir] = {}
    seconds = 0.0
    written = 0
    wanted = None if text_langs is None else set(text_langs)
    for u, job, (dur, reason, detail, new) in zip(utts, jobs, results, strict=True):
        if dur is None:
            log.skip(u.utt, reason, detail)
            continue
        kd = kdirs.setdefault((u.locale, u.split), KaldiDir())
        kd.wav_scp[u.utt] = str((job.dst or job.src).resolve())
        kd.text[u.utt] = u.text
        kd.utt2spk[u.utt] = u.speaker
        kd.utt2lang[u.utt] = u.locale
        kd.utt2dur[u.utt] = round(dur, 3)
        kd.utt2sent[u.utt] = u.sent
        for lang, t in {u.locale: u.text, **u.translations}.items():
            if wanted is None or lang in wanted:
                kd.translations.setdefault(lang, {})[u.utt] = t
        report.used += 1
        seconds += dur
        written += new
    for (loc, split), kd in sorted(kdirs.items()):
        report.write_dir(out / f"{corpus}_{loc}_{split}", kd, split)
    report.set_coverage(
        kdirs.values(), sorted({lang for kd in kdirs.values() for lang in kd.translations})
    )
    report.hours = seconds / 3600.0
    report.extra["audio_format"] = audio_format
    if audio_format == "wav":
        report.extra["wav_written"] = written
        report.extra["wav_reused"] = report.used - written
    return kdirs


def _read_split_tsv(
    d: Path, name: str, locale: str, log: SkipLog, report: PrepReport
) -> list[TsvRow]:
    table = read_tsv(d / f"{name}.tsv", required=REQUIRED_COLUMNS)
    for lineno, detail in table.malformed:
        log.skip(
            f"{locale}/{name}.tsv:{lineno}", "malformed_row", f"{table.path}:{lineno}: {detail}"
        )
    if table.repaired:
        report.extra[f"repaired_rows_{locale}_{name}"] = table.repaired
    return table.rows


def collect_commonvoice(
    locale: str,
    d: Path,
    *,
    splits: Sequence[str],
    train_source: str,
    log: SkipLog,
    report: PrepReport,
    sentences: dict[str, tuple[str, dict[str, str]]],
) -> list[Utterance]:
    """The utterances of one locale directory, with skips logged (no audio is opened).

    Clips are skipped as ``duplicate_row`` (the same clip twice in one TSV),
    ``duplicate_clip`` (already in another of train/dev/test; dev and test are read first), ``empty_sentence``, ``missing_clip``
    and ``sentence_in_eval_split`` (a train sentence that dev or test also has).
    """
    clips = d / "clips"
    eval_sents: set[str] = set()
    seen_clips: set[str] = set()
    out: list[Utterance] = []
    order = [s for s in ("dev", "test") if s in splits or train_source == "validated"]
    order += [s for s in splits if s not in order]
    for split in order:
        tsv = train_source if split == "train" else split
        rows = _read_split_tsv(d, tsv, locale, log, report)
        in_file: set[str] = set()
        for r in rows:
            c = r.cells
            stem = safe_id(Path(c["path"].strip()).name.removesuffix(".mp3"))
            spk = speaker_id(c["client_id"])
            utt = f"{spk}-{stem}"
            where = f"{tsv}.tsv:{r.line}"
            if not stem:
                log.skip(f"{locale}/{where}", "malformed_row", f"{where}: empty path")
                continue
            if stem in in_file:
                log.skip(utt, "duplicate_row", f"{where}: clip {c['path']} listed again")
                continue
            in_file.add(stem)
            text = normalise_sentence(c["sentence"])
            sid = sentence_id(locale, text)
            if split in ("dev", "test") and text:
                eval_sents.add(sid)
            if split not in splits:
                continue  # dev/test read only to keep their sentences out of train
            if not text:
                log.skip(utt, "empty_sentence", f"{where}: empty sentence for {c['path']}")
                continue
            if split == "train" and sid in eval_sents:
                log.skip(
                    utt, "sentence_in_eval_split", f"{where}: sentence {text!r} is in dev/test"
                )
                continue
            if split in DEFAULT_SPLITS and stem in seen_clips:
                log.skip(utt, "duplicate_clip", f"{where}: clip {c['path']} is in an earlier split")
                continue
            clip = resolve_clip(clips, c["path"])
            if clip is None:
                log.skip(utt, "missing_clip", f"{where}: {clips / Path(c['path']).name} not found")
                continue
            if split in DEFAULT_SPLITS:
                seen_clips.add(stem)
            report.n_sentences += sid not in sentences
            sentences.setdefault(sid, (split, {}))[1].setdefault(locale, text)
            out.append(Utterance(utt, split, locale, spk, text, sid, clip))
    return out


def prepare_commonvoice(
    corpus_dir: str | os.PathLike,
    out_dir: str | os.PathLike = "data",
    *,
    speech_langs: Sequence[str] | str | None = None,
    text_langs: Sequence[str] | str | None = None,
    splits: Sequence[str] = DEFAULT_SPLITS,
    train_source: str = "train",
    audio_format: str = "wav",
    audio_dir: str | os.PathLike | None = None,
    nj: int = 1,
    overwrite_audio: bool = False,
    max_warnings: int | None = 20,
    verbose: bool = False,
) -> PrepReport:
    """Write ``<out_dir>/commonvoice_<locale>_<split>`` Kaldi dirs from a Common Voice release.

    Args:
        corpus_dir: the release root or one locale directory (see :func:`find_locales`).
        out_dir: where the dirs go; ``local/commonvoice_prep.json`` (the report),
            ``local/commonvoice_skipped.tsv`` (every skipped clip and why) and
            ``local/commonvoice_sentences.tsv`` (sentence id, split, text per locale) as well.
        speech_langs: locales to prepare (default: every locale directory found).
        text_langs: locales that also get ``text.<locale>`` (default: all).
        splits: any of :data:`CV_TSVS` (default ``train dev test``).
        train_source: ``train`` (``train.tsv``) or ``validated`` (``validated.tsv``: more data;
            clips and sentences of dev/test are left out).  Either way a train clip whose
            sentence is in dev or test is skipped, so the splits never share a sentence.
        audio_format: ``wav`` (decode, 16 kHz mono WAV under ``audio_dir``) or ``source``
            (``wav.scp`` names the original clips; durations from their headers).
        audio_dir: where the WAVs go (default ``<out_dir>/commonvoice_wav``).
        nj: processes that decode clips.
        overwrite_audio: rewrite WAVs that already exist (default: reuse them).
        max_warnings: warnings per skip reason (the skipped TSV lists every one).
        verbose: print the summary.

    Returns:
        A :class:`PrepReport`; ``skipped`` counts ``malformed_row``, ``duplicate_row``,
        ``duplicate_clip``, ``empty_sentence``, ``sentence_in_eval_split``, ``missing_clip``,
        ``unreadable_audio`` and ``empty_audio``.

    Raises:
        CommonVoiceError: the corpus, a locale or a TSV is not found, a TSV lacks a required
            column, or an option is invalid.
    """
    t0 = time.perf_counter()
    bad = [s for s in splits if s not in CV_TSVS]
    if bad:
        raise CommonVoiceError(f"unknown split(s) {bad}; choose from {', '.join(CV_TSVS)}")
    if train_source not in TRAIN_SOURCES:
        raise CommonVoiceError(f"train_source must be one of {TRAIN_SOURCES}, got {train_source!r}")
    if audio_format not in AUDIO_FORMATS:
        raise CommonVoiceError(f"audio_format must be one of {AUDIO_FORMATS}, got {audio_format!r}")
    out = Path(out_dir)
    dirs = find_locales(corpus_dir, parse_list(speech_langs))
    report = PrepReport(corpus="commonvoice", out_dir=str(out))
    log = SkipLog(report, max_warnings=max_warnings)
    sentences: dict[str, tuple[str, dict[str, str]]] = {}
    utts: list[Utterance] = []
    for loc, d in dirs.items():
        if not (d / "clips").is_dir():
            raise CommonVoiceError(f"{d / 'clips'}: clips directory not found")
        utts += collect_commonvoice(
            loc,
            d,
            splits=splits,
            train_source=train_source,
            log=log,
            report=report,
            sentences=sentences,
        )
    write_dirs(
        utts,
        out,
        "commonvoice",
        report,
        log,
        text_langs=parse_list(text_langs),
        audio_dir=Path(audio_dir) if audio_dir is not None else out / "commonvoice_wav",
        audio_format=audio_format,
        nj=nj,
        overwrite_audio=overwrite_audio,
    )
    write_sentence_table(out / SENTENCES_TSV, sentences, list(dirs))
    log.write(out / SKIPPED_TSV)
    report.extra["train_source"] = train_source
    return report.finish(t0, json_path=out / REPORT_JSON, verbose=verbose)


def write_sentence_table(
    path: Path, sentences: dict[str, tuple[str, dict[str, str]]], langs: Sequence[str]
) -> Path:
    """``sent_id split <lang>...`` of every sentence used (the format ``data_prep.synth``
    reads), so that the recipe's synthesis stage can speak them; returns the path."""
    table = {sid: texts for sid, (_, texts) in sentences.items()}
    assignment = {sid: split for sid, (split, _) in sentences.items()}
    return write_sentences_tsv(path, table, assignment, list(langs))


# ------------------------------------------------------------------------------------- CLI
def add_common_args(ap, *, corpus_help: str) -> None:
    """The options every Common Voice based preparer shares (corpus, languages, audio)."""
    ap.add_argument("--corpus-dir", default=None, help=corpus_help)
    ap.add_argument(
        "--speech-langs",
        nargs="+",
        default=None,
        help="Common Voice locales, e.g. 'nl de' or 'nl,de' (default: every one found)",
    )
    ap.add_argument("--text-langs", nargs="+", default=None, help="text.<lang> files to write")
    ap.add_argument(
        "--audio-format",
        choices=AUDIO_FORMATS,
        default="wav",
        help="wav: decode to 16 kHz WAV (default); source: wav.scp names the MP3 clips",
    )
    ap.add_argument("--audio-dir", default=None, help="where the WAVs go")
    ap.add_argument("--nj", type=int, default=1, help="processes decoding clips (default 1)")
    ap.add_argument("--overwrite-audio", action="store_true", help="rewrite existing WAVs")
    ap.add_argument(
        "--check",
        action="store_true",
        help="only report which files are missing (exit 1 if any), prepare nothing",
    )


#: Options of :func:`add_common_args` that are not arguments of the preparers.
NOT_KWARGS: tuple[str, ...] = ("check",)


def run_check(problems: list[str], what: str) -> int:
    """Print the problems of a ``--check`` (or that ``what`` is ready); 1 if any."""
    for p in problems:
        print(f"missing: {p}", file=sys.stderr)
    if not problems:
        print(f"{what}: ready to prepare")
    return 1 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m data_prep.commonvoice``: parse arguments, run :func:`prepare_commonvoice`."""
    ap = prep_parser(
        "commonvoice",
        "Prepare a Common Voice release (cv-corpus-*/<locale>/clips + train/dev/test.tsv) as "
        "Kaldi dirs commonvoice_<locale>_<split> with text.<locale>, utt2sent, utt2lang.",
    )
    add_common_args(ap, corpus_help="the release root (cv-corpus-<version>) or a locale dir")
    ap.add_argument(
        "--splits",
        nargs="+",
        default=list(DEFAULT_SPLITS),
        choices=CV_TSVS,
        help="TSVs to prepare (default: train dev test)",
    )
    ap.add_argument(
        "--train-source",
        choices=TRAIN_SOURCES,
        default="train",
        help="train.tsv (default) or validated.tsv minus dev/test sentences",
    )
    args = ap.parse_args(argv)
    if args.check:
        return run_check(
            check_commonvoice(
                args.corpus_dir,
                args.speech_langs,
                args.text_langs,
                splits=args.splits,
                train_source=args.train_source,
            ),
            "commonvoice",
        )
    if args.corpus_dir is None:
        ap.error("--corpus-dir is required (the Common Voice release directory)")
    return run_preparer(lambda: prepare_commonvoice(**preparer_kwargs(args, drop=NOT_KWARGS)))


if __name__ == "__main__":
    sys.exit(main())
