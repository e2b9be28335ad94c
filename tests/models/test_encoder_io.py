"""SpeechEncoder.encode, save_pretrained / from_pretrained and their errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from speechx.errors import AudioError, ModelError
from speechx.models import SpeechEncoder


def _wav(rng, seconds: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 400) * t)
    return (tone + 0.05 * rng.standard_normal(t.shape)).astype(np.float32)


def _forward_one(enc: SpeechEncoder, wav: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return enc(torch.from_numpy(wav)[None])["embeddings"][0].numpy()


def test_encode_keeps_input_order_with_mixed_lengths(make_encoder, rng):
    enc = make_encoder(pooling="attention")
    wavs = [_wav(rng, s) for s in (0.3, 0.6, 0.05, 0.45, 0.5)]
    enc.train()
    out = enc.encode([(w, 16000) for w in wavs], batch_size=2)
    assert enc.training  # mode restored
    assert out.dtype == np.float32 and out.shape == (5, 8)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    enc.eval()
    expected = np.stack([_forward_one(enc, w) for w in wavs])
    np.testing.assert_allclose(out, expected, atol=1e-4)
    # rows differ, so an order mix-up would not go unnoticed
    assert np.abs(out[0] - out[1]).max() > 1e-3
    np.testing.assert_allclose(enc.encode([(w, 16000) for w in wavs], batch_size=5), out, atol=1e-4)


def test_encode_paths_and_resampled_arrays(make_encoder, rng, tmp_path):
    enc = make_encoder().eval()
    wav8k = _wav(rng, 0.5, sr=8000)
    path = tmp_path / "a.wav"
    sf.write(path, wav8k, 8000, subtype="FLOAT")
    out = enc.encode([str(path), (wav8k, 8000), path])
    np.testing.assert_allclose(out[0], out[1], atol=1e-5)
    np.testing.assert_allclose(out[0], out[2], atol=1e-5)
    resampled = soxr.resample(wav8k, 8000, 16000, quality="HQ").astype(np.float32)
    np.testing.assert_allclose(out[1], _forward_one(enc, resampled), atol=1e-4)


def test_encode_shapes_for_one_and_none(make_encoder, rng):
    enc = make_encoder(embed_dim=6)
    one = enc.encode([(_wav(rng, 0.2), 16000)])
    assert one.shape == (1, 6) and one.dtype == np.float32
    empty = enc.encode([])
    assert empty.shape == (0, 6) and empty.dtype == np.float32


def test_encode_errors_name_the_input(make_encoder, rng, tmp_path):
    enc = make_encoder()
    missing = tmp_path / "nope.wav"
    with pytest.raises(AudioError, match="nope.wav"):
        enc.encode([(_wav(rng, 0.2), 16000), missing])
    with pytest.raises(AudioError, match=r"<array shape=\(20,\) sr=16000>.*shorter than the 40"):
        enc.encode([(np.ones(20, np.float32), 16000)])
    with pytest.raises(ModelError, match="wrap a single input in a list"):
        enc.encode((_wav(rng, 0.2), 16000))
    with pytest.raises(ModelError, match="wrap a single input in a list"):
        enc.encode(str(missing))
    with pytest.raises(ModelError, match="batch_size must be >= 1"):
        enc.encode([(_wav(rng, 0.2), 16000)], batch_size=0)


@pytest.mark.parametrize(
    "fields",
    [
        {"pooling": "mha", "pooling_queries": 2, "projection": "mlp"},
        {"backbone": "wavlm", "pooling": "attention", "weighted_layer_sum": True},
        {"norm": "group", "freeze_feature_encoder": True, "preprocessing": {"do_normalize": False}},
    ],
)
def test_save_load_round_trip(make_encoder, rng, tmp_path, fields):
    enc = make_encoder(**fields).eval()
    with torch.no_grad():  # move the head off its init so a fresh build would differ
        for p in enc.projection.parameters():
            p.add_(0.1)
    inputs = [(_wav(rng, s), 16000) for s in (0.4, 0.25)]
    before = enc.encode(inputs)
    enc.save_pretrained(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    moved = tmp_path / "elsewhere"
    shutil.move(tmp_path / "model", moved)  # the directory alone is enough
    loaded = SpeechEncoder.from_pretrained(moved)
    assert not loaded.training
    assert loaded.config == enc.config
    np.testing.assert_array_equal(loaded.encode(inputs), before)
    cfg = json.loads((moved / "config.json").read_text())
    assert cfg["speechx_format"] == "speech-encoder" and cfg["format_version"] == 1
    assert cfg["sample_rate"] == 16000 and "do_normalize" in cfg["preprocessing"]
    assert cfg["backbone_config"]["model_type"] == enc.backbone.name
    # freezing is part of the config and survives the round trip
    assert [p.requires_grad for p in loaded.parameters()] == [
        p.requires_grad for p in enc.parameters()
    ]


def test_save_overwrites_in_place(make_encoder, tmp_path):
    a = make_encoder(embed_dim=4)
    a.save_pretrained(tmp_path)
    b = make_encoder(embed_dim=6)
    b.save_pretrained(tmp_path)
    assert SpeechEncoder.from_pretrained(tmp_path).embed_dim == 6
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.fixture
def saved(make_encoder, tmp_path):
    path = tmp_path / "model"
    make_encoder().save_pretrained(path)
    return path


def test_from_pretrained_missing_dir(tmp_path):
    with pytest.raises(ModelError, match="missing_model: model directory not found"):
        SpeechEncoder.from_pretrained(tmp_path / "missing_model")


def test_from_pretrained_missing_config(saved):
    (saved / "config.json").unlink()
    with pytest.raises(ModelError, match="config.json: not found"):
        SpeechEncoder.from_pretrained(saved)


def test_from_pretrained_bad_json(saved):
    (saved / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="config.json: cannot parse config"):
        SpeechEncoder.from_pretrained(saved)


def test_from_pretrained_future_version(saved):
    cfg = json.loads((saved / "config.json").read_text())
    cfg["format_version"] = 99
    (saved / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="unsupported format_version 99"):
        SpeechEncoder.from_pretrained(saved)


def test_from_pretrained_on_transformers_dir_gives_hint(saved):
    (saved / "config.json").write_text(json.dumps({"model_type": "wav2vec2"}))
    with pytest.raises(ModelError, match="transformers 'wav2vec2' checkpoint.*build_encoder"):
        SpeechEncoder.from_pretrained(saved)


def test_from_pretrained_missing_weights(saved):
    (saved / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="model.safetensors: weights file not found"):
        SpeechEncoder.from_pretrained(saved)


def test_from_pretrained_truncated_weights(saved):
    weights = saved / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelError, match="model.safetensors: cannot read weights"):
        SpeechEncoder.from_pretrained(saved)


def test_from_pretrained_weights_do_not_match_config(saved):
    cfg = json.loads((saved / "config.json").read_text())
    cfg["embed_dim"] = 5
    (saved / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="weights do not match config.json"):
        SpeechEncoder.from_pretrained(saved)
    cfg["embed_dim"], cfg["pooling"] = 8, "attention"
    (saved / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=r"missing: pooling.score.bias"):
        SpeechEncoder.from_pretrained(saved)
