"""Catalogue, audio: what ``speechx encode`` and ``speechx validate-data`` do with bad audio.

Errors are one line naming the file and the problem, and an existing output dir is left
byte-identical.  Rates other than 16 kHz, several channels, 24-bit and float64 are read:
resampled with soxr and downmixed by the channel mean (as lhotse and ESPnet do).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechx.audio import load_audio
from speechx.testing import make_kaldi_dir, make_sine, make_wav
from tests.robustness.conftest import assert_one_line_error, run_cli, run_subprocess, snapshot


def _embeddings(out: Path) -> np.ndarray:
    return np.load(out / "embeddings.npy")


@pytest.fixture
def previous_out(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """An encode output dir written by an earlier, good run."""
    good = make_wav(tmp_path / "good.wav", 0.5)
    out = tmp_path / "out"
    assert run_cli(capsys, "encode", "--model", tiny_model_dir, "--out", out, good).code == 0
    return out


# -- errors ------------------------------------------------------------------------------------


def _corrupt_header(d: Path) -> Path:
    b = make_wav(d / "x.wav", 0.5).read_bytes()
    (d / "corrupt.wav").write_bytes(b"JUNK" + b[4:])
    return d / "corrupt.wav"


def _truncated_wav(d: Path) -> Path:
    b = make_wav(d / "x.wav", 0.5).read_bytes()
    (d / "cut.wav").write_bytes(b[: len(b) // 2])
    return d / "cut.wav"


def _truncated_flac(d: Path) -> Path:
    b = make_wav(d / "x.flac", 2.0).read_bytes()
    (d / "cut.flac").write_bytes(b[: len(b) // 2])
    return d / "cut.flac"


def _zero_samples(d: Path) -> Path:
    sf.write(d / "empty.wav", np.zeros(0, np.float32), 16000)
    return d / "empty.wav"


def _nan_samples(d: Path) -> Path:
    wav = make_sine(0.5)
    wav[100:200] = np.nan
    sf.write(d / "nan.wav", wav, 16000, subtype="FLOAT")
    return d / "nan.wav"


def _single_sample(d: Path) -> Path:
    sf.write(d / "one.wav", np.array([0.1], np.float32), 16000)
    return d / "one.wav"


def _unsupported_format(d: Path) -> Path:
    (d / "notes.txt").write_text("this is a transcript, not audio\n", encoding="utf-8")
    return d / "notes.txt"


def _directory(d: Path) -> Path:
    (d / "clip.wav").mkdir()
    return d / "clip.wav"


AUDIO_ERRORS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "corrupt_header": (_corrupt_header, "cannot read audio header"),
    "truncated_wav": (_truncated_wav, "truncated WAV file: its header declares 16,000 bytes"),
    "truncated_flac": (_truncated_flac, "cannot decode audio"),
    "zero_samples": (_zero_samples, "audio has zero samples"),
    "nan_samples": (_nan_samples, "audio contains NaN or Inf samples"),
    "single_sample": (_single_sample, "shorter than the 40 samples the encoder needs"),
    "unsupported_format": (_unsupported_format, "not a format libsndfile reads"),
    "directory": (_directory, "is a directory, not an audio file"),
}


@pytest.mark.parametrize("case", sorted(AUDIO_ERRORS))
def test_audio_encode_errors(
    case: str,
    tmp_path: Path,
    tiny_model_dir: Path,
    previous_out: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    build, problem = AUDIO_ERRORS[case]
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = build(bad_dir)
    good = make_wav(tmp_path / "good2.wav", 0.7)
    before = snapshot(previous_out)
    res = run_cli(capsys, "encode", "--model", tiny_model_dir, "--out", previous_out, good, bad)
    assert_one_line_error(res, "speechx encode: error:", str(bad), problem)
    assert snapshot(previous_out) == before  # the earlier output is untouched


def test_audio_corrupt_header_subprocess(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The real console run: one line on stderr, exit 2, no traceback; --debug shows it."""
    bad = _corrupt_header(tmp_path)
    res = run_subprocess("encode", "--model", tiny_model_dir, "--out", "out", bad, cwd=tmp_path)
    assert res.code == 2
    assert_one_line_error(res, str(bad), "cannot read audio header")
    assert not (tmp_path / "out").exists()


