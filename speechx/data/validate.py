"""Validate and fix Kaldi data dirs, reporting every problem with its file, line and id.

:func:`validate_data_dir` parses the raw bytes of every file itself, so it also works on a
directory that :meth:`KaldiDir.read <speechx.data.kaldi.KaldiDir.read>` refuses (bad UTF-8,
duplicates, malformed lines).  :func:`fix_data_dir` repairs what can be repaired mechanically
(order, line endings, ``spk2utt``, incomplete utterances) and says what it dropped and why.

>>> report = validate_data_dir("data/train")          # doctest: +SKIP
>>> print(report)                                        # doctest: +SKIP
data/train: 2 errors, 0 warnings (120 utterances)
  error    text:17 [spk1-utt9]: empty transcript
  error    segments:4 [spk1-utt3]: segment end 9.420 s is past the end of rec1 (9.000 s)
>>> report.raise_if_invalid()                            # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from speechx.audio import audio_info
from speechx.data.kaldi import (
    KaldiDir,
    Segment,
    c_sort_key,
    is_pipe,
    split_line,
    write_mapping,
)
from speechx.errors import AudioError, DataDirError

Severity = Literal["error", "warning"]

#: Files keyed by utterance id that speechx knows the meaning of.
UTT_FILES = ("text", "utt2spk", "segments", "utt2lang", "utt2dur", "utt2sent")
#: Other standard Kaldi files that :func:`fix_data_dir` filters along with the rest.
EXTRA_UTT_FILES = ("utt2gender", "utt2uniq", "utt2num_frames", "utt2category", "feats.scp")
EXTRA_REC_FILES = ("reco2dur", "reco2file_and_channel")
EXTRA_SPK_FILES = ("spk2gender", "cmvn.scp")

_LANG_FILE = re.compile(r"^text\.(?!langtags$)([A-Za-z][A-Za-z0-9_-]*)$")
_SINGLE_TOKEN_FILES = ("utt2spk", "utt2lang", "utt2sent", "utt2dur")
#: Seconds a segment may run past the end of its recording (Kaldi rounds times), as in
#: :func:`speechx.audio.load_audio`.
SEGMENT_TOLERANCE = 0.01
#: Seconds ``utt2dur`` may differ from the audio before a warning.
DURATION_TOLERANCE = 0.05
_MAX_LISTED = 200


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a data dir.

    Attributes:
        file: name of the file inside the data dir ("" for the directory itself).
        line: 1-based line number, or None when the problem is not on one line.
        id: the utterance, recording or speaker id concerned, if any.
        code: a short machine-readable kind, e.g. ``"duplicate-id"`` or ``"missing-id"``.
        message: what is wrong, for a human.
        severity: ``"error"`` (breaks training or other tools) or ``"warning"``.
    """

    file: str
    line: int | None
    id: str | None
    code: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = self.file or "."
        if self.line is not None:
            where += f":{self.line}"
        who = f" [{self.id}]" if self.id is not None else ""
        return f"{self.severity:<8} {where}{who}: {self.message}"


