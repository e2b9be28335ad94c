"""Kill and resume of the teacher embedding cache: a process encoding through CachedTeacher
is SIGKILLed while writing a shard.  The cache must then open, hold every shard finished
before the kill, never read the half-written one, and encode only what is missing; the final
embeddings equal those of an uninterrupted run."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from resilience_helpers import HashTeacher, kill_hard, start_worker, tmp_files, wait_for_marker

from speechx.teachers.cache import CachedTeacher

TEXTS = [f"zin nummer {i} van de vis" for i in range(18)]


def test_sigkill_while_writing_a_shard(tmp_path: Path) -> None:
    texts_file = tmp_path / "texts.txt"
    texts_file.write_text("".join(f"{t}\n" for t in TEXTS), encoding="utf-8")
    cache = tmp_path / "cache"
    log = tmp_path / "worker.log"
    # shards of 4 texts: shards 1 and 2 are written whole, shard 3 is half written
    proc = start_worker("shard:3", tmp_path / "m", log, "cache", str(cache), str(texts_file))
    try:
        wait_for_marker(proc, tmp_path / "m", log, timeout=60)
    finally:
        kill_hard(proc)
    shard_dir = cache / HashTeacher.teacher_id
    partial = tmp_files(shard_dir)
    assert len(partial) == 1 and partial[0].name.startswith(".shard-")
    assert partial[0].stat().st_size > 0
    assert len(list(shard_dir.glob("shard-*.npz"))) == 2

    teacher = HashTeacher()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the partial shard is not even looked at
        resumed = CachedTeacher(teacher, cache, shard_size=4)
        assert len(resumed) == 8
        assert all(t in resumed for t in TEXTS[:8])
        assert not any(t in resumed for t in TEXTS[8:])
        emb = resumed.encode(TEXTS)
    assert teacher.encoded == TEXTS[8:], "only the texts of unfinished shards are encoded"
    assert resumed.misses == 10 and resumed.hits == 8

    straight = CachedTeacher(HashTeacher(), tmp_path / "straight", shard_size=4).encode(TEXTS)
    assert emb.dtype == np.float32 and np.array_equal(emb, straight)
    # a fresh process sees everything, and encodes nothing
    again = HashTeacher()
    assert np.array_equal(CachedTeacher(again, cache, shard_size=4).encode(TEXTS), straight)
    assert again.encoded == []
