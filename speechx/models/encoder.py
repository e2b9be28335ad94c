"""The speech encoder: waveform -> backbone -> pooling -> projection -> L2-normalised embedding.

>>> enc = SpeechEncoder.from_pretrained("exp/demo/model")            # doctest: +SKIP
>>> E = enc.encode(["a.wav", (wave, 22050)], batch_size=16)           # doctest: +SKIP
>>> E.shape, E.dtype                                                  # doctest: +SKIP
((2, 512), dtype('float32'))

A model directory holds ``config.json`` (the :class:`SpeechEncoderConfig` with the backbone's
transformers config inline, plus a format version) and ``model.safetensors``; it is rebuilt from
that directory alone, with no network and no original checkpoint.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from torch import nn
from tqdm.auto import tqdm

from speechx.audio import AudioSource, audio_info, describe_source, load_audio
from speechx.errors import AudioError, ModelError
from speechx.models.backbones import Backbone, backbone_class
from speechx.models.config import SpeechEncoderConfig
from speechx.models.pooling import LayerWeighting, Projection, build_pooling
from speechx.models.precision import autocast_for, check_precision, quantize_int8
from speechx.models.precision import num_threads as set_num_threads

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: value of the "speechx_format" key that marks a speechx encoder directory
FORMAT_NAME = "speech-encoder"
FORMAT_VERSION = 1
#: a speechx ASR dir (:mod:`speechx.asr`): the encoder config under "encoder", its weights
#: under the "encoder." prefix, beside the CTC head.  ``from_pretrained`` reads that encoder.
RECOGNIZER_FORMAT_NAME = "speech-recognizer"
_RECOGNIZER_PREFIX = "encoder."
#: :attr:`SpeechEncoder.cache_point` of a fully frozen backbone: cache the pooling input
POOLING_INPUT = -1
#: ``encode`` shows a progress bar by default for more inputs than this
PROGRESS_THRESHOLD = 64


class SpeechEncoder(nn.Module):
    """A sentence-level speech encoder distilled into a text teacher's embedding space.

    Args:
        config: the architecture and training switches.
        backbone: an already built backbone (for example with pretrained weights); by default
            one is built, randomly initialised, from ``config.backbone_config``.

    Raises:
        ModelError: unknown backbone, pooling or projection; a layer index or freeze count
            out of range.
    """

    def __init__(self, config: SpeechEncoderConfig, backbone: Backbone | None = None) -> None:
        super().__init__()
        if backbone is None:
            backbone = backbone_class(config.backbone).from_config(config.backbone_config)
        elif backbone.name != config.backbone:
            raise ModelError(
                f"SpeechEncoder: config names backbone {config.backbone!r} but a "
                f"{backbone.name!r} backbone was given"
            )
        self.backbone = backbone
        # the backbone's own (complete) config is the one saved, so a reload rebuilds it exactly
        self.config = config.replace(backbone_config=backbone.config_dict())

        num_states = backbone.num_layers + 1
        if config.layer is not None and not -num_states <= config.layer < num_states:
            raise ModelError(
                f"SpeechEncoder: layer={config.layer} is out of range for a backbone with "
                f"{backbone.num_layers} layers ({num_states} hidden states)"
            )
        self.layer_weighting = LayerWeighting(num_states) if config.weighted_layer_sum else None
        self.pooling = build_pooling(
            config.pooling,
            backbone.hidden_size,
            num_heads=config.pooling_heads,
            num_queries=config.pooling_queries,
        )
        self.projection = Projection(
            config.projection,
            self.pooling.output_dim,
            config.embed_dim,
            hidden_dim=config.projection_hidden,
            dropout=config.projection_dropout,
        )
        self._apply_freezing()
        if config.gradient_checkpointing:
            backbone.enable_gradient_checkpointing()

    # -- training helpers -----------------------------------------------------------------------

    def _apply_freezing(self) -> None:
        cfg = self.config
        frozen: list[nn.Parameter] = []
        if cfg.freeze_backbone:
            frozen += list(self.backbone.parameters())
        if cfg.freeze_feature_encoder:
            frozen += self.backbone.feature_encoder_parameters()
        if cfg.freeze_layers:
            frozen += self.backbone.layer_parameters(cfg.freeze_layers)
        for p in frozen:
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> SpeechEncoder:
        """Set training mode; a frozen backbone (``freeze_backbone``) always stays in eval mode."""
        super().train(mode)
        if self.config.freeze_backbone:
            self.backbone.eval()
        return self

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters split for separate learning rates.

        Returns:
            ``{"backbone": [...], "head": [...]}``; "head" is pooling, projection and the layer
            weights.  Frozen parameters are left out, so a list may be empty.
        """
        backbone_ids = {id(p) for p in self.backbone.parameters()}
        groups: dict[str, list[nn.Parameter]] = {"backbone": [], "head": []}
        for p in self.parameters():
            if p.requires_grad:
                groups["backbone" if id(p) in backbone_ids else "head"].append(p)
        return groups

    @property
    def cache_point(self) -> int | None:
        """Where the trainable part starts, for caching the frozen part's output.

        Returns:
            :data:`POOLING_INPUT` when the whole backbone is frozen (the frames the pooling
            receives can be cached); ``k > 0`` when the front end and the first ``k`` layers are
            frozen and the backbone can resume at ``hidden_states[k]``
            (:meth:`Backbone.forward_from`); ``None`` when something trainable runs on the
            waveform, or a learned layer weighting needs every layer.
        """
        cfg = self.config
        if cfg.weighted_layer_sum:
            return None
        if cfg.freeze_backbone:
            return POOLING_INPUT
        bcfg = cfg.backbone_config
        if (
            self.backbone.supports_resume
            and cfg.freeze_feature_encoder
            and cfg.freeze_layers > 0
            and cfg.layer is None
            and not float(bcfg.get("layerdrop", 0.0) or 0.0)
        ):
            below = [*self.backbone.feature_encoder_parameters()]
            below += self.backbone.layer_parameters(cfg.freeze_layers)
            if not any(p.requires_grad for p in below):
                return cfg.freeze_layers
        return None

    @torch.no_grad()
    def frozen_features(
        self, input_values: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The output of the frozen part (see :attr:`cache_point`), in eval mode.

        Returns:
            ``(features [B, F, H], frame_lengths [B])``: the input of
            ``forward(features=..., frame_lengths=...)``.

        Raises:
            ModelError: nothing can be cached for this configuration.
        """
        point = self.cache_point
        if point is None:
            raise ModelError(
                "SpeechEncoder.frozen_features: the backbone has trainable parts on the "
                "waveform side (or weighted_layer_sum is on), so there is nothing to cache"
            )
        was_training = self.training
        self.eval()
        try:
            x = self.preprocess(input_values, lengths)
            if point == POOLING_INPUT:
                want = self.config.layer is not None
                out = self.backbone(x, lengths, output_hidden_states=want)
                hidden = out.hidden if not want else out.hidden_states[self.config.layer]
            else:
                out = self.backbone(x, lengths, output_hidden_states=True)
                hidden = out.hidden_states[point]
            return hidden, out.frame_lengths
        finally:
            self.train(was_training)

    @property
    def embed_dim(self) -> int:
        """Dimension D of the embeddings."""
        return self.config.embed_dim

    @property
    def sample_rate(self) -> int:
        """Sample rate, in Hz, that ``forward`` expects."""
        return self.config.sample_rate

    @property
    def min_input_samples(self) -> int:
        """The shortest input, in samples at :attr:`sample_rate`, that can be encoded."""
        return self.backbone.min_input_samples

    # -- forward --------------------------------------------------------------------------------

    def preprocess(self, input_values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Zero the padding and, if configured, normalise each utterance over its real samples.

        Returns:
            A new ``[B, T]`` tensor; samples at or past ``lengths`` are exactly 0.
        """
        positions = torch.arange(input_values.shape[1], device=input_values.device)
        mask = positions[None, :] < lengths[:, None]
        x = input_values.masked_fill(~mask, 0.0)
        prep = self.config.preprocessing
        if prep.do_normalize:
            n = lengths.clamp(min=1).to(x.dtype)[:, None]
            mean = x.sum(dim=1, keepdim=True) / n
            centred = (x - mean).masked_fill(~mask, 0.0)
            var = centred.pow(2).sum(dim=1, keepdim=True) / n
            x = centred / torch.sqrt(var + prep.epsilon)
        return x

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
        *,
        features: torch.Tensor | None = None,
        frame_lengths: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Embed a zero-padded batch of waveforms, or of cached frozen-part features.

        Args:
            input_values: ``[B, T]`` float waveforms at :attr:`sample_rate`, right-padded.
            lengths: ``[B]`` absolute sample counts; ``None`` means every row is full length.
            features: instead of waveforms, ``[B, F, H]`` outputs of :meth:`frozen_features`
                (right-padded), with ``frame_lengths`` ``[B]``; only the trainable part runs.

        Returns:
            A dict with ``embeddings`` ``[B, D]`` (L2-normalised), ``projected`` ``[B, D]`` (the
            same before normalisation), ``hidden`` ``[B, F, H]`` (the frame features that were
            pooled) and ``frame_lengths`` ``[B]`` (real frames per utterance).

        Raises:
            ModelError: wrong shapes, or an utterance too short to give one frame.
        """
        if features is not None:
            return self._forward_features(features, frame_lengths)
        if input_values is None:
            raise ModelError("SpeechEncoder.forward: give input_values or features")
        if input_values.dim() != 2:
            raise ModelError(
                f"SpeechEncoder.forward: input_values must be [B, T], got shape "
                f"{tuple(input_values.shape)}"
            )
        batch, total = input_values.shape
        if lengths is None:
            lengths = torch.full((batch,), total, dtype=torch.long, device=input_values.device)
        lengths = lengths.to(device=input_values.device, dtype=torch.long)
        if lengths.shape != (batch,):
            raise ModelError(
                f"SpeechEncoder.forward: lengths must have shape [{batch}], got "
                f"{tuple(lengths.shape)}"
            )
        if batch and int(lengths.max()) > total:
            raise ModelError(
                f"SpeechEncoder.forward: a length of {int(lengths.max())} samples exceeds the "
                f"padded width {total}"
            )
        short = (lengths < self.min_input_samples).nonzero().flatten().tolist()
        if short:
            i = short[0]
            raise ModelError(
                f"SpeechEncoder.forward: utterance {i} of the batch has {int(lengths[i])} "
                f"samples, fewer than the {self.min_input_samples} the backbone needs for one "
                f"frame ({len(short)} such utterance(s))"
            )

        x = self.preprocess(input_values, lengths)
        want_states = self.layer_weighting is not None or self.config.layer is not None
        out = self.backbone(x, lengths, output_hidden_states=want_states)
        if self.layer_weighting is not None:
            hidden = self.layer_weighting(out.hidden_states)
        elif self.config.layer is not None:
            hidden = out.hidden_states[self.config.layer]
        else:
            hidden = out.hidden
        return self._head(hidden, out.frame_lengths)

    def _head(self, hidden: torch.Tensor, frame_lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.pooling(hidden, frame_lengths)
        projected = self.projection(pooled)
        return {
            "embeddings": nn.functional.normalize(projected, dim=-1),
            "projected": projected,
            "hidden": hidden,
            "frame_lengths": frame_lengths,
        }

    def _forward_features(
        self, features: torch.Tensor, frame_lengths: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        point = self.cache_point
        if point is None:
            raise ModelError(
                "SpeechEncoder.forward: features were given but this configuration trains "
                "parts that run on the waveform (see SpeechEncoder.cache_point)"
            )
        if features.dim() != 3 or features.shape[-1] != self.backbone.hidden_size:
            raise ModelError(
                f"SpeechEncoder.forward: features must be [B, F, {self.backbone.hidden_size}], "
                f"got shape {tuple(features.shape)}"
            )
        batch, frames = features.shape[:2]
        if frame_lengths is None:
            frame_lengths = torch.full((batch,), frames, dtype=torch.long)
        frame_lengths = frame_lengths.to(device=features.device, dtype=torch.long)
        dtype = next(self.projection.parameters(), features).dtype
        features = features.to(dtype)
        if point == POOLING_INPUT:
            return self._head(features, frame_lengths)
        out = self.backbone.forward_from(features, frame_lengths, point)
        return self._head(out.hidden, frame_lengths)

    # -- inference ------------------------------------------------------------------------------

    def encode(
        self,
        inputs: Sequence[AudioSource],
        batch_size: int = 16,
        show_progress: bool | None = None,
        *,
        precision: str = "fp32",
        num_threads: int | None = None,
        max_padding: float = 0.25,
    ) -> np.ndarray:
        """Embed audio files and arrays.

        Inputs are grouped into batches of similar length (longest first) and returned in input
        order.  A batch also ends early when the next input is more than ``max_padding`` shorter
        than the batch's longest: on a CPU a padded frame costs as much as a real one, and a
        convolutional front end (wav2vec 2.0's is most of its compute) gains little from
        batching, so padding would make batching slower than one input at a time.  Audio is loaded at :attr:`sample_rate` (resampled if
        needed) by a background thread one batch ahead of the model, so decoding overlaps the
        forward pass.  The model runs in eval mode under ``torch.inference_mode``; its previous
        mode is restored afterwards.

        Args:
            inputs: audio paths and/or ``(array, sample_rate)`` pairs.
            batch_size: utterances per forward pass.
            show_progress: a tqdm bar; ``None`` shows one for more than 64 inputs.
            precision: ``"fp32"``; ``"bf16"`` (autocast, fast only on CPUs with native bfloat16,
                see :func:`speechx.models.precision.bf16_is_native`); or ``"int8"`` (a copy of
                the model with dynamically quantised ``nn.Linear`` layers, made for this call;
                the model itself is not changed).  See :mod:`speechx.models.precision`.
            num_threads: torch intra-op threads for this call (restored afterwards); ``None``
                keeps the current setting.
            max_padding: the largest fraction of a batch row that may be padding, in [0, 1);
                0 batches only inputs of equal length, 1 never ends a batch early.

        Returns:
            float32 ``[N, D]``, L2-normalised rows (in float32, whatever the precision);
            ``[0, D]`` for no inputs.

        Raises:
            AudioError: an input that cannot be loaded or is too short; the input is named.
            ModelError: ``inputs`` is a single input rather than a list, ``batch_size < 1``,
                ``num_threads < 1``, an unknown ``precision``, or int8 on a non-CPU model.
        """
        if isinstance(inputs, str | os.PathLike) or _is_array_pair(inputs):
            raise ModelError(
                "SpeechEncoder.encode expects a list of inputs; wrap a single input in a list: "
                "encode([x])"
            )
        if batch_size < 1:
            raise ModelError(f"SpeechEncoder.encode: batch_size must be >= 1, got {batch_size}")
        try:
            check_precision(precision)
        except ModelError as exc:
            raise ModelError(f"SpeechEncoder.encode: {exc}") from None
        if num_threads is not None and num_threads < 1:
            raise ModelError(f"SpeechEncoder.encode: num_threads must be >= 1, got {num_threads}")
        if not 0.0 <= max_padding <= 1.0:
            raise ModelError(
                f"SpeechEncoder.encode: max_padding must be in [0, 1], got {max_padding}"
            )
        inputs = list(inputs)
        out = np.zeros((len(inputs), self.embed_dim), dtype=np.float32)
        if not inputs:
            return out
        # durations from headers, so audio is only decoded one batch at a time
        batches = length_batches([_duration(x) for x in inputs], batch_size, max_padding)
        if show_progress is None:
            show_progress = len(inputs) > PROGRESS_THRESHOLD
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        model: nn.Module = quantize_int8(self) if precision == "int8" else self
        try:
            with (
                set_num_threads(num_threads),
                torch.inference_mode(),
                tqdm(total=len(inputs), disable=not show_progress, unit="utt") as bar,
            ):
                for idx, (batch, lengths) in zip(
                    batches, self._prefetch(inputs, batches), strict=True
                ):
                    with autocast_for(precision, device):
                        emb = model(batch.to(device), lengths.to(device))["projected"]
                    # normalise in float32: a bf16 norm is only good to about 3 digits
                    out[idx] = nn.functional.normalize(emb.float(), dim=-1).cpu().numpy()
                    bar.update(len(idx))
        finally:
            self.train(was_training)
        return out

    def _prefetch(
        self, inputs: list[AudioSource], batches: list[list[int]]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Padded ``(batch [B, T], lengths [B])`` for each index list, loaded one batch ahead.

        Loading (decoding, resampling) runs in one worker thread while the caller runs the
        model on the previous batch; libsndfile, soxr and torch release the GIL.
        """
        if len(batches) == 1:
            yield self._collate([inputs[i] for i in batches[0]])
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="speechx-load") as pool:
            pending = pool.submit(self._collate, [inputs[i] for i in batches[0]])
            for nxt in [*batches[1:], None]:
                ready = pending.result()
                if nxt is not None:
                    pending = pool.submit(self._collate, [inputs[i] for i in nxt])
                yield ready

    def _collate(self, sources: list[AudioSource]) -> tuple[torch.Tensor, torch.Tensor]:
        wavs = [self._load(s) for s in sources]
        lengths = torch.tensor([w.shape[0] for w in wavs], dtype=torch.long)
        batch = torch.zeros(len(wavs), int(lengths.max()), dtype=torch.float32)
        for row, w in enumerate(wavs):
            batch[row, : w.shape[0]] = torch.from_numpy(w)
        return batch, lengths

    def _load(self, source: AudioSource) -> np.ndarray:
        wav = load_audio(source, self.sample_rate)
        if wav.shape[0] < self.min_input_samples:
            raise AudioError(
                f"{describe_source(source)}: audio is {wav.shape[0]} samples "
                f"({wav.shape[0] / self.sample_rate:.4f} s) at {self.sample_rate} Hz, shorter "
                f"than the {self.min_input_samples} samples the encoder needs"
            )
        return wav

    # -- persistence ----------------------------------------------------------------------------

    def save_pretrained(self, model_dir: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``model_dir``.

        Each file is written to a temporary name and renamed into place, weights first, so a
        crash never leaves a half-written file under the final name.

        Returns:
            The model directory.
        """
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        meta = {"speechx_format": FORMAT_NAME, "format_version": str(FORMAT_VERSION)}
        save_safetensors(self.state_dict(), model_dir / WEIGHTS_NAME, meta)
        payload = {
            "speechx_format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            **self.config.to_dict(),
        }
        text = json.dumps(payload, indent=2, sort_keys=False) + "\n"
        _atomic_write(model_dir / CONFIG_NAME, lambda tmp: Path(tmp).write_text(text, "utf-8"))
        return model_dir

    @classmethod
    def from_pretrained(
        cls, model_dir: str | os.PathLike, *, device: str | torch.device = "cpu"
    ) -> SpeechEncoder:
        """Rebuild an encoder saved with :meth:`save_pretrained`, in eval mode.

        ``model_dir`` may also be a speechx ASR dir (``speechx train-asr``): its encoder, with
        the embedding head it was trained with or started from, is loaded without the CTC head.

        Raises:
            ModelError: the directory, ``config.json`` or ``model.safetensors`` is missing,
                unreadable, of an unknown format version, or does not match the config.
        """
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise ModelError(f"{model_dir}: model directory not found")
        config = read_config(model_dir)
        weights = model_dir / WEIGHTS_NAME
        if not weights.is_file():
            raise ModelError(f"{weights}: weights file not found")
        try:
            state = safetensors.torch.load_file(str(weights), device="cpu")
        except Exception as exc:  # safetensors raises several types for damaged files
            raise ModelError(
                f"{weights}: cannot read weights, file corrupt or truncated ({exc})"
            ) from None
        if _format_of(model_dir) == RECOGNIZER_FORMAT_NAME:
            # the encoder of an ASR dir: its weights without the CTC head's
            n = len(_RECOGNIZER_PREFIX)
            state = {k[n:]: v for k, v in state.items() if k.startswith(_RECOGNIZER_PREFIX)}
        model = cls(config)
        missing, unexpected = _compare_keys(model.state_dict(), state)
        if missing or unexpected:
            raise ModelError(
                f"{weights}: weights do not match config.json "
                f"(missing: {_few(missing)}; unexpected: {_few(unexpected)})"
            )
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelError(f"{weights}: weights do not match config.json ({exc})") from None
        return model.to(device).eval()


def length_batches(
    durations: Sequence[float], batch_size: int, max_padding: float = 1.0
) -> list[list[int]]:
    """Indices of ``durations`` in batches, longest first, at most ``batch_size`` each.

    A batch ends early when the next item is shorter than ``(1 - max_padding)`` times the
    batch's first (longest) item, so no row is more than ``max_padding`` padding.  Ties keep
    input order, so the batches are the same on every run.
    """
    order = sorted(range(len(durations)), key=lambda i: -durations[i])
    batches: list[list[int]] = []
    for i in order:
        cur = batches[-1] if batches else None
        if (
            cur is None
            or len(cur) >= batch_size
            or durations[i] < (1.0 - max_padding) * durations[cur[0]]
        ):
            batches.append([i])
        else:
            cur.append(i)
    return batches


def read_config(model_dir: str | os.PathLike) -> SpeechEncoderConfig:
    """The :class:`SpeechEncoderConfig` stored in a speechx model directory.

    Raises:
        ModelError: no ``config.json``, invalid JSON, not a speechx encoder config (for example
            a plain transformers checkpoint), or a format version newer than this speechx.
    """
    path = Path(model_dir) / CONFIG_NAME
    if not path.is_file():
        raise ModelError(
            f"{path}: not found; a speechx model directory holds {CONFIG_NAME} and {WEIGHTS_NAME}"
        )
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: cannot parse config ({exc})") from None
    if isinstance(data, dict) and data.get("speechx_format") == RECOGNIZER_FORMAT_NAME:
        version = data.get("format_version")
        data = data.get("encoder")
        if not isinstance(data, dict):
            raise ModelError(f"{path}: ASR model config without an 'encoder' section")
        data = {"speechx_format": FORMAT_NAME, "format_version": version, **data}
    if not isinstance(data, dict) or data.get("speechx_format") != FORMAT_NAME:
        hint = ""
        if isinstance(data, dict) and "model_type" in data:
            hint = (
                f" (it looks like a transformers {data['model_type']!r} checkpoint: build an "
                "encoder on it with speechx.models.build_encoder(path, embed_dim=...))"
            )
        raise ModelError(f"{path}: not a speechx speech-encoder config{hint}")
    version = data.pop("format_version", None)
    data.pop("speechx_format")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ModelError(
            f"{path}: unsupported format_version {version!r}; this speechx reads versions "
            f"1 to {FORMAT_VERSION}"
        )
    try:
        return SpeechEncoderConfig.from_dict(data)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from None


def _format_of(model_dir: Path) -> str | None:
    """The ``speechx_format`` of ``model_dir/config.json`` (None when unreadable)."""
    try:
        data = json.loads((model_dir / CONFIG_NAME).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data.get("speechx_format") if isinstance(data, dict) else None


def _is_array_pair(obj: Any) -> bool:
    return isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[1], int | np.integer)


def _duration(source: AudioSource) -> float:
    """Duration in seconds, from the array or the file header (raises AudioError)."""
    if isinstance(source, tuple) and len(source) == 2:
        arr, sr = source
        try:
            return len(arr) / float(sr)
        except (TypeError, ValueError, ZeroDivisionError):
            return 0.0  # load_audio reports the problem with the input named
    return audio_info(source).duration


def save_safetensors(
    state: Mapping[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str]
) -> Path:
    """Write ``state`` as a safetensors file, atomically (temporary file, then rename).

    The tensors are saved from the CPU, contiguous; one that shares storage with an earlier one
    (tied weights) is saved as a copy, since safetensors refuses shared storage.

    Returns:
        ``path``.
    """
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, tensor in state.items():
        t = tensor.detach().cpu().contiguous()
        if t.data_ptr() in seen:
            t = t.clone()
        seen.add(t.data_ptr())
        tensors[name] = t
    out = Path(path)
    _atomic_write(out, lambda tmp: safetensors.torch.save_file(tensors, tmp, metadata=metadata))
    return out


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _compare_keys(
    expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]
) -> tuple[list[str], list[str]]:
    return sorted(set(expected) - set(got)), sorted(set(got) - set(expected))


def _few(keys: list[str], n: int = 3) -> str:
    if not keys:
        return "none"
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more