class InvalidDataDirError(DataDirError):
    """A data dir failed validation; ``.report`` holds the full :class:`ValidationReport`."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.summary(max_listed=20))
        self.report = report


@dataclass
class ValidationReport:
    """Everything :func:`validate_data_dir` found, in file order."""

    path: Path
    problems: list[Problem] = field(default_factory=list)
    num_utterances: int = 0
    num_recordings: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings are allowed)."""
        return not self.errors

    def codes(self) -> Counter[str]:
        """How many problems of each ``code``."""
        return Counter(p.code for p in self.problems)

    def summary(self, max_listed: int = _MAX_LISTED) -> str:
        """A header line plus up to ``max_listed`` problems, errors first."""
        n_err, n_warn = len(self.errors), len(self.warnings)
        head = (
            f"{self.path}: {n_err} error{'s' * (n_err != 1)}, "
            f"{n_warn} warning{'s' * (n_warn != 1)} ({self.num_utterances} utterances)"
        )
        ordered = self.errors + self.warnings
        lines = [head] + [f"  {p}" for p in ordered[:max_listed]]
        if len(ordered) > max_listed:
            lines.append(f"  ... and {len(ordered) - max_listed} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def raise_if_invalid(self) -> None:
        """Raises :class:`InvalidDataDirError` (a :class:`DataDirError`) if there is an error."""
        if not self.ok:
            raise InvalidDataDirError(self)


# ---------------------------------------------------------------------------- raw parsing
@dataclass
class _Line:
    no: int
    key: str
    value: str


@dataclass
class _RawFile:
    """A Kaldi file read leniently: decodable non-blank lines plus what was odd about it."""

    name: str
    lines: list[_Line] = field(default_factory=list)
    crlf: list[int] = field(default_factory=list)
    bad_utf8: list[int] = field(default_factory=list)
    blank: list[int] = field(default_factory=list)
    bom: bool = False

    def first(self) -> dict[str, _Line]:
        """Key -> its first line."""
        out: dict[str, _Line] = {}
        for ln in self.lines:
            out.setdefault(ln.key, ln)
        return out


def _read_raw(path: Path) -> _RawFile:
    raw = _RawFile(path.name)
    chunks = path.read_bytes().split(b"\n")
    if chunks and chunks[-1] == b"":
        chunks.pop()
    for no, chunk in enumerate(chunks, start=1):
        if chunk.endswith(b"\r"):
            raw.crlf.append(no)
            chunk = chunk.rstrip(b"\r")
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError:
            raw.bad_utf8.append(no)
            continue
        if no == 1 and text.startswith("\ufeff"):
            raw.bom = True
            text = text[1:]
        if not text.strip(" \t"):
            raw.blank.append(no)
            continue
        key, value = split_line(text)
        raw.lines.append(_Line(no, key, value))
    return raw


def _line_problems(raw: _RawFile) -> list[Problem]:
    """Encoding, line-ending, duplicate, order and per-line format problems of one file."""
    name = raw.name
    out: list[Problem] = []
    for no in raw.bad_utf8:
        out.append(Problem(name, no, None, "not-utf8", "line is not valid UTF-8"))
    if raw.crlf:
        out.append(
            Problem(
                name,
                raw.crlf[0],
                None,
                "crlf",
                f"{len(raw.crlf)} line(s) end in CRLF (\\r\\n); Kaldi tools need \\n",
            )
        )
    if raw.bom:
        out.append(Problem(name, 1, None, "bom", "file starts with a UTF-8 byte-order mark"))
    for no in raw.blank:
        out.append(Problem(name, no, None, "blank-line", "blank line"))
    seen: dict[str, int] = {}
    prev: _Line | None = None
    for ln in raw.lines:
        if ln.key in seen:
            out.append(
                Problem(
                    name,
                    ln.no,
                    ln.key,
                    "duplicate-id",
                    f"duplicate id (first on line {seen[ln.key]})",
                )
            )
        else:
            seen[ln.key] = ln.no
        if prev is not None and c_sort_key(ln.key) < c_sort_key(prev.key):
            out.append(
                Problem(
                    name,
                    ln.no,
                    ln.key,
                    "unsorted",
                    f"not sorted: comes after {prev.key!r} (line {prev.no}) but sorts before "
                    "it in C byte order",
                )
            )
        prev = ln if prev is None or c_sort_key(ln.key) >= c_sort_key(prev.key) else prev
        out.extend(_format_problems(name, ln))
    return out


def _format_problems(name: str, ln: _Line) -> list[Problem]:
    fields = ln.value.split()
    if name == "text":
        if not ln.value:
            return [Problem(name, ln.no, ln.key, "empty-text", "empty transcript")]
        return []
    if _LANG_FILE.match(name):
        if not ln.value:
            return [Problem(name, ln.no, ln.key, "empty-text", "empty translation", "warning")]
        return []
    if name == "text.langtags" and not fields:
        return [Problem(name, ln.no, ln.key, "malformed", "no language tags")]
    if name == "wav.scp":
        if not ln.value:
            return [Problem(name, ln.no, ln.key, "malformed", "no audio path")]
        return []
    if name == "segments":
        if len(fields) != 3:
            return [
                Problem(
                    name,
                    ln.no,
                    ln.key,
                    "malformed",
                    f"expected '<utt-id> <recording-id> <start> <end>', got {len(fields) + 1} "
                    "fields",
                )
            ]
        start, end = _float(fields[1]), _float(fields[2])
        if start is None or end is None:
            return [Problem(name, ln.no, ln.key, "malformed", "start/end are not numbers")]
        if start < 0 or end <= start:
            return [
                Problem(
                    name,
                    ln.no,
                    ln.key,
                    "bad-segment",
                    f"invalid segment [{start:g}, {end:g}] s (need 0 <= start < end)",
                )
            ]
        return []
    if name in _SINGLE_TOKEN_FILES and len(fields) != 1:
        what = "no value" if not fields else f"{len(fields)} values where one is expected"
        return [Problem(name, ln.no, ln.key, "malformed", what)]
    if name == "utt2dur":
        dur = _float(fields[0])
        if dur is None or dur <= 0:
            return [Problem(name, ln.no, ln.key, "malformed", f"duration {fields[0]!r} is not > 0")]
    if name == "spk2utt" and not fields:
        return [Problem(name, ln.no, ln.key, "malformed", "speaker has no utterances")]
    return []


def _float(s: str) -> float | None:
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _read_all(d: Path) -> dict[str, _RawFile]:
    names = {"wav.scp", "spk2utt", "text.langtags", *UTT_FILES}
    out: dict[str, _RawFile] = {}
    for f in sorted(d.iterdir()):
        if f.is_file() and (f.name in names or _LANG_FILE.match(f.name)):
            out[f.name] = _read_raw(f)
    return out


# ---------------------------------------------------------------------------- validation
def validate_data_dir(
    path: str | os.PathLike,
    *,
    check_audio: bool = True,
    allow_pipes: bool = False,
    require_text: bool = True,
) -> ValidationReport:
    """Check a Kaldi data dir and list every problem found.

    Checked: UTF-8, CRLF line endings, byte-order marks, blank and malformed lines, duplicate
    and unsorted ids (C byte order), empty transcripts, ids missing or extra across ``utt2spk``,
    ``text``, ``wav.scp`` / ``segments``, ``utt2lang``, ``utt2dur``, ``utt2sent`` and every
    ``text.<lang>`` (partial translations are a warning), ``spk2utt`` against ``utt2spk``,
    ``wav.scp`` pipes (an error unless ``allow_pipes``), and with ``check_audio`` missing or
    unreadable audio, segments past the end of their recording and ``utt2dur`` disagreeing with
    the audio.  Relative audio paths are resolved against the current directory, as Kaldi does.
    With ``require_text=False`` a dir without ``text`` is valid (unlabeled speech, e.g. for a
    speech teacher's targets); a ``text`` that is there is still checked.

    Returns:
        A :class:`ValidationReport`; ``report.ok`` is False when there is any error.  This
        function itself raises nothing for a bad directory; call ``report.raise_if_invalid()``.
    """
    d = Path(path)
    report = ValidationReport(d)
    if not d.is_dir():
        report.problems.append(Problem("", None, None, "missing-dir", f"{d} is not a directory"))
        return report
    files = _read_all(d)
    problems = report.problems
    for name in ("wav.scp", "text", "utt2spk") if require_text else ("wav.scp", "utt2spk"):
        if name not in files:
            problems.append(Problem(name, None, None, "missing-file", "required file is missing"))
    for raw in files.values():
        problems.extend(_line_problems(raw))

    first = {name: raw.first() for name, raw in files.items()}
    ref_name = next((n for n in ("utt2spk", "text", "segments") if n in first), None)
    utts = first.get(ref_name, {}) if ref_name else {}
    report.num_utterances = len(utts)
    has_segments = "segments" in first
    wav = first.get("wav.scp", {})
    report.num_recordings = len(wav)

    # ids across utterance files
    for name in UTT_FILES:
        if name == ref_name or name not in first:
            continue
        if name == "segments":
            continue  # checked below with the recordings
        problems.extend(_coverage(name, first[name], ref_name, utts, "error"))
    for name in sorted(n for n in first if _LANG_FILE.match(n)):
        # Partial translations are normal: one warning per file, not one per utterance.
        missing = [u for u in utts if u not in first[name]]
        if missing:
            problems.append(
                Problem(
                    name,
                    None,
                    None,
                    "partial-translations",
                    f"{len(missing)} of {len(utts)} utterances have no translation "
                    f"(e.g. {', '.join(missing[:3])})",
                    "warning",
                )
            )
        problems.extend(
            Problem(name, ln.no, key, "extra-id", f"id is not in {ref_name}")
            for key, ln in first[name].items()
            if key not in utts
        )
    if has_segments:
        if ref_name != "segments":
            problems.extend(_coverage("segments", first["segments"], ref_name, utts, "error"))
        used: set[str] = set()
        for utt, ln in first["segments"].items():
            fields = ln.value.split()
            if not fields:
                continue
            used.add(fields[0])
            if "wav.scp" in first and fields[0] not in wav:
                problems.append(
                    Problem(
                        "segments",
                        ln.no,
                        utt,
                        "missing-id",
                        f"recording {fields[0]!r} is not in wav.scp",
                    )
                )
        for rec, ln in wav.items():
            if rec not in used:
                problems.append(
                    Problem(
                        "wav.scp",
                        ln.no,
                        rec,
                        "unused-recording",
                        "no segment uses this recording",
                        "warning",
                    )
                )
    elif "wav.scp" in first and ref_name is not None:
        problems.extend(_coverage("wav.scp", wav, ref_name, utts, "error"))

    if "spk2utt" in first and "utt2spk" in first:
        problems.extend(_check_spk2utt(first["spk2utt"], first["utt2spk"]))
    elif "utt2spk" in first:
        problems.append(
            Problem("spk2utt", None, None, "missing-file", "spk2utt is missing", "warning")
        )
    if "utt2spk" in first:
        problems.extend(_check_speaker_order(first["utt2spk"]))

    # recordings
    durations: dict[str, float] = {}
    for rec, ln in wav.items():
        if is_pipe(ln.value):
            if not allow_pipes:
                problems.append(
                    Problem(
                        "wav.scp",
                        ln.no,
                        rec,
                        "pipe",
                        f"entry is a shell pipe ({ln.value!r}); pipes are not allowed here",
                    )
                )
            continue
        if not check_audio or not ln.value:
            continue
        try:
            info = audio_info(ln.value)
        except AudioError as exc:
            problems.append(Problem("wav.scp", ln.no, rec, "bad-audio", str(exc)))
            continue
        if info.num_samples == 0:
            problems.append(
                Problem("wav.scp", ln.no, rec, "bad-audio", f"{ln.value}: audio has zero samples")
            )
            continue
        durations[rec] = info.duration
    if check_audio:
        problems.extend(_check_durations(first, durations, has_segments))
    return report


def _coverage(
    name: str,
    entries: dict[str, _Line],
    ref_name: str | None,
    utts: dict[str, _Line],
    severity: Severity,
) -> list[Problem]:
    out: list[Problem] = []
    for utt, ln in utts.items():
        if utt not in entries:
            out.append(
                Problem(
                    name,
                    None,
                    utt,
                    "missing-id",
                    f"utterance (line {ln.no} of {ref_name}) has no line in {name}",
                    severity,
                )
            )
    for key, ln in entries.items():
        if key not in utts:
            out.append(Problem(name, ln.no, key, "extra-id", f"id is not in {ref_name}", "error"))
    return out


def _check_spk2utt(spk2utt: dict[str, _Line], utt2spk: dict[str, _Line]) -> list[Problem]:
    expected: dict[str, list[str]] = {}
    for utt in sorted(utt2spk, key=c_sort_key):
        fields = utt2spk[utt].value.split()
        if fields:
            expected.setdefault(fields[0], []).append(utt)
    out: list[Problem] = []
    for spk, ln in spk2utt.items():
        got = ln.value.split()
        want = expected.get(spk)
        if want is None:
            out.append(Problem("spk2utt", ln.no, spk, "spk2utt", "speaker is not in utt2spk"))
        elif got != want:
            missing = sorted(set(want) - set(got), key=c_sort_key)
            extra = sorted(set(got) - set(want), key=c_sort_key)
            detail = []
            if missing:
                detail.append(f"missing {', '.join(missing[:5])}")
            if extra:
                detail.append(f"extra {', '.join(extra[:5])}")
            if not detail:
                detail.append("utterances not in sorted order")
            out.append(
                Problem(
                    "spk2utt",
                    ln.no,
                    spk,
                    "spk2utt",
                    f"inconsistent with utt2spk ({'; '.join(detail)})",
                )
            )
    for spk in expected:
        if spk not in spk2utt:
            out.append(Problem("spk2utt", None, spk, "spk2utt", "speaker from utt2spk is missing"))
    return out


def _check_speaker_order(utt2spk: dict[str, _Line]) -> list[Problem]:
    """Kaldi wants utt2spk sorted by utterance to be sorted by speaker too (speaker prefixes)."""
    prev: str | None = None
    for utt in sorted(utt2spk, key=c_sort_key):
        fields = utt2spk[utt].value.split()
        if not fields:
            continue
        if prev is not None and c_sort_key(fields[0]) < c_sort_key(prev):
            return [
                Problem(
                    "utt2spk",
                    utt2spk[utt].no,
                    utt,
                    "speaker-order",
                    "sorting by utterance does not sort by speaker; Kaldi tools want utterance "
                    "ids prefixed with the speaker id (lhotse does not care)",
                    "warning",
                )
            ]
        prev = fields[0]
    return []


def _check_durations(
    first: dict[str, dict[str, _Line]], durations: dict[str, float], has_segments: bool
) -> list[Problem]:
    out: list[Problem] = []
    actual: dict[str, float] = {}
    if has_segments:
        for utt, ln in first["segments"].items():
            fields = ln.value.split()
            if len(fields) != 3 or fields[0] not in durations:
                continue
            start, end = _float(fields[1]), _float(fields[2])
            if start is None or end is None or end <= start:
                continue
            rec_dur = durations[fields[0]]
            if end > rec_dur + SEGMENT_TOLERANCE:
                out.append(
                    Problem(
                        "segments",
                        ln.no,
                        utt,
                        "segment-past-end",
                        f"segment end {end:.3f} s is past the end of {fields[0]} ({rec_dur:.3f} s)",
                    )
                )
            actual[utt] = end - start
    else:
        actual = dict(durations)
    for utt, ln in first.get("utt2dur", {}).items():
        fields = ln.value.split()
        claimed = _float(fields[0]) if len(fields) == 1 else None
        if claimed is None or utt not in actual:
            continue
        if abs(claimed - actual[utt]) > DURATION_TOLERANCE:
            out.append(
                Problem(
                    "utt2dur",
                    ln.no,
                    utt,
                    "duration-mismatch",
                    f"utt2dur says {claimed:.3f} s but the audio is {actual[utt]:.3f} s",
                    "warning",
                )
            )
    return out


# ---------------------------------------------------------------------------- fixing
@dataclass
class FixReport:
    """What :func:`fix_data_dir` did.

    Attributes:
        source, output: the directory read and the directory written (the same when in place).
        kept: number of utterances written.
        dropped: utterance id -> reasons it was dropped.
        dropped_recordings: recording id -> reason it was dropped.
        changes: other edits, one readable line each (sorting, CRLF, spk2utt, ...).
    """

    source: Path
    output: Path
    kept: int = 0
    dropped: dict[str, list[str]] = field(default_factory=dict)
    dropped_recordings: dict[str, str] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"{self.source} -> {self.output}: kept {self.kept} utterances, dropped "
            f"{len(self.dropped)} utterances and {len(self.dropped_recordings)} recordings"
        ]
        lines += [f"  changed: {c}" for c in self.changes]
        for utt in sorted(self.dropped, key=c_sort_key)[:_MAX_LISTED]:
            lines.append(f"  dropped {utt}: {'; '.join(self.dropped[utt])}")
        if len(self.dropped) > _MAX_LISTED:
            lines.append(f"  ... and {len(self.dropped) - _MAX_LISTED} more")
        for rec in sorted(self.dropped_recordings, key=c_sort_key)[:_MAX_LISTED]:
            lines.append(f"  dropped recording {rec}: {self.dropped_recordings[rec]}")
        return "\n".join(lines)


