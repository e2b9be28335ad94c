"""Where the speech is in a long recording: frame energy or a packaged VAD, read as a stream.

:func:`speech_regions` reads a recording block by block (:func:`speechx.longform.stream_audio`),
decides for each short frame whether it holds speech, and turns those decisions into regions::

    total, regions = speech_regions("meeting.wav", 16000, RegionConfig(method="energy"))
    regions[:2]      # [(12800, 60480), (75200, 131520)]: [start, end) samples at 16 kHz

Methods:

``energy``  written here. Frames of ``frame_seconds`` (20 ms); the log energy of each
            (dB, floored at -90) is kept for the whole recording (50 floats a second, so a
            10-hour file needs 7 MB), and a frame is speech when it is above
            ``floor + energy_threshold * (peak - floor)``, where floor and peak are the 10th and
            95th percentiles of the recording's frame energies (frames of digital silence, at
            the -90 dB floor, left out: they would put the floor below the real noise).  A recording with less than
            6 dB between the two is all speech when its peak is above -60 dBFS, else silence.
``vad``     a packaged voice activity detector, an optional dependency
            (``pip install 'speechx[vad]'``): ``webrtc`` (PyPI ``webrtcvad-wheels``, Google's
            WebRTC VAD: 30-ms frames, ``vad_aggressiveness`` 0-3, no model file) or ``silero``
            (PyPI ``silero-vad``, whose small model is inside the wheel and runs on torch;
            512-sample frames, speech when its probability is at least ``vad_threshold``).
            ``auto`` takes silero when it is installed, else webrtc; when neither is, a
            :class:`~speechx.errors.AudioIndexError` says what to install.

The frame decisions become regions in three steps: gaps of silence shorter than
``min_silence`` are bridged, regions shorter than ``min_speech`` are dropped, and every region
is widened by ``pad`` on each side (clipped to the recording; regions that then overlap are
joined).

:func:`windows_in_regions` places search windows on the regions: every run of consecutive
regions that fits in ``window`` seconds is one window, from the first region's start to the
last one's end (at most ``max_regions`` regions), so windows start at speech onsets and end at
speech offsets; a region longer
than ``window`` is cut into fixed windows every ``hop`` seconds
(:func:`speechx.longform.window_bounds`); a window shorter than ``min_window`` is widened around
its centre.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from speechx.audio import AudioSource
from speechx.errors import AudioIndexError
from speechx.longform import LongformConfig, stream_audio, window_bounds

REGION_METHODS = ("energy", "vad")
VAD_BACKENDS = ("auto", "webrtc", "silero")
_FLOOR_DB = -90.0
_MIN_CONTRAST_DB = 6.0
_SILENT_DB = -60.0
_WEBRTC_RATES = (8000, 16000, 32000, 48000)


@dataclass(frozen=True)
class RegionConfig:
    """How speech regions are found.

    Attributes:
        method: ``energy`` or ``vad`` (see the module docstring).
        vad_backend: ``auto``, ``webrtc`` or ``silero`` (``vad`` only).
        frame_seconds: energy frame length (``energy`` only; the VADs fix their own).
        energy_threshold: where between the recording's noise floor (0) and speech peak (1)
            the energy threshold lies (``energy`` only).
        vad_aggressiveness: WebRTC VAD mode, 0 (keeps most) to 3 (drops most).
        vad_threshold: silero speech probability at or above which a frame is speech.
        min_silence: seconds; shorter gaps between speech frames are bridged.
        min_speech: seconds; shorter regions (after bridging) are dropped.
        pad: seconds added before and after each region.
    """

    method: str = "energy"
    vad_backend: str = "auto"
    frame_seconds: float = 0.02
    energy_threshold: float = 0.3
    vad_aggressiveness: int = 2
    vad_threshold: float = 0.5
    min_silence: float = 0.25
    min_speech: float = 0.1
    pad: float = 0.05

    def __post_init__(self) -> None:
        if self.method not in REGION_METHODS:
            raise AudioIndexError(
                f"unknown speech-region method {self.method!r}; expected one of {REGION_METHODS}"
            )
        if self.vad_backend not in VAD_BACKENDS:
            raise AudioIndexError(
                f"unknown VAD backend {self.vad_backend!r}; expected one of {VAD_BACKENDS}"
            )
        if not 0.005 <= self.frame_seconds <= 1.0:
            raise AudioIndexError(
                f"frame_seconds must be in [0.005, 1] seconds, got {self.frame_seconds}"
            )
        if not 0.0 < self.energy_threshold < 1.0:
            raise AudioIndexError(
                f"energy_threshold must be in (0, 1), got {self.energy_threshold}"
            )
        if self.vad_aggressiveness not in (0, 1, 2, 3):
            raise AudioIndexError(
                f"vad_aggressiveness must be 0, 1, 2 or 3, got {self.vad_aggressiveness}"
            )
        if not 0.0 < self.vad_threshold < 1.0:
            raise AudioIndexError(f"vad_threshold must be in (0, 1), got {self.vad_threshold}")
        for name in ("min_silence", "min_speech", "pad"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise AudioIndexError(f"{name} must be >= 0 seconds, got {value}")


def resolve_vad_backend(name: str = "auto") -> str:
    """The VAD backend that ``name`` means here: ``webrtc`` or ``silero``.

    Returns:
        ``name`` itself when that package imports; for ``auto``, silero when installed, else
        webrtc.

    Raises:
        AudioIndexError: the backend's package (or, for ``auto``, either) is not installed; the
            message names the package to install.
    """
    if name not in VAD_BACKENDS:
        raise AudioIndexError(f"unknown VAD backend {name!r}; expected one of {VAD_BACKENDS}")
    candidates = ("silero", "webrtc") if name == "auto" else (name,)
    for cand in candidates:
        try:
            _import_backend(cand)
        except ImportError:
            continue
        return cand
    what = {
        "webrtc": "webrtcvad-wheels",
        "silero": "silero-vad",
        "auto": "webrtcvad-wheels or silero-vad",
    }[name]
    raise AudioIndexError(
        f"--boundaries vad needs the optional package {what} (pip install 'speechx[vad]'); "
        "use --boundaries energy or fixed without it"
    )


def speech_regions(
    source: AudioSource,
    sample_rate: int,
    config: RegionConfig | None = None,
    *,
    block_seconds: float = 60.0,
) -> tuple[int, list[tuple[int, int]]]:
    """Find the speech in ``source``, reading it as a stream at ``sample_rate``.

    Only one block of audio (``block_seconds``) is held at a time, plus one number per frame.

    Args:
        source: an audio path or an ``(array, sample_rate)`` pair.
        sample_rate: the rate at which the regions are counted (the encoder's); the VADs need
            8, 16, 32 or 48 kHz (silero: 16 kHz).
        config: how; default :class:`RegionConfig()` (energy).
        block_seconds: audio read per step.

    Returns:
        ``(num_samples, regions)``: the recording's length at ``sample_rate`` and its speech
        regions as sorted, disjoint half-open ``[start, end)`` sample ranges (possibly none).

    Raises:
        AudioError: as :func:`speechx.longform.stream_audio` (the source is named).
        AudioIndexError: a VAD that is not installed or cannot run at ``sample_rate``.
    """
    cfg = config or RegionConfig()
    if cfg.method == "energy":
        frame = max(1, int(round(cfg.frame_seconds * sample_rate)))
        total, blocks = stream_audio(source, sample_rate, block_seconds)
        db = np.fromiter(
            (_energy_db(f) for f in _frames(blocks, frame)), dtype=np.float32, count=-1
        )
        flags = _energy_flags(db, cfg.energy_threshold)
    else:
        backend = resolve_vad_backend(cfg.vad_backend)
        detector = _make_detector(backend, sample_rate, cfg)
        frame = detector.frame
        total, blocks = stream_audio(source, sample_rate, block_seconds)
        flags = np.fromiter((detector(f) for f in _frames(blocks, frame)), dtype=bool, count=-1)
    return total, regions_from_flags(flags, frame, total, sample_rate, cfg)


def regions_from_flags(
    flags: np.ndarray,
    frame: int,
    total: int,
    sample_rate: int,
    config: RegionConfig,
) -> list[tuple[int, int]]:
    """Speech regions from per-frame decisions (frame ``i`` is samples ``[i*frame, (i+1)*frame)``).

    Returns:
        Sorted, disjoint ``[start, end)`` sample ranges within ``[0, total)``, after bridging
        gaps shorter than ``min_silence``, dropping regions shorter than ``min_speech`` and
        padding by ``pad`` (see the module docstring).
    """
    flags = np.asarray(flags, dtype=bool)
    if not flags.any():
        return []
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1) * frame
    ends = np.minimum(np.flatnonzero(edges == -1) * frame, total)
    runs = [[int(s), int(e)] for s, e in zip(starts, ends, strict=True)]
    gap = config.min_silence * sample_rate
    merged = [runs[0]]
    for s, e in runs[1:]:
        if s - merged[-1][1] < gap:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    shortest = config.min_speech * sample_rate
    pad = int(round(config.pad * sample_rate))
    out: list[tuple[int, int]] = []
    for s, e in merged:
        if e - s < shortest:
            continue
        s, e = max(0, s - pad), min(total, e + pad)
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def windows_in_regions(
    regions: list[tuple[int, int]],
    total: int,
    sample_rate: int,
    window: float,
    hop: float,
    min_window: float = 1.0,
    max_regions: int = 6,
) -> list[tuple[int, int]]:
    """Search windows snapped to speech regions (see the module docstring).

    Args:
        regions: sorted, disjoint ``[start, end)`` sample ranges (:func:`speech_regions`).
        total: the recording's length in samples.
        window: longest window, seconds.
        hop: step between the fixed windows that cut a region longer than ``window``.
        min_window: shortest window, seconds (shorter ones are widened around their centre,
            within the recording).
        max_regions: most regions in one window (bounds the number of windows when regions
            are many and short).

    Returns:
        Distinct ``[start, end)`` ranges sorted by start then end; empty when ``regions`` is.

    Raises:
        AudioIndexError: a window or hop shorter than one sample, or ``min_window > window``.
    """
    win = int(round(window * sample_rate))
    minw = min(int(round(min_window * sample_rate)), total)
    if win < 1 or int(round(hop * sample_rate)) < 1:
        raise AudioIndexError(f"window ({window} s) and hop ({hop} s) must be at least one sample")
    if min_window > window:
        raise AudioIndexError(f"min_window ({min_window} s) must not exceed window ({window} s)")
    cfg = LongformConfig(window=window, hop=hop)
    out: set[tuple[int, int]] = set()
    for i, (s, e) in enumerate(regions):
        if e - s > win:
            out.update((s + a, s + b) for a, b in window_bounds(e - s, sample_rate, cfg))
            continue
        j = i
        while j < len(regions) and j - i < max_regions and regions[j][1] - s <= win:
            out.add((s, regions[j][1]))
            j += 1
    widened = set()
    for s, e in out:
        if e - s < minw:
            mid = (s + e) // 2
            s = min(max(0, mid - minw // 2), total - minw)
            e = s + minw
        widened.add((s, e))
    return sorted(widened)


# ------------------------------------------------------------------------------ helpers
def _frames(blocks: Iterator[np.ndarray], frame: int) -> Iterator[np.ndarray]:
    """Consecutive frames of ``frame`` samples; a short last frame is zero-padded."""
    rest = np.zeros(0, dtype=np.float32)
    for block in blocks:
        buf = np.concatenate([rest, block]) if rest.size else block
        n = buf.shape[0] // frame
        for i in range(n):
            yield buf[i * frame : (i + 1) * frame]
        rest = buf[n * frame :].copy()
    if rest.size:
        yield np.concatenate([rest, np.zeros(frame - rest.size, dtype=np.float32)])


def _energy_db(frame: np.ndarray) -> float:
    power = float(np.mean(np.square(frame, dtype=np.float64)))
    return max(_FLOOR_DB, 10.0 * np.log10(power + 1e-12))


def _energy_flags(db: np.ndarray, threshold: float) -> np.ndarray:
    if db.size == 0:
        return np.zeros(0, dtype=bool)
    # digital silence (exact zeros, at the -90 dB floor) says nothing about the noise level
    live = db[db > _FLOOR_DB + 1.0]
    if live.size == 0:
        return np.zeros(db.shape, dtype=bool)
    floor, peak = np.percentile(live, 10), np.percentile(live, 95)
    if peak - floor < _MIN_CONTRAST_DB:
        return np.full(db.shape, peak > _SILENT_DB)
    return db > floor + threshold * (peak - floor)


def _import_backend(name: str) -> Any:
    if name == "webrtc":
        import webrtcvad

        return webrtcvad
    import silero_vad

    return silero_vad


class _WebrtcDetector:
    def __init__(self, sample_rate: int, aggressiveness: int) -> None:
        if sample_rate not in _WEBRTC_RATES:
            raise AudioIndexError(
                f"the WebRTC VAD runs at {_WEBRTC_RATES} Hz, not {sample_rate} Hz"
            )
        self.vad = _import_backend("webrtc").Vad(aggressiveness)
        self.sample_rate = sample_rate
        self.frame = sample_rate * 30 // 1000

    def __call__(self, frame: np.ndarray) -> bool:
        pcm = (np.clip(frame, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        return bool(self.vad.is_speech(pcm, self.sample_rate))


class _SileroDetector:
    def __init__(self, sample_rate: int, threshold: float) -> None:
        if sample_rate != 16000:
            raise AudioIndexError(f"the silero VAD here runs at 16000 Hz, not {sample_rate} Hz")
        import torch

        self.torch = torch
        self.model = _import_backend("silero").load_silero_vad(onnx=False)
        self.model.reset_states()
        self.threshold = threshold
        self.frame = 512

    def __call__(self, frame: np.ndarray) -> bool:
        with self.torch.inference_mode():
            prob = float(self.model(self.torch.from_numpy(np.ascontiguousarray(frame)), 16000))
        return prob >= self.threshold


def _make_detector(backend: str, sample_rate: int, cfg: RegionConfig) -> Any:
    if backend == "webrtc":
        return _WebrtcDetector(sample_rate, cfg.vad_aggressiveness)
    return _SileroDetector(sample_rate, cfg.vad_threshold)


__all__ = [
    "REGION_METHODS",
    "VAD_BACKENDS",
    "RegionConfig",
    "regions_from_flags",
    "resolve_vad_backend",
    "speech_regions",
    "windows_in_regions",
]
