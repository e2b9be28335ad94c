"""JSONL manifests: one utterance per line, a lossless alternative view of a Kaldi data dir.

Each line is a JSON object::

    {"id": "spk1-utt1",
     "audio": {"path": "/data/rec1.wav", "recording": "rec1", "start": 0.1, "end": 1.1},
     "speaker": "spk1", "lang": "nl", "duration": 1.0, "sentence": "sent17",
     "text": "waar is de uitgang", "translations": {"en": "where is the exit"},
     "langtags": null}

``id``, ``audio.path`` and ``speaker`` are required.  ``audio.start``/``audio.end`` are present
(numbers) exactly when the data dir has ``segments``; then ``audio.recording`` names the
recording (it defaults to the utterance id).  ``langtags`` is the ``text.langtags`` line of a
code-switched utterance (one language tag per MER token of ``text``).  Optional fields are
``null`` or absent when the data dir has no entry; ``"text": ""`` is an empty transcript, which
is not the same as no transcript.  Unknown keys are ignored, so newer manifests stay readable.
A ``.gz`` suffix means gzip.

:func:`write_manifest` then :func:`read_manifest` gives back an equal :class:`KaldiDir` (every
mapping, floats bit-exact), and the reverse holds too.  Recordings that no utterance uses are not
represented.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from speechx.data.kaldi import KaldiDir, Segment
from speechx.errors import DataDirError


def kaldi_records(kdir: KaldiDir) -> list[dict[str, Any]]:
    """One manifest record (a JSON-ready dict) per utterance, in C byte order of ids.

    Raises:
        DataDirError: an utterance has no audio (no ``wav.scp`` entry for its recording, or no
            segment when the dir has segments).
    """
    records: list[dict[str, Any]] = []
    has_segments = bool(kdir.segments)
    for utt in kdir.utt_ids:
        if has_segments and utt not in kdir.segments:
            raise DataDirError(f"utterance {utt!r} has no line in segments")
        rec = kdir.recording_id(utt)
        if rec not in kdir.wav_scp:
            raise DataDirError(f"utterance {utt!r}: recording {rec!r} is not in wav.scp")
        audio: dict[str, Any] = {"path": kdir.wav_scp[rec]}
        if has_segments:
            seg = kdir.segments[utt]
            audio.update(recording=seg.recording_id, start=seg.start, end=seg.end)
        records.append(
            {
                "id": utt,
                "audio": audio,
                "speaker": kdir.utt2spk[utt],
                "lang": kdir.utt2lang.get(utt),
                "duration": kdir.utt2dur.get(utt),
                "sentence": kdir.utt2sent.get(utt),
                "text": kdir.text.get(utt),
                "translations": {
                    lang: kdir.translations[lang][utt]
                    for lang in sorted(kdir.translations)
                    if utt in kdir.translations[lang]
                },
                "langtags": kdir.langtags.get(utt),
            }
        )
    return records


def write_manifest(kdir: KaldiDir, path: str | os.PathLike) -> Path:
    """Write ``kdir`` as a JSONL manifest atomically (gzip when ``path`` ends in ``.gz``).

    Returns:
        The path written.

    Raises:
        DataDirError: an utterance has no audio (see :func:`kaldi_records`).
    """
    p = Path(path)
    lines = [json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in kaldi_records(kdir)]
    data = "".join(lines).encode("utf-8")
    if p.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def iter_manifest(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` for each non-blank line.

    Raises:
        DataDirError: the file is missing, a line is not UTF-8 or not a JSON object (file and
            line named).
    """
    p = Path(path)
    if not p.is_file():
        raise DataDirError(f"{p}: manifest not found")
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rb") as fh:
        for no, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataDirError(f"{p}:{no}: not valid UTF-8 ({exc.reason})") from None
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataDirError(
                    f"{p}:{no}: bad JSON ({exc.msg} at column {exc.colno})"
                ) from None
            if not isinstance(rec, dict):
                raise DataDirError(f"{p}:{no}: expected a JSON object, got {type(rec).__name__}")
            yield no, rec


