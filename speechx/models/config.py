"""Configuration of a speech encoder: backbone, pooling, projection, preprocessing, freezing.

A :class:`SpeechEncoderConfig` is plain data.  It round-trips through JSON
(:meth:`SpeechEncoderConfig.to_dict` / :meth:`SpeechEncoderConfig.from_dict`), and it is what a
model directory's ``config.json`` holds, so a model can be rebuilt from its directory alone.

>>> cfg = SpeechEncoderConfig(backbone="wav2vec2", backbone_config={"hidden_size": 16}, embed_dim=8)
>>> SpeechEncoderConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from speechx.errors import ModelError

POOLING_TYPES = ("mean", "attention", "mha")
PROJECTION_TYPES = ("linear", "mlp")


@dataclass
class PreprocessingConfig:
    """What is done to a waveform before it enters the backbone.

    Attributes:
        do_normalize: zero-mean, unit-variance normalisation of each utterance, computed over
            its real samples only (padding stays exactly 0), as ``Wav2Vec2FeatureExtractor``'s
            ``do_normalize``.  Wav2vec2-style checkpoints were trained with it.
        epsilon: added to the variance before the square root.
    """

    do_normalize: bool = True
    epsilon: float = 1e-7


@dataclass
class SpeechEncoderConfig:
    """A speech encoder: ``backbone -> (layer selection) -> pooling -> projection -> L2 norm``.

    Attributes:
        backbone: key into :data:`speechx.models.backbones.BACKBONES` ("wav2vec2", "hubert",
            "wavlm", "data2vec-audio").
        backbone_config: the backbone's transformers config as a dict (``config.to_dict()``),
            kept inline so the model can be rebuilt without the original checkpoint.
        embed_dim: size of the output embedding; the text teacher's dimension.
        sample_rate: the sample rate the backbone expects, in Hz.
        preprocessing: waveform normalisation, see :class:`PreprocessingConfig`.
        pooling: "mean" (average of real frames), "attention" (SAMU-XLSR self-attention pooling:
            a learned score per frame, softmax over real frames) or "mha" (SONAR-like: learned
            queries attending over the frames with multi-head attention).
        pooling_heads: attention heads of "mha" pooling; must divide the backbone hidden size.
        pooling_queries: number of learned queries of "mha" pooling; their outputs are
            concatenated before the projection.
        projection: "linear" or "mlp" (Linear -> GELU -> Dropout -> Linear).
        projection_hidden: hidden width of the "mlp" projection (default: the backbone's
            hidden size).
        projection_dropout: dropout applied to the pooled vector (and inside the MLP).
        layer: use this entry of the backbone's hidden states instead of its last output
            (0 = input of the first transformer layer, i = output of layer i, negative counts
            from the end).  ``None`` (default) uses the backbone's final output.
        weighted_layer_sum: learn a softmax-weighted sum of all hidden states (SUPERB style; each
            layer is layer-normalised first).  Off by default; exclusive with ``layer``.
        freeze_feature_encoder: freeze the convolutional waveform front end.
        freeze_layers: freeze the first N transformer layers (only those layers; combine with
            ``freeze_feature_encoder`` to freeze everything below them).
        freeze_backbone: freeze the whole backbone and keep it in eval mode (no dropout or
            SpecAugment) even when the encoder trains; only pooling and projection learn.
        gradient_checkpointing: recompute backbone activations in the backward pass to save
            memory.
    """

    backbone: str = "wav2vec2"
    backbone_config: dict[str, Any] = field(default_factory=dict)
    embed_dim: int = 512
    sample_rate: int = 16000
    preprocessing: PreprocessingConfig = field(default_factory=PreprocessingConfig)
    pooling: str = "mean"
    pooling_heads: int = 4
    pooling_queries: int = 1
    projection: str = "linear"
    projection_hidden: int | None = None
    projection_dropout: float = 0.0
    layer: int | None = None
    weighted_layer_sum: bool = False
    freeze_feature_encoder: bool = False
    freeze_layers: int = 0
    freeze_backbone: bool = False
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.preprocessing, dict):
            self.preprocessing = _from_dict(
                PreprocessingConfig, self.preprocessing, "preprocessing"
            )
        self.validate()

    def validate(self) -> None:
        """Check the values that can be checked without building the backbone.

        Raises:
            ModelError: naming the offending field and the accepted values.
        """
        if self.pooling not in POOLING_TYPES:
            raise ModelError(
                f"SpeechEncoderConfig: unknown pooling {self.pooling!r}; "
                f"choose one of {', '.join(POOLING_TYPES)}"
            )
        if self.projection not in PROJECTION_TYPES:
            raise ModelError(
                f"SpeechEncoderConfig: unknown projection {self.projection!r}; "
                f"choose one of {', '.join(PROJECTION_TYPES)}"
            )
        for name in ("embed_dim", "sample_rate", "pooling_heads", "pooling_queries"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ModelError(
                    f"SpeechEncoderConfig: {name} must be a positive int, got {value!r}"
                )
        if self.freeze_layers < 0:
            raise ModelError(
                f"SpeechEncoderConfig: freeze_layers must be >= 0, got {self.freeze_layers}"
            )
        if not 0.0 <= self.projection_dropout < 1.0:
            raise ModelError(
                f"SpeechEncoderConfig: projection_dropout must be in [0, 1), "
                f"got {self.projection_dropout}"
            )
        if self.layer is not None and self.weighted_layer_sum:
            raise ModelError(
                "SpeechEncoderConfig: set either layer or weighted_layer_sum, not both"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy of the config (nested dataclasses become dicts)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpeechEncoderConfig:
        """Build a config from :meth:`to_dict` output.

        Raises:
            ModelError: unknown keys (a typo, or a config from a newer speechx) or bad values.
        """
        return _from_dict(cls, data, "SpeechEncoderConfig")

    def replace(self, **changes: Any) -> SpeechEncoderConfig:
        """A copy with some fields changed; unknown field names raise :class:`ModelError`."""
        return self.from_dict({**self.to_dict(), **changes})


def _from_dict(cls: type, data: dict[str, Any], what: str) -> Any:
    if not isinstance(data, dict):
        raise ModelError(f"{what}: expected a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ModelError(
            f"{what}: unknown field(s) {', '.join(unknown)}; valid fields are "
            f"{', '.join(sorted(names))}"
        )
    try:
        return cls(**data)
    except TypeError as exc:
        raise ModelError(f"{what}: {exc}") from None
