"""Tests of the on-disk teacher embedding cache (speechx.teachers.cache)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from speechx.errors import TeacherError
from speechx.teachers import CachedTeacher, TextTeacher, default_cache_dir
from speechx.teachers.cache import text_key


def shards(cache: CachedTeacher) -> list[Path]:
    return sorted(cache.path.glob("shard-*.npz"))


def test_same_interface_and_values(counting_teacher, tmp_path: Path) -> None:
    cache = CachedTeacher(counting_teacher, tmp_path)
    assert isinstance(cache, TextTeacher)
    assert (cache.name, cache.teacher_id, cache.dim, cache.languages) == (
        "counting",
        "counting-v1",
        8,
        ("en", "nl"),
    )
    texts = ["a", "b", "c"]
    np.testing.assert_array_equal(cache.encode(texts), counting_teacher.encode(texts))
    assert cache.encode([]).shape == (0, 8)
    assert cache.path == tmp_path / "counting-v1"


def test_rerun_never_reencodes(counting_teacher, tmp_path: Path) -> None:
    first = CachedTeacher(counting_teacher, tmp_path).encode(["een", "twee", "drie"])
    assert counting_teacher.encoded == ["een", "twee", "drie"]
    # A new instance (as in a new process) reads the shards back.
    again = CachedTeacher(counting_teacher, tmp_path)
    second = again.encode(["drie", "twee", "een", "vier"])
    assert counting_teacher.encoded == ["een", "twee", "drie", "vier"]
    np.testing.assert_array_equal(second[:3], first[::-1])
    assert (again.hits, again.misses) == (3, 1)
    counting_teacher.calls = 0
    again.encode(["een", "vier"])
    assert counting_teacher.calls == 0


def test_duplicates_in_one_call_are_encoded_once(counting_teacher, tmp_path: Path) -> None:
    out = CachedTeacher(counting_teacher, tmp_path).encode(["x", "y", "x", "x", "y"])
    assert counting_teacher.encoded == ["x", "y"]
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_array_equal(out[1], out[4])


def test_keyed_by_exact_text_and_teacher_id(
    counting_teacher, tmp_path: Path, make_counting
) -> None:
    cache = CachedTeacher(counting_teacher, tmp_path)
    cache.encode(["Hello", "hello", "hello "])
    assert len(counting_teacher.encoded) == 3
    assert "Hello" in cache and "HELLO" not in cache
    assert text_key("hello") != text_key("hello ")
    other = make_counting(teacher_id="counting-v2")
    CachedTeacher(other, tmp_path).encode(["Hello"])
    assert other.encoded == ["Hello"]  # another teacher id, another cache


def test_shards_are_written_as_they_go(counting_teacher, tmp_path: Path) -> None:
    cache = CachedTeacher(counting_teacher, tmp_path, shard_size=2)
    cache.encode([f"s{i}" for i in range(5)])
    assert counting_teacher.calls == 3
    assert len(shards(cache)) == 3
    assert len(CachedTeacher(counting_teacher, tmp_path)) == 5


def test_failed_write_leaves_cache_readable(counting_teacher, tmp_path: Path, monkeypatch) -> None:
    cache = CachedTeacher(counting_teacher, tmp_path)
    cache.encode(["kept"])

    def broken_savez(fh, **arrays):
        fh.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # as if the process were interrupted mid-write

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(KeyboardInterrupt):
        cache.encode(["lost"])
    monkeypatch.undo()
    assert len(shards(cache)) == 1
    assert not list(cache.path.glob(".*.tmp"))
    fresh = CachedTeacher(counting_teacher, tmp_path)
    assert "kept" in fresh and "lost" not in fresh


def test_killed_writer_debris_is_ignored(counting_teacher, tmp_path: Path) -> None:
    cache = CachedTeacher(counting_teacher, tmp_path)
    cache.encode(["kept"])
    # What a SIGKILL during a write leaves: a partial hidden temp file.
    (cache.path / ".shard-00-1-abc.npz.1234.tmp").write_bytes(b"PK\x03\x04 trunc")
    fresh = CachedTeacher(counting_teacher, tmp_path)
    assert len(fresh) == 1 and "kept" in fresh


def test_corrupt_shard_is_skipped_with_a_warning(counting_teacher, tmp_path: Path) -> None:
    cache = CachedTeacher(counting_teacher, tmp_path)
    cache.encode(["kept"])
    (cache.path / "shard-99999999999999999999-0-deadbeef.npz").write_bytes(b"garbage")
    fresh = CachedTeacher(counting_teacher, tmp_path)
    with pytest.warns(UserWarning, match="unreadable shard"):
        assert "kept" in fresh


def test_compact_merges_and_keeps_everything(counting_teacher, tmp_path: Path) -> None:
    cache = CachedTeacher(counting_teacher, tmp_path, shard_size=1)
    expected = cache.encode(["a", "b", "c"])
    assert len(shards(cache)) == 3
    merged = cache.compact()
    assert shards(cache) == [merged]
    counting_teacher.calls = 0
    np.testing.assert_array_equal(
        CachedTeacher(counting_teacher, tmp_path).encode(["a", "b", "c"]), expected
    )
    assert counting_teacher.calls == 0


def test_auto_compaction(counting_teacher, tmp_path: Path) -> None:
    cache = CachedTeacher(counting_teacher, tmp_path, shard_size=1, max_shards=3)
    cache.encode(["a", "b", "c", "d"])
    assert len(shards(cache)) == 1
    assert len(CachedTeacher(counting_teacher, tmp_path)) == 4


def test_sees_shards_of_a_concurrent_writer(
    counting_teacher, tmp_path: Path, make_counting
) -> None:
    reader = CachedTeacher(counting_teacher, tmp_path)
    reader.encode(["mine"])
    writer_teacher = make_counting()
    CachedTeacher(writer_teacher, tmp_path).encode(["theirs"])
    counting_teacher.calls = 0
    reader.encode(["theirs", "mine"])
    assert counting_teacher.calls == 0


def test_another_process_reuses_the_cache(counting_teacher, tmp_path: Path) -> None:
    CachedTeacher(counting_teacher, tmp_path).encode(["shared sentence"])
    script = textwrap.dedent(
        f"""
        import numpy as np
        from speechx.teachers import CachedTeacher

        class Fake:
            name, teacher_id, dim, languages = "counting", "counting-v1", 8, None
            encoded = []

            def encode(self, texts, batch_size=64, show_progress=None):
                self.encoded.extend(texts)
                return np.ones((len(texts), 8), dtype=np.float32) / np.sqrt(8)

        t = Fake()
        CachedTeacher(t, {str(tmp_path)!r}).encode(["shared sentence", "new"])
        print(",".join(t.encoded))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "new"


