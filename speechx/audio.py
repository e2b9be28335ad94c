"""Audio loading: any path or ``(array, sample_rate)`` pair to float32 mono at a target rate.

Decoding uses soundfile (libsndfile: wav, flac, ogg/vorbis, opus and mp3 where the library
has them); resampling uses soxr.  Every failure raises :class:`speechx.errors.AudioError` with
the source named in the message.

>>> wav = load_audio("clip.ogg", sample_rate=16000)            # doctest: +SKIP
>>> wav = load_audio((array, 22050), sample_rate=16000)        # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from speechx.errors import AudioError, AudioWarning

DEFAULT_SAMPLE_RATE = 16000
# More channels than this in a 2-D array means it is laid out [C, T] rather than [T, C].
MAX_CHANNELS = 16

AudioSource = str | os.PathLike | tuple[np.ndarray, int]
#: Bytes read from the start of a WAV file to find its ``data`` chunk.
_WAV_HEADER_SCAN = 1 << 16
#: A WAV ``data`` size at least this large means "unknown" (streamed); it is not checked.
_WAV_UNKNOWN_SIZE = 0x7FFF0000


@dataclass(frozen=True)
class AudioInfo:
    """Header facts of an audio file, read without decoding it."""

    path: str
    sample_rate: int
    num_samples: int
    channels: int

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate if self.sample_rate else 0.0


def describe_source(source: AudioSource) -> str:
    """A short human-readable name for an audio source, used in error messages."""
    if isinstance(source, tuple):
        arr = source[0]
        shape = getattr(arr, "shape", "?")
        return f"<array shape={shape} sr={source[1]}>"
    return str(source)


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Read the header of ``path``.

    Raises:
        AudioError: the path is missing or a directory, the file is empty or not readable,
            libsndfile cannot open it (unknown format, corrupt header), or a WAV file is shorter
            than its header says (truncated).
    """
    p = Path(path)
    if p.is_dir():
        raise AudioError(f"{p}: is a directory, not an audio file")
    if not p.is_file():
        raise AudioError(f"{p}: audio file not found")
    if p.stat().st_size == 0:
        raise AudioError(f"{p}: audio file is empty (0 bytes)")
    try:
        with open(p, "rb") as fh:
            head = fh.read(_WAV_HEADER_SCAN)
    except PermissionError:
        raise AudioError(f"{p}: permission denied (the file is not readable)") from None
    except OSError as exc:
        raise AudioError(f"{p}: cannot open audio file ({exc.strerror or exc})") from None
    try:
        info = sf.info(str(p))
    except Exception as exc:  # libsndfile raises several types; normalise them
        raise AudioError(f"{p}: {_open_problem(exc)}") from None
    if info.format in ("WAV", "WAVEX"):
        _check_wav_data_size(p, head)
    return AudioInfo(str(p), int(info.samplerate), int(info.frames), int(info.channels))


def _open_problem(exc: BaseException) -> str:
    """What libsndfile's complaint about a file means, for an error message."""
    why = _short(exc)
    if why.startswith("Error opening ") and "': " in why:
        why = why.split("': ", 1)[1]  # the path is already at the start of our message
    if "format not recognised" in why.lower():
        return (
            "cannot read audio header: not a format libsndfile reads (wav, flac, ogg, mp3, ...) "
            f"or a corrupt header ({why})"
        )
    return f"cannot read audio header ({why})"


def _check_wav_data_size(path: Path, head: bytes) -> None:
    """Refuse a RIFF/WAVE file whose ``data`` chunk is shorter on disk than its header says.

    libsndfile silently reads what is there, so a copy cut short would lose audio unnoticed.
    A size of 0 or about 2**31 and more marks a WAV streamed through a pipe (size unknown) and
    is accepted.

    Raises:
        AudioError: the file is truncated; both sizes are named.
    """
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    pos = 12
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if chunk == b"data":
            if size == 0 or size >= _WAV_UNKNOWN_SIZE:
                return
            have = path.stat().st_size - (pos + 8)
            if have < size:
                raise AudioError(
                    f"{path}: truncated WAV file: its header declares {size:,} bytes of audio "
                    f"but only {max(have, 0):,} are present"
                )
            return
        pos += 8 + size + (size & 1)  # chunks are padded to an even length


