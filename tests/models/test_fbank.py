"""The log-mel + conv2d-subsampling wav2vec2 variant (speechx.models.fbank) and its presets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from transformers.models.wav2vec2.modeling_wav2vec2 import (
    _compute_mask_indices,
    _sample_negative_indices,
)

from speechx.asr import CtcConfig, SpeechRecognizer, Vocabulary, load_asr_config, train_asr
from speechx.asr.trainer import ctc_loss
from speechx.distill import load_config
from speechx.errors import AudioError, ModelError
from speechx.models import PRESETS, SpeechEncoder, build_encoder
from speechx.models.encoder import POOLING_INPUT
from speechx.models.fbank import (
    HOP_SAMPLES,
    MIN_SAMPLES,
    N_FFT,
    WINDOW_SAMPLES,
    FbankFrontEnd,
    Wav2Vec2FbankBackbone,
    Wav2Vec2FbankConfig,
    Wav2Vec2FbankForPreTraining,
    Wav2Vec2FbankModel,
    fbank_config,
    fbank_frames,
    output_frames,
    pretraining_model,
)
from speechx.testing import make_kaldi_dir

TINY = PRESETS["w2v2-fbank-tiny"][1]
CONF = Path(__file__).resolve().parents[2] / "egs" / "fillets" / "conf"


def _tiny_config(**extra: object) -> Wav2Vec2FbankConfig:
    return fbank_config({**TINY, **extra})


def _waves(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded noise-plus-tone batch ``[B, max(lengths)]`` and its lengths."""
    rng = np.random.default_rng(seed)
    batch = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        t = np.arange(n) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.05 * rng.standard_normal(n)
        batch[i, :n] = torch.from_numpy(wave.astype(np.float32))
    return batch, torch.tensor(lengths)


def _encoder(**fields: object) -> SpeechEncoder:
    torch.manual_seed(0)
    return build_encoder("w2v2-fbank-tiny", embed_dim=8, **fields)


# -- frame counts --------------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [2, 4])
def test_frame_counts_follow_the_formula_for_many_lengths(factor: int) -> None:
    cfg = _tiny_config(fbank_subsampling=factor)
    front = FbankFrontEnd(cfg).eval()
    model = Wav2Vec2FbankModel(cfg)
    stock = transformers.Wav2Vec2Model._get_feat_extract_output_lengths  # from the conv lists
    rng = np.random.default_rng(factor)
    lengths = sorted({*range(1350, 1700, 7), *rng.integers(1700, 24000, 40).tolist()})
    for n in lengths:
        mel = (n - WINDOW_SAMPLES) // HOP_SAMPLES + 1
        first = (mel - 3) // 2 + 1
        want = (first - 3) // (factor // 2) + 1 if first >= 3 else 0
        if n < MIN_SAMPLES:
            assert want <= 0 and int(output_frames(n, factor)) == 0
            with pytest.raises(ModelError, match="shorter than the 1360"):
                front(torch.zeros(1, n))
            continue
        got = front(torch.zeros(1, n)).shape[-1]
        assert got == want == int(output_frames(n, factor)), n
        assert int(model._get_feat_extract_output_lengths(torch.tensor(n))) == got
        assert int(stock(model, torch.tensor(n))) == got  # conv_dim/kernel/stride agree
        assert front.log_mel(torch.zeros(1, n)).shape[1] == mel == int(fbank_frames(n))
    assert int(output_frames(MIN_SAMPLES, factor)) == 1
    assert int(output_frames(MIN_SAMPLES - 1, factor)) == 0
    assert int(output_frames(300, factor)) == 0  # below one window: clamped, not negative
    assert cfg.inputs_to_logits_ratio == HOP_SAMPLES * factor


