"""An on-disk embedding cache in front of any text teacher.

Layout (one cache directory serves every data set)::

    <cache_dir>/<teacher_id>/meta.json              {"format": 1, "teacher_id": ..., "dim": D}
    <cache_dir>/<teacher_id>/shard-<unique>.npz     keys uint8 [n, 16], emb float32 [n, D]

A key is the first 16 bytes of the SHA-256 of the exact text (UTF-8), so the cache is keyed by
teacher id and text and nothing else.  Shards are immutable: each is written to a hidden temp
file in the same directory and renamed into place, so a reader only ever sees whole shards and a
process killed mid-write leaves at most a stale ``.tmp`` file that readers ignore.  Concurrent
writers never share a file (shard names are unique); two processes that encode the same text
both store it, which is harmless.  :meth:`CachedTeacher.compact` merges shards.

The default location is ``$SPEECHX_CACHE`` or ``~/.cache/speechx/teachers``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from speechx.errors import TeacherError
from speechx.teachers.base import TextTeacher, check_batch_size, check_texts, empty_embeddings

CACHE_ENV = "SPEECHX_CACHE"
CACHE_FORMAT = 1
KEY_BYTES = 16
_SHARD_GLOB = "shard-*.npz"
_STALE_TMP_SECONDS = 3600.0


def default_cache_dir() -> Path:
    """``$SPEECHX_CACHE`` if set and non-empty, else ``~/.cache/speechx/teachers``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "speechx" / "teachers"


