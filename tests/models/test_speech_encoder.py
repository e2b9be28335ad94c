"""SpeechEncoder: forward, padding, preprocessing, freezing, parameter groups."""

from __future__ import annotations

import json

import pytest
import torch

from speechx.errors import ModelError
from speechx.models import SpeechEncoderConfig

POOLINGS = ["mean", "attention", "mha"]


def _padded_pair(short: torch.Tensor, long: torch.Tensor, pad_value: float = 0.0):
    batch = torch.full((2, long.shape[0]), pad_value)
    batch[0, : short.shape[0]] = short
    batch[1] = long
    return batch, torch.tensor([short.shape[0], long.shape[0]])


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("projection", ["linear", "mlp"])
def test_forward_shapes_and_normalisation(make_encoder, pooling, projection):
    enc = make_encoder(pooling=pooling, projection=projection, embed_dim=12).eval()
    x = torch.randn(3, 4000)
    out = enc(x, torch.tensor([4000, 2500, 1000]))
    assert out["embeddings"].shape == (3, 12)
    assert out["projected"].shape == (3, 12)
    assert out["hidden"].shape[0] == 3 and out["hidden"].shape[2] == 16
    # conv stack (10,5),(3,2),(3,2): 4000 samples -> 199 frames, 1000 -> 49
    assert out["frame_lengths"].tolist() == [199, 124, 49]
    torch.testing.assert_close(out["embeddings"].norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(
        out["embeddings"], torch.nn.functional.normalize(out["projected"], dim=-1)
    )
    assert not torch.allclose(out["projected"].norm(dim=-1), torch.ones(3))


def test_lengths_default_to_full_rows(make_encoder):
    enc = make_encoder().eval()
    x = torch.randn(2, 3000)
    torch.testing.assert_close(
        enc(x)["embeddings"], enc(x, torch.tensor([3000, 3000]))["embeddings"]
    )


@pytest.mark.parametrize("backbone", ["wav2vec2", "hubert", "wavlm", "data2vec-audio"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_layer_norm_variant_is_padding_invariant(make_encoder, backbone, pooling):
    enc = make_encoder(backbone=backbone, pooling=pooling).eval()
    short, long = torch.randn(3000), torch.randn(7000)
    batch, lengths = _padded_pair(short, long)
    with torch.no_grad():
        alone = enc(short[None])["embeddings"][0]
        padded = enc(batch, lengths)["embeddings"][0]
    torch.testing.assert_close(padded, alone, atol=1e-4, rtol=0)


@pytest.mark.parametrize("fields", [{"layer": 1}, {"weighted_layer_sum": True}])
def test_layer_selection_is_padding_invariant(make_encoder, fields):
    enc = make_encoder(pooling="attention", **fields).eval()
    short, long = torch.randn(2000), torch.randn(6000)
    batch, lengths = _padded_pair(short, long)
    with torch.no_grad():
        alone = enc(short[None])["embeddings"][0]
        padded = enc(batch, lengths)["embeddings"][0]
    torch.testing.assert_close(padded, alone, atol=1e-4, rtol=0)


def test_layer_selection_changes_the_features(make_encoder):
    x = torch.randn(1, 3000)
    last = make_encoder().eval()(x)["hidden"]
    first = make_encoder(layer=0).eval()(x)["hidden"]
    assert first.shape == last.shape
    assert not torch.allclose(first, last)
    with pytest.raises(ModelError, match="layer=5 is out of range"):
        make_encoder(layer=5)


def _capture_backbone_kwargs(enc):
    seen = {}
    model = enc.backbone.model
    original = model.forward

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    model.forward = spy
    return seen


def test_layer_norm_backbone_gets_sample_level_mask(make_encoder):
    enc = make_encoder(norm="layer").eval()
    seen = _capture_backbone_kwargs(enc)
    enc(torch.randn(2, 5000), torch.tensor([5000, 3200]))
    mask = seen["attention_mask"]
    assert mask.shape == (2, 5000)
    assert mask.sum(dim=1).tolist() == [5000, 3200]


def test_group_norm_backbone_gets_no_mask_and_zero_padding(make_encoder):
    """Group-norm front ends are run the way they were trained: zero padding, no mask.

    The price: a padded utterance's embedding differs from its embedding alone (group norm
    and self-attention see the zeros), but it does not depend on what the padding held.
    """
    enc = make_encoder(norm="group").eval()
    seen = _capture_backbone_kwargs(enc)
    short, long = torch.randn(3000), torch.randn(7000)
    with torch.no_grad():
        zeros = enc(*_padded_pair(short, long, 0.0))["embeddings"][0]
        junk = enc(*_padded_pair(short, long, 0.7))["embeddings"][0]
        alone = enc(short[None])["embeddings"][0]
    assert seen["attention_mask"] is None
    torch.testing.assert_close(junk, zeros)  # padding is zeroed before the backbone
    assert (zeros - alone).abs().max() > 1e-3  # documented: not padding invariant
    # frame lengths still mark the real frames, so pooling ignores the padded ones
    out = enc(*_padded_pair(short, long))
    assert out["frame_lengths"].tolist() == [149, 349]


def test_preprocessing_normalises_over_real_samples_only(make_encoder):
    enc = make_encoder()
    x = torch.zeros(2, 6)
    x[0, :4] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    x[0, 4:] = 99.0  # junk padding must not enter the statistics
    x[1] = torch.arange(6.0)
    y = enc.preprocess(x, torch.tensor([4, 6]))
    assert y[0, 4:].tolist() == [0.0, 0.0]
    real = y[0, :4]
    assert abs(float(real.mean())) < 1e-6
    assert abs(float(real.var(unbiased=False)) - 1.0) < 1e-5
    raw = make_encoder(preprocessing={"do_normalize": False}).preprocess(x, torch.tensor([4, 6]))
    assert raw[0].tolist() == [1.0, 2.0, 3.0, 4.0, 0.0, 0.0]


def test_forward_errors(make_encoder):
    enc = make_encoder()
    with pytest.raises(ModelError, match=r"must be \[B, T\]"):
        enc(torch.randn(4000))
    with pytest.raises(ModelError, match="utterance 1 of the batch has 30 samples"):
        enc(torch.randn(2, 4000), torch.tensor([4000, 30]))
    with pytest.raises(ModelError, match="exceeds the padded width"):
        enc(torch.randn(2, 400), torch.tensor([400, 500]))


def _tensors(params):
    return [p.detach().clone() for p in params]


def test_freezing_flags_and_optimizer_step(make_encoder):
    enc = make_encoder(freeze_feature_encoder=True, freeze_layers=1).train()
    model = enc.backbone.model
    frozen = list(model.feature_extractor.parameters()) + list(model.encoder.layers[0].parameters())
    trainable = list(model.encoder.layers[1].parameters()) + list(enc.projection.parameters())
    assert all(not p.requires_grad for p in frozen)
    assert all(p.requires_grad for p in trainable)
    before_frozen, before_trainable = _tensors(frozen), _tensors(trainable)

    opt = torch.optim.SGD([p for p in enc.parameters() if p.requires_grad], lr=0.5)
    out = enc(torch.randn(2, 3000), torch.tensor([3000, 2000]))
    out["embeddings"][:, 0].sum().backward()
    opt.step()

    for before, p in zip(before_frozen, frozen, strict=True):
        assert torch.equal(before, p.detach())
        assert p.grad is None
    changed = [
        not torch.equal(b, p.detach()) for b, p in zip(before_trainable, trainable, strict=True)
    ]
    assert any(changed)


def test_freeze_backbone_keeps_it_in_eval_mode(make_encoder):
    enc = make_encoder(freeze_backbone=True)
    enc.train()
    assert enc.training and enc.projection.training
    assert not enc.backbone.training
    assert all(not p.requires_grad for p in enc.backbone.parameters())
    groups = enc.parameter_groups()
    assert groups["backbone"] == []
    assert len(groups["head"]) > 0


def test_freeze_layers_out_of_range(make_encoder):
    with pytest.raises(ModelError, match="cannot freeze 3 layers, it has only 2"):
        make_encoder(freeze_layers=3)


@pytest.mark.parametrize("fields", [{}, {"pooling": "mha", "weighted_layer_sum": True}])
def test_parameter_groups_split_trainable_parameters(make_encoder, fields):
    enc = make_encoder(freeze_feature_encoder=True, **fields)
    groups = enc.parameter_groups()
    backbone_ids = {id(p) for p in groups["backbone"]}
    head_ids = {id(p) for p in groups["head"]}
    assert not backbone_ids & head_ids
    trainable = {id(p) for p in enc.parameters() if p.requires_grad}
    assert backbone_ids | head_ids == trainable
    assert {id(p) for p in enc.projection.parameters()} <= head_ids
    assert {id(p) for p in enc.pooling.parameters()} <= head_ids
    assert not {id(p) for p in enc.backbone.model.feature_extractor.parameters()} & trainable
    if fields:
        assert id(enc.layer_weighting.weights) in head_ids


def test_config_round_trips_through_json(make_encoder):
    enc = make_encoder(pooling="mha", pooling_queries=2, projection="mlp", freeze_layers=1)
    data = json.loads(json.dumps(enc.config.to_dict()))
    assert SpeechEncoderConfig.from_dict(data) == enc.config
    assert data["backbone_config"]["hidden_size"] == 16
    assert data["preprocessing"] == {"do_normalize": True, "epsilon": 1e-7}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"pooling": "max"}, "unknown pooling 'max'"),
        ({"projection": "conv"}, "unknown projection 'conv'"),
        ({"embed_dim": 0}, "embed_dim must be a positive int"),
        ({"layer": 1, "weighted_layer_sum": True}, "either layer or weighted_layer_sum"),
        ({"poolin": "mean"}, "unknown field.*poolin"),
    ],
)
def test_config_errors(fields, message):
    with pytest.raises(ModelError, match=message):
        SpeechEncoderConfig.from_dict(fields)


def test_mha_heads_must_divide_hidden_size(make_encoder):
    with pytest.raises(ModelError, match="pooling_heads=3 does not divide"):
        make_encoder(pooling="mha", pooling_heads=3)


def test_gradient_checkpointing_gives_the_same_gradients(make_encoder):
    x, lengths = torch.randn(2, 3000), torch.tensor([3000, 2200])
    grads = []
    for checkpointing in (False, True):
        enc = make_encoder(gradient_checkpointing=checkpointing).train()
        enc(x, lengths)["embeddings"][:, 0].sum().backward()
        grads.append(enc.backbone.model.encoder.layers[0].attention.q_proj.weight.grad)
    torch.testing.assert_close(grads[1], grads[0])


def test_backbone_registry_is_consistent():
    from speechx.models import BACKBONES, Backbone

    for key, cls in BACKBONES.items():
        assert issubclass(cls, Backbone)
        assert cls.name == key == cls.config_class.model_type
