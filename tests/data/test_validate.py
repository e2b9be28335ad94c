"""validate_data_dir finds every problem; fix_data_dir repairs what can be repaired."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from speechx.data.kaldi import KaldiDir
from speechx.data.validate import (
    InvalidDataDirError,
    fix_data_dir,
    validate_data_dir,
)
from speechx.errors import DataDirError
from speechx.testing import make_kaldi_dir


def _codes(report) -> set[tuple[str, str, str | None]]:
    return {(p.code, p.file, p.id) for p in report.problems}


def test_valid_dirs_are_ok(kaldi_dir: Path, kaldi_dir_segments: Path) -> None:
    for d in (kaldi_dir, kaldi_dir_segments):
        report = validate_data_dir(d)
        assert report.ok, str(report)
        assert report.problems == []
        assert report.num_utterances == 3
        report.raise_if_invalid()


def test_lists_every_problem_with_file_line_and_id(kaldi_dir: Path) -> None:
    d = kaldi_dir
    # duplicate + unsorted + empty transcript in text, CRLF in utt2spk, bad UTF-8 in utt2lang,
    # a missing id in utt2sent, a malformed utt2dur line, an inconsistent spk2utt.
    (d / "text").write_text(
        "spk1-utt2 where is the exit\nspk1-utt1\nspk2-utt3 I am not a crab\nspk2-utt3 again\n"
    )
    (d / "utt2spk").write_bytes(b"spk1-utt1 spk1\r\nspk1-utt2 spk1\r\nspk2-utt3 spk2\r\n")
    (d / "utt2lang").write_bytes(b"spk1-utt1 en\nspk1-utt2 \xff\xfe\nspk2-utt3 en\n")
    (d / "utt2sent").write_text("spk1-utt1 sent1\nspk2-utt3 sent3\n")
    (d / "utt2dur").write_text("spk1-utt1 1.0\nspk1-utt2 1.0 2.0\nspk2-utt3 0.75\n")
    (d / "spk2utt").write_text("spk1 spk1-utt1\nspk2 spk2-utt3\n")
    report = validate_data_dir(d)
    assert not report.ok
    got = _codes(report)
    expected = {
        ("unsorted", "text", "spk1-utt1"),
        ("empty-text", "text", "spk1-utt1"),
        ("duplicate-id", "text", "spk2-utt3"),
        ("crlf", "utt2spk", None),
        ("not-utf8", "utt2lang", None),
        ("missing-id", "utt2lang", "spk1-utt2"),
        ("missing-id", "utt2sent", "spk1-utt2"),
        ("malformed", "utt2dur", "spk1-utt2"),
        ("spk2utt", "spk2utt", "spk1"),
    }
    assert expected <= got, str(report)
    by = {(p.code, p.file): p for p in report.problems}
    assert by[("empty-text", "text")].line == 2
    assert by[("duplicate-id", "text")].line == 4
    assert by[("not-utf8", "utt2lang")].line == 2
    text = str(report)
    assert "text:2 [spk1-utt1]: empty transcript" in text
    assert text.splitlines()[0].startswith(f"{d}: ")
    with pytest.raises(InvalidDataDirError, match="empty transcript") as exc:
        report.raise_if_invalid()
    assert isinstance(exc.value, DataDirError)
    assert exc.value.report is report


def test_works_where_kaldidir_read_refuses(kaldi_dir: Path) -> None:
    (kaldi_dir / "utt2spk").write_text("spk1-utt1 spk1\nspk1-utt1 spk1\n")
    with pytest.raises(DataDirError):
        KaldiDir.read(kaldi_dir)
    report = validate_data_dir(kaldi_dir, check_audio=False)
    assert ("duplicate-id", "utt2spk", "spk1-utt1") in _codes(report)
    # text/wav.scp have ids utt2spk lacks
    assert ("extra-id", "text", "spk2-utt3") in _codes(report)
    assert ("extra-id", "wav.scp", "spk1-utt2") in _codes(report)


def test_missing_files_and_dir(tmp_path: Path) -> None:
    (tmp_path / "utt2spk").write_text("u1 s\n")
    report = validate_data_dir(tmp_path)
    assert {("missing-file", "wav.scp", None), ("missing-file", "text", None)} <= _codes(report)
    assert validate_data_dir(tmp_path / "nope").problems[0].code == "missing-dir"


def test_audio_problems(kaldi_dir: Path) -> None:
    kd = KaldiDir.read(kaldi_dir)
    Path(kd.wav_scp["spk1-utt1"]).unlink()
    Path(kd.wav_scp["spk1-utt2"]).write_bytes(b"")
    report = validate_data_dir(kaldi_dir)
    msgs = {p.id: p.message for p in report.problems if p.code == "bad-audio"}
    assert "not found" in msgs["spk1-utt1"]
    assert "empty" in msgs["spk1-utt2"]
    assert "spk2-utt3" not in msgs
    assert validate_data_dir(kaldi_dir, check_audio=False).ok


def test_segment_past_end_and_duration_mismatch(kaldi_dir_segments: Path) -> None:
    seg = kaldi_dir_segments / "segments"
    lines = seg.read_text().splitlines()
    lines[2] = "spk2-utt3 rec1 1.800 9.000"  # recording is 2.65 s long
    seg.write_text("\n".join(lines) + "\n")
    report = validate_data_dir(kaldi_dir_segments)
    past = [p for p in report.problems if p.code == "segment-past-end"]
    assert len(past) == 1 and past[0].line == 3 and past[0].id == "spk2-utt3"
    assert "9.000" in past[0].message
    mism = [p for p in report.problems if p.code == "duration-mismatch"]
    assert [p.id for p in mism] == ["spk2-utt3"] and mism[0].severity == "warning"


def test_pipes(kaldi_dir: Path) -> None:
    (kaldi_dir / "wav.scp").write_text(
        "spk1-utt1 sox a.wav -t wav - |\nspk1-utt2 b.wav\nspk2-utt3 c.wav\n"
    )
    report = validate_data_dir(kaldi_dir, check_audio=False)
    assert ("pipe", "wav.scp", "spk1-utt1") in _codes(report)
    assert validate_data_dir(kaldi_dir, check_audio=False, allow_pipes=True).ok


def test_partial_translations_are_a_warning(kaldi_dir: Path) -> None:
    (kaldi_dir / "text.nl").write_text("spk1-utt1 de vis\n")
    report = validate_data_dir(kaldi_dir)
    assert report.ok
    (warning,) = [p for p in report.warnings if p.file == "text.nl"]
    assert warning.code == "partial-translations"
    assert "2 of 3" in warning.message and "spk1-utt2, spk2-utt3" in warning.message
    (kaldi_dir / "text.nl").write_text("spk1-utt1 de vis\nzzz niet hier\n")
    report = validate_data_dir(kaldi_dir)
    assert ("extra-id", "text.nl", "zzz") in _codes(report) and not report.ok


def test_fix_repairs_and_reports(kaldi_dir: Path, tmp_path: Path) -> None:
    d = kaldi_dir
    (d / "text").write_bytes(
        b"spk2-utt3 I am not a crab\r\nspk1-utt2\r\nspk1-utt1 the fish swims home\r\n"
    )
    (d / "utt2lang").write_text("spk1-utt1 en\nspk1-utt2 en\n")  # spk2-utt3 missing
    (d / "spk2utt").write_text("spk1 spk1-utt1\n")
    (d / "spk2gender").write_text("spk1 f\nspk2 m\n")
    out = tmp_path / "fixed"
    fix = fix_data_dir(d, out=out)
    assert fix.kept == 1
    assert fix.dropped == {
        "spk1-utt2": ["empty transcript"],
        "spk2-utt3": ["no valid line in utt2lang"],
    }
    assert set(fix.dropped_recordings) == {"spk1-utt2", "spk2-utt3"}
    assert any("CRLF" in c for c in fix.changes)
    assert any("sorted text" in c for c in fix.changes)
    assert "dropped spk1-utt2: empty transcript" in str(fix)
    report = validate_data_dir(out)
    assert report.ok and report.problems == [], str(report)
    kd = KaldiDir.read(out)
    assert kd.utt_ids == ["spk1-utt1"]
    assert kd.translations["en"] == {"spk1-utt1": "the fish swims home"}
    assert (out / "spk2utt").read_text() == "spk1 spk1-utt1\n"
    assert (out / "spk2gender").read_text() == "spk1 f\n"
    assert b"\r" not in (out / "text").read_bytes()
    # the source is untouched when out= is given
    assert b"\r\n" in (d / "text").read_bytes()


def test_fix_in_place_with_segments_and_conflicts(kaldi_dir_segments: Path) -> None:
    d = kaldi_dir_segments
    with open(d / "utt2spk", "a") as fh:
        fh.write("spk1-utt1 spk9\n")  # conflicting duplicate -> utterance dropped
    with open(d / "segments", "a") as fh:
        fh.write("spk2-utt3 rec1 0.1 1.1\n")  # identical? no: differs -> dropped
    fix = fix_data_dir(d)
    assert fix.output == d
    assert set(fix.dropped) == {"spk1-utt1", "spk2-utt3"}
    assert fix.dropped_recordings == {}
    kd = KaldiDir.read(d)
    assert kd.utt_ids == ["spk1-utt2"] and list(kd.wav_scp) == ["rec1"]
    assert validate_data_dir(d).ok


def test_fix_check_audio_drops_unreadable(tmp_path: Path) -> None:
    d = make_kaldi_dir(tmp_path / "d", n=3)
    kd = KaldiDir.read(d)
    sf.write(kd.wav_scp["spk1-utt2"], [], 16000)  # header only, zero frames
    fix = fix_data_dir(d, check_audio=True)
    assert list(fix.dropped) == ["spk1-utt2"]
    assert "bad audio" in fix.dropped["spk1-utt2"][0]
    assert validate_data_dir(d).ok


def test_fix_needs_utt2spk(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match="utt2spk"):
        fix_data_dir(tmp_path)


def test_fix_refuses_to_empty_a_dir(kaldi_dir: Path) -> None:
    before = (kaldi_dir / "text").read_bytes()
    (kaldi_dir / "wav.scp").write_text("")
    with pytest.raises(DataDirError, match=r"every utterance would be dropped .*no line in wav"):
        fix_data_dir(kaldi_dir)
    assert (kaldi_dir / "text").read_bytes() == before


def test_fix_keeps_langtags_of_kept_utterances(kaldi_dir: Path, tmp_path: Path) -> None:
    d = kaldi_dir
    ids = KaldiDir.read(d).utt_ids
    tags = {u: " ".join("nl" for _ in KaldiDir.read(d).text[u].split()) for u in ids}
    (d / "text.langtags").write_text("".join(f"{u} {tags[u]}\n" for u in ids))
    assert validate_data_dir(d).ok
    (d / "text").write_text("".join(f"{u} {KaldiDir.read(d).text[u]}\n" for u in ids[1:]))
    fix = fix_data_dir(d, out=tmp_path / "fixed")
    back = KaldiDir.read(tmp_path / "fixed")
    assert fix.kept == len(ids) - 1 and back.langtags == {u: tags[u] for u in ids[1:]}
    assert "langtags" not in back.translations
    (tmp_path / "fixed" / "text.langtags").write_text(f"{ids[1]}\n")
    report = validate_data_dir(tmp_path / "fixed")
    assert any(p.file == "text.langtags" and p.code == "malformed" for p in report.problems)
