"""A CTC speech recognizer on a speechx speech encoder: shared backbone, two heads.

:class:`SpeechRecognizer` wraps a :class:`~speechx.models.SpeechEncoder` (backbone + pooling +
projection, the embedding head) and adds a CTC head (dropout + linear to the vocabulary) on the
backbone's frame outputs, the same frames the pooling reads.  One model directory carries
both heads::

    model_dir/
        config.json         {"speechx_format": "speech-recognizer", "encoder": {...}, "ctc": {...},
                             "vocab": {... "text_normalization": {...}}}
        model.safetensors   encoder.* (backbone, pooling, projection) and ctc_head.*
        vocab.json          {token: id}

>>> rec = SpeechRecognizer.from_pretrained("exp/asr/model")               # doctest: +SKIP
>>> rec.transcribe(["a.wav", (wave, 16000)], beam_size=8)                 # doctest: +SKIP
['hallo wereld', '...']
>>> rec.encoder.encode(["a.wav"])     # the embedding head still works   # doctest: +SKIP

SpecAugment-style masking (random time spans and feature channels set to zero) is applied in
training mode to the frames that enter the trainable part: the cached frozen features when
training on a feature cache, else the backbone output before the CTC head.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from torch import nn

from speechx.asr.decode import decode_batch
from speechx.asr.vocab import TextConfig, Vocabulary
from speechx.audio import AudioSource
from speechx.errors import ModelError
from speechx.models import SpeechEncoder, SpeechEncoderConfig

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_NAME = "speech-recognizer"
FORMAT_VERSION = 1


@dataclass
class CtcConfig:
    """The CTC head and its SpecAugment-style masking.

    The head is dropout and a linear layer to the vocabulary, optionally preceded by an
    *adapter*: a linear map to ``adapter_dim`` and ``adapter_layers`` pre-norm transformer
    layers (padding masked).  A frozen backbone's last layer is tuned to what *its* users read
    (Whisper's: the decoder's cross-attention); a linear CTC layer on it sees one frame at a
    time, while the adapter gives the head context, and it trains on the cached features.

    Attributes:
        dropout: dropout on the frames before the linear layer (and inside the adapter).
        time_mask_prob: in training, about this fraction of each utterance's frames is zeroed,
            in spans of 1..``time_mask_span`` frames.
        time_mask_span: longest time mask.
        feature_mask_prob: in training, about this fraction of the feature channels is zeroed
            (the same channels for every frame of an utterance), in bands of
            1..``feature_mask_span`` channels.
        feature_mask_span: widest feature mask.
        adapter_layers: transformer layers before the linear layer (0: none).
        adapter_dim: their width.
        adapter_heads: their attention heads (must divide ``adapter_dim``).
        adapter_ff: their feed-forward width.
    """

    dropout: float = 0.1
    time_mask_prob: float = 0.05
    time_mask_span: int = 10
    feature_mask_prob: float = 0.0
    feature_mask_span: int = 32
    adapter_layers: int = 0
    adapter_dim: int = 256
    adapter_heads: int = 4
    adapter_ff: int = 1024

    def validate(self) -> CtcConfig:
        """Returns ``self``.

        Raises:
            ModelError: a probability outside ``[0, 1)``, a span below 1, or an adapter shape
            that cannot be built.
        """
        for key in ("dropout", "time_mask_prob", "feature_mask_prob"):
            v = getattr(self, key)
            if not 0.0 <= v < 1.0:
                raise ModelError(f"ctc.{key} must be in [0, 1), got {v}")
        for key in ("time_mask_span", "feature_mask_span"):
            if getattr(self, key) < 1:
                raise ModelError(f"ctc.{key} must be >= 1, got {getattr(self, key)}")
        if self.adapter_layers < 0:
            raise ModelError(f"ctc.adapter_layers must be >= 0, got {self.adapter_layers}")
        if self.adapter_layers:
            for key in ("adapter_dim", "adapter_heads", "adapter_ff"):
                if getattr(self, key) < 1:
                    raise ModelError(f"ctc.{key} must be >= 1, got {getattr(self, key)}")
            if self.adapter_dim % self.adapter_heads:
                raise ModelError(
                    f"ctc.adapter_heads ({self.adapter_heads}) must divide "
                    f"ctc.adapter_dim ({self.adapter_dim})"
                )
        return self


class CtcAdapter(nn.Module):
    """Linear map to ``cfg.adapter_dim``, then ``cfg.adapter_layers`` pre-norm transformer
    layers that ignore padding frames, then a layer norm."""

    def __init__(self, in_dim: int, cfg: CtcConfig) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, cfg.adapter_dim)
        layer = nn.TransformerEncoderLayer(
            cfg.adapter_dim,
            cfg.adapter_heads,
            cfg.adapter_ff,
            cfg.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.layers = nn.TransformerEncoder(layer, cfg.adapter_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.adapter_dim)

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``[B, F, H]`` frames with ``[B]`` real lengths -> ``[B, F, adapter_dim]``."""
        steps = torch.arange(frames.shape[1], device=frames.device)
        padding = steps[None, :] >= lengths.to(frames.device)[:, None]
        return self.norm(self.layers(self.proj(frames), src_key_padding_mask=padding))


