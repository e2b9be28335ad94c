"""The augmented copy of ccc-wav2vec 2.0: waveform augmentations that keep every sample in place.

ccc-wav2vec 2.0 masks the original and the augmented copy at the same frames and compares their
frames one to one, so the augmentation must not move speech in time: no speed or tempo change,
no cropping.  Each utterance of a batch independently gets, in this order and each with its own
probability:

* **reverberation** (paper: p=0.7, a room simulator): convolution with a synthetic room
  impulse response, a direct-path impulse followed by Gaussian noise decaying by 60 dB over
  an RT60 drawn uniformly from ``rt60``; the output is cut to the input length, so the direct
  sound stays where it was;
* **babble** (paper: p=0.8, MUSAN background noise, which is not available here): another
  utterance of the batch, tiled to length, added at an SNR drawn uniformly from
  ``babble_snr_db``;
* **white noise** (paper: p=0.6): Gaussian noise at an SNR drawn uniformly from
  ``noise_snr_db``.

Powers are measured over each utterance's real samples; the padding stays exactly zero.  All
draws come from torch's global RNG on the batch's device, so a resumed run repeats them.
"""

from __future__ import annotations

import torch


def _uniform(n: int, lo_hi: list[float], device: torch.device) -> torch.Tensor:
    lo, hi = float(lo_hi[0]), float(lo_hi[1])
    return lo + (hi - lo) * torch.rand(n, device=device)


def _power(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    return x.pow(2).sum(dim=1) / lengths.clamp(min=1).to(x.dtype)


def _scale_to_snr(
    signal_power: torch.Tensor, noise: torch.Tensor, lengths: torch.Tensor, snr_db: torch.Tensor
) -> torch.Tensor:
    """``noise`` scaled so that signal power / noise power = 10^(snr_db / 10), per row."""
    noise_power = _power(noise, lengths).clamp(min=1e-12)
    gain = torch.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return noise * gain[:, None]


def reverberate(
    x: torch.Tensor, lengths: torch.Tensor, rt60: torch.Tensor, sample_rate: int
) -> torch.Tensor:
    """Convolve each row with a synthetic impulse response of reverberation time ``rt60``.

    Args:
        x: ``[B, T]`` zero-padded waveforms.
        lengths: ``[B]`` sample counts.
        rt60: ``[B]`` seconds for the tail to decay by 60 dB.

    Returns:
        ``[B, T]``, the reverberant signals at the power of the inputs, padding zero.
    """
    batch, total = x.shape
    taps = max(1, int(float(rt60.max()) * sample_rate))
    t = torch.arange(taps, device=x.device, dtype=x.dtype) / sample_rate
    decay = torch.exp(-6.9078 * t[None, :] / rt60[:, None].to(x.dtype))  # 60 dB = e^-6.9078
    rir = torch.randn(batch, taps, device=x.device, dtype=x.dtype) * decay * 0.1
    rir[:, 0] = 1.0
    size = total + taps - 1
    wet = torch.fft.irfft(torch.fft.rfft(x, n=size) * torch.fft.rfft(rir, n=size), n=size)
    wet = wet[:, :total]
    real = torch.arange(total, device=x.device)[None, :] < lengths[:, None]
    wet = wet.masked_fill(~real, 0.0)
    gain = torch.sqrt(_power(x, lengths) / _power(wet, lengths).clamp(min=1e-12))
    return wet * gain[:, None]


def babble(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """For each row, the next row of the batch (cyclically) tiled over the row's length.

    Returns:
        ``[B, T]`` with zeros past each row's length (the row itself for a batch of one).
    """
    batch, total = x.shape
    src = torch.roll(torch.arange(batch, device=x.device), -1)
    src_len = lengths[src].clamp(min=1)
    pos = torch.arange(total, device=x.device)[None, :] % src_len[:, None]
    other = torch.gather(x[src], 1, pos)
    real = torch.arange(total, device=x.device)[None, :] < lengths[:, None]
    return other.masked_fill(~real, 0.0)


def augment_batch(
    x: torch.Tensor,
    lengths: torch.Tensor,
    *,
    sample_rate: int,
    noise_prob: float,
    noise_snr_db: list[float],
    reverb_prob: float,
    rt60: list[float],
    babble_prob: float,
    babble_snr_db: list[float],
) -> torch.Tensor:
    """The augmented copy of a batch (see the module docstring).

    Args:
        x: ``[B, T]`` zero-padded waveforms at ``sample_rate``.
        lengths: ``[B]`` sample counts.

    Returns:
        A new ``[B, T]`` tensor; samples past each row's length are 0.
    """
    batch = x.shape[0]
    dev = x.device
    lengths = lengths.to(dev)
    real = torch.arange(x.shape[1], device=dev)[None, :] < lengths[:, None]
    x = x.masked_fill(~real, 0.0)
    signal_power = _power(x, lengths)
    out = x
    pick = torch.rand(batch, device=dev) < reverb_prob
    times = _uniform(batch, rt60, dev)
    if bool(pick.any()):
        out = torch.where(pick[:, None], reverberate(out, lengths, times, sample_rate), out)
    pick = torch.rand(batch, device=dev) < babble_prob
    snr = _uniform(batch, babble_snr_db, dev)
    if batch > 1 and bool(pick.any()):
        noise = _scale_to_snr(signal_power, babble(x, lengths), lengths, snr)
        out = torch.where(pick[:, None], out + noise, out)
    pick = torch.rand(batch, device=dev) < noise_prob
    snr = _uniform(batch, noise_snr_db, dev)
    white = torch.randn(x.shape, device=dev, dtype=x.dtype).masked_fill(~real, 0.0)
    if bool(pick.any()):
        noise = _scale_to_snr(signal_power, white, lengths, snr)
        out = torch.where(pick[:, None], out + noise, out)
    return out
