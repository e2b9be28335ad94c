"""``speechx pretrain`` on the shared loop: outputs, exact resume, the ccc switch, config errors,
and the warm start of ``speechx distill`` and ``speechx train-asr`` from its model dir."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from pretrain_helpers import make_audio_dir, speechlike, tiny_yaml

import speechx.distill.trainer as trainer_mod
from speechx.cli import main
from speechx.distill.checkpoint import list_checkpoints, load_checkpoint
from speechx.distill.errors import ConfigError, TrainingError
from speechx.errors import ModelError
from speechx.models import build_encoder
from speechx.models.presets import PRESETS
from speechx.pretrain import build_pretraining_model, load_pretrain_config, train_pretrain
from speechx.pretrain.model import HEADS_NAME
from speechx.pretrain.trainer import sample_batch_task
from tests.distill.distill_helpers import crash_after_checkpoint, orthogonal, write_fake_teacher


def _conf(tmp_path: Path, text: str, name: str = "pt.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _records(exp: Path) -> list[dict]:
    lines = (exp / "log" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines]


def test_cli_run_writes_a_warm_start_dir_and_logs_the_objective(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = make_audio_dir(tmp_path / "train", 6)
    dev = make_audio_dir(tmp_path / "dev", 3, seed=1)
    conf = _conf(tmp_path, tiny_yaml(train, dev, steps=4, every=2))
    exp = tmp_path / "exp"
    assert main(["pretrain", "--config", str(conf), "--exp-dir", str(exp)]) == 0
    assert capsys.readouterr().out.strip().endswith(str(exp / "model"))

    model = exp / "model"
    assert {p.name for p in model.iterdir()} >= {
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        HEADS_NAME,
        "pretraining.json",
    }
    hf = json.loads((model / "config.json").read_text())
    assert hf["model_type"] == "wav2vec2" and hf["num_codevectors_per_group"] == 8
    assert hf["mask_time_prob"] == PRESETS["tiny"][1]["mask_time_prob"]  # fine-tuning setting kept
    pre = json.loads((model / "preprocessor_config.json").read_text())
    assert pre["sampling_rate"] == 16000 and pre["do_normalize"] is True

    recs = _records(exp)
    train_recs = [r for r in recs if r["split"] == "train"]
    dev_recs = [r for r in recs if r["split"] == "dev"]
    assert [r["step"] for r in train_recs] == [1, 2, 3, 4] and [r["step"] for r in dev_recs] == [
        2,
        4,
    ]
    for key in ("loss", "contrastive", "diversity", "accuracy", "code_perplexity"):
        assert all(np.isfinite(r[key]) for r in train_recs), key
    # the Gumbel temperature anneals with the step: max(2 * 0.9^step, 0.5)
    temps = [r["gumbel_temperature"] for r in train_recs]
    np.testing.assert_allclose(temps, [2.0 * 0.9**s for s in range(4)])
    for key in ("dev_contrastive_loss", "dev_accuracy", "dev_code_perplexity", "dev_loss"):
        assert np.isfinite(dev_recs[-1][key]), key
    log = (exp / "log" / "train.log").read_text()
    assert "contrastive" in log and "code_perplexity" in log and "quantiser 2x8" in log

    # the best checkpoint by dev contrastive loss is the model dir
    best = min(dev_recs, key=lambda r: r["dev_contrastive_loss"])
    ckpt = load_checkpoint(exp / "checkpoints" / f"ckpt-{best['step']}.pt")
    saved = safetensors.torch.load_file(str(model / "model.safetensors"))
    for k, v in saved.items():
        assert torch.equal(ckpt["model"][f"backbone.model.{k}"], v), k


def test_resume_continues_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train = make_audio_dir(tmp_path / "train", 6)
    cfg = load_pretrain_config(
        _conf(tmp_path, tiny_yaml(train, steps=6, every=1, batch=1.0)), ["ccc.enabled=true"]
    )
    straight = train_pretrain(cfg, tmp_path / "straight")
    assert straight.step == 6

    crash_after_checkpoint(monkeypatch, 3, lambda: train_pretrain(cfg, tmp_path / "resumed"))
    at3 = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "ckpt-3.pt")
    assert at3["position"]["chunk"] == 3, "the crash falls mid-epoch"
    with pytest.raises(TrainingError, match="resume=True"):
        train_pretrain(cfg, tmp_path / "resumed")
    assert train_pretrain(cfg, tmp_path / "resumed", resume=True).step == 6

    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "ckpt-6.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "ckpt-6.pt")
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert not torch.equal(
        at3["model"]["quantizer.codevectors"], a["model"]["quantizer.codevectors"]
    )

    def losses(exp: Path) -> dict[int, tuple[float, float]]:
        return {r["step"]: (r["loss"], r["cross"]) for r in _records(exp) if r["split"] == "train"}

    assert losses(tmp_path / "straight") == losses(tmp_path / "resumed")


def test_ccc_switch_adds_cross_terms_and_cluster_scaling(tmp_path: Path) -> None:
    base = ["data.train=[unused]", "max_steps=1", "model.source=tiny", "loss.num_negatives=6"]
    base += ["masking.prob=0.2", "masking.length=4", "model.quantizer.vars=8"]
    base += ["model.quantizer.codevector_dim=8", "model.quantizer.proj_dim=8"]
    x = torch.from_numpy(np.stack([speechlike(0.5, i) for i in (1, 2, 3)]))
    lengths = torch.tensor([8000, 8000, 8000])

    def run(*extra: str) -> dict[str, torch.Tensor]:
        cfg = load_pretrain_config(None, [*base, *extra])
        torch.manual_seed(0)
        model = build_pretraining_model(cfg).eval()
        np.random.seed(0)
        mask, negs = sample_batch_task(model, lengths, 8000, cfg)
        args = [x, lengths, mask, negs[0]]
        if cfg.ccc.enabled:
            torch.manual_seed(1)
            args += [model.augment(x, lengths), negs[1]]
        torch.manual_seed(2)
        return model(*args)

    plain = run()
    ccc = run("ccc.enabled=true")
    unclustered = run("ccc.enabled=true", "ccc.cluster_scale=1.0")
    assert "cross" not in plain and {"cross", "cross_aug"} <= set(ccc)
    for out in (ccc, unclustered):
        assert torch.isfinite(out["loss"]) and float(out["cross"]) > 0
        total = (
            out["contrastive"] + 0.1 * out["diversity"] + 0.5 * (out["cross"] + out["cross_aug"])
        )
        torch.testing.assert_close(out["loss"].detach(), total)
    assert not torch.isclose(ccc["loss"], plain["loss"])
    # clustering scales same-cluster distractors: the terms change
    assert not torch.isclose(ccc["contrastive"], unclustered["contrastive"])
    assert torch.isclose(unclustered["contrastive"], plain["contrastive"])  # same task, unscaled


def _capture_step0(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, torch.Tensor]]:
    """Record the model weights when training starts (after setup, before the first step)."""
    seen: list[dict[str, torch.Tensor]] = []
    real_train = trainer_mod.TrainingLoop.train

    def train(self):  # noqa: ANN001, ANN202
        seen.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        return real_train(self)

    monkeypatch.setattr(trainer_mod.TrainingLoop, "train", train)
    return seen


def test_distill_and_train_asr_start_from_the_pretrained_backbone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = make_audio_dir(tmp_path / "train", 4)
    exp = tmp_path / "pt"
    conf = _conf(tmp_path, tiny_yaml(train, steps=2, every=2))
    assert main(["pretrain", "--config", str(conf), "--exp-dir", str(exp)]) == 0
    pretrained = safetensors.torch.load_file(str(exp / "model" / "model.safetensors"))
    seen = _capture_step0(monkeypatch)

    write_fake_teacher(train, {"text": orthogonal(4, 8, 0)}, teacher_id="fake")
    distill = _conf(
        tmp_path,
        f"data: {{train: [{train}], teacher_id: fake, max_batch_seconds: 2.0}}\n"
        f"model: {{source: {exp / 'model'}, overrides: {{freeze_feature_encoder: false}}}}\n"
        "max_steps: 1\nnum_threads: 1\n",
        "distill.yaml",
    )
    assert main(["distill", "--config", str(distill), "--exp-dir", str(tmp_path / "d")]) == 0
    asr = _conf(
        tmp_path,
        f"data: {{train: [{train}], max_batch_seconds: 2.0}}\n"
        f"model: {{source: {exp / 'model'}, embed_dim: 8}}\nmax_steps: 1\nnum_threads: 1\n",
        "asr.yaml",
    )
    assert main(["train-asr", "--config", str(asr), "--exp-dir", str(tmp_path / "a")]) == 0

    assert len(seen) == 2
    for state, prefix in zip(seen, ("backbone.model.", "encoder.backbone.model."), strict=True):
        for k, v in pretrained.items():
            assert torch.equal(state[prefix + k], v), (prefix, k)
    # ... and not by accident: a fresh tiny backbone differs
    fresh = build_encoder("tiny", 8).backbone.model.state_dict()
    assert any(not torch.equal(fresh[k], v) for k, v in pretrained.items())


def test_continued_pretraining_loads_the_heads(tmp_path: Path) -> None:
    train = make_audio_dir(tmp_path / "train", 4)
    conf = _conf(tmp_path, tiny_yaml(train, steps=1, every=1))
    first = train_pretrain(load_pretrain_config(conf), tmp_path / "one")
    cfg = load_pretrain_config(conf, [f"model.source={first.model_dir}"])
    model = build_pretraining_model(cfg)
    heads = safetensors.torch.load_file(str(first.model_dir / HEADS_NAME))
    assert heads.keys() == model.head_state().keys()
    for k, v in heads.items():
        assert torch.equal(model.head_state()[k], v), k
    bad = load_pretrain_config(conf, [f"model.source={first.model_dir}", "model.quantizer.vars=9"])
    with pytest.raises(ModelError, match=r"pretraining_heads.safetensors: .*model.quantizer"):
        build_pretraining_model(bad)


@pytest.mark.skipif("w2v2-fbank-tiny" not in PRESETS, reason="needs speechx.models.fbank")
def test_fbank_backbone_pretrains_and_warm_starts(tmp_path: Path) -> None:
    train = make_audio_dir(tmp_path / "train", 4)
    conf = _conf(tmp_path, tiny_yaml(train, source="w2v2-fbank-tiny", steps=2, every=2, length=2))
    result = train_pretrain(load_pretrain_config(conf, ["ccc.enabled=true"]), tmp_path / "exp")
    recs = [r for r in _records(tmp_path / "exp") if r["split"] == "train"]
    assert all(np.isfinite(r["loss"]) for r in recs)
    assert json.loads((result.model_dir / "config.json").read_text())["model_type"] == (
        "wav2vec2-fbank"
    )
    enc = build_encoder(result.model_dir, 8)
    assert enc.config.backbone == "wav2vec2-fbank"
    saved = safetensors.torch.load_file(str(result.model_dir / "model.safetensors"))
    mine = enc.backbone.model.state_dict()
    assert saved.keys() == mine.keys()
    for k, v in saved.items():
        assert torch.equal(mine[k], v), k


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("masking.prob=0", "masking.prob must be in"),
        ("masking.length=0", "masking.length must be >= 1"),
        ("model.quantizer.codevector_dim=9", "codevector_dim (9) must be divisible"),
        ("loss.num_negatives=0", "loss.num_negatives must be >= 1"),
        ("loss.temperature=0", "loss.temperature must be > 0"),
        ("gumbel.min_temperature=3", "gumbel: need 0 < min_temperature <= max_temperature"),
        ("ccc.num_clusters=1", "ccc.num_clusters must be 0"),
        ("ccc.rt60=[0.5,0.1]", "ccc.rt60 must be [low, high]"),
        ("ccc.noise_prob=2", "ccc.noise_prob must be in"),
        ("masking.colour=red", "unknown config key 'masking.colour'"),
        ("eval.primary_metric=wer", "eval.primary_metric: 'wer' is not one of"),
    ],
)
def test_config_errors_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_pretrain_config(None, ["data.train=[d]", "max_steps=1", override])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_no_training_data_and_short_audio_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data.train: no training data dir"):
        load_pretrain_config(None, ["max_steps=1"])
    short = make_audio_dir(tmp_path / "short", 2, seconds=0.01)
    cfg = load_pretrain_config(_conf(tmp_path, tiny_yaml(short, steps=1)))
    with pytest.raises(TrainingError, match=r"short: no usable utterance for train"):
        train_pretrain(cfg, tmp_path / "exp")
    assert not list_checkpoints(tmp_path / "exp" / "checkpoints")