def spec_augment(
    frames: torch.Tensor,
    lengths: torch.Tensor,
    *,
    time_prob: float,
    time_span: int,
    feature_prob: float,
    feature_span: int,
) -> torch.Tensor:
    """Zero random time spans and feature bands of ``frames`` ``[B, F, H]`` (a new tensor).

    Draws from torch's global RNG, which the training loop seeds and checkpoints, so a resumed
    run masks as an uninterrupted one.  Padding frames are left alone.

    Returns:
        The masked frames (the input when both probabilities are 0).
    """
    if time_prob <= 0 and feature_prob <= 0:
        return frames
    batch, _, hidden = frames.shape
    keep = torch.ones(batch, frames.shape[1], 1, dtype=frames.dtype, device=frames.device)
    chans = torch.ones(batch, 1, hidden, dtype=frames.dtype, device=frames.device)
    for b in range(batch):
        n = int(lengths[b])
        if time_prob > 0 and n > 1:
            count = max(1, round(n * time_prob / ((time_span + 1) / 2)))
            widths = torch.randint(1, time_span + 1, (count,)).tolist()
            for w in widths:
                w = min(w, n - 1)
                start = int(torch.randint(0, n - w + 1, ()).item())
                keep[b, start : start + w] = 0
        if feature_prob > 0:
            count = max(1, round(hidden * feature_prob / ((feature_span + 1) / 2)))
            widths = torch.randint(1, feature_span + 1, (count,)).tolist()
            for w in widths:
                w = min(w, hidden - 1)
                start = int(torch.randint(0, hidden - w + 1, ()).item())
                chans[b, 0, start : start + w] = 0
    return frames * keep * chans