def read_manifest(path: str | os.PathLike) -> KaldiDir:
    """Read a JSONL manifest into a :class:`KaldiDir`.

    Returns:
        The data dir in memory (write it with ``.write(dir)``).

    Raises:
        DataDirError: bad JSON, a missing or mistyped field, a duplicate id, an id with
            whitespace, the same recording given two paths, or segments on some lines only.
            The message names the file and line.
    """
    p = Path(path)
    kd = KaldiDir()
    seen: dict[str, int] = {}
    segmented: bool | None = None
    for no, rec in iter_manifest(p):
        where = f"{p}:{no}"
        utt = _req_str(rec, "id", where)
        if any(c.isspace() for c in utt):
            raise DataDirError(f"{where}: id {utt!r} contains whitespace")
        if utt in seen:
            raise DataDirError(f"{where}: duplicate id {utt!r} (first on line {seen[utt]})")
        seen[utt] = no
        where = f"{where} ({utt})"
        audio = rec.get("audio")
        if not isinstance(audio, dict):
            raise DataDirError(f"{where}: missing field 'audio' (an object with 'path')")
        audio_path = _req_str(audio, "path", where, "audio.path")
        has_seg = audio.get("start") is not None or audio.get("end") is not None
        if segmented is None:
            segmented = has_seg
        elif segmented != has_seg:
            raise DataDirError(
                f"{where}: audio.start/end must be given on every line or on none "
                f"(line {min(seen.values())} {'has' if segmented else 'has no'} segment)"
            )
        if has_seg:
            rec_id = _opt_str(audio, "recording", where, "audio.recording") or utt
            start = _req_num(audio, "start", where, "audio.start")
            end = _req_num(audio, "end", where, "audio.end")
            kd.segments[utt] = Segment(rec_id, start, end)
        else:
            rec_id = utt
        old = kd.wav_scp.setdefault(rec_id, audio_path)
        if old != audio_path:
            raise DataDirError(
                f"{where}: recording {rec_id!r} has path {audio_path!r} here but {old!r} earlier"
            )
        kd.utt2spk[utt] = _req_str(rec, "speaker", where)
        optional = (
            ("lang", kd.utt2lang),
            ("sentence", kd.utt2sent),
            ("text", kd.text),
            ("langtags", kd.langtags),
        )
        for key, target in optional:
            value = _opt_str(rec, key, where)
            if value is not None:
                target[utt] = value
        dur = rec.get("duration")
        if dur is not None:
            kd.utt2dur[utt] = _req_num(rec, "duration", where)
        trans = rec.get("translations")
        if trans is not None:
            if not isinstance(trans, dict):
                raise DataDirError(f"{where}: 'translations' must be an object {{lang: text}}")
            for lang, text in trans.items():
                if not isinstance(text, str):
                    raise DataDirError(f"{where}: translations[{lang!r}] is not a string")
                kd.translations.setdefault(lang, {})[utt] = text
    return kd


def kaldi_to_manifest(kaldi_dir: str | os.PathLike, manifest: str | os.PathLike) -> Path:
    """Convert a Kaldi data dir on disk to a JSONL manifest.

    Returns:
        The manifest path.

    Raises:
        DataDirError: the data dir cannot be read or an utterance has no audio.
    """
    return write_manifest(KaldiDir.read(kaldi_dir, allow_pipes=True), manifest)


def manifest_to_kaldi(manifest: str | os.PathLike, kaldi_dir: str | os.PathLike) -> Path:
    """Convert a JSONL manifest to a Kaldi data dir on disk.

    Returns:
        The data dir path.

    Raises:
        DataDirError: the manifest is bad (see :func:`read_manifest`).
    """
    return read_manifest(manifest).write(kaldi_dir)


def _req_str(obj: dict[str, Any], key: str, where: str, name: str | None = None) -> str:
    value = obj.get(key)
    if value is None:
        raise DataDirError(f"{where}: missing field {name or key!r}")
    if not isinstance(value, str) or (key in ("id", "path", "speaker") and not value):
        raise DataDirError(f"{where}: field {name or key!r} must be a non-empty string")
    return value


def _opt_str(obj: dict[str, Any], key: str, where: str, name: str | None = None) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise DataDirError(f"{where}: field {name or key!r} must be a string or null")
    return value


def _req_num(obj: dict[str, Any], key: str, where: str, name: str | None = None) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataDirError(f"{where}: field {name or key!r} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise DataDirError(f"{where}: field {name or key!r} is not finite")
    return float(value)


__all__ = [
    "iter_manifest",
    "kaldi_records",
    "kaldi_to_manifest",
    "manifest_to_kaldi",
    "read_manifest",
    "write_manifest",
]
