"""Tests of speechx.longform: window placement, streamed reading and resampling, encode_long."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from speechx.errors import AudioError, LongformError
from speechx.longform import (
    LongformConfig,
    LongformEmbeddings,
    encode_long,
    iter_windows,
    stream_audio,
    window_bounds,
)
from speechx.models.presets import build_encoder

SR = 16000


@pytest.fixture(scope="module")
def encoder():  # noqa: ANN201
    return build_encoder("tiny", embed_dim=8).eval()


def _speechy(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """Band-limited noise with a slow envelope, so that windows differ from each other."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 0.3 * t) ** 2
    tone = np.sin(2 * np.pi * (200 + 50 * t) * t)
    return (0.2 * env * (tone + 0.3 * rng.standard_normal(n))).astype(np.float32)


def _write(path: Path, wav: np.ndarray, sr: int) -> Path:
    sf.write(str(path), wav, sr, subtype="FLOAT")
    return path


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (10.0, [(0, 4), (2, 6), (4, 8), (6, 10)]),  # windows fit exactly
        (11.0, [(0, 4), (2, 6), (4, 8), (6, 10), (7, 11)]),  # tail: one end-aligned window
        (4.0, [(0, 4)]),
        (1.5, [(0, 1.5)]),  # shorter than a window: the whole file
    ],
)
def test_window_bounds_cover_the_recording(seconds: float, expected: list) -> None:
    bounds = window_bounds(int(seconds * SR), SR, LongformConfig(window=4.0, hop=2.0))
    assert bounds == [(int(s * SR), int(e * SR)) for s, e in expected]
    covered = np.zeros(int(seconds * SR), dtype=bool)
    for s, e in bounds:
        covered[s:e] = True
    assert covered.all()


def test_window_bounds_without_overlap() -> None:
    bounds = window_bounds(25, 10, LongformConfig(window=1.0, hop=1.0))
    assert bounds == [(0, 10), (10, 20), (15, 25)]


def test_stream_reads_blocks_and_resamples_like_one_shot(tmp_path: Path) -> None:
    wav = _speechy(5.0, 22050)
    path = _write(tmp_path / "a.wav", wav, 22050)
    total, blocks = stream_audio(path, SR, block_seconds=0.7)
    parts = list(blocks)
    assert len(parts) >= 7  # really streamed, not read at once
    out = np.concatenate(parts)
    assert total == out.shape[0] == 5 * SR
    ref = soxr.resample(wav, 22050, SR, quality="HQ")
    np.testing.assert_allclose(out[: ref.shape[0]], ref[: out.shape[0]], atol=2e-3)
    # stereo is averaged to mono
    stereo = _write(tmp_path / "b.wav", np.stack([wav, -wav], axis=1), 22050)
    _, blocks = stream_audio(stereo, SR)
    assert np.abs(np.concatenate(list(blocks))).max() < 1e-6


def test_encode_long_equals_encode_on_the_sliced_windows(tmp_path: Path, encoder) -> None:
    wav = _speechy(3.65, SR)
    path = _write(tmp_path / "talk.wav", wav, SR)
    cfg = LongformConfig(window=1.0, hop=0.5, batch_size=3, block_seconds=0.45)
    out = encode_long(encoder, path, cfg)
    assert isinstance(out, LongformEmbeddings) and out.recording_id == "talk"
    bounds = window_bounds(wav.shape[0], SR, cfg)
    assert len(out) == len(bounds) == 7
    np.testing.assert_allclose(out.starts, [s / SR for s, _ in bounds])
    np.testing.assert_allclose(out.ends, [e / SR for _, e in bounds])
    assert out.starts[-1] == pytest.approx(2.65) and out.ends[-1] == pytest.approx(3.65)
    assert out.duration == pytest.approx(3.65) and out.sample_rate == SR
    direct = encoder.encode([(wav[s:e], SR) for s, e in bounds], batch_size=2)
    np.testing.assert_allclose(out.embeddings, direct, atol=1e-5)
    assert out.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out.embeddings, axis=1), 1.0, atol=1e-5)
    assert out.segment_ids()[0] == "talk-00000000-00001000"
    assert out.segment_ids()[-1] == "talk-00002650-00003650"
    # an array source gives the same result
    same = encode_long(encoder, (wav, SR), cfg, recording_id="talk")
    np.testing.assert_allclose(same.embeddings, out.embeddings, atol=1e-6)


def test_a_22k_file_gives_the_same_windows_as_16k(tmp_path: Path, encoder) -> None:
    cfg = LongformConfig(window=1.0, hop=0.4, batch_size=4, block_seconds=0.7)
    wav16 = _speechy(3.1, SR)
    wav22 = soxr.resample(wav16, SR, 22050).astype(np.float32)
    assert wav22.shape[0] == round(3.1 * 22050)
    a = encode_long(encoder, _write(tmp_path / "a.wav", wav16, SR), cfg)
    b = encode_long(encoder, _write(tmp_path / "b.wav", wav22, 22050), cfg)
    np.testing.assert_array_equal(a.starts, b.starts)
    np.testing.assert_array_equal(a.ends, b.ends)
    cos = np.sum(a.embeddings * b.embeddings, axis=1)
    assert cos.min() > 0.99  # the same audio, resampled twice


