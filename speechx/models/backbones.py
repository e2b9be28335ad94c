"""Speech backbones: waveform in, frame-level hidden states and frame lengths out.

:class:`Backbone` is the interface the encoder (and, later, a CTC head) sees.  The transformers
wav2vec-family models share one implementation, :class:`HFAudioBackbone`; each is one entry of
the explicit registry :data:`BACKBONES`.  A backbone with a different front end (a Whisper
encoder fed log-mel features, say) is added as one more :class:`Backbone` subclass and one more
registry entry.

Padding.  Batches are right-padded with zeros and carry absolute sample ``lengths``.  Models whose
convolutional front end uses group norm (``feat_extract_norm == "group"``, wav2vec2-base style)
were trained without an attention mask, so they never receive one (the transformers docs say to
pad with zeros and pass no mask); their outputs for a padded utterance therefore differ slightly
from those for the same utterance alone.  Layer-norm variants (XLS-R, large models, data2vec)
receive the sample-level mask.  Either way the returned ``frame_lengths`` say which frames are
real, and pooling ignores the rest.
"""

from __future__ import annotations

import json
import os
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import torch
import transformers
from torch import nn

from speechx.errors import ModelError


class BackboneOutput(NamedTuple):
    """What a backbone returns.

    Attributes:
        hidden: ``[B, F, H]`` final hidden states; frames at or past ``frame_lengths`` are padding.
        frame_lengths: ``[B]`` long, number of real frames per utterance.
        hidden_states: every layer's hidden states (``num_layers + 1`` tensors ``[B, F, H]``)
            when requested, else ``None``.
    """

    hidden: torch.Tensor
    frame_lengths: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None


