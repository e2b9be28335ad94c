"""Embed a long recording in overlapping windows, streaming it from disk.

A one-hour recording is 230 MB of float32 at 16 kHz, and no encoder attends over an hour at
once, so it is read block by block (soundfile), resampled block by block when its rate differs
from the encoder's (soxr's streaming resampler), cut into windows of ``window`` seconds every
``hop`` seconds, and the windows are embedded a batch at a time with
:meth:`speechx.models.SpeechEncoder.encode`.  Only about one block plus one window of audio and
one batch of windows are held in memory, whatever the length of the file::

    from speechx.longform import LongformConfig, encode_long

    out = encode_long(encoder, "meeting.wav", LongformConfig(window=10.0, hop=5.0))
    out.starts, out.ends          # float64 [W] seconds
    out.embeddings                # float32 [W, D], L2-normalised
    out.segment_ids()             # ["meeting-00000000-00010000", ...]

Window placement (:func:`window_bounds`), in samples at the encoder's rate:

- windows start at ``0, hop, 2*hop, ...`` and are ``window`` long while they fit in the file;
- if the last of them ends before the file does, one more full-length window is added, aligned
  to the end of the file (it starts at ``duration - window``), so the tail is covered without a
  short window and every window has the same length;
- a file shorter than one window gives a single window over the whole file.

Times are derived from the encoder-rate sample grid: a file at 22.05 kHz gives the same windows
as the same audio at 16 kHz (its resampled length is fixed to ``round(frames * 16000 / 22050)``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf
import soxr

from speechx.audio import AudioSource, describe_source
from speechx.errors import AudioError, LongformError

if TYPE_CHECKING:
    from speechx.models.encoder import SpeechEncoder


@dataclass(frozen=True)
class LongformConfig:
    """How a long recording is windowed and batched.

    Attributes:
        window: window length in seconds.
        hop: seconds between window starts, at most ``window`` (windows must cover the file);
            ``None`` means half a window.
        batch_size: windows per forward pass.
        block_seconds: audio read from the file (and resampled) per step; bounds the memory
            held for audio together with ``window``.
    """

    window: float = 10.0
    hop: float | None = None
    batch_size: int = 8
    block_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.window) and self.window > 0):
            raise LongformError(f"LongformConfig: window must be > 0 seconds, got {self.window}")
        if self.hop is not None and not (np.isfinite(self.hop) and 0 < self.hop <= self.window):
            raise LongformError(
                f"LongformConfig: hop must be in (0, window={self.window}] seconds, got "
                f"{self.hop} (a hop longer than the window would leave gaps)"
            )
        if self.batch_size < 1:
            raise LongformError(f"LongformConfig: batch_size must be >= 1, got {self.batch_size}")
        if not self.block_seconds > 0:
            raise LongformError(
                f"LongformConfig: block_seconds must be > 0, got {self.block_seconds}"
            )

    @property
    def hop_seconds(self) -> float:
        """The hop in seconds (``hop``, or half of ``window`` when ``hop`` is ``None``)."""
        return self.window / 2 if self.hop is None else self.hop


@dataclass
class LongformEmbeddings:
    """Embeddings of the windows of one recording.

    Attributes:
        recording_id: the recording's id (the file stem unless given).
        starts, ends: float64 ``[W]`` window times in seconds.
        embeddings: float32 ``[W, D]``, L2-normalised, one row per window.
        sample_rate: the encoder's sample rate, on whose sample grid the times lie.
        duration: the recording's length in seconds (at ``sample_rate``).
    """

    recording_id: str
    starts: np.ndarray
    ends: np.ndarray
    embeddings: np.ndarray
    sample_rate: int
    duration: float

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    def segment_ids(self) -> list[str]:
        """One id per window, ``<recording_id>-<start_ms>-<end_ms>`` with 8-digit times.

        Zero-padded times keep the ids of one recording in time order under a plain (C
        locale) sort, as Kaldi tools expect, for recordings up to 27 hours.
        """
        return [
            f"{self.recording_id}-{round(s * 1000):08d}-{round(e * 1000):08d}"
            for s, e in zip(self.starts, self.ends, strict=True)
        ]


def window_bounds(
    num_samples: int, sample_rate: int, config: LongformConfig
) -> list[tuple[int, int]]:
    """Window ``(start, end)`` sample positions for a recording of ``num_samples`` samples.

    See the module docstring for the placement rules.

    Returns:
        A non-empty list of half-open ``[start, end)`` ranges in increasing order of start.

    Raises:
        LongformError: ``num_samples < 1``, or a window or hop shorter than one sample.
    """
    win = int(round(config.window * sample_rate))
    hop = int(round(config.hop_seconds * sample_rate))
    if win < 1 or hop < 1:
        raise LongformError(
            f"window ({config.window} s) and hop ({config.hop_seconds} s) must each be at least one "
            f"sample at {sample_rate} Hz"
        )
    if num_samples < 1:
        raise LongformError(f"cannot window a recording of {num_samples} samples")
    if num_samples <= win:
        return [(0, num_samples)]
    bounds = [(s, s + win) for s in range(0, num_samples - win + 1, hop)]
    if bounds[-1][1] < num_samples:
        bounds.append((num_samples - win, num_samples))
    return bounds


def stream_audio(
    source: AudioSource, sample_rate: int, block_seconds: float = 60.0
) -> tuple[int, Iterator[np.ndarray]]:
    """Open ``source`` for block-wise reading as float32 mono at ``sample_rate``.

    Args:
        source: an audio path, or an ``(array, sample_rate)`` pair.
        sample_rate: the rate of the returned blocks (resampled with a streaming soxr
            resampler when the source rate differs).
        block_seconds: source audio per block.

    Returns:
        ``(num_samples, blocks)``: the total length at ``sample_rate``, which is
        ``round(frames * sample_rate / source_rate)``, and an iterator of 1-D float32 blocks
        whose concatenation has exactly that length (the resampler's last few samples are
        trimmed or zero-padded to it).  A file is opened when iteration starts
        and closed when it ends.

    Raises:
        AudioError: a missing, empty or unreadable file, a file without samples, and (while
            iterating) NaN or Inf samples or a file that ends before its header says; the
            source is named.
    """
    name = describe_source(source)
    if isinstance(source, tuple):
        data, src_rate = _array_source(source, name)
        frames = int(data.shape[0])
    else:
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"{path}: audio file not found")
        if path.stat().st_size == 0:
            raise AudioError(f"{path}: audio file is empty (0 bytes)")
        try:
            info = sf.info(str(path))
        except Exception as exc:  # libsndfile raises several types
            raise AudioError(f"{path}: cannot read audio ({_short(exc)})") from None
        src_rate, frames, data = int(info.samplerate), int(info.frames), None
    if frames < 1:
        raise AudioError(f"{name}: audio has zero samples")
    total = int(round(frames * sample_rate / src_rate))
    if total < 1:
        raise AudioError(f"{name}: {frames} samples at {src_rate} Hz is less than one sample")
    block = max(1, int(round(block_seconds * src_rate)))
    if data is not None:
        raw = (data[s : s + block] for s in range(0, frames, block))
    else:
        raw = _file_blocks(Path(source), block)
    return total, _resampled(raw, name, src_rate, sample_rate, total)


def iter_windows(
    source: AudioSource, sample_rate: int, config: LongformConfig
) -> tuple[list[tuple[int, int]], Iterator[np.ndarray]]:
    """The windows of ``source`` at ``sample_rate``, read as a stream.

    Returns:
        ``(bounds, windows)``: the :func:`window_bounds` of the recording, and an iterator that
        yields the audio of each window in that order (float32 copies, so the read buffer is
        not kept alive).

    Raises:
        AudioError: as :func:`stream_audio`; LongformError: as :func:`window_bounds`.
    """
    total, blocks = stream_audio(source, sample_rate, config.block_seconds)
    bounds = window_bounds(total, sample_rate, config)
    return bounds, _cut(blocks, bounds)


def encode_long(
    encoder: SpeechEncoder,
    source: AudioSource,
    config: LongformConfig | None = None,
    *,
    recording_id: str | None = None,
    bounds: Sequence[tuple[int, int]] | None = None,
) -> LongformEmbeddings:
    """Embed ``source`` window by window (see the module docstring).

    Args:
        encoder: the speech encoder; windows go through its :meth:`encode`.
        source: an audio path or an ``(array, sample_rate)`` pair, at any sample rate.
        config: windowing and batching; default :class:`LongformConfig()`.
        recording_id: id used in :meth:`LongformEmbeddings.segment_ids`; default the file stem
            (``"recording"`` for an array).
        bounds: the windows as ``[start, end)`` samples at the encoder's rate, sorted by start
            (e.g. snapped to speech by :func:`speechx.speech_regions.windows_in_regions`);
            default :func:`window_bounds` of ``config``.  The audio is still streamed.

    Returns:
        A :class:`LongformEmbeddings` with one row per window, in time order.

    Raises:
        LongformError: a window shorter than the encoder's minimum input, or ``bounds`` that
            are empty, unsorted or outside the recording.
        AudioError: the file is missing or unreadable, holds NaN/Inf, or is shorter than the
            encoder's minimum input; the file is named.
    """
    cfg = config or LongformConfig()
    sr = encoder.sample_rate
    name = describe_source(source)
    if recording_id is None:
        recording_id = "recording" if isinstance(source, tuple) else Path(source).stem
    min_samples = encoder.min_input_samples
    if int(round(cfg.window * sr)) < min_samples:
        raise LongformError(
            f"{name}: window of {cfg.window} s is {int(round(cfg.window * sr))} samples at "
            f"{sr} Hz, shorter than the {min_samples} samples the encoder needs"
        )
    if bounds is None:
        bounds, windows = iter_windows(source, sr, cfg)
        total = bounds[-1][1]
    else:
        total, blocks = stream_audio(source, sr, cfg.block_seconds)
        bounds = _check_bounds(bounds, total, name, min_samples)
        windows = _cut(blocks, bounds)
    if total < min_samples:
        raise AudioError(
            f"{name}: recording is {total} samples ({total / sr:.4f} s) at {sr} Hz, shorter "
            f"than the {min_samples} samples the encoder needs"
        )
    emb = np.zeros((len(bounds), encoder.embed_dim), dtype=np.float32)
    pending: list[np.ndarray] = []
    done = 0
    for wav in windows:
        pending.append(wav)
        if len(pending) == cfg.batch_size:
            emb[done : done + len(pending)] = _encode_batch(encoder, pending, sr, cfg, name, done)
            done += len(pending)
            pending = []
    if pending:
        emb[done : done + len(pending)] = _encode_batch(encoder, pending, sr, cfg, name, done)
        done += len(pending)
    b = np.asarray(bounds, dtype=np.float64)
    return LongformEmbeddings(
        recording_id=recording_id,
        starts=b[:, 0] / sr,
        ends=b[:, 1] / sr,
        embeddings=emb,
        sample_rate=sr,
        duration=total / sr,
    )


# ------------------------------------------------------------------------------ helpers
def _check_bounds(
    bounds: Sequence[tuple[int, int]], total: int, name: str, min_samples: int
) -> list[tuple[int, int]]:
    out = [(int(s), int(e)) for s, e in bounds]
    if not out:
        raise LongformError(f"{name}: no windows to encode")
    for i, (s, e) in enumerate(out):
        if not 0 <= s < e <= total:
            raise LongformError(
                f"{name}: window {i} [{s}, {e}) is empty or outside the recording's {total} samples"
            )
        if e - s < min(min_samples, total):
            raise LongformError(
                f"{name}: window {i} is {e - s} samples, shorter than the {min_samples} samples "
                "the encoder needs"
            )
        if i and s < out[i - 1][0]:
            raise LongformError(f"{name}: windows must be sorted by start (window {i} is not)")
    return out


def _encode_batch(
    encoder: SpeechEncoder,
    wavs: list[np.ndarray],
    sr: int,
    cfg: LongformConfig,
    name: str,
    first: int,
) -> np.ndarray:
    try:
        return encoder.encode(
            [(w, sr) for w in wavs], batch_size=cfg.batch_size, show_progress=False
        )
    except AudioError as exc:
        raise AudioError(f"{name}: windows {first}..{first + len(wavs) - 1}: {exc}") from None


def _cut(blocks: Iterator[np.ndarray], bounds: list[tuple[int, int]]) -> Iterator[np.ndarray]:
    buf = np.zeros(0, dtype=np.float32)
    buf_start = 0  # absolute sample position of buf[0]
    wi = 0
    for block in blocks:
        buf = np.concatenate([buf, block]) if buf.size else block
        buf_end = buf_start + buf.shape[0]
        while wi < len(bounds) and bounds[wi][1] <= buf_end:
            s, e = bounds[wi]
            yield buf[s - buf_start : e - buf_start].copy()
            wi += 1
        if wi == len(bounds):
            return
        drop = bounds[wi][0] - buf_start
        if drop > 0:
            buf = buf[drop:]
            buf_start += drop


def _resampled(
    raw: Iterator[np.ndarray], name: str, src_rate: int, sr: int, total: int
) -> Iterator[np.ndarray]:
    """Mono float32 blocks at ``sr``, trimmed or zero-padded to exactly ``total`` samples."""
    stream = soxr.ResampleStream(src_rate, sr, 1, dtype="float32") if src_rate != sr else None
    emitted = 0
    pos = 0  # source frames read so far
    pending = next(raw, None)
    while pending is not None:
        nxt = next(raw, None)
        block = pending.mean(axis=1) if pending.ndim == 2 else pending
        block = np.ascontiguousarray(block, dtype=np.float32)
        if not np.all(np.isfinite(block)):
            bad = pos + int(np.flatnonzero(~np.isfinite(block))[0])
            raise AudioError(f"{name}: NaN or Inf sample at {bad / src_rate:.3f} s")
        pos += block.shape[0]
        if stream is not None:
            block = stream.resample_chunk(block, last=nxt is None)
        block = block[: total - emitted]
        emitted += block.shape[0]
        if block.size:
            yield block
        pending = nxt
    missing = total - emitted
    if missing > max(64, sr // 100):  # more than resampler rounding: the file is truncated
        raise AudioError(
            f"{name}: audio ended at {emitted / sr:.3f} s, but its header says {total / sr:.3f} s"
        )
    if missing > 0:  # resampler delay or rounding: a few samples
        yield np.zeros(missing, dtype=np.float32)


def _file_blocks(path: Path, block: int) -> Iterator[np.ndarray]:
    try:
        with sf.SoundFile(str(path)) as fh:
            while True:
                data = fh.read(block, dtype="float32", always_2d=True)
                if data.shape[0] == 0:
                    return
                yield data
    except sf.LibsndfileError as exc:
        raise AudioError(f"{path}: cannot read audio ({_short(exc)})") from None


def _array_source(source: tuple, name: str) -> tuple[np.ndarray, int]:
    if len(source) != 2:
        raise AudioError(f"{name}: expected an (array, sample_rate) pair")
    arr, rate = np.asarray(source[0]), source[1]
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or rate <= 0:
        raise AudioError(f"{name}: sample rate must be a positive integer, got {rate!r}")
    if arr.ndim not in (1, 2) or not np.issubdtype(arr.dtype, np.floating):
        raise AudioError(
            f"{name}: expected a float [T] or [T, C] array, got {arr.dtype} {arr.shape}"
        )
    return arr, int(rate)


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


__all__ = [
    "LongformConfig",
    "LongformEmbeddings",
    "encode_long",
    "iter_windows",
    "stream_audio",
    "window_bounds",
]
