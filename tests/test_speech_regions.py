"""speechx.speech_regions: energy and VAD speech regions, read as a stream; snapped windows."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechx.errors import AudioIndexError
from speechx.speech_regions import (
    RegionConfig,
    regions_from_flags,
    resolve_vad_backend,
    speech_regions,
    windows_in_regions,
)

SR = 16000


def voiced(seconds: float, f0: float = 150.0) -> np.ndarray:
    """A harmonic, syllable-modulated tone: speech-like enough for an energy detector."""
    t = np.arange(int(round(seconds * SR))) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 20))
    return (0.1 * x * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)).astype(np.float32)


def layout(*parts: tuple[str, float]) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Concatenate ("speech"|"pause", seconds) parts over low noise; return the speech spans."""
    rng = np.random.default_rng(0)
    chunks, spans, t = [], [], 0.0
    for kind, sec in parts:
        chunks.append(voiced(sec) if kind == "speech" else np.zeros(int(sec * SR), np.float32))
        if kind == "speech":
            spans.append((t, t + sec))
        t += sec
    x = np.concatenate(chunks)
    return x + (0.001 * rng.standard_normal(x.shape[0])).astype(np.float32), spans


def test_energy_regions_find_the_speech(tmp_path: Path) -> None:
    x, spans = layout(("pause", 0.5), ("speech", 1.5), ("pause", 1.0), ("speech", 2.0))
    x = np.concatenate([x, np.zeros(SR, np.float32)])
    path = tmp_path / "a.wav"
    sf.write(str(path), x, SR, subtype="FLOAT")
    # read in 0.3-s blocks: frames straddle the block edges
    total, regions = speech_regions(path, SR, RegionConfig(pad=0.0), block_seconds=0.3)
    assert total == x.shape[0]
    assert len(regions) == 2
    for (s, e), (ts, te) in zip(regions, spans, strict=True):
        assert abs(s / SR - ts) <= 0.04 and abs(e / SR - te) <= 0.04
    # a 22.05 kHz file gives the same regions on the 16 kHz grid
    import soxr

    path22 = tmp_path / "b.wav"
    sf.write(str(path22), soxr.resample(x, SR, 22050), 22050, subtype="FLOAT")
    total22, regions22 = speech_regions(path22, SR, RegionConfig(pad=0.0))
    assert total22 == total
    assert np.abs(np.asarray(regions22) - np.asarray(regions)).max() <= 0.02 * SR


def test_short_gaps_are_bridged_and_short_bursts_dropped() -> None:
    x, _ = layout(("pause", 0.5), ("speech", 1.0), ("pause", 0.1), ("speech", 1.0), ("pause", 1.0))
    x[int(2.9 * SR) : int(2.95 * SR)] = 0.3  # a 50-ms click in the pause
    _, regions = speech_regions((x, SR), SR, RegionConfig(pad=0.1))
    assert len(regions) == 1  # the 0.1-s gap is bridged, the click dropped
    s, e = regions[0]
    assert abs(s / SR - 0.4) < 0.04 and abs(e / SR - 2.7) < 0.04  # padded by 0.1 s


def test_silence_and_all_speech() -> None:
    assert speech_regions((np.zeros(SR, np.float32), SR), SR)[1] == []
    total, regions = speech_regions((voiced(2.0), SR), SR)
    assert regions == [(0, total)]


def test_regions_from_flags_by_hand() -> None:
    cfg = RegionConfig(min_silence=0.2, min_speech=0.15, pad=0.0)
    # frames of 0.1 s at 10 Hz: speech, speech, gap (0.1 s, bridged), speech, gap x3, speech
    flags = np.array([1, 1, 0, 1, 0, 0, 0, 1], bool)
    assert regions_from_flags(flags, 1, 8, 10, cfg) == [(0, 4)]  # the last 0.1-s run dropped
    padded = regions_from_flags(flags, 1, 8, 10, RegionConfig(pad=0.2, min_speech=0.0))
    assert padded == [(0, 8)]  # pads join the regions; clipped to the recording
    assert regions_from_flags(np.zeros(5, bool), 1, 5, 10, cfg) == []


