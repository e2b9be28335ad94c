"""Fixtures for the speech-encoder tests: tiny random models and short waveforms."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from speechx.models import PRESETS, SpeechEncoder, SpeechEncoderConfig


def tiny_backbone_config(norm: str = "layer", backbone: str = "wav2vec2") -> dict[str, Any]:
    """The "tiny" preset's transformers config, with a group- or layer-norm front end."""
    cfg = dict(PRESETS["tiny"][1])
    if backbone == "data2vec-audio":  # no feat_extract_norm: its front end is always layer norm
        cfg.pop("feat_extract_norm")
        cfg.pop("do_stable_layer_norm")
        cfg["num_conv_pos_embeddings"] = 3  # here: the number of positional conv layers
    else:
        cfg["feat_extract_norm"] = norm
        cfg["do_stable_layer_norm"] = norm == "layer"
    return cfg


def tiny_encoder(
    *, norm: str = "layer", backbone: str = "wav2vec2", embed_dim: int = 8, **fields: Any
) -> SpeechEncoder:
    """A seeded tiny encoder (about 20k parameters)."""
    torch.manual_seed(0)
    fields.setdefault("pooling_heads", 2)
    config = SpeechEncoderConfig(
        backbone=backbone,
        backbone_config=tiny_backbone_config(norm, backbone),
        embed_dim=embed_dim,
        **fields,
    )
    return SpeechEncoder(config)


@pytest.fixture
def make_encoder() -> Any:
    """Factory fixture: ``make_encoder(norm=..., backbone=..., embed_dim=..., **config_fields)``."""
    return tiny_encoder


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
