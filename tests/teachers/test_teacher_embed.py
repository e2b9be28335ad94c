"""Tests of the teacher stage (speechx.teachers.embed) on a tiny Kaldi dir."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from speechx.data import KaldiDir
from speechx.errors import DataDirError, TeacherError
from speechx.teachers import CachedTeacher, embed_data_dir, load_teacher_embeddings


def write_dir(path: Path, n_utts: int = 3) -> Path:
    """A Kaldi dir: u1..un, transcripts in nl, English translations for all but u2, German for u1."""
    utts = [f"u{i}" for i in range(1, n_utts + 1)]
    KaldiDir(
        wav_scp={u: f"/audio/{u}.wav" for u in utts},
        utt2spk={u: "spk1" for u in utts},
        text={u: f"zin nummer {u}" for u in utts},
        utt2lang={u: "nl" for u in utts},
        translations={
            "en": {u: f"sentence number {u}" for u in utts if u != "u2"},
            "de": {"u1": "Satz Nummer u1"},
        },
    ).write(path)
    return path


def test_writes_ids_and_one_array_per_field(counting_teacher, tmp_path: Path) -> None:
    d = write_dir(tmp_path / "data")
    out = embed_data_dir(d, counting_teacher, cache_dir=tmp_path / "cache")
    assert out == d / "teacher" / "counting-v1"
    assert (out / "ids.txt").read_text() == "u1\nu2\nu3\n"
    assert sorted(p.name for p in out.glob("*.npy")) == ["text.de.npy", "text.en.npy", "text.npy"]

    ids, text = load_teacher_embeddings(d, "counting-v1", "text")
    assert ids == ["u1", "u2", "u3"] and text.shape == (3, 8) and text.dtype == np.float32
    np.testing.assert_array_equal(text[1], counting_teacher.encode(["zin nummer u2"])[0])

    _, en = load_teacher_embeddings(d, "counting-v1", "text.en")
    assert np.isnan(en[1]).all() and np.isfinite(en[[0, 2]]).all()
    np.testing.assert_array_equal(en[2], counting_teacher.encode(["sentence number u3"])[0])
    _, de = load_teacher_embeddings(d, "counting-v1", "text.de")
    assert np.isfinite(de[0]).all() and np.isnan(de[1:]).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["fields"]["text.en"]["n_missing"] == 1


def test_fields_can_be_chosen(counting_teacher, tmp_path: Path) -> None:
    d = write_dir(tmp_path / "data")
    out = embed_data_dir(d, counting_teacher, fields=["text.en"], cache_dir=tmp_path / "c")
    assert [p.name for p in out.glob("*.npy")] == ["text.en.npy"]
    with pytest.raises(TeacherError, match=r"no text\.fr file.*text\.de"):
        embed_data_dir(d, counting_teacher, fields=["text.fr"], cache_dir=tmp_path / "c")
    with pytest.raises(TeacherError, match="unknown teacher field"):
        embed_data_dir(d, counting_teacher, fields=["transcript"], cache_dir=tmp_path / "c")


def test_rerun_skips_up_to_date_fields(counting_teacher, tmp_path: Path) -> None:
    d = write_dir(tmp_path / "data")
    out = embed_data_dir(d, counting_teacher, use_cache=False)
    calls = counting_teacher.calls
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npy")}
    embed_data_dir(d, counting_teacher, use_cache=False)
    assert counting_teacher.calls == calls
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.npy")} == mtimes

    # A changed translation re-embeds that field only.
    kdir = KaldiDir.read(d)
    kdir.translations["de"]["u3"] = "Satz Nummer drei"
    kdir.write(d)
    counting_teacher.encoded.clear()
    embed_data_dir(d, counting_teacher, use_cache=False)
    assert counting_teacher.encoded == ["Satz Nummer u1", "Satz Nummer drei"]
    _, de = load_teacher_embeddings(d, "counting-v1", "text.de")
    assert np.isfinite(de[[0, 2]]).all()


def test_changed_ids_rewrite_everything(counting_teacher, tmp_path: Path) -> None:
    d = write_dir(tmp_path / "data", n_utts=3)
    embed_data_dir(d, counting_teacher, use_cache=False)
    write_dir(d, n_utts=4)
    embed_data_dir(d, counting_teacher, fields=["text"], use_cache=False)
    ids, text = load_teacher_embeddings(d, "counting-v1", "text")
    assert ids == ["u1", "u2", "u3", "u4"] and text.shape == (4, 8)
    # Fields not asked for this time were for the old ids, so they are gone, not stale.
    with pytest.raises(TeacherError, match=r"text\.en\.npy: missing.*\['text'\]"):
        load_teacher_embeddings(d, "counting-v1", "text.en")


def test_goes_through_the_cache(counting_teacher, tmp_path: Path) -> None:
    a = write_dir(tmp_path / "a")
    b = write_dir(tmp_path / "b")
    embed_data_dir(a, counting_teacher, cache_dir=tmp_path / "cache")
    counting_teacher.encoded.clear()
    embed_data_dir(b, counting_teacher, cache_dir=tmp_path / "cache")
    assert counting_teacher.encoded == []  # same sentences, other data dir: all cached
    cached = CachedTeacher(counting_teacher, tmp_path / "cache")
    assert len(cached) == 3 + 2 + 1


def test_default_cache_dir_from_env(counting_teacher, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SPEECHX_CACHE", str(tmp_path / "envcache"))
    embed_data_dir(write_dir(tmp_path / "data"), counting_teacher)
    assert list((tmp_path / "envcache" / "counting-v1").glob("shard-*.npz"))


def test_empty_transcript_is_a_missing_row(counting_teacher, tmp_path: Path) -> None:
    d = write_dir(tmp_path / "data")
    (d / "text").write_text("u1 zin een\nu2\nu3 zin drie\n")
    embed_data_dir(d, counting_teacher, fields=["text"], use_cache=False)
    _, text = load_teacher_embeddings(d, "counting-v1", "text")
    assert np.isnan(text[1]).all() and np.isfinite(text[[0, 2]]).all()
    assert "" not in counting_teacher.encoded


def test_load_errors_name_the_file(counting_teacher, tmp_path: Path) -> None:
    d = write_dir(tmp_path / "data")
    with pytest.raises(TeacherError, match=r"ids\.txt: missing"):
        load_teacher_embeddings(d, "counting-v1", "text")
    out = embed_data_dir(d, counting_teacher, fields=["text"], use_cache=False)
    np.save(out / "text.npy", np.zeros((2, 8), dtype=np.float32))
    with pytest.raises(TeacherError, match=r"text\.npy.*does not match 3 ids"):
        load_teacher_embeddings(d, "counting-v1", "text")
    with pytest.raises(DataDirError):
        embed_data_dir(tmp_path / "not-a-dir", counting_teacher, use_cache=False)


def test_mmap_load(counting_teacher, tmp_path: Path) -> None:
    d = write_dir(tmp_path / "data")
    embed_data_dir(d, counting_teacher, use_cache=False)
    _, plain = load_teacher_embeddings(d, "counting-v1", "text")
    _, mapped = load_teacher_embeddings(d, "counting-v1", "text", mmap=True)
    assert isinstance(mapped, np.memmap)
    np.testing.assert_array_equal(plain, mapped)


def test_teacher_by_name(tmp_path: Path, monkeypatch) -> None:
    d = write_dir(tmp_path / "data")
    monkeypatch.setenv("SPEECHX_CACHE", str(tmp_path / "cache"))
    out = embed_data_dir(d, "use-multilingual", fields=["text.de"])
    assert out.name == "use-multilingual-v3"
    _, de = load_teacher_embeddings(d, "use-multilingual-v3", "text.de")
    assert de.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(de[0]), 1.0, atol=1e-5)


def test_repeated_sentences_are_encoded_once(counting_teacher, tmp_path: Path) -> None:
    d = write_dir(tmp_path / "data")
    (d / "text").write_text("u1 dezelfde zin\nu2 andere zin\nu3 dezelfde zin\n")
    embed_data_dir(d, counting_teacher, fields=["text"], use_cache=False)
    assert counting_teacher.encoded == ["dezelfde zin", "andere zin"]
    _, text = load_teacher_embeddings(d, "counting-v1", "text")
    np.testing.assert_array_equal(text[0], text[2])
    assert not np.array_equal(text[0], text[1])


def test_warns_for_languages_the_teacher_does_not_cover(counting_teacher, tmp_path: Path) -> None:
    """The fake covers en and nl: the German translations (and only they) draw a warning."""
    from speechx.errors import TeacherWarning

    d = write_dir(tmp_path / "data")
    with pytest.warns(TeacherWarning, match=r"'de'.*data") as rec:
        embed_data_dir(d, counting_teacher, cache_dir=tmp_path / "c")
    assert len(rec) == 1 and "'nl'" not in str(rec[0].message)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        embed_data_dir(d, counting_teacher, fields=["text", "text.en"], cache_dir=tmp_path / "c")
