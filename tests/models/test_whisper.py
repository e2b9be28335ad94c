"""WhisperBackbone: log-mel, true-length encoding, padding invariance, chunking, save/load."""

from __future__ import annotations

import glob
import shutil
import subprocess

import numpy as np
import pytest
import torch
import transformers

from speechx.audio import load_audio
from speechx.errors import ModelError
from speechx.models import BACKBONES, PRESETS, SpeechEncoder, build_encoder
from speechx.models.whisper import LogMel, WhisperBackbone


def tiny_config(**extra):
    return {**PRESETS["whisper-tiny-scratch"][1], **extra}


def tiny_backbone(**extra) -> WhisperBackbone:
    torch.manual_seed(0)
    return WhisperBackbone.from_config(tiny_config(**extra)).eval()


def batch_of(waves):
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.as_tensor(w)
    return batch, lengths


@pytest.fixture(scope="module")
def speech_clip(tmp_path_factory) -> np.ndarray:
    """A real Dutch fillets clip if installed, else espeak-ng speech, at 16 kHz."""
    clips = sorted(glob.glob("/usr/share/games/fillets-ng/sound/*/nl/*.ogg"))
    if clips:
        return load_audio(clips[0], 16000)
    if shutil.which("espeak-ng") is None:
        pytest.skip("neither fillets-ng data nor espeak-ng installed")
    path = tmp_path_factory.mktemp("speech") / "nl.wav"
    subprocess.run(
        ["espeak-ng", "-v", "nl", "-w", str(path), "De vis zwemt in de zee."], check=True
    )
    return load_audio(path, 16000)


def test_registered_and_preset():
    assert BACKBONES["whisper"] is WhisperBackbone
    enc = build_encoder("whisper-tiny-scratch", embed_dim=8)
    assert isinstance(enc.backbone, WhisperBackbone)
    assert enc.backbone.hidden_size == 16 and enc.backbone.num_layers == 2
    assert enc.config.preprocessing.do_normalize is False


def test_log_mel_matches_feature_extractor(speech_clip):
    fe = transformers.WhisperFeatureExtractor()
    ref = fe(speech_clip, sampling_rate=16000, return_tensors="np").input_features[0]
    n = len(speech_clip) // 160
    mel = LogMel()(torch.from_numpy(speech_clip)[None], torch.tensor([len(speech_clip)]))[0]
    assert mel.shape == (80, n)
    np.testing.assert_allclose(mel.numpy(), ref[:, :n], atol=1e-4)
    # batched next to a longer clip: same frames, zeros after the end
    longer = np.concatenate([speech_clip, speech_clip])
    batch, lengths = batch_of([speech_clip, longer])
    mels = LogMel()(batch, lengths)
    np.testing.assert_allclose(mels[0, :, :n].numpy(), ref[:, :n], atol=1e-4)
    assert torch.all(mels[0, :, n:] == 0)


