"""Kaldi data directories: the on-disk interchange format of speechx.

A data dir holds one file per mapping, each line ``<key> <value>`` sorted by key:

==============  ==============================================================
``wav.scp``     recording id -> audio path (``cmd |`` pipes only when opted in)
``text``        utterance id -> transcript in the spoken language
``utt2spk``     utterance id -> speaker id (``spk2utt`` is derived from it)
``segments``    utterance id -> ``<recording-id> <start> <end>`` (optional)
``utt2lang``    utterance id -> language code of the speech (optional)
``utt2dur``     utterance id -> duration in seconds (optional)
``utt2sent``    utterance id -> sentence id, shared by every rendition of one
                sentence in any language (speechx extension; optional)
``text.<lang>`` utterance id -> translation into ``<lang>`` (optional, any number)
``text.langtags`` utterance id -> one language tag per MER token of ``text``, for
                code-switched speech (speechx extension; optional; not a translation)
==============  ==============================================================

Without ``segments`` each utterance is a whole recording and utterance id == recording id.
Other tools (lhotse's Kaldi importer among them) read the directories we write unchanged.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from speechx.errors import DataDirError

_LANG_FILE = re.compile(r"^text\.(?!langtags$)([A-Za-z][A-Za-z0-9_-]*)$")
# Kaldi separates fields with ASCII blanks only; other Unicode spaces (NBSP, ideographic space)
# are part of a transcript and must survive a write/read round trip.
_ASCII_WS = " \t\n\r\f\v"
_ASCII_WS_RUN = re.compile(r"[ \t\n\r\f\v]+")


def c_sort_key(key: str) -> bytes:
    """Sort key giving Kaldi's order: bytewise on UTF-8, as ``LC_ALL=C sort``.

    Python already orders ``str`` by code point, which equals UTF-8 byte order; this makes the
    contract explicit and is what every sort of ids in speechx uses.
    """
    return key.encode("utf-8", "surrogatepass")


def split_line(line: str) -> tuple[str, str]:
    """Split a Kaldi line into ``(key, value)`` at the first run of ASCII blanks.

    The value has surrounding ASCII blanks removed (inner spacing is kept); it is ``""`` for a
    line holding only a key.
    """
    stripped = line.strip(_ASCII_WS)
    m = _ASCII_WS_RUN.search(stripped)
    if m is None:
        return stripped, ""
    return stripped[: m.start()], stripped[m.end() :]


def normalise_value(value: str) -> str:
    """Collapse runs of ASCII whitespace (incl. newlines) to one space and strip the ends.

    This is exactly what a value loses when written to a Kaldi file and read back.
    """
    return _ASCII_WS_RUN.sub(" ", value).strip(" ")


@dataclass(frozen=True)
class Segment:
    """A stretch of a recording, in seconds."""

    recording_id: str
    start: float
    end: float


@dataclass
class KaldiDir:
    """An in-memory Kaldi data dir.  Every mapping is a plain ``dict`` keyed by id."""

    wav_scp: dict[str, str] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    utt2spk: dict[str, str] = field(default_factory=dict)
    segments: dict[str, Segment] = field(default_factory=dict)
    utt2lang: dict[str, str] = field(default_factory=dict)
    utt2dur: dict[str, float] = field(default_factory=dict)
    utt2sent: dict[str, str] = field(default_factory=dict)
    translations: dict[str, dict[str, str]] = field(default_factory=dict)
    langtags: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ views
    @property
    def utt_ids(self) -> list[str]:
        """Utterance ids from ``utt2spk`` (the file every data dir has), in C byte order."""
        return sorted(self.utt2spk, key=c_sort_key)

    def __len__(self) -> int:
        return len(self.utt2spk)

    @property
    def spk2utt(self) -> dict[str, list[str]]:
        """Speaker id -> its utterance ids, both in C byte order (derived from ``utt2spk``)."""
        out: dict[str, list[str]] = {}
        for utt in self.utt_ids:
            out.setdefault(self.utt2spk[utt], []).append(utt)
        return {spk: out[spk] for spk in sorted(out, key=c_sort_key)}

    @property
    def languages(self) -> list[str]:
        """Sorted translation languages (the ``<lang>`` of every ``text.<lang>``)."""
        return sorted(self.translations)

    def recording_id(self, utt: str) -> str:
        return self.segments[utt].recording_id if self.segments else utt

    def audio_path(self, utt: str) -> str:
        """The ``wav.scp`` entry of the recording that holds ``utt``."""
        return self.wav_scp[self.recording_id(utt)]

    def segment(self, utt: str) -> tuple[float | None, float | None]:
        """``(start, end)`` in seconds, or ``(None, None)`` for a whole recording."""
        if not self.segments:
            return None, None
        seg = self.segments[utt]
        return seg.start, seg.end

    def subset(self, utt_ids: Iterable[str]) -> KaldiDir:
        """A new dir restricted to ``utt_ids`` (recordings without an utterance are dropped)."""
        keep = set(utt_ids) & set(self.utt2spk)

        def pick(d: dict) -> dict:
            return {k: v for k, v in d.items() if k in keep}

        segments = pick(self.segments)
        recs = {s.recording_id for s in segments.values()} if self.segments else keep
        return KaldiDir(
            wav_scp={k: v for k, v in self.wav_scp.items() if k in recs},
            text=pick(self.text),
            utt2spk=pick(self.utt2spk),
            segments=segments,
            utt2lang=pick(self.utt2lang),
            utt2dur=pick(self.utt2dur),
            utt2sent=pick(self.utt2sent),
            translations={lang: pick(t) for lang, t in self.translations.items()},
            langtags=pick(self.langtags),
        )

    # ------------------------------------------------------------------ I/O
    @classmethod
    def read(cls, path: str | os.PathLike, *, allow_pipes: bool = False) -> KaldiDir:
        """Read a data dir.

        Raises:
            DataDirError: the directory or ``utt2spk`` is missing, the path is a file, a line
                is malformed (the file and line number are named), a file is not UTF-8, or
                ``wav.scp`` holds a ``cmd |`` pipe and ``allow_pipes`` is false.
        """
        d = Path(path)
        if not d.exists():
            raise DataDirError(f"{d}: data directory not found")
        if not d.is_dir():
            raise DataDirError(f"{d}: not a directory (a Kaldi data dir is a directory)")
        if not (d / "utt2spk").is_file():
            raise DataDirError(f"{d}: missing utt2spk (every Kaldi data dir needs it)")
        out = cls()
        out.utt2spk = read_mapping(d / "utt2spk")
        if (d / "wav.scp").is_file():
            out.wav_scp = read_mapping(d / "wav.scp")
            if not allow_pipes:
                for rec, val in out.wav_scp.items():
                    if is_pipe(val):
                        raise DataDirError(
                            f"{d / 'wav.scp'}: entry {rec!r} is a shell pipe ({val!r}); "
                            "pass allow_pipes=True (--allow-pipes) to run it"
                        )
        if (d / "text").is_file():
            out.text = read_mapping(d / "text", allow_empty=True)
        if (d / "segments").is_file():
            out.segments = _read_segments(d / "segments")
        if (d / "utt2lang").is_file():
            out.utt2lang = read_mapping(d / "utt2lang")
        if (d / "utt2dur").is_file():
            out.utt2dur = _read_floats(d / "utt2dur")
        if (d / "utt2sent").is_file():
            out.utt2sent = read_mapping(d / "utt2sent")
        if (d / "text.langtags").is_file():
            out.langtags = read_mapping(d / "text.langtags", allow_empty=True)
        for f in sorted(d.iterdir()):
            m = _LANG_FILE.match(f.name)
            if m and f.is_file():
                out.translations[m.group(1)] = read_mapping(f, allow_empty=True)
        return out

    def write(self, path: str | os.PathLike) -> Path:
        """Write every non-empty mapping (plus ``spk2utt``), sorted, each file atomically.

        Files of optional mappings that are empty here but exist on disk are removed, so that
        the directory always mirrors this object.
        """
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        files: dict[str, Iterable[tuple[str, str]] | None] = {
            "wav.scp": self.wav_scp.items(),
            "text": self.text.items(),
            "utt2spk": self.utt2spk.items(),
            "spk2utt": ((s, " ".join(u)) for s, u in self.spk2utt.items()),
            "segments": (
                (u, f"{s.recording_id} {_fmt_time(s.start)} {_fmt_time(s.end)}")
                for u, s in self.segments.items()
            ),
            "utt2lang": self.utt2lang.items(),
            "utt2dur": ((u, f"{v:.3f}") for u, v in self.utt2dur.items()),
            "utt2sent": self.utt2sent.items(),
            "text.langtags": self.langtags.items(),
        }
        for lang, t in self.translations.items():
            files[f"text.{lang}"] = t.items()
        for name, items in files.items():
            rows = sorted(items or [], key=lambda kv: c_sort_key(kv[0]))
            if rows:
                write_mapping(d / name, rows)
            elif (d / name).exists():
                (d / name).unlink()
        for f in d.iterdir():
            m = _LANG_FILE.match(f.name)
            if m and m.group(1) not in self.translations:
                f.unlink()
        return d


def is_pipe(entry: str) -> bool:
    """True for a ``wav.scp`` value that is a shell command (``... |``)."""
    return entry.rstrip().endswith("|")


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` of a UTF-8 text file, without the line ending.

    Raises:
        DataDirError: the file is not valid UTF-8 (the line number is named).
    """
    with open(path, "rb") as fh:
        for no, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataDirError(f"{path}:{no}: not valid UTF-8 ({exc.reason})") from None
            if no == 1 and line.startswith("\ufeff"):
                line = line[1:]  # a UTF-8 byte-order mark is not part of the first id
            yield no, line.rstrip("\n").rstrip("\r")