def test_bad_teacher_output_is_not_cached(tmp_path: Path, make_counting) -> None:
    class NaNTeacher(make_counting):
        def encode(self, texts, batch_size=64, show_progress=None):
            out = super().encode(texts)
            out[-1] = np.nan
            return out

    cache = CachedTeacher(NaNTeacher(), tmp_path)
    with pytest.raises(TeacherError, match="non-finite.*'b'"):
        cache.encode(["a", "b"])
    assert not shards(cache)


def test_dim_mismatch_with_existing_cache(tmp_path: Path, make_counting) -> None:
    CachedTeacher(make_counting(dim=8), tmp_path)
    with pytest.raises(TeacherError, match="dim=8"):
        CachedTeacher(make_counting(dim=16), tmp_path)


def test_unsafe_teacher_id(tmp_path: Path, make_counting) -> None:
    with pytest.raises(TeacherError, match="not a safe directory name"):
        CachedTeacher(make_counting(teacher_id="../escape"), tmp_path)


def test_default_cache_dir(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SPEECHX_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("SPEECHX_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "speechx" / "teachers"


def test_sigkill_during_writes_leaves_cache_readable(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import itertools, sys
        import numpy as np
        from speechx.teachers import CachedTeacher

        class Fake:
            name, teacher_id, dim, languages = "big", "big-v1", 512, None

            def encode(self, texts, batch_size=64, show_progress=None):
                return np.stack([np.full(512, len(t), np.float32) for t in texts])

        cache = CachedTeacher(Fake(), {str(tmp_path)!r}, shard_size=200, max_shards=10**9)
        for i in itertools.count():
            cache.encode(["x" * (j % 50 + 1) + str(i * 1000 + j) for j in range(1000)])
            print(i, flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # at least one call has finished
        proc.stdout.readline()
    finally:
        proc.kill()
        proc.wait()
    import warnings

    class Big:
        name, teacher_id, dim, languages = "big", "big-v1", 512, None

        def encode(self, texts, batch_size=64, show_progress=None):
            raise AssertionError("everything asked for must come from the cache")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache = CachedTeacher(Big(), tmp_path)
        assert len(cache) >= 2000
        text = "x" * 8 + str(1007)  # j = 7 of call i = 1
        np.testing.assert_array_equal(cache.encode([text])[0], np.full(512, len(text)))
