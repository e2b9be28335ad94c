"""DDP: ``torchrun --nproc_per_node=2`` runs ``speechx train-asr`` unchanged (gloo on the CPU).

The comparison is the one of ``tests/distill/test_distill_ddp.py`` (read its docstring): the
2-rank run with ``grad_accum=1`` and one process with ``grad_accum=2`` train on the same global
batches, rank ``r`` at step ``s`` on batch ``2s + r`` and the one process on the same two as
micro-batches 0 and 1 of its step ``s``, while every epoch has an even number of batches.

The CTC loss of a batch is its summed loss over its own target tokens, so the loss of a step is
the mean of the two batches' per-token losses in both runs (one process divides each
micro-batch loss by ``grad_accum``, DDP averages the ranks' gradients); it is not the per-token
loss over both batches together, in either run.  The CTC head's dropout and masking are off,
so nothing random is drawn and the weights must agree to float rounding after every step.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from speechx.cli import main
from speechx.distill.checkpoint import load_checkpoint
from speechx.distill.sampling import LanguageBalancedBatchSampler
from speechx.testing import make_kaldi_dir
from tests.distill.ddp_worker import launch, synced_weights

TEXTS = ["ab ba", "Abba!", "baba ab", "ba", "abab", "b a b", "aab", "bba ab"]
SECONDS = (0.35, 0.5)  # two clips per 1.0 s batch, four batches per epoch
STEPS = 3
RTOL, ATOL = 1e-5, 1e-7

CONF = """
data:
  train: [{data}]
  max_batch_seconds: 1.0
  num_buckets: 1
model:
  source: tiny
  embed_dim: 8
  ctc: {{dropout: 0.0, time_mask_prob: 0.0, feature_mask_prob: 0.0}}
optim: {{warmup_steps: 1, schedule: constant, lr_backbone: 1.0e-3, lr_head: 1.0e-2}}
max_steps: {steps}
eval_every: 100
save_every: 1
keep_last_n: 3
log_every: 1
num_threads: 1
seed: 3
"""


def test_torchrun_two_ranks_match_one_process_with_grad_accum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPEECHX_DEVICE", "cpu")
    data = make_kaldi_dir(tmp_path / "data", len(TEXTS), seconds=SECONDS, texts=TEXTS, lang="nl")
    conf = tmp_path / "asr.yaml"
    conf.write_text(CONF.format(data=data, steps=STEPS), encoding="utf-8")
    durations = [SECONDS[i % 2] for i in range(len(TEXTS))]
    sampler = LanguageBalancedBatchSampler(
        durations, ["nl"] * len(TEXTS), 1.0, num_buckets=1, seed=3
    )
    assert [len(sampler.epoch_batches(e)) for e in (0, 1)] == [4, 4]

    ddp_exp = tmp_path / "ddp"
    proc = launch(
        tmp_path / "weights",
        ["train-asr", "--config", str(conf), "--exp-dir", str(ddp_exp)],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]

    rank0 = synced_weights(tmp_path / "weights", ddp_exp / "checkpoints" / f"ckpt-{STEPS}.pt")
    assert any(k.startswith("ctc_head.") for k in rank0)
    env = json.loads((ddp_exp / "env.json").read_text())
    assert (env["world_size"], env["backend"], env["devices"]) == (2, "gloo", ["cpu", "cpu"])
    assert "DDP over gloo, 2 ranks, cpu" in (ddp_exp / "log" / "train.log").read_text()
    assert (ddp_exp / "model" / "vocab.json").is_file()

    one_exp = tmp_path / "one"
    args = ["train-asr", "--config", str(conf), "--exp-dir", str(one_exp)]
    assert main([*args, "--train-args", "optim.grad_accum=2"]) == 0
    for step in range(1, STEPS + 1):
        ddp = load_checkpoint(ddp_exp / "checkpoints" / f"ckpt-{step}.pt")
        one = load_checkpoint(one_exp / "checkpoints" / f"ckpt-{step}.pt")
        assert one["position"] == ddp["position"]
        for k, v in one["model"].items():
            torch.testing.assert_close(ddp["model"][k], v, rtol=RTOL, atol=ATOL, msg=k)
    final = load_checkpoint(ddp_exp / "checkpoints" / f"ckpt-{STEPS}.pt")["model"]
    # not vacuous: the steps moved every weight matrix of the backbone and the CTC layer (the
    # embedding head is kept but unused by CTC)
    first = load_checkpoint(one_exp / "checkpoints" / "ckpt-1.pt")["model"]
    trained = [
        k for k, v in final.items() if v.ndim == 2 and k.startswith(("encoder.backbone.", "ctc_"))
    ]
    assert len(trained) >= 10 and any(k.startswith("ctc_head.") for k in trained), trained
    for k in trained:
        assert not torch.allclose(first[k], final[k]), k
