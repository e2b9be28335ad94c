"""build_encoder: named presets and local transformers checkpoint directories."""

from __future__ import annotations

import json

import pytest
import torch
import transformers

from speechx.errors import ModelError
from speechx.models import BACKBONES, PRESETS, SpeechEncoder, build_encoder


def test_tiny_preset_and_overrides():
    enc = build_encoder(
        "tiny", embed_dim=8, pooling="attention", backbone_config={"layerdrop": 0.1}
    )
    assert isinstance(enc, SpeechEncoder)
    assert enc.config.pooling == "attention" and enc.embed_dim == 8
    assert enc.backbone.model.config.hidden_size == 16
    assert enc.backbone.model.config.layerdrop == 0.1
    assert enc.training


@pytest.mark.parametrize("name", ["w2v2-scratch-small", "w2v2-scratch-fast"])
def test_scratch_presets_are_small_and_fifty_hertz(name):
    enc = build_encoder(name, embed_dim=512)
    n = sum(p.numel() for p in enc.parameters())
    assert 3_500_000 < n < 5_500_000
    frames = enc.backbone.output_lengths(torch.tensor([16000 * 3]))
    assert 145 <= int(frames) <= 150  # 50 frames per second
    assert enc.backbone.uses_attention_mask


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "huge"}, "neither a preset"),
        ({"source": "tiny", "poolng": "mean"}, r"build_encoder\('tiny'\).*unknown field.*poolng"),
        ({"source": "tiny", "embed_dim": 8, "backbone": "hubert"}, "'backbone' cannot be"),
    ],
)
def test_build_errors(kwargs, message):
    kwargs = {"embed_dim": 8, **kwargs}
    with pytest.raises(ModelError, match=message):
        build_encoder(**kwargs)


def _save_hub_model(path, model_type="wav2vec2", **extra):
    torch.manual_seed(7)
    cfg = {
        k: v
        for k, v in PRESETS["tiny"][1].items()
        if model_type != "data2vec-audio" or k not in ("feat_extract_norm", "do_stable_layer_norm")
    }
    backbone = BACKBONES[model_type]
    hf_config = backbone.config_class(**{**cfg, **extra})
    model = backbone.model_class(hf_config)
    model.save_pretrained(path)
    return model


@pytest.mark.parametrize("model_type", ["wav2vec2", "hubert"])
def test_checkpoint_dir_weights_are_loaded(tmp_path, model_type):
    model = _save_hub_model(tmp_path / "ckpt", model_type)
    enc = build_encoder(str(tmp_path / "ckpt"), embed_dim=8)
    assert enc.backbone.name == model_type
    ours = enc.backbone.model.state_dict()
    for name in (
        "feature_projection.projection.weight",
        "encoder.layers.1.attention.k_proj.weight",
    ):
        torch.testing.assert_close(ours[name], model.state_dict()[name], rtol=0, atol=0)
    # the usual fine-tuning default for a pretrained checkpoint
    assert enc.config.freeze_feature_encoder
    assert all(not p.requires_grad for p in enc.backbone.model.feature_extractor.parameters())
    # the checkpoint's config travels inline in the speechx config
    assert enc.config.backbone_config["hidden_size"] == 16


def test_checkpoint_then_save_and_reload(tmp_path):
    _save_hub_model(tmp_path / "ckpt")
    enc = build_encoder(tmp_path / "ckpt", embed_dim=8, freeze_feature_encoder=False).eval()
    assert not enc.config.freeze_feature_encoder
    enc.save_pretrained(tmp_path / "model")
    again = SpeechEncoder.from_pretrained(tmp_path / "model")
    x = torch.randn(1, 2000)
    with torch.no_grad():
        torch.testing.assert_close(again(x)["embeddings"], enc(x)["embeddings"])


def test_checkpoint_preprocessor_config_is_respected(tmp_path):
    _save_hub_model(tmp_path / "ckpt")
    pre = {"feature_extractor_type": "Wav2Vec2FeatureExtractor", "do_normalize": False}
    (tmp_path / "ckpt" / "preprocessor_config.json").write_text(
        json.dumps({**pre, "sampling_rate": 8000})
    )
    enc = build_encoder(tmp_path / "ckpt", embed_dim=8)
    assert enc.config.preprocessing.do_normalize is False
    assert enc.sample_rate == 8000


def test_checkpoint_backbone_overrides(tmp_path):
    _save_hub_model(tmp_path / "ckpt", mask_time_prob=0.05)
    enc = build_encoder(tmp_path / "ckpt", embed_dim=8, backbone_config={"mask_time_prob": 0.0})
    assert enc.backbone.model.config.mask_time_prob == 0.0


def test_checkpoint_dir_errors(tmp_path):
    with pytest.raises(
        ModelError, match="no_such_dir.*neither a preset .* nor an existing local directory"
    ):
        build_encoder(str(tmp_path / "no_such_dir"), embed_dim=8)

    bert = tmp_path / "bert"
    transformers.BertConfig(hidden_size=16, num_hidden_layers=1).save_pretrained(bert)
    with pytest.raises(ModelError, match="unsupported backbone 'bert'.*wav2vec2"):
        build_encoder(str(bert), embed_dim=8)

    no_weights = tmp_path / "no_weights"
    transformers.Wav2Vec2Config(**PRESETS["tiny"][1]).save_pretrained(no_weights)
    with pytest.raises(ModelError, match="no_weights: cannot load wav2vec2 checkpoint"):
        build_encoder(str(no_weights), embed_dim=8)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="empty/config.json: not found"):
        build_encoder(str(empty), embed_dim=8)

    speechx_dir = tmp_path / "speechx_model"
    build_encoder("tiny", embed_dim=8).save_pretrained(speechx_dir)
    with pytest.raises(ModelError, match="SpeechEncoder.from_pretrained"):
        build_encoder(str(speechx_dir), embed_dim=8)