class SpeechRecognizer(nn.Module):
    """CTC ASR on a speech encoder's backbone; the encoder's embedding head is kept.

    Args:
        encoder: the speech encoder (its backbone is shared).
        vocab: the CTC vocabulary with its text normalisation.
        ctc: head and masking settings.

    Raises:
        ModelError: invalid ``ctc`` settings.
    """

    def __init__(
        self, encoder: SpeechEncoder, vocab: Vocabulary, ctc: CtcConfig | None = None
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.vocab = vocab
        self.ctc = (ctc or CtcConfig()).validate()
        self.ctc_dropout = nn.Dropout(self.ctc.dropout)
        hidden = encoder.backbone.hidden_size
        self.ctc_adapter = CtcAdapter(hidden, self.ctc) if self.ctc.adapter_layers else None
        head_in = self.ctc.adapter_dim if self.ctc_adapter is not None else hidden
        self.ctc_head = nn.Linear(head_in, len(vocab))
        # CTC gives the embedding head no gradient: keep it as it came (trained or not)
        for p in [*encoder.pooling.parameters(), *encoder.projection.parameters()]:
            p.requires_grad_(False)

    # -- what the training loop and the feature cache read --------------------------------------
    @property
    def config(self) -> SpeechEncoderConfig:
        """The encoder's config (backbone, freezing, preprocessing)."""
        return self.encoder.config

    @property
    def backbone(self) -> Any:
        """The shared backbone."""
        return self.encoder.backbone

    @property
    def sample_rate(self) -> int:
        """Sample rate, in Hz, of the expected audio."""
        return self.encoder.sample_rate

    @property
    def embed_dim(self) -> int:
        """Dimension of the embedding head's output."""
        return self.encoder.embed_dim

    @property
    def cache_point(self) -> int | None:
        """See :attr:`speechx.models.SpeechEncoder.cache_point`."""
        return self.encoder.cache_point

    def frozen_features(
        self, input_values: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The frozen part's output (see :meth:`SpeechEncoder.frozen_features`)."""
        return self.encoder.frozen_features(input_values, lengths)

    def train(self, mode: bool = True) -> SpeechRecognizer:
        """Set training mode (a frozen backbone stays in eval mode)."""
        super().train(mode)
        self.encoder.train(mode)
        return self

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters: ``backbone`` and ``head`` (the CTC head and its adapter;
        pooling and projection get no gradient from CTC and are frozen here)."""
        groups = self.encoder.parameter_groups()
        return {"backbone": groups["backbone"], "head": [*self.ctc_parameters()]}

    def ctc_parameters(self) -> list[nn.Parameter]:
        """The CTC head's parameters, the adapter's included."""
        adapter = [*self.ctc_adapter.parameters()] if self.ctc_adapter is not None else []
        return [*adapter, *self.ctc_head.parameters()]

    # -- forward --------------------------------------------------------------------------------
    def forward(
        self,
        input_values: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
        *,
        features: torch.Tensor | None = None,
        frame_lengths: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """CTC logits of a padded batch of waveforms, or of cached frozen-part features.

        Returns:
            ``logits`` ``[B, F, V]``, ``frame_lengths`` ``[B]``, and the encoder's
            ``embeddings`` ``[B, D]``.

        Raises:
            ModelError: as :meth:`SpeechEncoder.forward`.
        """
        mask = {
            "time_prob": self.ctc.time_mask_prob,
            "time_span": self.ctc.time_mask_span,
            "feature_prob": self.ctc.feature_mask_prob,
            "feature_span": self.ctc.feature_mask_span,
        }
        if features is not None:
            if frame_lengths is None:
                frame_lengths = torch.full(
                    (features.shape[0],), features.shape[1], dtype=torch.long
                )
            if self.training:
                features = spec_augment(features.float(), frame_lengths, **mask)
            out = self.encoder(features=features, frame_lengths=frame_lengths)
            hidden = out["hidden"]
        else:
            out = self.encoder(input_values, lengths)
            hidden = out["hidden"]
            if self.training:
                hidden = spec_augment(hidden, out["frame_lengths"], **mask)
        hidden = hidden.to(self.ctc_head.weight.dtype)
        if self.ctc_adapter is not None:
            hidden = self.ctc_adapter(hidden, out["frame_lengths"])
        logits = self.ctc_head(self.ctc_dropout(hidden))
        return {
            "logits": logits,
            "frame_lengths": out["frame_lengths"],
            "embeddings": out["embeddings"],
        }

    # -- inference ------------------------------------------------------------------------------
    @torch.inference_mode()
    def log_probs(self, inputs: Sequence[AudioSource], batch_size: int = 8) -> list[np.ndarray]:
        """Frame log-probabilities of each input (float32 ``[T_i, V]``), in input order.

        Raises:
            speechx.errors.AudioError: an input cannot be loaded or is too short (named).
            ModelError: ``inputs`` is a single input, or ``batch_size < 1``.
        """
        if isinstance(inputs, str | os.PathLike) or (
            isinstance(inputs, tuple) and len(inputs) == 2 and isinstance(inputs[1], int)
        ):
            raise ModelError("SpeechRecognizer: pass a list of inputs; wrap one input: [x]")
        if batch_size < 1:
            raise ModelError(f"SpeechRecognizer: batch_size must be >= 1, got {batch_size}")
        inputs = list(inputs)
        waves = [None] * len(inputs)
        out: list[np.ndarray] = [np.zeros((0, len(self.vocab)), np.float32)] * len(inputs)
        was_training = self.training
        self.eval()
        try:
            for i, src in enumerate(inputs):
                waves[i] = self.encoder._load(src)
            order = sorted(range(len(inputs)), key=lambda i: -waves[i].shape[0])
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                lengths = torch.tensor([waves[i].shape[0] for i in idx], dtype=torch.long)
                batch = torch.zeros(len(idx), int(lengths.max()))
                for row, i in enumerate(idx):
                    batch[row, : lengths[row]] = torch.from_numpy(waves[i])
                res = self(batch, lengths)
                lp = torch.log_softmax(res["logits"].float(), dim=-1).numpy()
                for row, i in enumerate(idx):
                    out[i] = lp[row, : int(res["frame_lengths"][row])]
        finally:
            self.train(was_training)
        return out

    def transcribe(
        self,
        inputs: Sequence[AudioSource],
        *,
        beam_size: int = 1,
        kenlm_model: str | os.PathLike | None = None,
        backend: str = "auto",
        batch_size: int = 8,
    ) -> list[str]:
        """Transcribe audio files and ``(array, sample_rate)`` pairs.

        Args:
            beam_size: 1 = greedy decoding; more = CTC beam search of that width.
            kenlm_model: a KenLM n-gram file for shallow fusion (needs pyctcdecode and kenlm).
            backend: beam search implementation, see :func:`speechx.asr.decode.decode_batch`.

        Returns:
            One normalised transcript per input, in input order.

        Raises:
            speechx.errors.AudioError: an unreadable or too short input (named).
            speechx.asr.decode.DecodeError: an unavailable decoder.
        """
        lps = self.log_probs(inputs, batch_size=batch_size)
        return decode_batch(
            lps, self.vocab, beam_size=beam_size, backend=backend, kenlm_model=kenlm_model
        )

    # -- persistence ----------------------------------------------------------------------------
    def save_pretrained(self, model_dir: str | os.PathLike) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``vocab.json``; returns the dir."""
        from speechx.models.encoder import _atomic_write, save_safetensors

        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        meta = {"speechx_format": FORMAT_NAME, "format_version": str(FORMAT_VERSION)}
        save_safetensors(self.state_dict(), model_dir / WEIGHTS_NAME, meta)
        self.vocab.save(model_dir)
        payload = {
            "speechx_format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "encoder": self.encoder.config.to_dict(),
            "ctc": asdict(self.ctc),
            "vocab": self.vocab.to_config(),
        }
        text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
        _atomic_write(model_dir / CONFIG_NAME, lambda tmp: Path(tmp).write_text(text, "utf-8"))
        return model_dir

    def save_encoder(self, model_dir: str | os.PathLike) -> Path:
        """Save the embedding part alone as a speechx encoder directory (for ``encode``)."""
        return self.encoder.save_pretrained(model_dir)

    @classmethod
    def from_pretrained(
        cls, model_dir: str | os.PathLike, *, device: str | torch.device = "cpu"
    ) -> SpeechRecognizer:
        """Load a recognizer saved by :meth:`save_pretrained`, in eval mode.

        Raises:
            ModelError: a missing or unreadable file, another format (a speechx *encoder* dir is
                named as such: start ASR training from it instead), or weights that do not match.
        """
        model_dir = Path(model_dir)
        cfg_path = model_dir / CONFIG_NAME
        if not cfg_path.is_file():
            raise ModelError(f"{cfg_path}: not found; is {model_dir} an ASR model directory?")
        try:
            data = json.loads(cfg_path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{cfg_path}: cannot parse ({exc})") from None
        fmt = data.get("speechx_format") if isinstance(data, dict) else None
        if fmt != FORMAT_NAME:
            hint = (
                " (a speech encoder without a CTC head: train one on it with speechx train-asr)"
                if fmt == "speech-encoder"
                else ""
            )
            raise ModelError(f"{cfg_path}: not a speechx speech-recognizer config{hint}")
        if data.get("format_version") != FORMAT_VERSION:
            raise ModelError(
                f"{cfg_path}: unsupported format_version {data.get('format_version')!r}"
            )
        try:
            enc_cfg = SpeechEncoderConfig.from_dict(data["encoder"])
            ctc = CtcConfig(**data.get("ctc", {}))
            text = TextConfig.from_dict(data["vocab"]["text_normalization"])
        except (KeyError, TypeError, ModelError) as exc:
            raise ModelError(f"{cfg_path}: invalid recognizer config ({exc})") from None
        vocab = Vocabulary.load(model_dir, text)
        model = cls(SpeechEncoder(enc_cfg), vocab, ctc)
        weights = model_dir / WEIGHTS_NAME
        if not weights.is_file():
            raise ModelError(f"{weights}: weights file not found")
        try:
            state = safetensors.torch.load_file(str(weights), device="cpu")
        except Exception as exc:  # safetensors raises several types for damaged files
            raise ModelError(f"{weights}: cannot read weights ({exc})") from None
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelError(f"{weights}: weights do not match config.json ({exc})") from None
        return model.to(device).eval()


def is_recognizer_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a saved :class:`SpeechRecognizer`."""
    try:
        data = json.loads((Path(path) / CONFIG_NAME).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("speechx_format") == FORMAT_NAME