@pytest.mark.parametrize("length", [400, 401, 16000, 16170, 24321])
def test_output_lengths_match_frames(length):
    bb = tiny_backbone()
    wave = torch.randn(1, length) * 0.1
    with torch.no_grad():
        out = bb(wave, torch.tensor([length]))
    assert out.hidden.shape[1] == int(out.frame_lengths[0]) == -(-(length // 160) // 2)
    assert int(bb.output_lengths(torch.tensor([length]))[0]) == out.hidden.shape[1]
    assert bb.min_input_samples == 400


def test_padding_invariance_with_key_padding_mask():
    rng = np.random.default_rng(0)
    # odd mel frame counts on purpose (the stride-2 conv would read a padded frame)
    waves = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (8160, 13000, 4960)]
    bb = tiny_backbone()
    batch, lengths = batch_of(waves)
    batch[0, len(waves[0]) :] = 7.0  # garbage in the padding must not matter
    with torch.no_grad():
        together = bb(batch, lengths, output_hidden_states=True)
        for i, w in enumerate(waves):
            alone = bb(torch.from_numpy(w)[None], torch.tensor([len(w)]), output_hidden_states=True)
            n = int(alone.frame_lengths[0])
            assert int(together.frame_lengths[i]) == n
            torch.testing.assert_close(together.hidden[i, :n], alone.hidden[0], atol=1e-5, rtol=0)
            for a, b in zip(together.hidden_states, alone.hidden_states, strict=True):
                torch.testing.assert_close(a[i, :n], b[0], atol=1e-5, rtol=0)
    assert len(together.hidden_states) == bb.num_layers + 1


def test_without_mask_padding_would_leak():
    """Guard that the invariance test can fail: a longer zero tail changes unmasked attention."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal(8000).astype(np.float32) * 0.1
    bb = tiny_backbone(encoding="padded")
    with torch.no_grad():
        padded = bb(torch.from_numpy(w)[None], torch.tensor([8000])).hidden[0, :25]
        bb.options.encoding = "variable"
        variable = bb(torch.from_numpy(w)[None], torch.tensor([8000])).hidden[0]
    assert variable.shape[0] == 25
    assert (padded - variable).abs().max() > 1e-3


def test_padded_path_equals_transformers_encoder(speech_clip):
    bb = tiny_backbone(encoding="padded")
    fe = transformers.WhisperFeatureExtractor()
    feats = fe(speech_clip, sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        ref = bb.encoder(feats).last_hidden_state
        out = bb(torch.from_numpy(speech_clip)[None], torch.tensor([len(speech_clip)]))
    assert out.hidden.shape == ref.shape == (1, 1500, 16)
    torch.testing.assert_close(out.hidden, ref, atol=1e-4, rtol=1e-4)
    assert int(out.frame_lengths[0]) == -(-(len(speech_clip) // 160) // 2)
    with pytest.raises(ModelError, match="longer than the 30-s window"):
        bb(torch.zeros(1, 30 * 16000 + 1), torch.tensor([30 * 16000 + 1]))


def test_long_input_is_chunked_and_stitched():
    # a 20-frame window (0.4 s) with 6 frames of overlap stands in for 1500 frames / 30 s
    bb = tiny_backbone(max_source_positions=20, chunk_overlap_frames=6)
    rng = np.random.default_rng(2)
    long = rng.standard_normal(16000).astype(np.float32) * 0.1  # 50 frames: 3 windows
    short = long[:3000]
    batch, lengths = batch_of([long, short])
    with torch.no_grad():
        out = bb(batch, lengths, output_hidden_states=True)
        first = bb(torch.from_numpy(long[: 20 * 320])[None], torch.tensor([20 * 320]))
        alone = bb(torch.from_numpy(short)[None], torch.tensor([3000]))
    assert out.hidden.shape == (2, 50, 16)
    assert out.frame_lengths.tolist() == [50, 9]  # 3000 // 160 = 18 mel frames
    assert len(out.hidden_states) == 3 and out.hidden_states[-1].shape == (2, 50, 16)
    # frames before the first cut (20 - 6 + 3 = 17) come from window 1, which is the first 0.4 s
    torch.testing.assert_close(out.hidden[0, :17], first.hidden[0, :17], atol=1e-5, rtol=0)
    assert (out.hidden[0, 17:20] - first.hidden[0, 17:20]).abs().max() > 1e-4
    torch.testing.assert_close(out.hidden[1, :9], alone.hidden[0], atol=1e-5, rtol=0)
    assert torch.isfinite(out.hidden).all() and out.hidden[0].abs().sum(-1).min() > 0


def test_freezing_groups():
    enc = build_encoder(
        "whisper-tiny-scratch", embed_dim=8, freeze_layers=1, freeze_feature_encoder=True
    )
    bb = enc.backbone
    assert not any(p.requires_grad for p in bb.encoder.layers[0].parameters())
    assert all(p.requires_grad for p in bb.encoder.layers[1].parameters())
    assert not any(p.requires_grad for p in bb.encoder.conv1.parameters())
    assert not bb.encoder.embed_positions.weight.requires_grad
    frozen = build_encoder("whisper-tiny-scratch", embed_dim=8, freeze_backbone=True)
    assert frozen.parameter_groups()["backbone"] == []
    with pytest.raises(ModelError, match="only 2"):
        bb.layer_parameters(3)


def test_gradient_checkpointing_trains():
    enc = build_encoder("whisper-tiny-scratch", embed_dim=8, gradient_checkpointing=True)
    wave = torch.randn(2, 4000) * 0.1
    out = enc(wave, torch.tensor([4000, 3000]))
    out["projected"].sum().backward()
    assert enc.backbone.encoder.layers[0].fc1.weight.grad is not None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"encoding": "fixed"}, "unknown encoding"),
        ({"chunk_overlap_frames": 750}, "chunk_overlap_frames"),
        ({"encoder_attention_heads": 3}, "divisible"),
        ({"pretrained": "whisper-huge-nowhere"}, "neither a known model"),
    ],
)
def test_config_errors(extra, message):
    with pytest.raises(ModelError, match=message):
        WhisperBackbone.from_config(tiny_config(**extra))


def test_speech_encoder_save_load_round_trip(tmp_path):
    torch.manual_seed(3)
    enc = build_encoder("whisper-tiny-scratch", embed_dim=8, pooling="attention")
    enc.save_pretrained(tmp_path / "model")
    back = SpeechEncoder.from_pretrained(tmp_path / "model")
    assert back.config == enc.config
    assert back.config.backbone == "whisper" and "pretrained" not in back.config.backbone_config
    rng = np.random.default_rng(4)
    clips = [(rng.standard_normal(n).astype(np.float32) * 0.1, 16000) for n in (3000, 9000)]
    np.testing.assert_allclose(enc.encode(clips), back.encode(clips), atol=1e-6)


def test_from_checkpoint_loads_encoder_weights(tmp_path):
    torch.manual_seed(5)
    cfg = transformers.WhisperConfig(**tiny_config())
    full = transformers.WhisperForConditionalGeneration(cfg)
    full.save_pretrained(tmp_path / "hf")
    bb = WhisperBackbone.from_checkpoint(tmp_path / "hf", dropout=0.1)
    assert bb.encoder.config.dropout == 0.1
    for key, value in full.model.encoder.state_dict().items():
        torch.testing.assert_close(bb.encoder.state_dict()[key], value)
    # a transformers Whisper directory also goes through build_encoder (model_type "whisper")
    enc = build_encoder(tmp_path / "hf", embed_dim=8)
    assert isinstance(enc.backbone, WhisperBackbone)
    with pytest.raises(ModelError, match="no config.json"):
        WhisperBackbone.from_checkpoint(tmp_path)