def test_log_mel_equals_a_direct_kaldi_style_computation() -> None:
    cfg = _tiny_config()
    front = FbankFrontEnd(cfg)
    wave, _ = _waves([5000])
    got = front.log_mel(wave)[0].numpy()
    x = wave[0].numpy().astype(np.float64)
    n = (len(x) - WINDOW_SAMPLES) // HOP_SAMPLES + 1
    frames = np.stack([x[t * HOP_SAMPLES : t * HOP_SAMPLES + WINDOW_SAMPLES] for t in range(n)])
    power = np.abs(np.fft.rfft(frames * np.hanning(WINDOW_SAMPLES + 1)[:-1], n=N_FFT)) ** 2
    mel = transformers.audio_utils.mel_filter_bank(
        num_frequency_bins=N_FFT // 2 + 1,
        num_mel_filters=80,
        min_frequency=20.0,
        max_frequency=8000.0,
        sampling_rate=16000,
        mel_scale="kaldi",
        triangularize_in_mel_space=True,
    )
    logmel = np.log(np.maximum(power @ mel, cfg.fbank_log_floor))
    want = (logmel - logmel.mean(0)) / np.sqrt(logmel.var(0) + 1e-5)
    assert got.shape == (n, 80)
    np.testing.assert_allclose(got, want, atol=2e-3)
    np.testing.assert_allclose(got.mean(0), 0.0, atol=1e-4)


# -- padding ------------------------------------------------------------------------------------


def test_front_end_ignores_padding_content_and_gives_zero_padding_frames() -> None:
    front = FbankFrontEnd(_tiny_config()).eval()
    wave, lengths = _waves([9000, 4000, 2500])
    garbage = wave.clone()
    garbage[1, 4000:] = 5.0
    garbage[2, 2500:] = torch.randn(garbage.shape[1] - 2500)
    a, b = front(wave, lengths), front(garbage, lengths)
    for i, n in enumerate(lengths.tolist()):
        real = int(output_frames(n, 4))
        alone = front(wave[i : i + 1, :n])
        torch.testing.assert_close(a[i, :, :real], alone[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(b[i, :, :real], alone[0], atol=1e-5, rtol=1e-5)
        assert torch.all(a[i, :, real:] == 0)


@pytest.mark.parametrize("pooling", ["mean", "attention", "mha"])
def test_a_padded_batch_embeds_each_utterance_as_alone(pooling: str) -> None:
    enc = _encoder(pooling=pooling).eval()
    wave, lengths = _waves([16000, 7000, 3100, 1400])
    with torch.no_grad():
        out = enc(wave, lengths)
        assert out["frame_lengths"].tolist() == [int(output_frames(n, 4)) for n in lengths]
        for i, n in enumerate(lengths.tolist()):
            alone = enc(wave[i : i + 1, :n])
            torch.testing.assert_close(
                out["embeddings"][i], alone["embeddings"][0], atol=1e-5, rtol=1e-4
            )
            real = int(out["frame_lengths"][i])
            torch.testing.assert_close(
                out["hidden"][i, :real], alone["hidden"][0], atol=1e-4, rtol=1e-4
            )


def test_reduced_attention_mask_and_time_masking_stay_inside_real_frames() -> None:
    model = Wav2Vec2FbankModel(_tiny_config(mask_time_prob=0.5, mask_time_length=2))
    wave, lengths = _waves([12000, 3000])
    sample_mask = (torch.arange(wave.shape[1])[None, :] < lengths[:, None]).long()
    width = model.feature_extractor(wave).shape[-1]
    frame_mask = model._get_feature_vector_attention_mask(width, sample_mask)
    assert frame_mask.sum(-1).tolist() == [int(output_frames(n, 4)) for n in lengths]
    spans = _compute_mask_indices((2, width), 0.5, 2, attention_mask=frame_mask.long())
    assert spans[1, int(output_frames(3000, 4)) :].sum() == 0 and spans[0].sum() > 0
    # SpecAugment in training: the masked frames get masked_spec_embed, so outputs change
    model.train()
    torch.manual_seed(1)
    masked = model(wave, attention_mask=sample_mask).last_hidden_state
    model.config.mask_time_prob = 0.0
    plain = model(wave, attention_mask=sample_mask).last_hidden_state
    assert torch.isfinite(masked).all() and not torch.allclose(masked, plain)


# -- persistence, presets, config ---------------------------------------------------------------


def test_save_load_round_trip_is_exact(tmp_path: Path) -> None:
    enc = _encoder(pooling="attention").eval()
    wave, lengths = _waves([8000, 5000])
    before = enc(wave, lengths)["embeddings"]
    enc.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["backbone"] == "wav2vec2-fbank"
    bcfg = saved["backbone_config"]
    assert bcfg["model_type"] == "wav2vec2-fbank" and bcfg["fbank_subsampling"] == 4
    assert bcfg["conv_stride"] == [160, 2, 2] and bcfg["conv_dim"] == [80, 4, 4 * 19]
    back = SpeechEncoder.from_pretrained(tmp_path / "m")
    assert isinstance(back.backbone, Wav2Vec2FbankBackbone)
    assert back.config == enc.config
    torch.testing.assert_close(back(wave, lengths)["embeddings"], before, rtol=0, atol=0)


def test_small_preset_size_rate_and_masks() -> None:
    enc = build_encoder("w2v2-fbank-small", embed_dim=512)
    assert 3_000_000 < sum(p.numel() for p in enc.parameters()) < 4_500_000
    front = sum(p.numel() for p in enc.backbone.feature_encoder_parameters())
    assert front < 50_000  # the two 3x3 convolutions
    assert int(enc.backbone.output_lengths(torch.tensor(16000 * 3))) == 73  # 25 frames/s
    assert enc.backbone.uses_attention_mask and enc.min_input_samples == MIN_SAMPLES == 1360
    assert enc.backbone.hidden_size == 256 and enc.backbone.num_layers == 4
    assert enc.backbone.model.config.conv_dim[-1] == 64 * 19


def test_factor_two_and_too_short_inputs() -> None:
    enc = _encoder(backbone_config={"fbank_subsampling": 2}).eval()
    assert int(enc.backbone.output_lengths(torch.tensor(16000))) == 46  # 50 frames/s, edges
    assert enc.backbone.model.config.conv_stride == [160, 2, 1]
    with pytest.raises(AudioError, match="1360 samples"):
        enc.encode([(np.full(1000, 0.1, np.float32), 16000)])
    with pytest.raises(ModelError, match="fewer than the 1360"):
        enc(torch.zeros(1, 1359))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"fbank_subsampling": 3}, "fbank_subsampling must be one of"),
        ({"conv_stride": [160, 2, 1]}, r"conv_stride .* derived"),
        ({"num_mel_bins": 5}, "num_mel_bins must be >= 7"),
        ({"fbank_log_floor": 0.0}, "fbank_log_floor must be positive"),
        ({"model_type": "wav2vec2"}, "model_type 'wav2vec2'"),
    ],
)
def test_bad_configs_are_one_line_model_errors(override: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        build_encoder("w2v2-fbank-tiny", embed_dim=8, backbone_config=override)


def test_cache_point_and_frozen_front_end() -> None:
    enc = _encoder(freeze_feature_encoder=True)
    assert enc.cache_point is None  # a frozen front end alone is not cached
    assert not any(p.requires_grad for p in enc.backbone.model.feature_extractor.parameters())
    enc = _encoder(freeze_backbone=True)
    assert enc.cache_point == POOLING_INPUT
    wave, lengths = _waves([6000, 2000])
    feats, frames = enc.frozen_features(wave, lengths)
    enc.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            enc(features=feats, frame_lengths=frames)["embeddings"],
            enc(wave, lengths)["embeddings"],
        )