def load_audio(
    source: AudioSource,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    *,
    start: float | None = None,
    end: float | None = None,
    max_duration: float | None = None,
    warn_silence: bool = True,
) -> np.ndarray:
    """Load ``source`` as float32 mono at ``sample_rate``.

    Args:
        source: a path, or an ``(array, sample_rate)`` pair.  Arrays may be 1-D ``[T]`` or 2-D
            ``[T, C]`` (soundfile's layout; ``[C, T]`` with at most 16 channels is recognised
            and transposed); integer PCM is scaled to [-1, 1) by its full scale, and unsigned
            PCM is re-centred on 0.
        sample_rate: the rate of the returned signal; resampled with soxr when it differs.
        start, end: optional segment in seconds (``end=None`` means to the end of the file).
        max_duration: reject audio longer than this many seconds (after segmenting).
        warn_silence: emit an :class:`AudioWarning` for an all-zero signal.

    Returns:
        A contiguous float32 array of shape ``[T]``.

    Raises:
        AudioError: missing or unreadable file, a segment outside the file, zero samples,
            NaN or Inf samples, or a signal longer than ``max_duration``.
    """
    name = describe_source(source)
    if isinstance(source, tuple):
        if len(source) != 2:
            raise AudioError(f"{name}: expected an (array, sample_rate) pair")
        data, sr = _array_pair(source, name)
        if start is not None or end is not None:
            s = int(round((start or 0.0) * sr))
            e = data.shape[0] if end is None else int(round(end * sr))
            _check_segment(name, s, e, data.shape[0], sr)
            data = data[s : min(e, data.shape[0])]
    else:
        data, sr = _read_file(Path(source), start, end)

    if data.ndim == 2:
        data = data.mean(axis=1)
    data = np.asarray(data, dtype=np.float32)
    if data.size == 0:
        raise AudioError(f"{name}: audio has zero samples")
    if not np.all(np.isfinite(data)):
        raise AudioError(f"{name}: audio contains NaN or Inf samples")
    if max_duration is not None and data.shape[0] / sr > max_duration:
        raise AudioError(
            f"{name}: audio is {data.shape[0] / sr:.2f} s long, more than the maximum "
            f"of {max_duration:g} s"
        )
    if sr != sample_rate:
        data = soxr.resample(data, sr, sample_rate, quality="HQ").astype(np.float32, copy=False)
    if warn_silence and not np.any(data):
        warnings.warn(f"{name}: audio is all zeros (silence)", AudioWarning, stacklevel=2)
    return np.ascontiguousarray(data)


def save_audio(path: str | os.PathLike, wav: np.ndarray, sample_rate: int) -> None:
    """Write ``wav`` as 16-bit PCM WAV atomically (a temp file renamed into place)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    os.close(fd)
    try:
        sf.write(
            tmp, np.asarray(wav, dtype=np.float32), sample_rate, subtype="PCM_16", format="WAV"
        )
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _array_pair(source: tuple, name: str) -> tuple[np.ndarray, int]:
    arr, sr = source
    try:
        sr = int(sr)
    except (TypeError, ValueError):
        raise AudioError(f"{name}: sample rate {sr!r} is not an integer") from None
    if sr <= 0:
        raise AudioError(f"{name}: sample rate must be positive, got {sr}")
    data = np.asarray(arr)
    if data.ndim not in (1, 2):
        raise AudioError(f"{name}: expected a 1-D [T] or 2-D [T, C] array, got {data.ndim}-D")
    if data.ndim == 2 and data.shape[0] <= MAX_CHANNELS < data.shape[1]:
        # torch/torchaudio layout [C, T]: a handful of rows, many columns.
        data = data.T
    if np.issubdtype(data.dtype, np.unsignedinteger):
        # unsigned PCM (e.g. 8-bit WAV) is centred on 2**(bits-1)
        half = float(2 ** (8 * data.dtype.itemsize - 1))
        data = (data.astype(np.float64) - half) / half
    elif np.issubdtype(data.dtype, np.signedinteger):
        data = data.astype(np.float64) / float(2 ** (8 * data.dtype.itemsize - 1))
    elif not np.issubdtype(data.dtype, np.floating):
        raise AudioError(f"{name}: unsupported sample dtype {data.dtype}")
    return data, sr


def _read_file(path: Path, start: float | None, end: float | None) -> tuple[np.ndarray, int]:
    info = audio_info(path)
    sr = info.sample_rate
    if info.num_samples == 0:
        raise AudioError(f"{path}: audio has zero samples")
    s = 0 if start is None else int(round(start * sr))
    e = info.num_samples if end is None else int(round(end * sr))
    _check_segment(str(path), s, e, info.num_samples, sr)
    e = min(e, info.num_samples)
    try:
        data, sr = sf.read(str(path), start=s, stop=e, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(f"{path}: cannot decode audio ({_short(exc)})") from None
    return data, int(sr)


def _check_segment(name: str, s: int, e: int, n: int, sr: int) -> None:
    if s < 0 or e <= s:
        raise AudioError(f"{name}: invalid segment [{s / sr:.3f}, {e / sr:.3f}] s")
    # Kaldi segments are often rounded; tolerate 10 ms past the end.
    if e > n + int(0.01 * sr):
        raise AudioError(
            f"{name}: segment end {e / sr:.3f} s is past the end of the audio ({n / sr:.3f} s)"
        )


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return msg[-1] if msg else type(exc).__name__
