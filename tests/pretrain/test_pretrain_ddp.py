"""DDP: ``torchrun --nproc_per_node=2`` runs ``speechx pretrain`` unchanged (gloo on the CPU).

Unlike distillation and CTC (``tests/distill/test_distill_ddp.py``), a 2-rank run cannot be
compared weight for weight with one process: every rank draws its own masks, distractors and
Gumbel noise.  What DDP must guarantee is checked instead: both ranks end every step with the
same weights (DDP averaged their gradients), the steps moved the backbone, the quantiser and the
projections, and only rank 0 wrote the experiment (one log, one model dir, a checkpoint per
save).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pretrain_helpers import make_audio_dir, tiny_yaml

from tests.distill.ddp_worker import launch, synced_weights


def test_torchrun_two_ranks_stay_in_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHX_DEVICE", "cpu")
    train = make_audio_dir(tmp_path / "train", 8, seconds=(0.5, 0.4))
    dev = make_audio_dir(tmp_path / "dev", 2, seed=1)
    conf = tmp_path / "pt.yaml"
    conf.write_text(tiny_yaml(train, dev, steps=3, every=3, batch=1.0), encoding="utf-8")
    exp = tmp_path / "ddp"
    proc = launch(
        tmp_path / "weights",
        [
            "pretrain",
            "--config",
            str(conf),
            "--exp-dir",
            str(exp),
            "--train-args",
            "ccc.enabled=true",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]

    rank0 = synced_weights(tmp_path / "weights", exp / "checkpoints" / "ckpt-3.pt")
    env = json.loads((exp / "env.json").read_text())
    assert (env["world_size"], env["backend"]) == (2, "gloo")
    log = (exp / "log" / "train.log").read_text()
    assert "DDP over gloo, 2 ranks" in log and log.count("experiment ") == 1
    recs = [json.loads(x) for x in (exp / "log" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if r["split"] == "train"] == [1, 2, 3]
    assert all(
        np.isfinite(r["loss"]) and np.isfinite(r["cross"]) for r in recs if r["split"] == "train"
    )
    assert (exp / "model" / "model.safetensors").is_file()

    # not vacuous: the steps moved the front end, the transformer, the quantiser, the projections
    from speechx.pretrain import build_pretraining_model, load_pretrain_config

    torch.manual_seed(0)
    start = build_pretraining_model(load_pretrain_config(conf)).state_dict()
    for k in (
        "backbone.model.feature_extractor.conv_layers.0.conv.weight",
        "backbone.model.encoder.layers.0.attention.q_proj.weight",
        "quantizer.codevectors",
        "project_hid.weight",
        "project_q.weight",
    ):
        assert not torch.equal(start[k], rank0[k]), k