# -- heads: CTC, pretraining ---------------------------------------------------------------------


def test_ctc_recognizer_trains_its_front_end_and_round_trips(tmp_path: Path) -> None:
    texts = ["ab ba", "abba"]
    rec = SpeechRecognizer(_encoder(), Vocabulary.build(texts), CtcConfig(dropout=0.0))
    wave, lengths = _waves([12000, 9000])
    out = rec(wave, lengths)
    labels = torch.zeros(2, 5, dtype=torch.long)
    ids = [rec.vocab.encode(t) for t in texts]
    for i, seq in enumerate(ids):
        labels[i, : len(seq)] = torch.tensor(seq)
    loss = ctc_loss(
        out["logits"], out["frame_lengths"], labels, torch.tensor([len(s) for s in ids])
    )
    loss.backward()
    assert torch.isfinite(loss)
    assert rec.encoder.backbone.model.feature_extractor.conv1.weight.grad.abs().sum() > 0
    rec.eval()
    rec.save_pretrained(tmp_path / "asr")
    back = SpeechRecognizer.from_pretrained(tmp_path / "asr")
    with torch.no_grad():
        torch.testing.assert_close(back(wave, lengths)["logits"], rec(wave, lengths)["logits"])
    hyps = back.transcribe([(wave[0, :12000].numpy(), 16000)])
    assert len(hyps) == 1 and isinstance(hyps[0], str)


def _pretraining_config() -> Wav2Vec2FbankConfig:
    return _tiny_config(
        num_codevector_groups=2,
        num_codevectors_per_group=8,
        codevector_dim=8,
        proj_codevector_dim=8,
        num_negatives=4,
        mask_time_prob=0.3,
        mask_time_length=2,
    )


