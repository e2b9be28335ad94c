"""speechx.audio: decoding, downmix, resampling, segments and every documented error."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechx.audio import audio_info, load_audio, save_audio
from speechx.errors import AudioError, AudioWarning
from speechx.testing import make_sine, make_wav


@pytest.mark.parametrize(
    ("name", "subtype"), [("a.wav", "PCM_16"), ("a.flac", "PCM_16"), ("a.ogg", "VORBIS")]
)
def test_formats_at_16k(tmp_path: Path, name: str, subtype: str) -> None:
    p = make_wav(tmp_path / name, 0.5, 16000, freq=440.0, subtype=subtype)
    info = audio_info(p)
    assert (info.sample_rate, info.num_samples, info.channels) == (16000, 8000, 1)
    assert info.duration == pytest.approx(0.5)
    wav = load_audio(p)
    assert wav.dtype == np.float32 and wav.shape == (8000,) and wav.flags.c_contiguous
    ref = make_sine(0.5, 16000, freq=440.0)
    tol = 1e-3 if subtype == "PCM_16" else 0.05  # vorbis is lossy
    assert np.sqrt(np.mean((wav - ref) ** 2)) < tol


def test_ogg_22k_resampled_with_soxr(tmp_path: Path) -> None:
    p = make_wav(tmp_path / "a.ogg", 1.0, 22050, freq=300.0)
    wav = load_audio(p, sample_rate=16000)
    assert wav.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(wav))
    assert np.argmax(spectrum) == pytest.approx(300, abs=1)  # 1 Hz bins over 1 s


def test_stereo_is_downmixed(tmp_path: Path) -> None:
    st = make_sine(0.25, 16000, channels=2)
    p = tmp_path / "st.wav"
    sf.write(p, st, 16000, subtype="FLOAT")
    assert audio_info(p).channels == 2
    np.testing.assert_allclose(load_audio(p), st.mean(axis=1), atol=1e-6)
    np.testing.assert_allclose(load_audio((st, 16000)), st.mean(axis=1), atol=1e-6)


def test_array_input_float_and_int16() -> None:
    x = make_sine(0.5, 8000)
    out = load_audio((x.astype(np.float64), 8000), sample_rate=16000)
    assert out.dtype == np.float32 and out.shape == (16000 // 2,)
    i16 = (x * 32767).astype(np.int16)
    np.testing.assert_allclose(load_audio((i16, 8000), sample_rate=8000), x, atol=1e-4)


def test_segments_from_file_and_array(tmp_path: Path) -> None:
    p = make_wav(tmp_path / "a.wav", 1.0, 16000)
    full = load_audio(p)
    np.testing.assert_array_equal(load_audio(p, start=0.25, end=0.5), full[4000:8000])
    np.testing.assert_array_equal(load_audio(p, start=0.75), full[12000:])
    np.testing.assert_array_equal(load_audio(p, end=0.1), full[:1600])
    np.testing.assert_array_equal(load_audio((full, 16000), start=0.25, end=0.5), full[4000:8000])
    assert load_audio(p, start=0.5, end=1.005).shape == (8000,)  # 10 ms rounding tolerated
    with pytest.raises(AudioError, match=r"a\.wav: segment end 1\.200 s is past the end"):
        load_audio(p, start=0.5, end=1.2)
    with pytest.raises(AudioError, match="invalid segment"):
        load_audio(p, start=0.5, end=0.4)
    with pytest.raises(AudioError, match="invalid segment"):
        load_audio((full, 16000), start=-0.1, end=0.2)


def test_missing_empty_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"nope\.wav: audio file not found"):
        load_audio(tmp_path / "nope.wav")
    (tmp_path / "zero.ogg").write_bytes(b"")
    with pytest.raises(AudioError, match=r"zero\.ogg: audio file is empty \(0 bytes\)"):
        load_audio(tmp_path / "zero.ogg")
    (tmp_path / "junk.wav").write_bytes(bytes(range(256)) * 8)
    with pytest.raises(AudioError, match=r"junk\.wav: cannot read audio header"):
        load_audio(tmp_path / "junk.wav")
    good = make_wav(tmp_path / "good.ogg", 0.5, 22050).read_bytes()
    (tmp_path / "cut.ogg").write_bytes(good[: len(good) // 2])
    with pytest.raises(AudioError, match=r"cut\.ogg"):
        load_audio(tmp_path / "cut.ogg")


def test_header_only_ogg_has_zero_samples(tmp_path: Path) -> None:
    p = tmp_path / "empty.ogg"
    sf.write(p, np.zeros(0, dtype=np.float32), 22050)
    assert p.stat().st_size > 0 and audio_info(p).num_samples == 0
    with pytest.raises(AudioError, match=r"empty\.ogg: audio has zero samples"):
        load_audio(p)
    with pytest.raises(AudioError, match="zero samples"):
        load_audio((np.zeros(0, dtype=np.float32), 16000))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path: Path, bad: float) -> None:
    x = make_sine(0.1, 16000)
    x[10] = bad
    p = tmp_path / "bad.wav"
    sf.write(p, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"bad\.wav: audio contains NaN or Inf"):
        load_audio(p)
    with pytest.raises(AudioError, match="NaN or Inf"):
        load_audio((x, 16000))


def test_too_long(tmp_path: Path) -> None:
    p = make_wav(tmp_path / "long.wav", 2.0, 8000)
    with pytest.raises(AudioError, match=r"long\.wav: audio is 2\.00 s long, more than .* 1\.5 s"):
        load_audio(p, max_duration=1.5)
    assert load_audio(p, max_duration=1.5, start=0.0, end=1.0).shape == (16000,)


def test_silence_warns_unless_disabled() -> None:
    with pytest.warns(AudioWarning, match="all zeros"):
        load_audio((np.zeros(100, dtype=np.float32), 16000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_audio((np.zeros(100, dtype=np.float32), 16000), warn_silence=False)


def test_bad_array_inputs() -> None:
    with pytest.raises(AudioError, match="sample rate must be positive"):
        load_audio((np.zeros(10), 0))
    with pytest.raises(AudioError, match="not an integer"):
        load_audio((np.zeros(10), "fast"))
    with pytest.raises(AudioError, match="3-D"):
        load_audio((np.zeros((2, 2, 2)), 16000))
    with pytest.raises(AudioError, match="unsupported sample dtype"):
        load_audio((np.array(["a"]), 16000))


def test_save_audio_round_trip(tmp_path: Path) -> None:
    x = make_sine(0.2, 16000)
    p = tmp_path / "sub" / "x.wav"
    save_audio(p, x, 16000)
    assert not list(p.parent.glob(".*.tmp"))
    np.testing.assert_allclose(load_audio(p), x, atol=1e-4)


# Array layouts and integer PCM scaling.


def test_channels_first_array_is_downmixed() -> None:
    x = make_sine(0.5, 16000, channels=2).T  # torch/torchaudio layout [C, T]
    out = load_audio((x, 16000))
    assert out.shape == (8000,)
    np.testing.assert_allclose(out, x.mean(axis=0), atol=1e-6)


def test_int16_full_scale_stays_in_range() -> None:
    out = load_audio((np.array([-32768, 32767], dtype=np.int16), 16000))
    assert out.min() >= -1.0


def test_uint8_is_centred() -> None:
    out = load_audio((np.array([0, 128, 255], dtype=np.uint8), 16000))
    np.testing.assert_allclose(out, [-1.0, 0.0, 127 / 128], atol=1e-6)