def read_mapping(path: Path, *, allow_empty: bool = False) -> dict[str, str]:
    """Read ``<key> <value>`` lines.

    Raises:
        DataDirError: a duplicate key, or a line without a value (unless ``allow_empty``).
    """
    out: dict[str, str] = {}
    for no, line in iter_lines(path):
        if not line.strip(_ASCII_WS):
            continue
        key, value = split_line(line)
        if not value and not allow_empty:
            raise DataDirError(f"{path}:{no}: line for {key!r} has no value")
        if key in out:
            raise DataDirError(f"{path}:{no}: duplicate id {key!r}")
        out[key] = value
    return out


def write_mapping(path: Path, rows: Iterable[tuple[str, str]]) -> None:
    """Write ``<key> <value>`` lines atomically (temp file in the same dir, then rename)."""
    lines = []
    for key, value in rows:
        if not key or any(c.isspace() for c in key):
            raise DataDirError(f"{path}: id {key!r} is empty or contains whitespace")
        if key.startswith("\ufeff"):
            # On the first line it would be read back (by us and most tools) as a byte-order
            # mark, and the id would lose its first character.
            raise DataDirError(f"{path}: id {key!r} starts with U+FEFF (a byte-order mark)")
        value = normalise_value(str(value))  # no newlines or tabs inside a value
        lines.append(f"{key} {value}\n" if value else f"{key}\n")
    atomic_write_text(path, "".join(lines))


