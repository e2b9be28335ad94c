"""DDP: ``torchrun --nproc_per_node=2`` runs ``speechx distill`` unchanged (gloo on the CPU),
and the device/backend choice of :mod:`speechx.distill.runtime` (CUDA mocked).

How the two runs see exactly the same data.  The batch sampler builds one global, shuffled
list of batches per epoch from ``(seed, epoch)`` alone, whatever the world size, and rank ``r``
of ``W`` takes batches ``r, r + W, r + 2W, ...``.  So at optimizer step ``s`` of the 2-rank
run (``grad_accum=1``), rank 0 trains on global batch ``2s`` and rank 1 on ``2s + 1``.  One
process with ``grad_accum=2`` cuts the same list into chunks of two: step ``s`` accumulates
micro-batch 0 = global batch ``2s`` and micro-batch 1 = global batch ``2s + 1``.  This holds
while every epoch has an even number of batches (otherwise the DDP sampler repeats a batch to
even the ranks out, and one process ends the epoch on a one-batch chunk); the test checks it.

Why the updates agree.  The loop backpropagates ``loss / grad_accum`` of each micro-batch, so
one process sums ``(g0 + g1) / 2``; DDP backpropagates each rank's loss and averages the
gradients over ranks: ``(g0 + g1) / 2`` again.  Clipping, AdamW and the schedule then see the
same gradient.  Nothing random is drawn in training (no dropout or masking in the tiny preset),
so the weights after three steps (which cross an epoch boundary) must agree to float rounding.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from ddp_worker import launch, synced_weights
from distill_helpers import TEACHER, MakeData, orthogonal, tiny_config, write_fake_teacher

import speechx.distill.trainer as trainer_mod
from speechx.cli import main
from speechx.distill.checkpoint import load_checkpoint
from speechx.distill.config import load_config
from speechx.distill.errors import TrainingError
from speechx.distill.runtime import (
    DeviceChoice,
    OnDevice,
    describe_devices,
    init_distributed,
    select_device,
    to_device,
)
from speechx.distill.sampling import LanguageBalancedBatchSampler
from speechx.distill.trainer import train_distill
from speechx.testing import make_kaldi_dir

#: 8 clips of 0.35 s and 0.5 s with 1.0 s per batch: every batch holds two clips (three would
#: exceed 1.0 s), some padded; 4 batches per epoch.
SECONDS = (0.35, 0.5)
N_CLIPS = 8
STEPS = 3

CONF = """
data:
  train: [{data}]
  teacher_id: {teacher}
  max_batch_seconds: 1.0
  num_buckets: 1
