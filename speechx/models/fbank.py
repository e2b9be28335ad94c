"""A log-mel + conv2d-subsampling front end for wav2vec 2.0, cheap enough to train on a CPU.

wav2vec 2.0's raw-waveform front end (seven 1-D convolutions, 320x downsampling) is most of the
compute of a small model: on ``w2v2-scratch-small`` it is 77% of the forward FLOPs and about 87%
of a training step's time (``benchmarks/frontend.py``).  Conformer/ESPnet-style models and SONAR's speech encoders start
from filterbank features instead.  :class:`FbankFrontEnd` does that, in torch and batched:

1. **log-mel**: frames of 25 ms (400 samples at 16 kHz) every 10 ms (160 samples), Hann window,
   512-point FFT, power spectrum, 80 triangular mel filters between 20 Hz and 8 kHz on Kaldi's
   mel scale (``transformers.audio_utils.mel_filter_bank``), ``log(max(energy, floor))``.  Frames
   are taken as Kaldi does (``snip_edges``): an ``L``-sample utterance has
   ``(L - 400) // 160 + 1`` frames, each inside the signal, so a frame never reads padding;
2. **per-utterance mean/variance normalisation** of each mel bin over the utterance's real frames
   (padding frames are excluded from the statistics and set to 0);
3. **conv2d subsampling** over (time, frequency): two 3x3 convolutions, each followed by the
   configured activation, with stride 2 in frequency and stride 2 in time for the first and
   ``fbank_subsampling / 2`` for the second, no padding in time (ESPnet's ``Conv2dSubsampling``
   and ``Conv2dSubsampling2``); 100 frames/s become 25 (factor 4) or 50 (factor 2).  A
   convolution without time padding only reads real inputs for its real outputs, so padding
   never leaks into an utterance's frames;
4. channels x frequency are flattened to ``C = conv_dim[-1]`` features per frame.

:class:`Wav2Vec2FbankModel` is a ``transformers.Wav2Vec2Model`` whose ``feature_extractor`` is that
front end (it returns ``[B, C, T]`` like ``Wav2Vec2FeatureEncoder``), so the feature projection,
SpecAugment (``mask_time_prob``), the transformer, attention masks, ``freeze_feature_encoder``
and everything built on ``Wav2Vec2Model`` work unchanged.  Its ``_get_feat_extract_output_lengths``
is the exact frame count of the front end.  The config's ``conv_dim``, ``conv_kernel`` and
``conv_stride`` are derived from the fbank settings so that they describe the front end as if it
were three 1-D convolutions (a 400-sample "kernel" with stride 160 giving ``num_mel_bins``
channels, then the two 3-wide convolutions), so transformers' own length formula and
``config.inputs_to_logits_ratio`` (samples per output frame) agree with it.

Self-supervised pretraining wraps the same model in ``transformers.Wav2Vec2ForPreTraining``;
:func:`pretraining_model` builds one.  The quantizer reads the (layer-normalised) front-end
features of width ``C``::

    from transformers.models.wav2vec2.modeling_wav2vec2 import (
        _compute_mask_indices, _sample_negative_indices)

    model = pretraining_model(PRESETS["w2v2-fbank-small"][1]).train()
    # wave [B, S] zero-padded 16 kHz, sample_mask [B, S] 1 for real samples
    lengths = model._get_feat_extract_output_lengths(sample_mask.sum(-1))
    frames = int(model._get_feat_extract_output_lengths(torch.tensor(wave.shape[1])))
    frame_mask = (torch.arange(frames)[None, :] < lengths[:, None]).long()
    mask = _compute_mask_indices((B, frames), 0.65, 3, attention_mask=frame_mask)
    negatives = _sample_negative_indices((B, frames), 10, mask)
    out = model(wave, attention_mask=sample_mask, mask_time_indices=torch.tensor(mask),
                sampled_negative_indices=torch.tensor(negatives))
    out.loss.backward()
    ...
    model.wav2vec2.save_pretrained("pretrained/")       # then, to distil it:
    enc = speechx.models.build_encoder("pretrained/", embed_dim=512)

Pass ``attention_mask`` (1 for real samples) for padded batches: the front end takes each
utterance's length from it (``attention_mask.sum(-1)``); without one every row is taken as full
length.  Inputs are 16 kHz waveforms; an input needs at least :data:`MIN_SAMPLES` (1,360 samples,
85 ms) to give one output frame.

In speechx the model is the ``"wav2vec2-fbank"`` backbone (:class:`Wav2Vec2FbankBackbone`), used by
the presets ``w2v2-fbank-small`` and ``w2v2-fbank-tiny``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import torch
import transformers
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers.activations import ACT2FN

from speechx.errors import ModelError
from speechx.models.backbones import HFAudioBackbone

#: samples per analysis window (25 ms at 16 kHz)
WINDOW_SAMPLES = 400
#: samples between frames (10 ms at 16 kHz)
HOP_SAMPLES = 160
#: FFT size: the window zero-padded to the next power of two, as Kaldi does
N_FFT = 512
SAMPLE_RATE = 16000
#: the mel filters span this band (Kaldi's default low edge; Nyquist)
MEL_LOW_HZ = 20.0
MEL_HIGH_HZ = 8000.0
#: added to the variance in the per-utterance normalisation
NORM_EPSILON = 1e-5
SUBSAMPLING_FACTORS = (2, 4)
#: the model type, also the speechx backbone registry key
MODEL_TYPE = "wav2vec2-fbank"


def fbank_frames(lengths: torch.Tensor) -> torch.Tensor:
    """Filterbank frames ``(L - 400) // 160 + 1`` (0 below 400 samples) for sample counts ``L``."""
    lengths = torch.as_tensor(lengths)
    frames = torch.div(lengths - WINDOW_SAMPLES, HOP_SAMPLES, rounding_mode="floor") + 1
    return frames.clamp(min=0)