def test_audio_unreadable_file(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    """A file without read permission.  Root reads anything, so there the command runs with
    the file-permission override capabilities dropped (setpriv)."""
    path = make_wav(tmp_path / "locked.wav", 0.5)
    os.chmod(path, 0)
    try:
        if os.geteuid() != 0:
            res = run_cli(capsys, "encode", "--model", tiny_model_dir, "--out", "o", path)
        elif shutil.which("setpriv"):
            caps = "-dac_override,-dac_read_search"
            prefix = ("setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}")
            res = run_subprocess("validate-data", "--help", cwd=tmp_path, prefix=prefix)
            assert res.code == 0, res.err  # the capability drop itself works here
            kd = make_kaldi_dir(tmp_path / "data", n=1)
            (kd / "wav.scp").write_text(f"spk1-utt1 {path}\n", encoding="utf-8")
            res = run_subprocess("validate-data", kd, cwd=tmp_path, prefix=prefix)
            assert res.code == 1 and "Traceback" not in res.err
            assert f"wav.scp:1 [spk1-utt1]: {path}: permission denied" in res.out
            return
        else:
            pytest.skip("running as root without setpriv: permissions are not enforced")
    finally:
        os.chmod(path, 0o644)
    assert_one_line_error(res, str(path), "permission denied")


def test_audio_validate_data_names_bad_recordings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """validate-data lists every bad recording with its wav.scp line and id, exit 1."""
    kd = make_kaldi_dir(tmp_path / "data", n=3)
    _corrupt_header(tmp_path)
    (tmp_path / "corrupt.wav").replace(kd / "wav" / "spk1-utt2.wav")
    _nan_samples(tmp_path)  # a NaN file has a good header: only loading finds it
    _zero_samples(tmp_path)
    (tmp_path / "empty.wav").replace(kd / "wav" / "spk2-utt3.wav")
    res = run_cli(capsys, "validate-data", kd)
    assert res.code == 1 and "Traceback" not in res.err
    assert "wav.scp:2 [spk1-utt2]: " in res.out and "cannot read audio header" in res.out
    assert "wav.scp:3 [spk2-utt3]: " in res.out and "zero samples" in res.out


# -- handled -----------------------------------------------------------------------------------


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a.ravel() @ b.ravel())


@pytest.mark.parametrize(
    ("case", "sr", "channels", "subtype"),
    [
        ("rate_8k", 8000, 1, None),
        ("rate_48k", 48000, 1, None),
        ("six_channels", 16000, 6, None),
        ("pcm_24bit", 16000, 1, "PCM_24"),
        ("float64", 16000, 1, "DOUBLE"),
    ],
)
def test_audio_handled_formats(
    case: str,
    sr: int,
    channels: int,
    subtype: str | None,
    tmp_path: Path,
    tiny_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Read, resampled to 16 kHz and downmixed: the embedding is the one of the same signal
    handed over as a 16 kHz mono array."""
    from speechx.models import SpeechEncoder

    path = make_wav(tmp_path / f"{case}.wav", 1.0, sr, channels=channels, subtype=subtype)
    res = run_cli(capsys, "encode", "--model", tiny_model_dir, "--out", tmp_path / "o", path)
    assert res.code == 0, res.err
    got = _embeddings(tmp_path / "o")
    assert got.shape == (1, 8) and np.isfinite(got).all()
    model = SpeechEncoder.from_pretrained(tiny_model_dir)
    data, file_sr = sf.read(path, dtype="float64", always_2d=True)
    assert data.shape[1] == channels and file_sr == sr
    mono16k = load_audio((data.mean(axis=1), sr), 16000)
    want = model.encode([(mono16k, 16000)])
    np.testing.assert_allclose(got, want, atol=1e-5)
    if channels == 1:  # and the same as a clean 16-bit 16 kHz copy of the sine, nearly
        clean = model.encode([(make_sine(1.0, 16000, freq=440.0), 16000)])
        assert _cosine(got, clean) > 0.99


def test_audio_longer_than_max_duration(
    tmp_path: Path, tiny_bert: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """data.max_duration of a training config: longer utterances are left out with a warning
    naming them, and when none is left the run stops before training, naming the dir."""
    kd = make_kaldi_dir(tmp_path / "data", n=2, seconds=(3.0, 2.0))
    teacher = ("--teacher", f"hf:{tiny_bert}")
    cache = ("--cache-dir", tmp_path / "cache")
    assert run_cli(capsys, "teacher-embed", kd, *teacher, *cache).code == 0
    cfg = tmp_path / "distill.yaml"
    cfg.write_text(f"data:\n  train: [{kd}]\n  max_duration: 1.0\nmax_steps: 1\n", "utf-8")
    exp = tmp_path / "exp"
    res = run_cli(capsys, "distill", "--config", cfg, "--exp-dir", exp, *teacher)
    line = assert_one_line_error(res, "speechx distill: error:", "no utterances left", str(kd))
    assert "checkpoints" not in line and not (exp / "checkpoints").exists()