def atomic_write_text(path: Path, content: str) -> None:
    """Write ``content`` as UTF-8 with ``\\n`` line endings to a temp file, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_segments(path: Path) -> dict[str, Segment]:
    out: dict[str, Segment] = {}
    for no, line in iter_lines(path):
        if not line.strip(_ASCII_WS):
            continue
        parts = _ASCII_WS_RUN.split(line.strip(_ASCII_WS))
        if len(parts) != 4:
            raise DataDirError(
                f"{path}:{no}: expected '<utt-id> <recording-id> <start> <end>', got {line!r}"
            )
        utt, rec, s, e = parts
        try:
            start, end = float(s), float(e)
        except ValueError:
            raise DataDirError(f"{path}:{no}: start/end of {utt!r} are not numbers") from None
        if utt in out:
            raise DataDirError(f"{path}:{no}: duplicate id {utt!r}")
        out[utt] = Segment(rec, start, end)
    return out


def _read_floats(path: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for no, line in iter_lines(path):
        if not line.strip(_ASCII_WS):
            continue
        key, value = split_line(line)
        try:
            out_value = float(value)
        except ValueError:
            raise DataDirError(
                f"{path}:{no}: value of {key!r} is not a number: {value!r}"
            ) from None
        if key in out:
            raise DataDirError(f"{path}:{no}: duplicate id {key!r}")
        out[key] = out_value
    return out


def _fmt_time(t: float) -> str:
    return f"{t:.3f}"
