"""SpeechRecognizer save/load/transcribe and train_asr on tiny data with the tiny preset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import speechx.asr.trainer as asr_trainer
from speechx.asr import (
    AsrConfig,
    CtcConfig,
    SpeechRecognizer,
    TextConfig,
    Vocabulary,
    load_asr_config,
    train_asr,
)
from speechx.asr.model import spec_augment
from speechx.distill.checkpoint import list_checkpoints
from speechx.distill.errors import ConfigError, TrainingError
from speechx.errors import ModelError
from speechx.models import build_encoder
from speechx.testing import make_kaldi_dir, make_sine
from tests.distill.distill_helpers import crash_after_checkpoint

TEXTS = ["ab ba", "Abba!", "baba ab"]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return make_kaldi_dir(tmp_path / "data", 3, seconds=(0.4, 0.3, 0.35), lang="nl", texts=TEXTS)


def _recognizer() -> SpeechRecognizer:
    torch.manual_seed(0)
    enc = build_encoder("tiny", 8)
    return SpeechRecognizer(enc, Vocabulary.build(TEXTS), CtcConfig(dropout=0.0))


def _cfg(train: Path, dev: Path | None, **over: object) -> AsrConfig:
    items = [
        f"data.train=[{train}]",
        f"data.dev=[{dev}]" if dev else "data.dev=[]",
        "model.source=tiny",
        "model.embed_dim=8",
        "data.max_batch_seconds=0.8",
        "optim.warmup_steps=0",
        "optim.lr_head=0.01",
        "optim.lr_backbone=0.001",
        "max_steps=4",
        "eval_every=2",
        "save_every=2",
        "log_every=1",
        "num_threads=1",
    ]
    items += [f"{k}={json.dumps(v)}" for k, v in over.items()]
    return load_asr_config(None, items)


def test_save_load_round_trip_keeps_logits_vocab_and_normalisation(tmp_path: Path) -> None:
    rec = _recognizer().eval()
    rec.vocab.text = TextConfig(digits="remove")
    wave = make_sine(0.3, 16000)
    x = torch.from_numpy(wave)[None]
    before = rec(x)["logits"]
    rec.save_pretrained(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} >= {
        "config.json",
        "model.safetensors",
        "vocab.json",
    }
    back = SpeechRecognizer.from_pretrained(tmp_path / "m")
    torch.testing.assert_close(back(x)["logits"], before)
    assert back.vocab == rec.vocab and back.vocab.text.digits == "remove"
    hyps = back.transcribe([(wave, 16000), (wave, 16000)], beam_size=3)
    assert hyps[0] == hyps[1] == back.transcribe([(wave, 16000)], beam_size=3)[0]
    with pytest.raises(ModelError, match="list"):
        back.transcribe((wave, 16000))


def test_an_encoder_dir_is_named_as_such(tmp_path: Path) -> None:
    build_encoder("tiny", 8).save_pretrained(tmp_path / "enc")
    with pytest.raises(ModelError, match="without a CTC head"):
        SpeechRecognizer.from_pretrained(tmp_path / "enc")


def test_spec_augment_masks_about_the_asked_fraction_and_leaves_padding() -> None:
    torch.manual_seed(0)
    frames = torch.ones(2, 200, 64)
    lengths = torch.tensor([200, 100])
    out = spec_augment(
        frames, lengths, time_prob=0.2, time_span=10, feature_prob=0.0, feature_span=8
    )
    masked = (out[0, :, 0] == 0).float().mean().item()
    assert 0.08 < masked < 0.3
    assert torch.all(out[1, 100:] == 1)
    out = spec_augment(
        frames, lengths, time_prob=0.0, time_span=10, feature_prob=0.25, feature_span=8
    )
    chans = (out[0, 0] == 0).float().mean().item()
    assert 0.05 < chans < 0.4
    assert torch.equal(out[0, 0] == 0, out[0, 150] == 0)  # the same channels in every frame


def test_train_asr_writes_a_recognizer_and_dev_wer(data_dir: Path, tmp_path: Path) -> None:
    res = train_asr(_cfg(data_dir, data_dir), tmp_path / "exp")
    assert res.best_metric == "dev_wer" and res.best_value is not None
    model = SpeechRecognizer.from_pretrained(res.model_dir)
    assert model.vocab == Vocabulary.build(TEXTS)
    lines = (tmp_path / "exp" / "log" / "metrics.jsonl").read_text().splitlines()
    dev = [json.loads(x) for x in lines if '"dev"' in x]
    assert dev and all(d["dev_wer"] >= 0.0 and d["dev_cer"] >= 0.0 for d in dev)
    train = [json.loads(x) for x in lines if '"train"' in x]
    assert all(np.isfinite(t["loss"]) for t in train)


def test_resume_continues_exactly(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    over = {"model.ctc.time_mask_prob": 0.2, "model.ctc.dropout": 0.1}
    straight = train_asr(_cfg(data_dir, None, **over), tmp_path / "a")
    # killed after its first checkpoint (save_every=2)
    crash_after_checkpoint(
        monkeypatch, 2, lambda: train_asr(_cfg(data_dir, None, **over), tmp_path / "b")
    )
    resumed = train_asr(_cfg(data_dir, None, **over), tmp_path / "b", resume=True)
    assert resumed.step == straight.step == 4
    a = SpeechRecognizer.from_pretrained(straight.model_dir).state_dict()
    b = SpeechRecognizer.from_pretrained(resumed.model_dir).state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)


def test_nan_loss_stops_with_step_and_batch_and_no_new_checkpoint(
    data_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    real = asr_trainer.ctc_loss
    calls = {"n": 0}

    def nan_on_third(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(asr_trainer, "ctc_loss", nan_on_third)
    cfg = _cfg(data_dir, None, max_steps=6, save_every=1, **{"data.max_batch_seconds": 10})
    with pytest.raises(
        TrainingError, match=r"step 3: non-finite loss .*batch \d+ of the epoch: data/spk"
    ):
        train_asr(cfg, tmp_path / "exp")
    steps = [s for s, _ in list_checkpoints(tmp_path / "exp" / "checkpoints")]
    assert steps == [1, 2]


def test_frozen_backbone_trains_on_cached_features(data_dir: Path, tmp_path: Path) -> None:
    cfg = _cfg(
        data_dir,
        data_dir,
        **{"model.overrides": {"freeze_backbone": True}, "model.ctc.feature_mask_prob": 0.1},
    )
    res = train_asr(cfg, tmp_path / "exp")
    assert list((tmp_path / "exp" / "features").glob("train-*/.done"))
    assert list((tmp_path / "exp" / "features").glob("dev-*/.done"))
    start = build_encoder("tiny", 8, freeze_backbone=True)
    torch.manual_seed(0)
    trained = SpeechRecognizer.from_pretrained(res.model_dir)
    # the backbone is untouched: only the CTC head learned
    got = trained.encoder.backbone.state_dict()
    assert set(got) == set(start.backbone.state_dict())
    assert res.best_value is not None


def test_a_distilled_encoder_dir_is_a_starting_point(data_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(3)
    enc = build_encoder("tiny", 8)
    enc.save_pretrained(tmp_path / "distilled")
    res = train_asr(
        _cfg(data_dir, None, **{"model.source": str(tmp_path / "distilled"), "max_steps": 1}),
        tmp_path / "exp",
    )
    rec = SpeechRecognizer.from_pretrained(res.model_dir)
    # pooling and projection (the embedding head) come through unchanged
    torch.testing.assert_close(
        rec.encoder.projection.state_dict(), enc.projection.state_dict(), check_dtype=False
    )
    emb = rec.encoder.encode([(make_sine(0.3, 16000), 16000)])
    assert emb.shape == (1, 8)


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model.ctc.bogus"):
        load_asr_config(None, ["data.train=[x]", "max_steps=1", "model.ctc.bogus=1"])
    with pytest.raises(ConfigError, match="time_mask_prob"):
        load_asr_config(None, ["data.train=[x]", "max_steps=1", "model.ctc.time_mask_prob=1.5"])


def test_adapter_head_round_trips_and_ignores_padding(tmp_path: Path) -> None:
    torch.manual_seed(0)
    ctc = CtcConfig(dropout=0.0, adapter_layers=2, adapter_dim=16, adapter_heads=2, adapter_ff=32)
    rec = SpeechRecognizer(build_encoder("tiny", 8), Vocabulary.build(TEXTS), ctc).eval()
    assert rec.ctc_head.in_features == 16
    assert {id(p) for p in rec.parameter_groups()["head"]} >= {
        id(p) for p in rec.ctc_adapter.parameters()
    }
    short, long = make_sine(0.3, 16000), make_sine(0.5, 16000, freq=330.0)
    alone = rec(torch.from_numpy(short)[None])["logits"][0]
    batch = torch.zeros(2, len(long))
    batch[0, : len(short)] = torch.from_numpy(short)
    batch[1] = torch.from_numpy(long)
    out = rec(batch, torch.tensor([len(short), len(long)]))
    n = int(out["frame_lengths"][0])
    # the padded frames of the short utterance do not leak into its real frames
    torch.testing.assert_close(out["logits"][0, :n], alone[:n], atol=1e-4, rtol=1e-4)
    rec.save_pretrained(tmp_path / "m")
    back = SpeechRecognizer.from_pretrained(tmp_path / "m")
    assert back.ctc.adapter_layers == 2
    torch.testing.assert_close(back(torch.from_numpy(short)[None])["logits"][0], alone)


def test_adapter_settings_are_checked() -> None:
    with pytest.raises(ModelError, match="adapter_heads"):
        CtcConfig(adapter_layers=1, adapter_dim=10, adapter_heads=3).validate()
    with pytest.raises(ModelError, match="adapter_layers"):
        CtcConfig(adapter_layers=-1).validate()


def test_continuing_a_recognizer_with_another_adapter_is_refused(
    data_dir: Path, tmp_path: Path
) -> None:
    res = train_asr(_cfg(data_dir, None, max_steps=1), tmp_path / "exp")
    cfg = _cfg(
        data_dir,
        None,
        **{"model.source": str(res.model_dir), "max_steps": 1, "model.ctc.adapter_layers": 1},
    )
    with pytest.raises(ModelError, match="adapter_layers=0.*adapter_layers=1"):
        asr_trainer.build_recognizer(cfg)
    # the same head shape continues, adapter weights and all
    again = asr_trainer.build_recognizer(
        _cfg(data_dir, None, **{"model.source": str(res.model_dir)})
    )
    loaded = SpeechRecognizer.from_pretrained(res.model_dir)
    torch.testing.assert_close(again.ctc_head.state_dict(), loaded.ctc_head.state_dict())


def test_an_asr_dir_loads_as_its_encoder_and_warm_starts_distillation(
    data_dir: Path, tmp_path: Path
) -> None:
    from speechx.distill import train_distill
    from speechx.models import SpeechEncoder
    from tests.distill.distill_helpers import DIM, orthogonal, tiny_config, write_fake_teacher

    res = train_asr(_cfg(data_dir, None, max_steps=2), tmp_path / "asr")
    rec = SpeechRecognizer.from_pretrained(res.model_dir)
    enc = SpeechEncoder.from_pretrained(res.model_dir)  # the encoder half, no CTC head
    assert not any(k.startswith("ctc") for k in enc.state_dict())
    torch.testing.assert_close(enc.state_dict(), rec.encoder.state_dict())
    wav = (make_sine(0.3, 16000), 16000)
    np.testing.assert_array_equal(enc.encode([wav]), rec.encoder.encode([wav]))

    write_fake_teacher(data_dir, {"text": orthogonal(3, DIM, 0)})
    cfg = tiny_config([data_dir], max_steps=1)
    cfg.model.source = str(res.model_dir)
    cfg.optim.lr_backbone = cfg.optim.lr_head = 0.0
    out = train_distill(cfg, tmp_path / "distill")
    student = SpeechEncoder.from_pretrained(out.model_dir)
    # with zero learning rates the student is exactly the ASR model's encoder
    torch.testing.assert_close(student.state_dict(), enc.state_dict())
