"""End-to-end tests of train_distill on the tiny preset and tiny data dirs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from distill_helpers import (
    DIM,
    MakeData,
    crash_after_checkpoint,
    orthogonal,
    tiny_config,
    write_fake_teacher,
)

from speechx.distill.checkpoint import list_checkpoints, load_checkpoint
from speechx.distill.errors import TrainingError
from speechx.distill.trainer import lr_factor, train_distill
from speechx.models import SpeechEncoder
from speechx.testing import make_kaldi_dir


def _resume_config(train: list[Path], dev: list[Path]):  # noqa: ANN202
    return tiny_config(
        train,
        dev,
        max_steps=6,
        save_every=3,
        eval_every=3,
        keep_last_n=5,
        num_threads=1,
        **{
            "data.max_batch_seconds": 0.8,  # two 0.4 s clips per batch
            "data.lang_alpha": 0.5,
            "optim.grad_accum": 2,
            "optim.warmup_steps": 2,
            "optim.schedule": "cosine",
            "loss.weights": {"cosine": 1.0, "infonce": 0.5},
            # randomness that an exact resume must reproduce: dropout and time masking
            "model.overrides": {
                "projection_dropout": 0.2,
                "backbone_config": {
                    "hidden_dropout": 0.1,
                    "mask_time_prob": 0.3,
                    "mask_time_length": 4,
                },
            },
        },
    )


def test_resume_continues_exactly(make_data: MakeData, tmp_path: Path, monkeypatch) -> None:
    a = make_data("a", 4, lang="nl")
    b = make_data("b", 2, lang="de", seed=1)
    cfg = _resume_config([a, b], [a])

    straight = train_distill(cfg, tmp_path / "straight")
    assert straight.step == 6

    crash_after_checkpoint(monkeypatch, 3, lambda: train_distill(cfg, tmp_path / "resumed"))
    assert [s for s, _ in list_checkpoints(tmp_path / "resumed" / "checkpoints")] == [3]
    state3 = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "ckpt-3.pt")
    assert state3["position"]["chunk"] not in (0,), "the crash should fall mid-epoch"

    with pytest.raises(TrainingError, match="resume=True"):
        train_distill(cfg, tmp_path / "resumed")
    resumed = train_distill(cfg, tmp_path / "resumed", resume=True)
    assert resumed.step == 6

    s1 = load_checkpoint(tmp_path / "straight" / "checkpoints" / "ckpt-6.pt")
    s2 = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "ckpt-6.pt")
    assert s1["model"].keys() == s2["model"].keys()
    for k in s1["model"]:
        assert torch.equal(s1["model"][k], s2["model"][k]), k
    assert s1["position"] == s2["position"]
    # and training did move the weights
    s0 = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "ckpt-3.pt")
    assert any(not torch.equal(s0["model"][k], s1["model"][k]) for k in s1["model"])

    # train losses logged after the resume point are identical too
    def losses(exp: Path) -> dict[int, float]:
        recs = [json.loads(x) for x in (exp / "log" / "metrics.jsonl").read_text().splitlines()]
        return {r["step"]: r["loss"] for r in recs if r["split"] == "train"}

    assert losses(tmp_path / "straight") == losses(tmp_path / "resumed")


def test_outputs_of_a_run(make_data: MakeData, tmp_path: Path) -> None:
    d = make_data("a", 3)
    cfg = tiny_config([d], [d], max_steps=3, eval_every=2, save_every=1, keep_last_n=2)
    exp = tmp_path / "exp"
    res = train_distill(cfg, exp)
    assert yaml.safe_load((exp / "config.yaml").read_text())["max_steps"] == 3
    env = json.loads((exp / "env.json").read_text())
    assert env["packages"]["torch"] and "sha" in env["git"] and env["torch_num_threads"] >= 1
    assert "step 3" in (exp / "log" / "train.log").read_text()
    assert (exp / "log" / "curves.png").stat().st_size > 1000
    assert [s for s, _ in list_checkpoints(exp / "checkpoints")] == [2, 3]
    recs = [json.loads(x) for x in (exp / "log" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if r["split"] == "dev"] == [2, 3]
    assert res.best_metric == "dev_recall@1" and res.best_step in (2, 3)
    model = SpeechEncoder.from_pretrained(res.model_dir)
    assert model.embed_dim == DIM
    emb = model.encode([(np.zeros(4000, dtype=np.float32) + 0.1, 16000)])
    assert emb.shape == (1, DIM)
    assert not list(exp.glob(".model*")), "temporary model dirs are cleaned up"


def test_without_dev_saves_final_model_and_starts_from_model_dir(
    make_data: MakeData, tmp_path: Path
) -> None:
    d = make_data("a", 3)
    res = train_distill(tiny_config([d], max_steps=2), tmp_path / "one")
    assert res.best_value is None and (res.model_dir / "model.safetensors").is_file()
    # a speechx model dir as the source: training continues from its weights
    cfg = tiny_config([d], max_steps=1, **{"model.source": str(res.model_dir)})
    res2 = train_distill(cfg, tmp_path / "two")
    assert res2.step == 1


def test_dimension_mismatch_is_reported(make_data: MakeData, tmp_path: Path) -> None:
    d = make_data("a", 3)
    cfg = tiny_config([d], max_steps=1, **{"model.embed_dim": DIM + 1})
    with pytest.raises(TrainingError, match="dimensional"):
        train_distill(cfg, tmp_path / "exp")


def test_lr_schedule_shapes() -> None:
    kw = {"warmup_steps": 4, "total_steps": 14}
    assert [lr_factor(s, schedule="linear", **kw) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(9, schedule="linear", **kw) == pytest.approx(0.5)
    assert lr_factor(9, schedule="cosine", **kw) == pytest.approx(0.5)
    assert lr_factor(6, schedule="cosine", **kw) > lr_factor(6, schedule="linear", **kw)
    assert lr_factor(14, schedule="linear", **kw) == 0.0
    assert lr_factor(13, schedule="constant", **kw) == 1.0


def test_training_learns_distinct_tones(tmp_path: Path) -> None:
    n = 8
    texts = [f"tone number {i}" for i in range(n)]
    d = make_kaldi_dir(tmp_path / "tones", n=n, seconds=0.25, texts=texts)
    write_fake_teacher(d, {"text": orthogonal(n, DIM, 7)})
    cfg = tiny_config(
        [d],
        [d],
        max_steps=40,
        eval_every=40,
        save_every=40,
        log_every=5,
        num_threads=1,
        **{
            "data.max_batch_seconds": 4.0,
            "optim.lr_head": 3e-2,
            "optim.lr_backbone": 3e-3,
            "optim.warmup_steps": 3,
            "optim.schedule": "constant",
            "loss.weights": {"cosine": 1.0, "infonce": 0.2},
            "loss.temperature": 0.1,
        },
    )
    res = train_distill(cfg, tmp_path / "exp")
    recs = [json.loads(x) for x in (tmp_path / "exp/log/metrics.jsonl").read_text().splitlines()]
    cos = [r["cosine"] for r in recs if r["split"] == "train"]
    assert cos[-1] < 0.3 * cos[0], cos
    assert res.dev_metrics["dev_recall@1"] == 1.0, res.dev_metrics