def fix_data_dir(
    path: str | os.PathLike, *, out: str | os.PathLike | None = None, check_audio: bool = False
) -> FixReport:
    """Repair a data dir: sort, normalise line endings, drop incomplete utterances.

    An utterance is kept only if it has a ``utt2spk`` speaker, a non-empty ``text``, audio
    (a ``wav.scp`` entry, and a valid ``segments`` line when that file exists) and a line in each
    of ``utt2lang``, ``utt2dur``, ``utt2sent`` that exists.  Lines that are not UTF-8 or are
    malformed are discarded; an id given twice with different values is dropped from that file
    (identical repeats are merged).  Recordings no kept utterance uses are dropped.
    ``text.<lang>`` files, and the standard Kaldi extras (``spk2gender``, ``reco2dur``,
    ``feats.scp``, ...), are filtered to what is kept; ``spk2utt`` is regenerated.  With
    ``check_audio`` utterances whose audio is missing, unreadable or too short for the segment
    are dropped too.  Every file is written atomically.

    Args:
        path: the data dir to read.
        out: where to write; ``None`` rewrites ``path`` in place.

    Returns:
        A :class:`FixReport`.

    Raises:
        DataDirError: ``path`` is not a directory, it has no ``utt2spk``, or no utterance would
            be left (then nothing is written).
    """
    src = Path(path)
    dst = Path(out) if out is not None else src
    if not src.is_dir():
        raise DataDirError(f"{src}: not a directory")
    if not (src / "utt2spk").is_file():
        raise DataDirError(f"{src}: missing utt2spk, cannot tell which utterances exist")
    report = FixReport(src, dst)
    files = _read_all(src)
    maps: dict[str, dict[str, str]] = {}
    for name, raw in files.items():
        maps[name] = _clean_mapping(raw, report)

    drop: dict[str, list[str]] = {}

    def reject(utt: str, why: str) -> None:
        drop.setdefault(utt, []).append(why)

    # Every id on a decodable utt2spk line is an utterance, even if its line is unusable.
    utt2spk = {ln.key: maps["utt2spk"].get(ln.key, "") for ln in files["utt2spk"].lines}
    for utt, spk in utt2spk.items():
        if len(spk.split()) != 1:
            reject(utt, "no valid line in utt2spk")
    text = maps.get("text", {})
    wav = {k: v for k, v in maps.get("wav.scp", {}).items() if v}
    has_segments = "segments" in maps
    segments: dict[str, Segment] = {}
    for utt in utt2spk:
        if utt not in text:
            reject(utt, "no line in text")
        elif not text[utt]:
            reject(utt, "empty transcript")
        if has_segments:
            seg = _parse_segment(maps["segments"].get(utt))
            if seg is None:
                reject(utt, "no valid line in segments")
            elif seg.recording_id not in wav:
                reject(utt, f"recording {seg.recording_id!r} is not in wav.scp")
            else:
                segments[utt] = seg
        elif utt not in wav:
            reject(utt, "no line in wav.scp")
        for name in ("utt2lang", "utt2sent"):
            if name in maps and len(maps[name].get(utt, "").split()) != 1:
                reject(utt, f"no valid line in {name}")
        if "utt2dur" in maps:
            dur = _float(maps["utt2dur"].get(utt, "x"))
            if dur is None or dur <= 0:
                reject(utt, "no valid line in utt2dur")
    for name in ("text", "segments", "utt2lang", "utt2dur", "utt2sent"):
        extra = [k for k in maps.get(name, {}) if k not in utt2spk]
        if extra:
            report.changes.append(f"removed {len(extra)} line(s) of {name} not in utt2spk")
    if check_audio:
        _reject_bad_audio(utt2spk, wav, segments, has_segments, reject)

    keep = [u for u in sorted(utt2spk, key=c_sort_key) if u not in drop]
    if not keep:
        reasons = Counter(r for rs in drop.values() for r in rs).most_common(3)
        raise DataDirError(
            f"{src}: every utterance would be dropped (most common reasons: "
            f"{'; '.join(f'{r} ({n})' for r, n in reasons)}); nothing written"
        )
    report.dropped = drop
    report.kept = len(keep)
    used_recs = {segments[u].recording_id for u in keep} if has_segments else set(keep)
    for rec in maps.get("wav.scp", {}):
        if rec not in used_recs:
            report.dropped_recordings[rec] = (
                "audio path is empty" if rec not in wav else "no kept utterance uses it"
            )

    kd = KaldiDir(
        wav_scp={r: wav[r] for r in used_recs if r in wav},
        text={u: text[u] for u in keep},
        utt2spk={u: utt2spk[u].split()[0] for u in keep},
        segments={u: segments[u] for u in keep} if has_segments else {},
        utt2lang={u: maps["utt2lang"][u] for u in keep} if "utt2lang" in maps else {},
        utt2dur={u: float(maps["utt2dur"][u]) for u in keep} if "utt2dur" in maps else {},
        utt2sent={u: maps["utt2sent"][u] for u in keep} if "utt2sent" in maps else {},
        langtags=(
            {u: maps["text.langtags"][u] for u in keep if u in maps["text.langtags"]}
            if "text.langtags" in maps
            else {}
        ),
    )
    keep_set = set(keep)
    for name, mapping in maps.items():
        m = _LANG_FILE.match(name)
        if m:
            kd.translations[m.group(1)] = {u: v for u, v in mapping.items() if u in keep_set}
    if "spk2utt" in files:
        old = {spk: v.split() for spk, v in maps["spk2utt"].items()}
        if old != {spk: utts for spk, utts in kd.spk2utt.items()}:
            report.changes.append("regenerated spk2utt from utt2spk")
    else:
        report.changes.append("created spk2utt from utt2spk")
    for name, raw in files.items():
        if raw.lines != sorted(raw.lines, key=lambda ln: c_sort_key(ln.key)):
            report.changes.append(f"sorted {name}")
        if raw.crlf:
            report.changes.append(f"converted CRLF line endings of {name}")
        if raw.bom:
            report.changes.append(f"removed the byte-order mark of {name}")
    kd.write(dst)
    _filter_extras(src, dst, keep_set, set(kd.wav_scp), set(kd.utt2spk.values()), report)
    return report


