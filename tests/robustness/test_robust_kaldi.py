"""Catalogue, Kaldi data dirs: ``speechx validate-data`` lists each problem with its file, line
and id (exit 1, like Kaldi's validate_data_dir.sh); the verbs that read a dir
(``teacher-embed``, ``encode --data-dir``) stop with one line naming the file and line.

CRLF line ends, a UTF-8 BOM and tabs are read as Kaldi text (the reader drops ``\\r`` and the
BOM, and any ASCII blank separates fields, as in lhotse); validate-data still flags CRLF and
BOM as errors because Kaldi's own tools choke on them, and fix-data rewrites them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from speechx.data import KaldiDir
from speechx.testing import make_kaldi_dir
from tests.robustness.conftest import assert_one_line_error, run_cli, snapshot


def _edit(name: str, change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    return lambda d: (d / name).write_bytes(change((d / name).read_bytes()))


def _missing_audio(d: Path) -> None:
    (d / "wav" / "spk1-utt2.wav").unlink()


def _pipe(d: Path) -> None:
    lines = (d / "wav.scp").read_text("utf-8").splitlines()
    rec, path = lines[0].split(" ", 1)
    lines[0] = f"{rec} sox {path} -t wav - |"
    (d / "wav.scp").write_text("\n".join(lines) + "\n", "utf-8")


# case -> (change to a valid dir, the line validate-data must print)
VALIDATE_ERRORS: dict[str, tuple[Callable[[Path], None], str]] = {
    "duplicate_ids": (
        _edit("text", lambda b: b + b.splitlines(True)[1]),
        "text:4 [spk1-utt2]: duplicate id (first on line 2)",
    ),
    "unsorted": (
        _edit("utt2spk", lambda b: b"".join(reversed(b.splitlines(True)))),
        "utt2spk:2 [spk1-utt2]: not sorted",
    ),
    "missing_file": (lambda d: (d / "text").unlink(), "text: required file is missing"),
    "missing_audio": (_missing_audio, "wav.scp:2 [spk1-utt2]: "),
    "crlf": (_edit("text", lambda b: b.replace(b"\n", b"\r\n")), "text:1: 3 line(s) end in CRLF"),
    "bom": (_edit("text", lambda b: b"\xef\xbb\xbf" + b), "text:1: file starts with a UTF-8 byte"),
    "non_utf8": (
        _edit("text", lambda b: b.replace(b"fish", b"f\xe9sh")),
        "text:1: line is not valid UTF-8",
    ),
    "empty_text": (
        _edit("text", lambda b: b.replace(b" where is the exit", b"")),
        "text:2 [spk1-utt2]: empty transcript",
    ),
    "pipe_without_opt_in": (_pipe, "wav.scp:1 [spk1-utt1]: entry is a shell pipe"),
}


@pytest.mark.parametrize("case", sorted(VALIDATE_ERRORS))
def test_kaldi_validate_data(case: str, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    change, line = VALIDATE_ERRORS[case]
    change(data_dir)
    before = snapshot(data_dir)
    res = run_cli(capsys, "validate-data", data_dir)
    assert res.code == 1 and "Traceback" not in res.err
    assert line in res.out, res.out
    if case == "missing_audio":
        assert "audio file not found" in res.out
    assert snapshot(data_dir) == before  # validating never edits


def test_kaldi_segments_past_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kd = make_kaldi_dir(tmp_path / "data", n=3, with_segments=True)
    lines = (kd / "segments").read_text("utf-8").splitlines()
    lines[-1] = " ".join(lines[-1].split()[:3] + ["99.0"])
    (kd / "segments").write_text("\n".join(lines) + "\n", "utf-8")
    res = run_cli(capsys, "validate-data", kd)
    assert res.code == 1
    assert "segments:3 [spk2-utt3]: segment end 99.000 s is past the end of rec1" in res.out


def test_kaldi_segments_past_end_encode(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kd = make_kaldi_dir(tmp_path / "data", n=3, with_segments=True)
    lines = (kd / "segments").read_text("utf-8").splitlines()
    lines[-1] = " ".join(lines[-1].split()[:3] + ["99.0"])
    (kd / "segments").write_text("\n".join(lines) + "\n", "utf-8")
    out = tmp_path / "out"
    res = run_cli(capsys, "encode", "--model", tiny_model_dir, "--data-dir", kd, "--out", out)
    assert_one_line_error(res, "rec1.wav", "segment end 99.000 s is past the end of the audio")
    assert not out.exists()


@pytest.mark.parametrize(
    ("case", "change", "needle"),
    [
        ("duplicate_ids", VALIDATE_ERRORS["duplicate_ids"][0], "text:4: duplicate id 'spk1-utt2'"),
        ("non_utf8", VALIDATE_ERRORS["non_utf8"][0], "text:1: not valid UTF-8"),
        ("pipe_without_opt_in", _pipe, "entry 'spk1-utt1' is a shell pipe"),
        ("missing_dir", lambda d: None, "data directory not found"),
    ],
)
def test_kaldi_readers_stop_with_one_line(
    case: str,
    change: Callable[[Path], None],
    needle: str,
    data_dir: Path,
    tiny_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = data_dir.parent / "nope" if case == "missing_dir" else data_dir
    change(data_dir)
    out = data_dir.parent / "out"
    res = run_cli(capsys, "encode", "--model", tiny_model_dir, "--data-dir", target, "--out", out)
    assert_one_line_error(res, "speechx encode: error:", str(target), needle)
    assert not out.exists()


@pytest.mark.parametrize(
    ("case", "change"),
    [
        ("crlf", VALIDATE_ERRORS["crlf"][0]),
        ("bom", VALIDATE_ERRORS["bom"][0]),
        (
            "tabs",
            _edit(
                "text", lambda b: b"".join(ln.replace(b" ", b"\t", 1) for ln in b.splitlines(True))
            ),
        ),
    ],
)
def test_kaldi_read_as_kaldi_text(
    case: str, change: Callable[[Path], None], data_dir: Path, tmp_path: Path
) -> None:
    """CRLF, BOM and a tab after the id: the dir reads exactly like the clean one.  (A tab
    inside a transcript is kept as written, and becomes a space when speechx writes it.)"""
    clean = KaldiDir.read(data_dir)
    change(data_dir)
    assert KaldiDir.read(data_dir) == clean
    if case == "tabs":  # tabs are blanks to Kaldi: not even a warning
        from speechx.data.validate import validate_data_dir

        assert validate_data_dir(data_dir).ok


def test_kaldi_fix_data_repairs_crlf_bom_and_order(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = KaldiDir.read(data_dir)
    VALIDATE_ERRORS["crlf"][0](data_dir)
    VALIDATE_ERRORS["bom"][0](data_dir)
    VALIDATE_ERRORS["unsorted"][0](data_dir)
    res = run_cli(capsys, "fix-data", data_dir)
    assert res.code == 0, res.err
    assert "converted CRLF line endings of text" in res.out and "sorted utt2spk" in res.out
    assert KaldiDir.read(data_dir) == clean
    assert run_cli(capsys, "validate-data", data_dir).code == 0


def test_kaldi_empty_text_teacher_row_is_nan(
    data_dir: Path, tiny_bert: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty transcript gets a row of NaN in the teacher stage (documented in
    speechx.teachers.embed), never an embedding of the empty string."""
    VALIDATE_ERRORS["empty_text"][0](data_dir)
    res = run_cli(
        capsys,
        "teacher-embed",
        data_dir,
        "--teacher",
        f"hf:{tiny_bert}",
        "--cache-dir",
        tmp_path / "cache",
        "--fields",
        "text",
    )
    assert res.code == 0, res.err
    (tdir,) = (data_dir / "teacher").iterdir()
    ids = (tdir / "ids.txt").read_text("utf-8").split()
    emb = np.load(tdir / "text.npy")
    row = ids.index("spk1-utt2")
    assert np.isnan(emb[row]).all()
    assert np.isfinite(np.delete(emb, row, axis=0)).all()
