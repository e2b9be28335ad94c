"""DDP: ``torchrun --nproc_per_node=2`` runs train_distill unchanged (gloo on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from distill_helpers import MakeData, tiny_config

from speechx.distill.checkpoint import load_checkpoint
from speechx.distill.config import save_config
from speechx.distill.trainer import train_distill


@pytest.mark.slow
def test_torchrun_two_ranks_matches_one_process(make_data: MakeData, tmp_path: Path) -> None:
    d = make_data("a", 4, seconds=0.4)
    # DDP: each rank takes one 2-clip batch per step; one process: one 4-clip batch per step.
    # The cosine loss is a mean over clips, so the averaged gradients are the same.
    ddp_cfg = tiny_config([d], [d], max_steps=2, **{"data.max_batch_seconds": 0.8})
    conf = save_config(ddp_cfg, tmp_path / "ddp.yaml")
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "speechx.distill",
            "--config",
            str(conf),
            "--exp-dir",
            str(tmp_path / "ddp"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / "ddp"
    assert json.loads((exp / "env.json").read_text())["world_size"] == 2
    assert "DDP over gloo, 2 ranks" in (exp / "log" / "train.log").read_text()
    assert (exp / "model" / "model.safetensors").is_file()
    ddp_state = load_checkpoint(exp / "checkpoints" / "ckpt-2.pt")
    assert ddp_state["world_size"] == 2 and len(ddp_state["rng"]) == 2

    one_cfg = tiny_config([d], [d], max_steps=2, num_threads=1, **{"data.max_batch_seconds": 1.6})
    train_distill(one_cfg, tmp_path / "one")
    one_state = load_checkpoint(tmp_path / "one" / "checkpoints" / "ckpt-2.pt")
    for k, v in one_state["model"].items():
        torch.testing.assert_close(ddp_state["model"][k], v, rtol=1e-4, atol=1e-5, msg=k)