def _valid_conv(length: torch.Tensor, stride: int) -> torch.Tensor:
    """Output length of a 3-wide convolution without padding (0 when the input is too short)."""
    return (torch.div(length - 3, stride, rounding_mode="floor") + 1).clamp(min=0)


def output_frames(lengths: torch.Tensor | int, subsampling: int) -> torch.Tensor:
    """Front-end output frames for sample counts ``lengths``.

    With ``n = (L - 400) // 160 + 1`` filterbank frames, the first convolution (stride 2) gives
    ``(n - 3) // 2 + 1`` frames and the second ``(m - 3) // s + 1`` with ``s = subsampling / 2``;
    each step is clamped at 0.

    Returns:
        A long tensor of the shape of ``lengths``.
    """
    n = fbank_frames(torch.as_tensor(lengths).to(torch.long))
    return _valid_conv(_valid_conv(n, 2), subsampling // 2)


def _min_samples(subsampling: int) -> int:
    need = 1
    for stride in (subsampling // 2, 2):
        need = (need - 1) * stride + 3
    return (need - 1) * HOP_SAMPLES + WINDOW_SAMPLES


#: the shortest input (in samples) that gives one output frame, for either subsampling factor
MIN_SAMPLES = _min_samples(4)


def _freq_bins(num_mel_bins: int) -> int:
    """Frequency bins left after the two stride-2 convolutions."""
    return ((num_mel_bins - 3) // 2 + 1 - 3) // 2 + 1


@strict
class Wav2Vec2FbankConfig(transformers.Wav2Vec2Config):
    r"""``Wav2Vec2Config`` plus the filterbank front end's settings.

    num_mel_bins (`int`, defaults to 80):
        Mel filters (at least 7, so that one frequency bin survives the two convolutions).
    fbank_subsampling (`int`, defaults to 4):
        Time subsampling of the conv2d stack, 2 (50 frames/s) or 4 (25 frames/s).
    fbank_conv_channels (`int`, defaults to 64):
        Channels of both 3x3 convolutions.
    fbank_log_floor (`float`, defaults to 1e-5):
        Mel energies are floored at this before the log.  For a unit-variance waveform (speechx
        normalises waveforms by default) an average mel band holds about 1e3, so the floor sits
        about 80 dB below it, the dynamic range Whisper keeps; it stops digital silence from
        dominating the per-utterance variance.

    ``conv_dim``, ``conv_kernel`` and ``conv_stride`` are derived: ``[num_mel_bins, channels,
    channels * F]`` (``F`` frequency bins left after the convolutions, 19 for 80 mel bins),
    ``[400, 3, 3]`` and ``[160, 2, fbank_subsampling // 2]``.  Passing other values than those
    (or than the defaults) raises.  ``feat_extract_activation`` and ``conv_bias`` apply to the
    two convolutions; ``feat_extract_norm`` is unused (the filterbank is normalised per
    utterance) and defaults to "layer", so code that passes attention masks only to layer-norm
    front ends passes one here.
    """

    model_type = MODEL_TYPE

    num_mel_bins: int = 80
    fbank_subsampling: int = 4
    fbank_conv_channels: int = 64
    fbank_log_floor: float = 1e-5
    feat_extract_norm: str = "layer"
    conv_dim: list[int] | tuple[int, ...] = (80, 64, 64 * 19)
    conv_kernel: list[int] | tuple[int, ...] = (WINDOW_SAMPLES, 3, 3)
    conv_stride: list[int] | tuple[int, ...] = (HOP_SAMPLES, 2, 2)

    def __post_init__(self, **kwargs: Any) -> None:
        if self.fbank_subsampling not in SUBSAMPLING_FACTORS:
            raise ValueError(
                f"fbank_subsampling must be one of {SUBSAMPLING_FACTORS}, got "
                f"{self.fbank_subsampling!r}"
            )
        if self.num_mel_bins < 7 or self.fbank_conv_channels < 1:
            raise ValueError(
                f"num_mel_bins must be >= 7 and fbank_conv_channels >= 1, got "
                f"{self.num_mel_bins} and {self.fbank_conv_channels}"
            )
        if not self.fbank_log_floor > 0:
            raise ValueError(f"fbank_log_floor must be positive, got {self.fbank_log_floor}")
        derived = self.derived_conv_lists()
        defaults = {f.name: f.default for f in dataclasses.fields(self) if f.name in derived}
        for name, want in derived.items():
            given = list(getattr(self, name))
            if given not in (want, list(defaults[name])):
                raise ValueError(
                    f"{name} of a {MODEL_TYPE} config is derived from num_mel_bins, "
                    f"fbank_conv_channels and fbank_subsampling: expected {want}, got {given}; "
                    "leave it out"
                )
            setattr(self, name, want)
        super().__post_init__(**kwargs)

    def derived_conv_lists(self) -> dict[str, list[int]]:
        """``conv_dim``, ``conv_kernel`` and ``conv_stride`` that describe this front end."""
        channels = self.fbank_conv_channels
        return {
            "conv_dim": [self.num_mel_bins, channels, channels * _freq_bins(self.num_mel_bins)],
            "conv_kernel": [WINDOW_SAMPLES, 3, 3],
            "conv_stride": [HOP_SAMPLES, 2, self.fbank_subsampling // 2],
        }


class FbankFrontEnd(nn.Module):
    """Waveforms -> normalised log-mel -> conv2d subsampling -> ``[B, C, T]`` features.

    A drop-in for ``Wav2Vec2FeatureEncoder``: ``forward(input_values)`` returns ``[B, C, T]`` with
    ``C = config.conv_dim[-1]``.  Real lengths come from the ``lengths`` argument or, when the
    owning :class:`Wav2Vec2FbankModel` runs it, from the attention mask (see
    :meth:`use_lengths`).

    Args:
        config: a :class:`Wav2Vec2FbankConfig`.
    """

    def __init__(self, config: Wav2Vec2FbankConfig) -> None:
        super().__init__()
        channels = config.fbank_conv_channels
        self.num_mel_bins = int(config.num_mel_bins)
        self.subsampling = int(config.fbank_subsampling)
        self.log_floor = float(config.fbank_log_floor)
        self.conv1 = nn.Conv2d(1, channels, 3, stride=2, bias=config.conv_bias)
        self.conv2 = nn.Conv2d(
            channels, channels, 3, stride=(self.subsampling // 2, 2), bias=config.conv_bias
        )
        self.activation = ACT2FN[config.feat_extract_activation]
        self.output_dim = channels * _freq_bins(self.num_mel_bins)
        self._requires_grad = True
        self._lengths: torch.Tensor | None = None
        # constants built on first use, per device (not buffers: nothing to save or load, and
        # transformers may build the module on the meta device)
        self._constants: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    # -- pieces ---------------------------------------------------------------------------------

    def _mel_and_window(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._constants:
            filters = transformers.audio_utils.mel_filter_bank(
                num_frequency_bins=N_FFT // 2 + 1,
                num_mel_filters=self.num_mel_bins,
                min_frequency=MEL_LOW_HZ,
                max_frequency=MEL_HIGH_HZ,
                sampling_rate=SAMPLE_RATE,
                norm=None,
                mel_scale="kaldi",
                triangularize_in_mel_space=True,
            )
            mel = torch.from_numpy(np.asarray(filters, dtype=np.float32)).to(device)
            window = torch.hann_window(WINDOW_SAMPLES, device=device)
            self._constants[device] = (mel, window)
        return self._constants[device]

    def log_mel(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised log-mel features ``[B, T, num_mel_bins]`` (float32).

        Args:
            wave: ``[B, S]`` 16 kHz waveforms, right-padded.
            lengths: ``[B]`` real sample counts; ``None``: every row is full length.

        Returns:
            ``T = fbank_frames(S)`` frames; row ``b`` has ``fbank_frames(lengths[b])`` real
            frames, normalised to zero mean and unit variance per mel bin over those frames, and
            zeros after them.

        Raises:
            ModelError: the batch is shorter than one window (400 samples).
        """
        batch, width = wave.shape
        if width < WINDOW_SAMPLES:
            raise ModelError(
                f"fbank front end: inputs of {width} samples are shorter than one "
                f"{WINDOW_SAMPLES}-sample window"
            )
        device = wave.device
        if lengths is None:
            lengths = torch.full((batch,), width, dtype=torch.long, device=device)
        lengths = lengths.to(device=device, dtype=torch.long)
        mel_fb, window = self._mel_and_window(device)
        x = wave.float()
        # torch.stft centres the 400-sample window in the 512-sample frame: shift the signal by
        # the 56 samples in front of it, so frame t covers samples [160 t, 160 t + 400) exactly
        side = (N_FFT - WINDOW_SAMPLES) // 2
        x = nn.functional.pad(x, (side, N_FFT - WINDOW_SAMPLES - side))
        spec = torch.stft(
            x,
            N_FFT,
            hop_length=HOP_SAMPLES,
            win_length=WINDOW_SAMPLES,
            window=window,
            center=False,
            return_complex=True,
        )  # [B, N_FFT/2 + 1, T]
        power = torch.view_as_real(spec).pow(2).sum(-1).transpose(1, 2)
        feats = torch.matmul(power, mel_fb).clamp(min=self.log_floor).log()
        frames = fbank_frames(lengths)
        real = (torch.arange(feats.shape[1], device=device)[None, :] < frames[:, None])[..., None]
        count = frames.clamp(min=1).to(feats.dtype)[:, None, None]
        mean = feats.masked_fill(~real, 0.0).sum(1, keepdim=True) / count
        centred = (feats - mean).masked_fill(~real, 0.0)
        var = centred.pow(2).sum(1, keepdim=True) / count
        return centred / torch.sqrt(var + NORM_EPSILON)

    def subsample(self, feats: torch.Tensor) -> torch.Tensor:
        """Conv2d subsampling of ``[B, T, n_mels]`` features; returns ``[B, C, T']``."""
        x = feats.to(self.conv1.weight.dtype)[:, None]  # [B, 1, T, F]
        x = self.activation(self.conv1(x))
        x = self.activation(self.conv2(x))  # [B, channels, T', F']
        batch, channels, frames, freq = x.shape
        return x.permute(0, 1, 3, 2).reshape(batch, channels * freq, frames)

    # -- the Wav2Vec2FeatureEncoder interface ---------------------------------------------------

    @contextmanager
    def use_lengths(self, lengths: torch.Tensor | None) -> Iterator[None]:
        """Within the block, ``forward(x)`` without ``lengths`` uses these lengths.

        transformers calls ``feature_extractor(input_values)`` with no lengths; the owning model
        sets them around that call.  Not for concurrent use from several threads.
        """
        previous, self._lengths = self._lengths, lengths
        try:
            yield
        finally:
            self._lengths = previous

    def forward(
        self, input_values: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Front-end features ``[B, C, T]`` of right-padded waveforms ``[B, S]``.

        ``T = output_frames(S)``; frames at or past ``output_frames(lengths[b])`` are zero.

        Raises:
            ModelError: the batch is shorter than :data:`MIN_SAMPLES` (no output frame).
        """
        if input_values.shape[-1] < MIN_SAMPLES:
            raise ModelError(
                f"fbank front end: inputs of {input_values.shape[-1]} samples are shorter than "
                f"the {MIN_SAMPLES} samples that give one output frame"
            )
        if lengths is None:
            lengths = self._lengths
        feats = self.log_mel(input_values, lengths)
        out = self.subsample(feats)
        if lengths is not None:
            real = output_frames(lengths.to(out.device), self.subsampling)
            keep = torch.arange(out.shape[-1], device=out.device)[None, :] < real[:, None]
            out = out * keep[:, None, :].to(out.dtype)
        return out

    def _freeze_parameters(self) -> None:
        """Stop gradients to the convolutions (what ``freeze_feature_encoder`` calls)."""
        for p in self.parameters():
            p.requires_grad = False
        self._requires_grad = False


class Wav2Vec2FbankModel(transformers.Wav2Vec2Model):
    """``Wav2Vec2Model`` on the filterbank front end (:class:`FbankFrontEnd`).

    Everything but the feature extractor and the output-length formula is inherited.  Pass
    ``attention_mask`` with padded batches: the front end needs the lengths.
    """

    config_class = Wav2Vec2FbankConfig

    def __init__(self, config: Wav2Vec2FbankConfig) -> None:
        super().__init__(config)
        # the parent built a waveform conv stack from the derived conv lists; replace it
        self.feature_extractor = FbankFrontEnd(config)

    def _get_feat_extract_output_lengths(
        self, input_lengths: torch.Tensor | int, add_adapter: bool | None = None
    ) -> torch.Tensor:
        """Output frames for sample counts: :func:`output_frames`, then the adapter if any."""
        return _output_lengths(self.config, input_lengths, add_adapter)

    def forward(
        self,
        input_values: torch.Tensor | None,
        attention_mask: torch.Tensor | None = None,
        mask_time_indices: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        """``Wav2Vec2Model.forward``, with the lengths from ``attention_mask`` given to the front
        end.  Returns a ``Wav2Vec2BaseModelOutput``."""
        lengths = None if attention_mask is None else attention_mask.sum(-1).to(torch.long)
        with self.feature_extractor.use_lengths(lengths):
            return super().forward(
                input_values,
                attention_mask=attention_mask,
                mask_time_indices=mask_time_indices,
                **kwargs,
            )


class Wav2Vec2FbankForPreTraining(transformers.Wav2Vec2ForPreTraining):
    """``Wav2Vec2ForPreTraining`` whose ``wav2vec2`` is a :class:`Wav2Vec2FbankModel`.

    The quantizer, the projections and the loss are inherited; the output-length formula (used to
    reduce the attention mask to frames, and by callers to size ``mask_time_indices``) is the
    front end's.
    """

    config_class = Wav2Vec2FbankConfig

    def __init__(self, config: Wav2Vec2FbankConfig) -> None:
        super().__init__(config)
        self.wav2vec2 = Wav2Vec2FbankModel(config)

    def _get_feat_extract_output_lengths(
        self, input_lengths: torch.Tensor | int, add_adapter: bool | None = None
    ) -> torch.Tensor:
        """Output frames for sample counts (see :meth:`Wav2Vec2FbankModel._get_feat_extract_output_lengths`)."""  # noqa: E501
        return _output_lengths(self.config, input_lengths, add_adapter)


def _output_lengths(
    config: Wav2Vec2FbankConfig, input_lengths: torch.Tensor | int, add_adapter: bool | None
) -> torch.Tensor:
    add_adapter = config.add_adapter if add_adapter is None else add_adapter
    frames = output_frames(input_lengths, config.fbank_subsampling)
    if add_adapter:
        for _ in range(config.num_adapter_layers):
            frames = torch.div(frames - 1, config.adapter_stride, rounding_mode="floor") + 1
    return frames


def fbank_config(config: Wav2Vec2FbankConfig | dict[str, Any]) -> Wav2Vec2FbankConfig:
    """A :class:`Wav2Vec2FbankConfig` from itself or a dict (a preset's entries, say).

    Raises:
        ModelError: the dict is not a valid config (the message says why).
    """
    if isinstance(config, Wav2Vec2FbankConfig):
        return config
    cfg = dict(config)
    model_type = cfg.pop("model_type", MODEL_TYPE)
    if model_type != MODEL_TYPE:
        raise ModelError(f"{MODEL_TYPE} config: model_type is {model_type!r}")
    try:
        return Wav2Vec2FbankConfig(**cfg)
    except Exception as exc:  # strict dataclasses raise several types
        raise ModelError(f"invalid {MODEL_TYPE} config ({exc})") from None


def pretraining_model(config: Wav2Vec2FbankConfig | dict[str, Any]) -> Wav2Vec2FbankForPreTraining:
    """A randomly initialised wav2vec 2.0 pretraining model on the filterbank front end.

    Args:
        config: a :class:`Wav2Vec2FbankConfig` or its entries (for example
            ``PRESETS["w2v2-fbank-small"][1]`` with pretraining settings such as
            ``mask_time_prob`` or ``num_negatives`` added).

    Returns:
        A :class:`Wav2Vec2FbankForPreTraining` (a ``transformers.Wav2Vec2ForPreTraining``) whose
        ``.wav2vec2`` is a :class:`Wav2Vec2FbankModel`.  Its ``wav2vec2.save_pretrained(dir)``
        gives a directory that ``speechx.models.build_encoder(dir, embed_dim=...)`` loads as the
        ``wav2vec2-fbank`` backbone.

    Raises:
        ModelError: an invalid config.
    """
    return Wav2Vec2FbankForPreTraining(fbank_config(config))


class Wav2Vec2FbankBackbone(HFAudioBackbone):
    """The ``wav2vec2-fbank`` speechx backbone: :class:`Wav2Vec2FbankModel`.

    It always receives the sample-level attention mask (the front end normalises each utterance
    over its own frames), so an utterance's output does not depend on its batch neighbours.
    """

    name: ClassVar[str] = MODEL_TYPE
    model_class = Wav2Vec2FbankModel
    config_class = Wav2Vec2FbankConfig

    @property
    def uses_attention_mask(self) -> bool:
        """Always true: the front end needs each utterance's length."""
        return True

    @property
    def min_input_samples(self) -> int:
        """The shortest input giving one frame: 1,360 samples (85 ms) for either factor."""
        return _min_samples(int(self.model.config.fbank_subsampling))


# so that transformers' Auto classes load saved checkpoints of these models
transformers.AutoConfig.register(MODEL_TYPE, Wav2Vec2FbankConfig, exist_ok=True)
transformers.AutoModel.register(Wav2Vec2FbankConfig, Wav2Vec2FbankModel, exist_ok=True)
transformers.AutoModelForPreTraining.register(
    Wav2Vec2FbankConfig, Wav2Vec2FbankForPreTraining, exist_ok=True
)
