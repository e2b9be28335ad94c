"""Kaldi data dirs: write then read gives the same object, writes are byte-identical and every
file is sorted the way Kaldi's ``utils/validate_data_dir.sh`` checks (``LC_ALL=C sort -k1,1``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechx.data.kaldi import KaldiDir, c_sort_key, normalise_value, split_line
from speechx.errors import DataDirError

from .conftest import PROFILE, any_texts, examples, kaldi_dirs, kaldi_ids


def _files(d: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(d.iterdir())}


def _lines(data: bytes) -> list[str]:
    return data.decode("utf-8").split("\n")[:-1]


def _keys(data: bytes) -> list[str]:
    return [split_line(line)[0] for line in _lines(data)]


@settings(PROFILE, max_examples=examples(200), deadline=None)
@given(kaldi_dirs())
def test_write_read_is_identity_sorted_and_byte_identical(
    tmp_path_factory: pytest.TempPathFactory, kd: KaldiDir
) -> None:
    base = tmp_path_factory.mktemp("kaldi")
    first = kd.write(base / "a")
    back = KaldiDir.read(first, allow_pipes=True)
    assert back == kd
    once = _files(first)
    # every file: newline-terminated lines whose keys are unique and in C byte order
    for name, data in once.items():
        assert data.endswith(b"\n"), name
        keys = [c_sort_key(k) for k in _keys(data)]
        assert keys == sorted(set(keys)), f"{name} is not in C byte order of unique keys"
    spk2utt = {s: u.split(" ") for s, u in map(split_line, _lines(once["spk2utt"]))}
    expected: dict[str, list[str]] = {}
    for utt in sorted(kd.utt2spk, key=c_sort_key):
        expected.setdefault(kd.utt2spk[utt], []).append(utt)
    assert spk2utt == expected
    # the same object written over itself, and its read-back copy written elsewhere: the same
    # bytes
    assert _files(kd.write(first)) == once
    assert _files(back.write(base / "b")) == once


@pytest.mark.skipif(shutil.which("sort") is None, reason="needs coreutils sort")
@settings(PROFILE, max_examples=examples(20), deadline=None)
@given(kaldi_dirs())
def test_gnu_sort_agrees_that_files_are_sorted(
    tmp_path_factory: pytest.TempPathFactory, kd: KaldiDir
) -> None:
    d = kd.write(tmp_path_factory.mktemp("kaldi") / "d")
    env = {**os.environ, "LC_ALL": "C"}
    for f in sorted(d.iterdir()):
        res = subprocess.run(["sort", "-c", "-u", "-k1,1", str(f)], env=env, capture_output=True)
        assert res.returncode == 0, f"{f.name}: {res.stderr.decode(errors='replace')}"


@settings(PROFILE, max_examples=examples(40), deadline=None)
@given(kaldi_dirs(), kaldi_dirs())
def test_rewriting_a_dir_mirrors_the_new_object(
    tmp_path_factory: pytest.TempPathFactory, old: KaldiDir, new: KaldiDir
) -> None:
    base = tmp_path_factory.mktemp("kaldi")
    old.write(base / "d")
    new.write(base / "d")  # stale optional files of `old` must go
    assert KaldiDir.read(base / "d", allow_pipes=True) == new
    assert _files(base / "d") == _files(new.write(base / "fresh"))


@settings(PROFILE, max_examples=examples(100), deadline=None)
@given(st.dictionaries(kaldi_ids, any_texts, min_size=1, max_size=5))
def test_any_text_reads_back_as_its_normalised_value(
    tmp_path_factory: pytest.TempPathFactory, texts: dict[str, str]
) -> None:
    """Tabs, newlines and runs of ASCII blanks inside a transcript become one space; every other
    character (non-ASCII spaces, line separators, quotes, ...) is kept."""
    kd = KaldiDir(utt2spk={u: "spk" for u in texts}, text=dict(texts))
    back = KaldiDir.read(kd.write(tmp_path_factory.mktemp("kaldi") / "d"))
    assert back.text == {u: normalise_value(t) for u, t in texts.items()}


@pytest.mark.parametrize("bad", ["\ufeffu1", "u 1", "u\t1", "u\u00a01", ""])
def test_ids_that_cannot_round_trip_are_refused(tmp_path: Path, bad: str) -> None:
    """An id with whitespace, an empty one, or one starting with U+FEFF (read back as a
    byte-order mark, so the first line would lose it) is refused with the file named."""
    kd = KaldiDir(utt2spk={bad: "spk", "zz": "spk"})
    with pytest.raises(DataDirError, match=r"utt2spk: id"):
        kd.write(tmp_path / "d")
