"""Kaldi-style splitting of a data dir into ``N`` parts, and combining parts back.

``split_data_dir("data/x", 4)`` writes ``data/x/split4/1`` .. ``data/x/split4/4``, as Kaldi's
``utils/split_data.sh --per-utt`` does: every part is a complete data dir (``wav.scp``, ``text``,
``text.<lang>``, ``utt2spk``, ``spk2utt``, ``segments``, ``utt2lang``, ``utt2dur``, ``utt2sent``,
``text.langtags`` and any other per-utterance, per-speaker or per-recording file), restricted to
its utterances.  Parts are contiguous runs of the sorted utterance ids, balanced by utterance count
(``by="utt"``) or by duration (``by="duration"``, from ``utt2dur`` or ``segments``), so
concatenating per-part results in part order gives the order of the whole dir.

A split is reused while it is up to date: ``split<N>/.split.json`` records a fingerprint of the
dir's files and the balancing mode, and the parts are rewritten only when either changed (Kaldi
compares timestamps; content is safer on shared filesystems).  :func:`combine_data_dirs` is the
inverse (Kaldi's ``combine_data.sh``).

>>> parts = split_data_dir("data/fillets_nl_dev", 2)            # doctest: +SKIP
>>> [p.name for p in parts]                                      # doctest: +SKIP
['1', '2']
>>> combine_data_dirs(parts, "data/fillets_nl_dev_again")        # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from speechx.data.kaldi import (
    KaldiDir,
    atomic_write_text,
    c_sort_key,
    read_mapping,
    write_mapping,
)
from speechx.errors import DataDirError

SplitBy = Literal["utt", "duration"]
SPLIT_INFO = ".split.json"

# Files KaldiDir reads and writes itself; every other visible top-level file is an "extra".
_KNOWN = {
    "wav.scp",
    "text",
    "utt2spk",
    "spk2utt",
    "segments",
    "utt2lang",
    "utt2dur",
    "utt2sent",
    "text.langtags",
}


def split_dir(data_dir: str | os.PathLike, n: int) -> Path:
    """``<data_dir>/split<n>``: where :func:`split_data_dir` puts the parts."""
    return Path(data_dir) / f"split{n}"


def split_data_dir(
    data_dir: str | os.PathLike,
    n: int,
    *,
    by: SplitBy = "utt",
    force: bool = False,
) -> list[Path]:
    """Split ``data_dir`` into ``n`` parts ``<data_dir>/split<n>/<i>`` (i = 1..n).

    Args:
        data_dir: a Kaldi data dir.
        n: number of parts (>= 1, at most the number of utterances).
        by: ``"utt"`` balances the utterance count (part sizes differ by at most one);
            ``"duration"`` balances total duration (from ``utt2dur``, else ``segments``).
        force: rewrite the parts even if they are up to date.

    Returns:
        The ``n`` part dirs, in order.

    Raises:
        DataDirError: ``data_dir`` cannot be read, ``n`` is out of range, or ``by="duration"``
            without ``utt2dur`` or ``segments``.
    """
    src = Path(data_dir)
    kdir = KaldiDir.read(src, allow_pipes=True)
    if n < 1 or n > len(kdir):
        raise DataDirError(
            f"{src}: cannot split {len(kdir)} utterances into {n} parts (need 1 <= n <= "
            f"{len(kdir)})"
        )
    if by not in ("utt", "duration"):
        raise DataDirError(f"{src}: unknown split mode {by!r} (use 'utt' or 'duration')")
    root = split_dir(src, n)
    parts = [root / str(i) for i in range(1, n + 1)]
    info = {"n": n, "by": by, "fingerprint": dir_fingerprint(src)}
    if not force and _read_info(root) == info and all((p / "utt2spk").is_file() for p in parts):
        return parts
    ids = kdir.utt_ids
    if by == "utt":
        bounds = [len(ids) * i // n for i in range(n + 1)]
    else:
        bounds = _duration_bounds(src, kdir, ids, n)
    extras = _read_extras(src, kdir)
    (root / SPLIT_INFO).unlink(missing_ok=True)
    for i, part in enumerate(parts):
        if part.exists():
            shutil.rmtree(part)
        chunk = ids[bounds[i] : bounds[i + 1]]
        sub = kdir.subset(chunk)
        sub.write(part)
        _write_extras(part, sub, extras)
    for stale in root.iterdir():  # parts of an older split into the same n cannot exist
        if stale.is_dir() and stale not in parts:
            shutil.rmtree(stale)
    atomic_write_text(root / SPLIT_INFO, json.dumps(info, sort_keys=True) + "\n")
    return parts


def combine_data_dirs(dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike) -> Path:
    """Combine Kaldi data dirs (for example the parts of a split) into ``out_dir``.

    Every mapping is the union of the parts'; the output is sorted as always, so the result
    does not depend on the order of ``dirs``.  Extra files are combined the same way.

    Returns:
        ``out_dir``.

    Raises:
        DataDirError: no dirs, a dir cannot be read, or one id has two different values in
            two dirs (the file, id and both dirs are named).
    """
    if not dirs:
        raise DataDirError(f"{out_dir}: nothing to combine")
    out = KaldiDir()
    extras: dict[str, dict[str, str]] = {}
    origin: dict[tuple[str, str], Path] = {}
    for d in map(Path, dirs):
        part = KaldiDir.read(d, allow_pipes=True)
        named: list[tuple[str, dict, dict]] = [
            ("wav.scp", out.wav_scp, part.wav_scp),
            ("text", out.text, part.text),
            ("utt2spk", out.utt2spk, part.utt2spk),
            ("segments", out.segments, part.segments),
            ("utt2lang", out.utt2lang, part.utt2lang),
            ("utt2dur", out.utt2dur, part.utt2dur),
            ("utt2sent", out.utt2sent, part.utt2sent),
            ("text.langtags", out.langtags, part.langtags),
        ]
        for lang, t in part.translations.items():
            named.append((f"text.{lang}", out.translations.setdefault(lang, {}), t))
        for name, mapping in _read_extras(d, part).items():
            named.append((name, extras.setdefault(name, {}), mapping[1]))
        for name, into, mapping in named:
            for key, value in mapping.items():
                if key in into and into[key] != value:
                    raise DataDirError(
                        f"{name}: id {key!r} is {into[key]!r} in {origin[(name, key)]} but "
                        f"{value!r} in {d}"
                    )
                into[key] = value
                origin.setdefault((name, key), d)
    out_path = Path(out_dir)
    out.write(out_path)
    for name, mapping in extras.items():
        write_mapping(out_path / name, sorted(mapping.items(), key=lambda kv: c_sort_key(kv[0])))
    return out_path


def dir_fingerprint(data_dir: str | os.PathLike) -> str:
    """SHA-256 over the names and contents of the visible top-level files of a data dir.

    Subdirectories (``split<N>/``, ``teacher/``) and hidden files are left out, so writing a
    split or teacher embeddings does not change it.
    """
    h = hashlib.sha256()
    for f in sorted(Path(data_dir).iterdir()):
        if f.is_file() and not f.name.startswith("."):
            h.update(f.name.encode() + b"\0")
            h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


# ------------------------------------------------------------------------------ helpers
def _read_info(root: Path) -> dict | None:
    try:
        return json.loads((root / SPLIT_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _duration_bounds(src: Path, kdir: KaldiDir, ids: list[str], n: int) -> list[int]:
    """Cut points so that part ``i`` holds ids ``[b[i], b[i+1])`` of about equal duration."""
    if kdir.utt2dur:
        missing = [u for u in ids if u not in kdir.utt2dur]
        if missing:
            raise DataDirError(f"{src / 'utt2dur'}: no duration for {missing[0]!r}")
        durs = [kdir.utt2dur[u] for u in ids]
    elif kdir.segments:
        durs = [kdir.segments[u].end - kdir.segments[u].start for u in ids]
    else:
        raise DataDirError(f"{src}: splitting by duration needs utt2dur or segments")
    total = sum(durs)
    bounds = [0]
    acc = 0.0
    j = 0
    for i in range(1, n):
        target = total * i / n
        # at least one utterance per part, and leave one for every part still to come
        while j < len(ids) - (n - i) and (j < bounds[-1] + 1 or acc + durs[j] / 2 <= target):
            acc += durs[j]
            j += 1
        bounds.append(j)
    bounds.append(len(ids))
    return bounds


def _read_extras(d: Path, kdir: KaldiDir) -> dict[str, tuple[str, dict[str, str]]]:
    """Visible top-level files KaldiDir does not know: name -> (key kind, mapping).

    The key kind is ``utt``, ``spk`` or ``rec``, whichever set holds every key, else ``copy``
    (the file goes unchanged into every part).
    """
    utts = set(kdir.utt2spk)
    spks = set(kdir.utt2spk.values())
    recs = set(kdir.wav_scp) or utts
    out: dict[str, tuple[str, dict[str, str]]] = {}
    for f in sorted(d.iterdir()):
        if not f.is_file() or f.name.startswith(".") or f.name in _KNOWN:
            continue
        if f.name.startswith("text.") or f.suffix in (".json", ".md", ".npy", ".txt"):
            continue
        mapping = read_mapping(f, allow_empty=True)
        keys = set(mapping)
        for kind, pool in (("utt", utts), ("spk", spks), ("rec", recs)):
            if keys <= pool:
                out[f.name] = (kind, mapping)
                break
        else:  # not keyed by ids (e.g. frame_shift): every part gets a copy, as in Kaldi
            out[f.name] = ("copy", mapping)
    return out


def _write_extras(part: Path, sub: KaldiDir, extras: dict[str, tuple[str, dict[str, str]]]) -> None:
    keep = {
        "utt": set(sub.utt2spk),
        "spk": set(sub.utt2spk.values()),
        "rec": set(sub.wav_scp) or set(sub.utt2spk),
    }
    for name, (kind, mapping) in extras.items():
        rows = [(k, v) for k, v in mapping.items() if kind == "copy" or k in keep[kind]]
        if rows:
            write_mapping(part / name, sorted(rows, key=lambda kv: c_sort_key(kv[0])))
