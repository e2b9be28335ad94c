"""KaldiDir read/write: C byte order, ASCII-only field splitting, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechx.data.kaldi import KaldiDir, Segment, c_sort_key, normalise_value, read_mapping
from speechx.errors import DataDirError


def test_fixture_dir_reads_back(kaldi_dir: Path) -> None:
    kd = KaldiDir.read(kaldi_dir)
    assert kd.utt_ids == ["spk1-utt1", "spk1-utt2", "spk2-utt3"]
    assert kd.spk2utt == {"spk1": ["spk1-utt1", "spk1-utt2"], "spk2": ["spk2-utt3"]}
    assert kd.text["spk1-utt2"] == "where is the exit"
    assert kd.translations["en"] == kd.text
    assert kd.utt2dur["spk1-utt2"] == pytest.approx(0.5)
    assert kd.segment("spk1-utt1") == (None, None)
    assert Path(kd.audio_path("spk1-utt1")).is_file()


def test_segments_dir(kaldi_dir_segments: Path) -> None:
    kd = KaldiDir.read(kaldi_dir_segments)
    assert list(kd.wav_scp) == ["rec1"]
    assert kd.segments["spk1-utt1"] == Segment("rec1", 0.1, 1.1)
    assert kd.recording_id("spk2-utt3") == "rec1"


def test_write_sorts_in_c_byte_order(tmp_path: Path) -> None:
    # Locale-aware sorting would put "a-b" and "a_b" or upper/lower case differently.
    ids = ["b", "a_b", "A", "a-b", "a", "é", "Z"]
    kd = KaldiDir(
        wav_scp={u: f"/x/{u}.wav" for u in ids},
        text={u: "hi" for u in ids},
        utt2spk={u: "s" for u in ids},
    )
    kd.write(tmp_path)
    keys = [ln.split(" ")[0] for ln in (tmp_path / "text").read_text("utf-8").splitlines()]
    assert keys == sorted(ids, key=lambda s: s.encode())
    assert keys == ["A", "Z", "a", "a-b", "a_b", "b", "é"]
    assert kd.utt_ids == keys


def test_tab_separated_and_unicode_spaces(tmp_path: Path) -> None:
    f = tmp_path / "text"
    f.write_bytes("u1\thello  world\r\nu2 caf\u00e9\u00a0!\n".encode())
    m = read_mapping(f)
    assert m == {"u1": "hello  world", "u2": "caf\u00e9\u00a0!"}  # NBSP is text, not a separator


def test_bom_is_not_part_of_the_first_id(tmp_path: Path) -> None:
    f = tmp_path / "utt2spk"
    f.write_bytes("\ufeffu1 s1\n".encode())
    assert read_mapping(f) == {"u1": "s1"}


def test_bad_float_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "utt2spk").write_text("u1 s\nu2 s\n")
    (tmp_path / "utt2dur").write_text("u1 1.0\nu2 abc\n")
    with pytest.raises(DataDirError, match=r"utt2dur:2: .*'u2'"):
        KaldiDir.read(tmp_path)


def test_pipe_refused_unless_allowed(tmp_path: Path) -> None:
    (tmp_path / "utt2spk").write_text("u1 s\n")
    (tmp_path / "wav.scp").write_text("u1 sox x.wav -t wav - |\n")
    with pytest.raises(DataDirError, match="pipe"):
        KaldiDir.read(tmp_path)
    assert KaldiDir.read(tmp_path, allow_pipes=True).wav_scp["u1"].endswith("|")


_ID = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1
).filter(lambda s: not any(c.isspace() for c in s))
_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(_ID, _TEXT, min_size=1, max_size=6))
def test_write_read_round_trip(tmp_path_factory: pytest.TempPathFactory, texts: dict) -> None:
    d = tmp_path_factory.mktemp("rt")
    kd = KaldiDir(
        wav_scp={u: f"/a/{i}.wav" for i, u in enumerate(texts)},
        text=texts,
        utt2spk={u: "spk" for u in texts},
        translations={"de": {u: t[::-1] for u, t in texts.items()}},
    )
    kd.write(d)
    back = KaldiDir.read(d)
    assert back.text == {u: normalise_value(t) for u, t in texts.items()}
    assert back.translations["de"] == {u: normalise_value(t[::-1]) for u, t in texts.items()}
    assert back.utt_ids == sorted(texts, key=c_sort_key)


def test_langtags_are_kept_apart_from_translations(tmp_path) -> None:
    from speechx.data.kaldi import KaldiDir

    kd = KaldiDir(
        wav_scp={"u1": "/a.wav", "u2": "/b.wav"},
        text={"u1": "ik like it", "u2": "hallo"},
        utt2spk={"u1": "s", "u2": "s"},
        translations={"en": {"u1": "i like it", "u2": "hello"}},
        langtags={"u1": "nl en en", "u2": "nl"},
    )
    kd.write(tmp_path / "d")
    assert (tmp_path / "d" / "text.langtags").read_text() == "u1 nl en en\nu2 nl\n"
    back = KaldiDir.read(tmp_path / "d")
    assert back.languages == ["en"] and back.langtags == kd.langtags
    assert back.subset(["u2"]).langtags == {"u2": "nl"}
    back.langtags = {}
    back.write(tmp_path / "d")
    assert not (tmp_path / "d" / "text.langtags").exists()