def text_key(text: str) -> bytes:
    """The cache key of ``text``: 16 bytes of SHA-256 over its UTF-8 encoding."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:KEY_BYTES]


class CachedTeacher:
    """Wraps a :class:`~speechx.teachers.base.TextTeacher`; encodes only texts not on disk.

    It has the teacher's interface (``name``, ``teacher_id``, ``dim``, ``languages``,
    ``encode``), so it can stand in anywhere a teacher is expected.  New embeddings are written
    in shards of ``shard_size`` texts as they are computed, so an interrupted run keeps what it
    finished.

    Counters (cumulative over this object's life; reset them by assigning 0):

    - ``hits``: requested texts not sent to the teacher (found in the cache, or a repeat of
      a text earlier in the same call), so ``hits + misses`` is the number of texts asked for;
    - ``misses``: distinct texts sent to the wrapped teacher;
    - ``teacher_calls``: calls of the wrapped teacher's ``encode`` (one per chunk of at most
      ``shard_size`` new texts), so a run whose every text is cached leaves it at 0.

    Example:
        >>> t = CachedTeacher(load_teacher(), "/tmp/cache")     # doctest: +SKIP
        >>> t.encode(["a", "b", "a"]).shape                      # doctest: +SKIP
        (3, 512)
    """

    def __init__(
        self,
        teacher: TextTeacher,
        cache_dir: str | os.PathLike | None = None,
        *,
        shard_size: int = 4096,
        max_shards: int = 64,
    ) -> None:
        """Open (creating if needed) the cache of ``teacher`` under ``cache_dir``.

        Raises:
            TeacherError: ``teacher.teacher_id`` is not filesystem-safe, the cache dir cannot
                be created, or its ``meta.json`` records another dimension.
        """
        tid = teacher.teacher_id
        if not tid or tid in (".", "..") or any(c in tid for c in "/\\\0") or tid != tid.strip():
            raise TeacherError(f"teacher id {tid!r} is not a safe directory name")
        check_batch_size(shard_size, f"CachedTeacher({tid})")
        self.teacher = teacher
        self.root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.path = self.root / tid
        self.shard_size = shard_size
        self.max_shards = max_shards
        self.hits = 0
        self.misses = 0
        self.teacher_calls = 0
        self._index: dict[bytes, np.ndarray] = {}
        self._seen: set[str] = set()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TeacherError(f"cannot create teacher cache dir {self.path}: {exc}") from exc
        self._check_meta()

    # ------------------------------------------------------------ teacher interface
    @property
    def name(self) -> str:
        return self.teacher.name

    @property
    def teacher_id(self) -> str:
        return self.teacher.teacher_id

    @property
    def dim(self) -> int:
        return self.teacher.dim

    @property
    def languages(self) -> tuple[str, ...] | None:
        return self.teacher.languages

    def __repr__(self) -> str:
        return f"CachedTeacher({self.teacher!r}, cache={str(self.path)!r})"

    def __len__(self) -> int:
        """Number of distinct texts cached (as of the last read of the directory)."""
        self.refresh()
        return len(self._index)

    def __contains__(self, text: object) -> bool:
        if not isinstance(text, str):
            return False
        self.refresh()
        return text_key(text) in self._index

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None
    ) -> np.ndarray:
        """Embed ``texts``, encoding with the wrapped teacher only those not yet cached.

        Each distinct text is encoded at most once per call, and never again in a later call
        or process using the same cache directory.

        Returns:
            float32 ``[len(texts), dim]`` in input order (``[0, dim]`` for no texts).

        Raises:
            TeacherError: bad ``texts``, or the wrapped teacher returns the wrong shape or
                non-finite values (nothing from that batch is cached); or a shard cannot be
                written.
        """
        items = check_texts(texts, self.teacher_id)
        check_batch_size(batch_size, self.teacher_id)
        if not items:
            return empty_embeddings(self.dim)
        self.refresh()
        keys = [text_key(t) for t in items]
        todo: dict[bytes, str] = {}
        for k, t in zip(keys, items, strict=True):
            if k not in self._index and k not in todo:
                todo[k] = t
        self.hits += len(items) - len(todo)
        self.misses += len(todo)
        pending = list(todo.items())
        for start in range(0, len(pending), self.shard_size):
            chunk = pending[start : start + self.shard_size]
            self.teacher_calls += 1
            emb = self.teacher.encode(
                [t for _, t in chunk], batch_size=batch_size, show_progress=show_progress
            )
            emb = self._check_output(emb, [t for _, t in chunk])
            chunk_keys = [k for k, _ in chunk]
            self._write_shard(chunk_keys, emb)
            for k, row in zip(chunk_keys, emb, strict=True):
                self._index[k] = row
        if pending and self._count_shards() > self.max_shards:
            self.compact()
        out = np.empty((len(items), self.dim), dtype=np.float32)
        for i, k in enumerate(keys):
            out[i] = self._index[k]
        return out

    # ------------------------------------------------------------ disk
    def refresh(self) -> int:
        """Read shards written since the last call (by this or another process).

        Unreadable shards are skipped with a warning (their texts will be encoded again).

        Returns:
            The number of newly read shards.
        """
        n = 0
        for shard in sorted(self.path.glob(_SHARD_GLOB)):
            if shard.name in self._seen:
                continue
            self._seen.add(shard.name)
            try:
                with np.load(shard, allow_pickle=False) as z:
                    keys, emb = z["keys"], z["emb"]
            except FileNotFoundError:  # merged away by a concurrent compact()
                continue
            except Exception as exc:
                warnings.warn(
                    f"teacher cache: skipping unreadable shard {shard}: {exc}", stacklevel=2
                )
                continue
            if keys.ndim != 2 or keys.shape[1] != KEY_BYTES or emb.shape != (len(keys), self.dim):
                warnings.warn(
                    f"teacher cache: skipping shard {shard} with keys {keys.shape} and "
                    f"embeddings {emb.shape} (expected [n, {KEY_BYTES}] and [n, {self.dim}])",
                    stacklevel=2,
                )
                continue
            emb = emb.astype(np.float32, copy=False)
            for k, row in zip(keys, emb, strict=True):
                self._index.setdefault(k.tobytes(), row)
            n += 1
        return n

    def compact(self) -> Path | None:
        """Merge every shard into one (atomically) and delete the merged ones.

        Safe with concurrent readers and writers: the merged shard appears before the old
        ones are removed, and shards written meanwhile are left alone.  Stale temp files of
        killed writers (older than an hour) are removed too.

        Returns:
            The merged shard, or ``None`` when there were fewer than two shards.
        """
        self.refresh()
        shards = sorted(p for p in self.path.glob(_SHARD_GLOB) if p.name in self._seen)
        now = time.time()
        for tmp in self.path.glob(".*.tmp"):
            try:
                if now - tmp.stat().st_mtime > _STALE_TMP_SECONDS:
                    tmp.unlink()
            except FileNotFoundError:
                pass
        if len(shards) < 2:
            return None
        keys = list(self._index)
        emb = np.stack([self._index[k] for k in keys]) if keys else empty_embeddings(self.dim)
        merged = self._write_shard(keys, emb)
        for p in shards:
            p.unlink(missing_ok=True)
        return merged

    def _count_shards(self) -> int:
        return sum(1 for _ in self.path.glob(_SHARD_GLOB))

    def _check_meta(self) -> None:
        meta_path = self.path / "meta.json"
        meta = {"format": CACHE_FORMAT, "teacher_id": self.teacher_id, "dim": self.dim}
        if meta_path.is_file():
            try:
                found = json.loads(meta_path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise TeacherError(f"teacher cache: {meta_path} is not valid JSON: {exc}") from exc
            if found.get("dim") != self.dim or found.get("format") != CACHE_FORMAT:
                raise TeacherError(
                    f"teacher cache: {meta_path} records dim={found.get('dim')} "
                    f"format={found.get('format')}, but teacher {self.teacher_id!r} has "
                    f"dim={self.dim} (format {CACHE_FORMAT}); use another cache dir or "
                    "delete this one"
                )
            return
        _atomic_write_bytes(meta_path, (json.dumps(meta, indent=1) + "\n").encode())

    def _check_output(self, emb: Any, texts: list[str]) -> np.ndarray:
        arr = np.asarray(emb)
        if arr.shape != (len(texts), self.dim):
            raise TeacherError(
                f"teacher {self.teacher_id!r} returned shape {arr.shape} for {len(texts)} texts, "
                f"expected ({len(texts)}, {self.dim})"
            )
        arr = arr.astype(np.float32, copy=False)
        bad = ~np.isfinite(arr).all(axis=1)
        if bad.any():
            first = texts[int(np.flatnonzero(bad)[0])]
            raise TeacherError(
                f"teacher {self.teacher_id!r} returned non-finite embeddings for "
                f"{int(bad.sum())} text(s), e.g. {first!r}; nothing was cached"
            )
        return arr

    def _write_shard(self, keys: list[bytes], emb: np.ndarray) -> Path:
        key_arr = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES)
        name = f"shard-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.npz"
        path = self.path / name

        def write(fh: Any) -> None:
            np.savez(fh, keys=key_arr, emb=np.ascontiguousarray(emb, dtype=np.float32))

        try:
            atomic_write(path, write)
        except OSError as exc:
            raise TeacherError(f"teacher cache: cannot write shard {path}: {exc}") from exc
        self._seen.add(name)
        return path


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(binary_file)`` on a hidden temp file next to ``path``, fsync, rename it.

    A reader of ``path`` sees the old content or the new, never a part.  If ``write`` raises,
    the temp file is removed and the exception propagates.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))