def _pretraining_batch(model: Wav2Vec2FbankForPreTraining) -> dict[str, torch.Tensor]:
    wave, lengths = _waves([20000, 14000])
    sample_mask = (torch.arange(wave.shape[1])[None, :] < lengths[:, None]).long()
    frames = int(model._get_feat_extract_output_lengths(torch.tensor(wave.shape[1])))
    real = model._get_feat_extract_output_lengths(lengths)
    frame_mask = (torch.arange(frames)[None, :] < real[:, None]).long()
    mask = _compute_mask_indices((2, frames), 0.3, 2, attention_mask=frame_mask, min_masks=2)
    neg = _sample_negative_indices((2, frames), 4, mask_time_indices=mask)
    return {
        "input_values": wave,
        "attention_mask": sample_mask,
        "mask_time_indices": torch.tensor(mask),
        "sampled_negative_indices": torch.tensor(neg),
    }


def test_pretraining_forward_gives_finite_losses_and_front_end_gradients() -> None:
    torch.manual_seed(0)
    model = pretraining_model(_pretraining_config()).train()
    assert isinstance(model, transformers.Wav2Vec2ForPreTraining)
    assert isinstance(model.wav2vec2, Wav2Vec2FbankModel)
    assert model.quantizer.weight_proj.in_features == model.config.conv_dim[-1]
    out = model(**_pretraining_batch(model))
    for loss in (out.loss, out.contrastive_loss, out.diversity_loss):
        assert loss is not None and torch.isfinite(loss)
    out.loss.backward()
    assert model.wav2vec2.feature_extractor.conv2.weight.grad.abs().sum() > 0
    model.zero_grad()
    model.freeze_feature_encoder()
    model(**_pretraining_batch(model)).loss.backward()
    assert all(p.grad is None for p in model.wav2vec2.feature_extractor.parameters())


def test_a_pretrained_checkpoint_loads_as_an_encoder_backbone(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = pretraining_model(_pretraining_config())
    model.save_pretrained(tmp_path / "pre")
    again = transformers.AutoModelForPreTraining.from_pretrained(tmp_path / "pre")
    assert isinstance(again, Wav2Vec2FbankForPreTraining)
    model.wav2vec2.save_pretrained(tmp_path / "w2v")
    enc = build_encoder(str(tmp_path / "w2v"), embed_dim=8)
    assert enc.backbone.name == "wav2vec2-fbank" and enc.config.freeze_feature_encoder
    ours = enc.backbone.model.state_dict()
    for name, tensor in model.wav2vec2.state_dict().items():
        torch.testing.assert_close(ours[name], tensor, rtol=0, atol=0)
        torch.testing.assert_close(again.wav2vec2.state_dict()[name], tensor, rtol=0, atol=0)


def test_train_asr_runs_on_the_fbank_preset(tmp_path: Path) -> None:
    texts = ["ab ba", "abba", "baba ab"]
    data = make_kaldi_dir(tmp_path / "data", 3, seconds=(0.6, 0.5, 0.55), lang="nl", texts=texts)
    items = [
        f"data.train=[{data}]",
        f"data.dev=[{data}]",
        "model.source=w2v2-fbank-tiny",
        "model.embed_dim=8",
        "data.max_batch_seconds=1.2",
        "optim.warmup_steps=0",
        "max_steps=2",
        "eval_every=2",
        "save_every=2",
        "log_every=1",
        "num_threads=1",
    ]
    res = train_asr(load_asr_config(None, items), tmp_path / "exp")
    assert res.best_value is not None
    rec = SpeechRecognizer.from_pretrained(tmp_path / "exp" / "model")
    assert rec.encoder.config.backbone == "wav2vec2-fbank"
    assert rec.encoder.backbone.model.config.fbank_subsampling == 4


def test_scratch_fbank_config_is_scratch_yaml_on_the_fbank_preset() -> None:
    cfg = load_config(CONF / "scratch_fbank.yaml")
    base = load_config(CONF / "scratch.yaml")
    assert cfg.model.source == "w2v2-fbank-small" and cfg.model.source in PRESETS
    assert cfg.model.overrides == base.model.overrides
    assert cfg.data == base.data and cfg.optim == base.optim and cfg.loss == base.loss
    assert cfg.max_steps == base.max_steps