def test_windows_snap_to_regions() -> None:
    sr = 10
    regions = [(10, 30), (40, 60), (65, 80), (100, 190)]
    got = windows_in_regions(regions, 200, sr, window=5.0, hop=2.0, min_window=1.0)
    assert (10, 30) in got and (10, 60) in got  # runs of regions that fit in 5 s
    assert (40, 80) in got and (65, 80) in got
    assert (10, 80) not in got  # 7 s is longer than a window
    # the 9-s region is cut into fixed 5-s windows every 2 s, the last one end-aligned
    assert [w for w in got if w[0] >= 100] == [(100, 150), (120, 170), (140, 190)]
    assert got == sorted(got)
    short = windows_in_regions([(50, 52)], 200, sr, window=5.0, hop=2.0, min_window=1.0)
    assert short == [(46, 56)]  # widened to 1 s around its centre
    capped = windows_in_regions(regions[:3], 200, sr, 5.0, 2.0, max_regions=1)
    assert capped == [(10, 30), (40, 60), (65, 80)]
    assert windows_in_regions([], 200, sr, 5.0, 2.0) == []
    with pytest.raises(AudioIndexError, match="min_window"):
        windows_in_regions(regions, 200, sr, window=1.0, hop=1.0, min_window=2.0)


def test_config_errors() -> None:
    with pytest.raises(AudioIndexError, match="unknown speech-region method"):
        RegionConfig(method="magic")
    with pytest.raises(AudioIndexError, match="unknown VAD backend"):
        RegionConfig(vad_backend="x")
    with pytest.raises(AudioIndexError, match="vad_aggressiveness"):
        RegionConfig(vad_aggressiveness=5)
    with pytest.raises(AudioIndexError, match="min_silence must be >= 0"):
        RegionConfig(min_silence=-1)


def test_missing_vad_package_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "webrtcvad", None)  # import fails
    monkeypatch.setitem(sys.modules, "silero_vad", None)
    with pytest.raises(
        AudioIndexError, match=r"optional package webrtcvad-wheels .*speechx\[vad\]"
    ):
        resolve_vad_backend("webrtc")
    with pytest.raises(AudioIndexError, match="webrtcvad-wheels or silero-vad"):
        speech_regions((voiced(1.0), SR), SR, RegionConfig(method="vad"))


@pytest.fixture(scope="module")
def spoken(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Two espeak-ng sentences with 1-s pauses over low noise, at 16 kHz."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng")
    import soxr

    d = tmp_path_factory.mktemp("espeak")
    clips = []
    for i, text in enumerate(("The fish swims home today.", "Where is the exit of this room?")):
        out = d / f"{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(out), text], check=True)
        wav, sr = sf.read(str(out), dtype="float32")
        clips.append(soxr.resample(wav, sr, SR).astype(np.float32))
    rng = np.random.default_rng(1)
    pause = np.zeros(SR, np.float32)
    x = np.concatenate([pause, clips[0], pause, clips[1], pause])
    spans = [(1.0, 1.0 + len(clips[0]) / SR)]
    spans.append((spans[0][1] + 1.0, spans[0][1] + 1.0 + len(clips[1]) / SR))
    return x + (0.002 * rng.standard_normal(x.shape[0])).astype(np.float32), spans


@pytest.mark.parametrize(
    "backend",
    ["webrtc", pytest.param("silero", marks=pytest.mark.slow)],  # silero: ~10 s to warm up
)
def test_vad_regions_on_speech(backend: str, spoken) -> None:  # noqa: ANN001
    pytest.importorskip({"webrtc": "webrtcvad", "silero": "silero_vad"}[backend])
    x, spans = spoken
    cfg = RegionConfig(method="vad", vad_backend=backend, min_silence=0.3, pad=0.0)
    _, regions = speech_regions((x, SR), SR, cfg, block_seconds=0.7)
    assert len(regions) == 2
    for (s, e), (ts, te) in zip(regions, spans, strict=True):
        # espeak-ng leaves some silence at the ends of its clips, inside the true span
        assert ts - 0.1 <= s / SR < ts + 0.4 and te - 0.5 < e / SR <= te + 0.1
