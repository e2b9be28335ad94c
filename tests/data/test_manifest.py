"""JSONL manifests: lossless round trips with Kaldi dirs, and errors naming file and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechx.data.kaldi import KaldiDir, Segment
from speechx.data.manifest import (
    kaldi_to_manifest,
    manifest_to_kaldi,
    read_manifest,
    write_manifest,
)
from speechx.errors import DataDirError


def test_kaldi_dir_round_trip_on_disk(kaldi_dir: Path, tmp_path: Path) -> None:
    m = kaldi_to_manifest(kaldi_dir, tmp_path / "m.jsonl")
    rows = [json.loads(line) for line in m.read_text("utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["spk1-utt1", "spk1-utt2", "spk2-utt3"]
    assert rows[1]["speaker"] == "spk1" and rows[1]["duration"] == 0.5
    assert rows[1]["translations"] == {"en": "where is the exit"}
    assert "start" not in rows[0]["audio"]
    out = manifest_to_kaldi(m, tmp_path / "back")
    for name in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2lang", "utt2dur", "utt2sent"):
        assert (out / name).read_bytes() == (kaldi_dir / name).read_bytes(), name
    assert (out / "text.en").read_bytes() == (kaldi_dir / "text.en").read_bytes()


def test_segments_round_trip(kaldi_dir_segments: Path, tmp_path: Path) -> None:
    kd = KaldiDir.read(kaldi_dir_segments)
    write_manifest(kd, tmp_path / "m.jsonl.gz")
    with gzip.open(tmp_path / "m.jsonl.gz", "rt", encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    assert first["audio"]["recording"] == "rec1" and first["audio"]["start"] == 0.1
    assert read_manifest(tmp_path / "m.jsonl.gz") == kd


def _line(**kw) -> str:
    rec = {"id": "u1", "audio": {"path": "/a.wav"}, "speaker": "s"}
    rec.update(kw)
    return json.dumps(rec)


@pytest.mark.parametrize(
    ("lines", "pattern"),
    [
        ([_line(), "{not json"], r"m\.jsonl:2: bad JSON"),
        (["[1, 2]"], r"m\.jsonl:1: expected a JSON object"),
        ([json.dumps({"audio": {"path": "x"}, "speaker": "s"})], r":1: missing field 'id'"),
        ([_line(audio={"start": 1})], r":1 \(u1\): missing field 'audio.path'"),
        ([_line(audio="x.wav")], r":1 \(u1\): missing field 'audio'"),
        ([_line(speaker=None)], r"missing field 'speaker'"),
        ([_line(), "", _line()], r"m\.jsonl:3: duplicate id 'u1' \(first on line 1\)"),
        ([_line(id="u 1")], r"contains whitespace"),
        ([_line(duration="long")], r"'duration' must be a number"),
        ([_line(translations={"en": 3})], r"translations\['en'\] is not a string"),
        (
            [
                _line(audio={"path": "/a.wav", "start": 0.0, "end": 1.0}),
                _line(id="u2", audio={"path": "/b.wav"}),
            ],
            r":2 \(u2\): audio.start/end must be given on every line or on none",
        ),
        (
            [
                _line(audio={"path": "/a.wav", "recording": "r", "start": 0.0, "end": 1.0}),
                _line(id="u2", audio={"path": "/b.wav", "recording": "r", "start": 1, "end": 2}),
            ],
            r"recording 'r' has path '/b.wav' here but '/a.wav' earlier",
        ),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, lines: list[str], pattern: str) -> None:
    m = tmp_path / "m.jsonl"
    m.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataDirError, match=pattern):
        read_manifest(m)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match="manifest not found"):
        read_manifest(tmp_path / "nope.jsonl")


def test_write_needs_audio() -> None:
    kd = KaldiDir(utt2spk={"u1": "s"}, text={"u1": "x"})
    with pytest.raises(DataDirError, match="'u1'.*not in wav.scp"):
        write_manifest(kd, "/nonexistent/never-written.jsonl")


_ID = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12).filter(
    lambda s: not any(c.isspace() for c in s)
)
_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
_TIME = st.floats(min_value=0, max_value=1e4, allow_nan=False, allow_infinity=False)


@st.composite
def kaldi_dirs(draw: st.DrawFn) -> KaldiDir:
    utts = draw(st.lists(_ID, min_size=1, max_size=5, unique=True))
    segmented = draw(st.booleans())
    kd = KaldiDir()
    for utt in utts:
        kd.utt2spk[utt] = draw(_ID)
        if segmented:
            rec = draw(st.sampled_from(["r1", "r2", utt]))
            kd.wav_scp[rec] = f"/audio/{rec}.ogg"
            start = draw(_TIME)
            kd.segments[utt] = Segment(rec, start, start + draw(_TIME))
        else:
            kd.wav_scp[utt] = draw(_TEXT.filter(bool))
        if draw(st.booleans()):
            kd.text[utt] = draw(_TEXT)
        if draw(st.booleans()):
            kd.utt2lang[utt] = draw(st.sampled_from(["nl", "en", "zh"]))
        if draw(st.booleans()):
            kd.utt2dur[utt] = draw(_TIME)
        if draw(st.booleans()):
            kd.utt2sent[utt] = draw(_ID)
        for lang in draw(st.lists(st.sampled_from(["de", "fr", "ja"]), unique=True)):
            kd.translations.setdefault(lang, {})[utt] = draw(_TEXT)
    return kd


@settings(max_examples=60, deadline=None)
@given(kaldi_dirs())
def test_round_trip_kaldidir_manifest_kaldidir(
    tmp_path_factory: pytest.TempPathFactory, kd: KaldiDir
) -> None:
    path = tmp_path_factory.mktemp("m") / "m.jsonl"
    write_manifest(kd, path)
    back = read_manifest(path)
    assert back == kd
    # and manifest -> KaldiDir -> manifest is byte-identical
    write_manifest(back, path.with_name("again.jsonl"))
    assert path.with_name("again.jsonl").read_bytes() == path.read_bytes()