class Backbone(nn.Module, ABC):
    """Interface of a speech backbone.

    Subclasses are built from a plain config dict (``from_config``), can load pretrained
    weights from a local hub-style directory (``from_checkpoint``), and export their config dict
    (``config_dict``) so that :class:`~speechx.models.SpeechEncoder` can save them inline.
    """

    #: registry key, also stored in the speechx config
    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_config(cls, config: dict[str, Any]) -> Backbone:
        """A randomly initialised backbone from its config dict.

        Raises:
            ModelError: the config cannot be used.
        """

    @classmethod
    @abstractmethod
    def from_checkpoint(cls, path: str | os.PathLike, **config_overrides: Any) -> Backbone:
        """A backbone with pretrained weights from a local directory (no network access).

        Raises:
            ModelError: the directory is missing or holds no usable checkpoint.
        """

    @abstractmethod
    def config_dict(self) -> dict[str, Any]:
        """The JSON-serialisable config that :meth:`from_config` rebuilds this backbone from."""

    @property
    @abstractmethod
    def hidden_size(self) -> int:
        """Width H of the hidden states."""

    @property
    @abstractmethod
    def num_layers(self) -> int:
        """Number of transformer layers (``hidden_states`` has ``num_layers + 1`` entries)."""

    @abstractmethod
    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frame counts ``[B]`` for absolute sample counts ``lengths`` ``[B]``."""

    @property
    @abstractmethod
    def min_input_samples(self) -> int:
        """The shortest input, in samples, that yields at least one frame."""

    @abstractmethod
    def forward(
        self,
        input_values: torch.Tensor,
        lengths: torch.Tensor,
        *,
        output_hidden_states: bool = False,
    ) -> BackboneOutput:
        """Run the backbone on zero-padded ``input_values [B, T]`` with sample ``lengths [B]``."""

    @abstractmethod
    def feature_encoder_parameters(self) -> list[nn.Parameter]:
        """Parameters of the waveform front end (the part ``freeze_feature_encoder`` freezes)."""

    @abstractmethod
    def layer_parameters(self, n: int) -> list[nn.Parameter]:
        """Parameters of the first ``n`` transformer layers."""

    #: whether :meth:`forward_from` can resume the forward pass at a hidden state
    supports_resume: ClassVar[bool] = False

    def forward_from(
        self, hidden: torch.Tensor, frame_lengths: torch.Tensor, start_layer: int
    ) -> BackboneOutput:
        """Finish a forward pass from ``hidden_states[start_layer]`` (the input of layer
        ``start_layer``): run the remaining layers and the final norm.

        This lets a trainer cache the output of a frozen bottom and train only the top layers.

        Raises:
            ModelError: the backbone cannot resume (:attr:`supports_resume` is false).
        """
        raise ModelError(f"backbone {self.name!r} cannot resume a forward pass at a layer")

    def enable_gradient_checkpointing(self) -> None:
        """Recompute activations in backward; the default implementation does not support it."""
        raise ModelError(f"backbone {self.name!r} does not support gradient checkpointing")


class HFAudioBackbone(Backbone):
    """A transformers wav2vec-family model (``Wav2Vec2Model`` and its relatives).

    Subclasses only name the transformers model and config classes.
    """

    model_class: ClassVar[type[transformers.PreTrainedModel]]
    config_class: ClassVar[type[transformers.PretrainedConfig]]

    def __init__(self, model: transformers.PreTrainedModel) -> None:
        super().__init__()
        self.model = model

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> HFAudioBackbone:
        cfg = dict(config)
        model_type = cfg.get("model_type", cls.config_class.model_type)
        if model_type != cls.config_class.model_type:
            raise ModelError(
                f"backbone {cls.name!r}: config has model_type {model_type!r}, expected "
                f"{cls.config_class.model_type!r}"
            )
        try:
            hf_config = cls.config_class.from_dict(cfg)
        except Exception as exc:  # transformers raises several types for bad configs
            raise ModelError(f"backbone {cls.name!r}: invalid backbone config ({exc})") from None
        _check_hf_config(cls.name, hf_config)
        return cls(cls.model_class(hf_config))

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **config_overrides: Any) -> HFAudioBackbone:
        path = Path(path)
        if not (path / "config.json").is_file():
            raise ModelError(f"{path}: no config.json, not a transformers checkpoint directory")
        try:
            model, info = cls.model_class.from_pretrained(
                str(path), local_files_only=True, output_loading_info=True, **config_overrides
            )
        except Exception as exc:
            raise ModelError(f"{path}: cannot load {cls.name} checkpoint ({exc})") from None
        missing = [k for k in info.get("missing_keys", []) if "masked_spec_embed" not in k]
        if missing:
            shown = ", ".join(sorted(missing)[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            warnings.warn(
                f"{path}: {len(missing)} backbone weight(s) not in the checkpoint were randomly "
                f"initialised: {shown}{more}",
                UserWarning,
                stacklevel=2,
            )
        _check_hf_config(str(path), model.config)
        return cls(model)

    def config_dict(self) -> dict[str, Any]:
        # through JSON, so the dict equals what a saved config.json reads back as
        return json.loads(self.model.config.to_json_string(use_diff=False))

    # -- facts ----------------------------------------------------------------------------------

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def uses_attention_mask(self) -> bool:
        """False for group-norm front ends, which were trained on zero padding without a mask."""
        # data2vec-audio has no feat_extract_norm: its front end always uses layer norm
        return getattr(self.model.config, "feat_extract_norm", "layer") != "group"

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.model._get_feat_extract_output_lengths(lengths).to(torch.long)

    @property
    def min_input_samples(self) -> int:
        cfg = self.model.config
        need = 1
        if getattr(cfg, "add_adapter", False):
            for _ in range(cfg.num_adapter_layers):
                need = (need - 1) * cfg.adapter_stride + 1
        for kernel, stride in reversed(list(zip(cfg.conv_kernel, cfg.conv_stride, strict=True))):
            need = (need - 1) * stride + kernel
        return need

    # -- forward --------------------------------------------------------------------------------

    def forward(
        self,
        input_values: torch.Tensor,
        lengths: torch.Tensor,
        *,
        output_hidden_states: bool = False,
    ) -> BackboneOutput:
        attention_mask = None
        if self.uses_attention_mask:
            positions = torch.arange(input_values.shape[1], device=input_values.device)
            attention_mask = (positions[None, :] < lengths[:, None]).long()
        with warnings.catch_warnings():
            # WavLM's eager attention mixes a bool padding mask with a float bias; harmless
            warnings.filterwarnings("ignore", message=".*mismatched key_padding_mask.*")
            out = self.model(
                input_values,
                attention_mask=attention_mask,
                output_hidden_states=output_hidden_states,
                return_dict=True,
            )
        hidden = out.last_hidden_state
        frame_lengths = self.output_lengths(lengths).clamp(max=hidden.shape[1])
        states = tuple(out.hidden_states) if output_hidden_states else None
        return BackboneOutput(hidden, frame_lengths, states)

    # -- parameter groups -----------------------------------------------------------------------

    def feature_encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.model.feature_extractor.parameters())

    def layer_parameters(self, n: int) -> list[nn.Parameter]:
        return first_layers_parameters(self.model.encoder.layers, n, self.name)

    def enable_gradient_checkpointing(self) -> None:
        enable_checkpointing(self.model)


def first_layers_parameters(layers: nn.ModuleList, n: int, name: str) -> list[nn.Parameter]:
    """Parameters of the first ``n`` of ``layers`` (freeze them to train the top ones).

    Raises:
        ModelError: ``n`` exceeds the number of layers (naming backbone ``name``).
    """
    if n > len(layers):
        raise ModelError(f"backbone {name!r}: cannot freeze {n} layers, it has only {len(layers)}")
    return [p for layer in layers[:n] for p in layer.parameters()]


def enable_checkpointing(model: nn.Module) -> None:
    """Turn on activation checkpointing of a transformers model.

    transformers 5 renamed ``gradient_checkpointing_enable`` (deprecated, removed in v6).
    """
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is None:
        enable = model.gradient_checkpointing_enable
    enable()


def _check_hf_config(where: str, cfg: transformers.PretrainedConfig) -> None:
    norm = getattr(cfg, "feat_extract_norm", "layer")
    if norm not in ("group", "layer"):
        raise ModelError(f"{where}: feat_extract_norm must be 'group' or 'layer', got {norm!r}")
    if len(cfg.conv_kernel) != len(cfg.conv_stride) or len(cfg.conv_dim) != len(cfg.conv_stride):
        raise ModelError(
            f"{where}: conv_dim, conv_kernel and conv_stride must have the same length, got "
            f"{len(cfg.conv_dim)}, {len(cfg.conv_kernel)}, {len(cfg.conv_stride)}"
        )


class Wav2Vec2Backbone(HFAudioBackbone):
    """wav2vec 2.0 / XLS-R (``transformers.Wav2Vec2Model``)."""

    name = "wav2vec2"
    model_class = transformers.Wav2Vec2Model
    config_class = transformers.Wav2Vec2Config


class HubertBackbone(HFAudioBackbone):
    """HuBERT (``transformers.HubertModel``)."""

    name = "hubert"
    model_class = transformers.HubertModel
    config_class = transformers.HubertConfig


class WavLMBackbone(HFAudioBackbone):
    """WavLM (``transformers.WavLMModel``)."""

    name = "wavlm"
    model_class = transformers.WavLMModel
    config_class = transformers.WavLMConfig


class Data2VecAudioBackbone(HFAudioBackbone):
    """data2vec-audio (``transformers.Data2VecAudioModel``); its front end always uses layer norm.

    Its positional embedding is a stack of convolutions with layer norm in between, so padded
    frames turn non-zero after the first one and leak into the real frames near the end.  Forward
    hooks re-zero the padded frames after each positional convolution, which makes a padded
    utterance's output equal to its output alone (transformers does not do this).
    """

    name = "data2vec-audio"
    model_class = transformers.Data2VecAudioModel
    config_class = transformers.Data2VecAudioConfig

    def __init__(self, model: transformers.PreTrainedModel) -> None:
        super().__init__(model)
        self._pos_mask: torch.Tensor | None = None
        for layer in model.encoder.pos_conv_embed.layers:
            layer.register_forward_hook(self._zero_padding)

    def _zero_padding(self, module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        mask = self._pos_mask
        if mask is None or mask.shape[-1] != output.shape[-1]:
            return output
        return output * mask[:, None, :].to(output.dtype)  # output is [B, H, F]

    def forward(
        self,
        input_values: torch.Tensor,
        lengths: torch.Tensor,
        *,
        output_hidden_states: bool = False,
    ) -> BackboneOutput:
        frames = self.output_lengths(lengths)
        num_frames = int(self.output_lengths(torch.tensor(input_values.shape[1])))
        positions = torch.arange(num_frames, device=input_values.device)
        self._pos_mask = positions[None, :] < frames[:, None]
        try:
            return super().forward(input_values, lengths, output_hidden_states=output_hidden_states)
        finally:
            self._pos_mask = None


from speechx.models.fbank import Wav2Vec2FbankBackbone  # noqa: E402  (subclasses HFAudioBackbone)
from speechx.models.whisper import WhisperBackbone  # noqa: E402  (it subclasses Backbone)

#: registry key -> backbone class; keys double as transformers ``model_type`` values
BACKBONES: dict[str, type[Backbone]] = {
    "wav2vec2": Wav2Vec2Backbone,
    "wav2vec2-fbank": Wav2Vec2FbankBackbone,
    "hubert": HubertBackbone,
    "wavlm": WavLMBackbone,
    "data2vec-audio": Data2VecAudioBackbone,
    "whisper": WhisperBackbone,
}


def backbone_class(name: str) -> type[Backbone]:
    """The registered backbone class for ``name``.

    Raises:
        ModelError: ``name`` is not registered; the message lists the registered names.
    """
    try:
        return BACKBONES[name]
    except KeyError:
        raise ModelError(
            f"unsupported backbone {name!r}; supported: {', '.join(sorted(BACKBONES))}"
        ) from None
