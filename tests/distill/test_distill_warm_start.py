"""Warm starts of the student from a speechx model dir, with ``model.overrides``."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from speechx.distill.errors import TrainingError
from speechx.distill.trainer import build_model
from speechx.models import build_encoder
from tests.distill.distill_helpers import DIM, tiny_config


def _saved(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return build_encoder("tiny", DIM).save_pretrained(tmp_path / "enc")


def test_overrides_that_reshape_the_head_keep_the_backbone(tmp_path: Path, caplog) -> None:
    src = _saved(tmp_path)
    cfg = tiny_config([tmp_path], **{"model.source": str(src)})
    cfg.model.overrides = {"pooling": "attention"}
    old = build_model(tiny_config([tmp_path], **{"model.source": str(src)}), DIM).state_dict()
    with caplog.at_level(logging.INFO, logger="speechx.distill"):
        new = build_model(cfg, DIM)
    assert new.config.pooling == "attention"
    state = new.state_dict()
    backbone = [k for k in old if k.startswith("backbone.")]
    assert backbone
    for k in backbone:
        torch.testing.assert_close(state[k], old[k])
    # the projection keeps its shape and its weights; the attention pooling is new
    proj = [k for k in old if k.startswith("projection.")]
    assert proj
    for k in proj:
        torch.testing.assert_close(state[k], old[k])
    assert any(k.startswith("pooling.") and k not in old for k in state)
    assert "re-initialise the pooling" in caplog.text


def test_overrides_that_reshape_the_backbone_are_refused(tmp_path: Path) -> None:
    src = _saved(tmp_path)
    cfg = tiny_config([tmp_path], **{"model.source": str(src)})
    cfg.model.overrides = {"backbone_config": {"intermediate_size": 48}}
    with pytest.raises(TrainingError, match=r"change the backbone's weights \(backbone\."):
        build_model(cfg, DIM)


def test_overrides_that_keep_shapes_keep_every_weight(tmp_path: Path) -> None:
    src = _saved(tmp_path)
    cfg = tiny_config([tmp_path], **{"model.source": str(src)})
    cfg.model.overrides = {"freeze_feature_encoder": True}
    ref = build_model(tiny_config([tmp_path], **{"model.source": str(src)}), DIM).state_dict()
    model = build_model(cfg, DIM)
    torch.testing.assert_close(model.state_dict(), ref)
    assert not any(p.requires_grad for p in model.backbone.feature_encoder_parameters())