model: {{source: tiny}}
optim: {{warmup_steps: 1, schedule: constant, lr_backbone: 1.0e-3, lr_head: 1.0e-2}}
loss: {{weights: {{cosine: 1.0, infonce: 0.5}}, temperature: 0.1}}
max_steps: {steps}
eval_every: 100
save_every: 1
keep_last_n: 3
log_every: 1
num_threads: 1
seed: 3
"""

#: Tolerances of the 2-rank vs 1-process comparison.  Halving a loss or a gradient is exact in
#: floating point and a sum of two is commutative, so on one CPU thread the weights come out
#: bit for bit equal; the tolerances only leave room for a summation order that differs.
RTOL, ATOL = 1e-6, 1e-8


def test_torchrun_two_ranks_match_one_process_with_grad_accum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPEECHX_DEVICE", "cpu")
    texts = [f"clip number {i}" for i in range(N_CLIPS)]
    data = make_kaldi_dir(tmp_path / "data", N_CLIPS, seconds=SECONDS, texts=texts, lang="nl")
    write_fake_teacher(data, {"text": orthogonal(N_CLIPS, N_CLIPS, 5)})
    conf = tmp_path / "distill.yaml"
    conf.write_text(CONF.format(data=data, teacher=TEACHER, steps=STEPS), encoding="utf-8")

    # the precondition of the docstring: an even number of global batches in epochs 0 and 1
    cfg = load_config(conf)
    sampler = LanguageBalancedBatchSampler(
        list(SECONDS) * (N_CLIPS // 2), ["nl"] * N_CLIPS, 1.0, num_buckets=1, seed=cfg.seed
    )
    assert [len(sampler.epoch_batches(e)) for e in (0, 1)] == [4, 4]

    ddp_exp = tmp_path / "ddp"
    proc = launch(
        tmp_path / "weights",
        ["distill", "--config", str(conf), "--exp-dir", str(ddp_exp)],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]

    # (a) both ranks hold the same weights, bit for bit, and rank 0 saved them
    last = ddp_exp / "checkpoints" / f"ckpt-{STEPS}.pt"
    synced_weights(tmp_path / "weights", last)
    assert load_checkpoint(last)["position"]["epoch"] == 1, "three steps of two cross into epoch 1"

    env = json.loads((ddp_exp / "env.json").read_text())
    assert (env["world_size"], env["device"], env["backend"]) == (2, "cpu", "gloo")
    assert env["devices"] == ["cpu", "cpu"]
    assert "DDP over gloo, 2 ranks, cpu" in (ddp_exp / "log" / "train.log").read_text()
    assert (ddp_exp / "model" / "model.safetensors").is_file()

    # (b) one process, the same global batches through gradient accumulation: the weights
    # agree after every step
    one_exp = tmp_path / "one"
    args = ["distill", "--config", str(conf), "--exp-dir", str(one_exp)]
    assert main([*args, "--train-args", "optim.grad_accum=2"]) == 0
    for step in range(1, STEPS + 1):
        ddp = load_checkpoint(ddp_exp / "checkpoints" / f"ckpt-{step}.pt")
        one = load_checkpoint(one_exp / "checkpoints" / f"ckpt-{step}.pt")
        assert one["world_size"] == 1 and one["position"] == ddp["position"]
        for k, v in one["model"].items():
            torch.testing.assert_close(ddp["model"][k], v, rtol=RTOL, atol=ATOL, msg=k)
    # not vacuous: the steps moved every weight matrix
    first = load_checkpoint(one_exp / "checkpoints" / "ckpt-1.pt")["model"]
    last = load_checkpoint(one_exp / "checkpoints" / f"ckpt-{STEPS}.pt")["model"]
    moved = [k for k in last if last[k].ndim == 2 and not torch.allclose(first[k], last[k])]
    assert len(moved) == sum(v.ndim == 2 for v in last.values()), moved


# --------------------------------------------------------------------------- device selection
@pytest.fixture
def gpus(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Pretend torch sees 4 GPUs; returns the list of devices passed to set_device."""
    current: list[object] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    monkeypatch.delenv("SPEECHX_DEVICE", raising=False)
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    return current


def test_select_device_prefers_cuda_per_local_rank(
    gpus: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert select_device(None, local_rank=2) == DeviceChoice("cuda:2", "nccl")
    assert select_device("auto") == DeviceChoice("cuda:0", "nccl")
    assert select_device("CUDA", local_rank=3) == DeviceChoice("cuda:3", "nccl")
    # switched off by the config, or by the environment when the config leaves it to auto
    assert select_device("cpu", local_rank=2) == DeviceChoice("cpu", "gloo")
    monkeypatch.setenv("SPEECHX_DEVICE", "cpu")
    assert select_device("auto", local_rank=2) == DeviceChoice("cpu", "gloo")
    assert select_device("cuda", local_rank=1) == DeviceChoice("cuda:1", "nccl")
    monkeypatch.delenv("SPEECHX_DEVICE")
    with pytest.raises(TrainingError, match=r"local rank 4 has no GPU: 4 visible"):
        select_device("auto", local_rank=4)
    with pytest.raises(TrainingError, match="unknown device 'tpu'"):
        select_device("tpu")
    monkeypatch.setenv("SPEECHX_DEVICE", "gpu0")
    with pytest.raises(TrainingError, match="SPEECHX_DEVICE: unknown device 'gpu0'"):
        select_device(None)


def test_select_device_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("SPEECHX_DEVICE", raising=False)
    assert select_device(None, local_rank=1) == DeviceChoice("cpu", "gloo")
    with pytest.raises(TrainingError, match="asks for 'cuda' but torch.cuda.is_available"):
        select_device("cuda")


def test_init_distributed_joins_nccl_on_the_local_gpu(
    gpus: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    joined: list[str] = []
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: joined.append(backend))
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("RANK", "7")
    monkeypatch.setenv("LOCAL_RANK", "3")
    env = init_distributed(None)
    assert (env.world_size, env.rank, env.local_rank) == (8, 7, 3)
    assert (env.device, env.backend, env.owns_group) == ("cuda:3", "nccl", True)
    assert joined == ["nccl"] and gpus == [torch.device("cuda:3")]
    assert env.collective_device == torch.device("cuda:3")

    joined.clear()
    gpus.clear()
    env = init_distributed("cpu")
    assert (env.device, env.backend) == ("cpu", "gloo") and joined == ["gloo"] and gpus == []
    assert env.collective_device == torch.device("cpu")

    # one process: no group, but the GPU all the same
    joined.clear()
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var)
    env = init_distributed(None)
    assert (env.world_size, env.device, env.backend, joined) == (1, "cuda:0", None, [])
    assert gpus == [torch.device("cuda:0")]