def _clean_mapping(raw: _RawFile, report: FixReport) -> dict[str, str]:
    for no in raw.bad_utf8:
        report.changes.append(f"discarded line {no} of {raw.name}: not valid UTF-8")
    if raw.blank:
        report.changes.append(f"removed {len(raw.blank)} blank line(s) of {raw.name}")
    out: dict[str, str] = {}
    conflicting: set[str] = set()
    for ln in raw.lines:
        if ln.key in out and out[ln.key] != ln.value:
            conflicting.add(ln.key)
        elif ln.key in out:
            report.changes.append(f"merged repeated identical line {ln.no} of {raw.name}")
        out.setdefault(ln.key, ln.value)
    for key in sorted(conflicting, key=c_sort_key):
        report.changes.append(f"discarded id {key!r} of {raw.name}: given twice, differently")
        del out[key]
    return out


def _parse_segment(value: str | None) -> Segment | None:
    if value is None:
        return None
    fields = value.split()
    if len(fields) != 3:
        return None
    start, end = _float(fields[1]), _float(fields[2])
    if start is None or end is None or start < 0 or end <= start:
        return None
    return Segment(fields[0], start, end)


def _reject_bad_audio(
    utt2spk: dict[str, str],
    wav: dict[str, str],
    segments: dict[str, Segment],
    has_segments: bool,
    reject: Callable[[str, str], None],
) -> None:
    durations: dict[str, float | str] = {}
    for rec, entry in wav.items():
        if is_pipe(entry):
            continue
        try:
            info = audio_info(entry)
        except AudioError as exc:
            durations[rec] = str(exc)
            continue
        durations[rec] = info.duration if info.num_samples else f"{entry}: zero samples"
    for utt in utt2spk:
        rec = segments[utt].recording_id if has_segments and utt in segments else utt
        dur = durations.get(rec)
        if isinstance(dur, str):
            reject(utt, f"bad audio: {dur}")
        elif (
            dur is not None
            and has_segments
            and utt in segments
            and segments[utt].end > dur + SEGMENT_TOLERANCE
        ):
            reject(utt, f"segment ends past the end of {rec} ({dur:.3f} s)")


def _filter_extras(
    src: Path, dst: Path, utts: set[str], recs: set[str], spks: set[str], report: FixReport
) -> None:
    groups = ((EXTRA_UTT_FILES, utts), (EXTRA_REC_FILES, recs), (EXTRA_SPK_FILES, spks))
    for names, keep in groups:
        for name in names:
            if not (src / name).is_file():
                continue
            raw = _read_raw(src / name)
            rows = sorted(
                ((ln.key, ln.value) for ln in raw.lines if ln.key in keep),
                key=lambda kv: c_sort_key(kv[0]),
            )
            write_mapping(dst / name, rows)
            if len(rows) != len(raw.lines):
                report.changes.append(f"filtered {name} to the kept ids")