def test_recording_shorter_than_one_window(tmp_path: Path, encoder) -> None:
    wav = _speechy(0.8, SR)
    out = encode_long(encoder, _write(tmp_path / "s.wav", wav, SR), LongformConfig(window=3.0))
    assert len(out) == 1 and out.starts.tolist() == [0.0] and out.ends[0] == pytest.approx(0.8)
    np.testing.assert_allclose(out.embeddings, encoder.encode([(wav, SR)]), atol=1e-5)


def test_windows_stream_in_order(tmp_path: Path) -> None:
    wav = _speechy(3.0, SR)
    bounds, windows = iter_windows(
        _write(tmp_path / "w.wav", wav, SR), SR, LongformConfig(window=1.0, hop=0.75)
    )
    got = list(windows)
    assert len(got) == len(bounds) == 4
    for (s, e), w in zip(bounds, got, strict=True):
        np.testing.assert_array_equal(w, wav[s:e])


def test_errors_name_the_file(tmp_path: Path, encoder) -> None:
    with pytest.raises(AudioError, match=r"missing\.wav: audio file not found"):
        encode_long(encoder, tmp_path / "missing.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(AudioError, match=r"junk\.wav: cannot read audio"):
        encode_long(encoder, junk)
    tiny = _write(tmp_path / "tiny.wav", _speechy(0.001, SR), SR)  # 16 samples
    with pytest.raises(AudioError, match=r"tiny\.wav: recording is 16 samples.*encoder needs"):
        encode_long(encoder, tiny)
    ok = _write(tmp_path / "ok.wav", _speechy(1.0, SR), SR)
    with pytest.raises(LongformError, match=r"ok\.wav: window of 0.001 s is 16 samples"):
        encode_long(encoder, ok, LongformConfig(window=0.001, hop=0.001))
    bad = _speechy(2.0, SR)
    bad[20000] = np.nan
    with pytest.raises(AudioError, match=r"NaN or Inf sample at 1.250 s"):
        encode_long(encoder, (bad, SR))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 0.0}, "window must be > 0"),
        ({"window": 2.0, "hop": 3.0}, r"hop must be in \(0, window=2.0\]"),
        ({"hop": 0.0}, "hop must be in"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"block_seconds": 0.0}, "block_seconds must be > 0"),
    ],
)
def test_config_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(LongformError, match=message):
        LongformConfig(**kwargs)


def test_cli_encode_window_writes_ids_and_segments(tmp_path: Path, encoder) -> None:
    from speechx.cli import main

    model_dir = encoder.save_pretrained(tmp_path / "model")
    a = _write(tmp_path / "rec_a.wav", _speechy(2.5, SR), SR)
    b = _write(tmp_path / "rec_b.wav", _speechy(1.2, 22050, seed=1), 22050)
    out = tmp_path / "emb"
    argv = ["encode", str(a), str(b), "--model", str(model_dir), "--out", str(out)]
    assert main([*argv, "--window", "1.0", "--hop", "0.75"]) == 0
    ids = (out / "ids.txt").read_text().split()
    assert ids == [
        "rec_a-00000000-00001000",
        "rec_a-00000750-00001750",
        "rec_a-00001500-00002500",
        "rec_b-00000000-00001000",
        "rec_b-00000200-00001200",
    ]
    emb = np.load(out / "embeddings.npy")
    assert emb.shape == (5, 8)
    direct = encode_long(encoder, a, LongformConfig(window=1.0, hop=0.75))
    np.testing.assert_allclose(emb[:3], direct.embeddings, atol=1e-5)
    seg = (out / "segments").read_text().splitlines()
    assert seg[1] == "rec_a-00000750-00001750 rec_a 0.750 1.750"
    assert seg[4] == "rec_b-00000200-00001200 rec_b 0.200 1.200"
    # a data dir of whole recordings gives the same windows and ids
    d = tmp_path / "data"
    d.mkdir()
    (d / "wav.scp").write_text(f"rec_a {a}\nrec_b {b}\n")
    (d / "utt2spk").write_text("rec_a rec_a\nrec_b rec_b\n")
    (d / "spk2utt").write_text("rec_a rec_a\nrec_b rec_b\n")
    (d / "text").write_text("rec_a x\nrec_b y\n")
    out2 = tmp_path / "emb2"
    base = ["encode", "--data-dir", str(d), "--model", str(model_dir), "--out", str(out2)]
    assert main([*base, "--window", "1.0", "--hop", "0.75"]) == 0
    assert (out2 / "ids.txt").read_text().split() == ids
    np.testing.assert_allclose(np.load(out2 / "embeddings.npy"), emb, atol=1e-6)


def test_cli_encode_window_errors(
    tmp_path: Path, encoder, capsys: pytest.CaptureFixture[str]
) -> None:
    from speechx.cli import main

    model_dir = encoder.save_pretrained(tmp_path / "model")
    (tmp_path / "x").mkdir()
    a = _write(tmp_path / "x" / "rec.wav", _speechy(1.0, SR), SR)
    b = _write(tmp_path / "rec.wav", _speechy(1.0, SR), SR)
    base = ["encode", "--model", str(model_dir), "--out", str(tmp_path / "o")]
    assert main([*base, str(a), str(b), "--window", "1"]) == 2
    assert "share the name 'rec'" in capsys.readouterr().err
    assert main([*base, str(b), "--hop", "1"]) == 2
    assert "--hop needs --window" in capsys.readouterr().err
    assert main([*base, str(b), "--window", "1", "--hop", "2"]) == 2
    assert "hop must be in (0, window=1.0]" in capsys.readouterr().err