def test_describe_devices() -> None:
    assert describe_devices(["cpu", "cpu"]) == "cpu"
    assert describe_devices([f"cuda:{i}" for i in range(4)]) == "cuda:0..3"
    assert describe_devices(["cuda:0", "cuda:1", "cuda:0", "cuda:1"]) == "cuda:0..1"
    assert describe_devices(["cuda:2", "cuda:0"]) == "cuda:0,2"
    assert describe_devices(["cuda:0"]) == "cuda:0"


def test_on_device_moves_inputs_and_reaches_the_model() -> None:
    class Probe(torch.nn.Module):
        sample_rate = 16000

        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))
            self.seen: list[torch.device] = []

        def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
            self.seen.append(x.device)
            return x

        def frozen_features(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            self.seen.append(lengths.device)
            return x

    probe = Probe()
    wrapped = OnDevice(probe, "meta")
    assert wrapped.sample_rate == 16000 and wrapped.w is probe.w
    wrapped(torch.zeros(2), lengths=torch.ones(2))
    wrapped.frozen_features(torch.zeros(2), torch.ones(2))
    assert probe.seen == [torch.device("meta")] * 2
    wrapped.eval()
    assert not probe.training
    batch = {"x": torch.zeros(1), "parts": [torch.zeros(1), (torch.ones(1), 3)], "ids": ["a"]}
    moved = to_device(batch, "meta")
    assert moved["x"].is_meta and moved["parts"][0].is_meta and moved["parts"][1][0].is_meta
    assert moved["parts"][1][1] == 3 and moved["ids"] == ["a"]


def test_the_loop_sends_batches_and_evaluation_to_its_device(
    make_data: MakeData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every training batch goes through ``to_device(batch, loop.device)`` and dev evaluation
    gets the model wrapped in :class:`OnDevice`, on the CPU exactly as they would on a GPU."""
    monkeypatch.setenv("SPEECHX_DEVICE", "cpu")
    moved: list[torch.device] = []
    evaluated: list[object] = []
    real_move, real_eval = trainer_mod.to_device, trainer_mod.evaluate_dev

    def spy_move(obj: object, device: torch.device) -> object:
        if isinstance(obj, dict) and "targets" in obj:
            moved.append(torch.device(device))
        return real_move(obj, device)

    def spy_eval(model: object, *args: object, **kwargs: object) -> dict[str, float]:
        evaluated.append(model)
        return real_eval(model, *args, **kwargs)

    monkeypatch.setattr(trainer_mod, "to_device", spy_move)
    monkeypatch.setattr(trainer_mod, "evaluate_dev", spy_eval)
    d = make_data("a", 4)
    cfg = tiny_config(
        [d], [d], max_steps=2, **{"optim.grad_accum": 2, "data.max_batch_seconds": 0.8}
    )
    train_distill(cfg, tmp_path / "exp")
    assert moved == [torch.device("cpu")] * 4  # 2 steps x 2 micro-batches
    assert len(evaluated) == 1 and isinstance(evaluated[0], OnDevice)
    state = load_checkpoint(tmp_path / "exp" / "checkpoints" / "ckpt-2.pt")
    tensors = [*state["model"].values()]
    tensors += [v for s in state["optimizer"]["state"].values() for v in s.values()]
    assert tensors and all(t.device.type == "cpu" for t in tensors)
    env = json.loads((tmp_path / "exp" / "env.json").read_text())
    assert (env["device"], env["devices"], env["backend"]) == ("cpu", ["cpu"], None)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda_then_resuming_on_the_cpu(
    make_data: MakeData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a GPU box: train on cuda:0 with dev evaluation, then resume the CPU-tensor checkpoint
    on the CPU.  (Written for GPU machines; the machines that built it have none.)"""
    monkeypatch.delenv("SPEECHX_DEVICE", raising=False)
    d = make_data("a", 4)
    exp = tmp_path / "exp"
    train_distill(tiny_config([d], [d], max_steps=2, save_every=1), exp)
    env = json.loads((exp / "env.json").read_text())
    assert (env["device"], env["backend"]) == ("cuda:0", None)
    state = load_checkpoint(exp / "checkpoints" / "ckpt-2.pt")
    assert all(t.device.type == "cpu" for t in state["model"].values())
    assert "cuda" in state["rng"][0]
    monkeypatch.setenv("SPEECHX_DEVICE", "cpu")
    res = train_distill(tiny_config([d], [d], max_steps=3, save_every=1), exp, resume=True)
    assert res.step == 3
