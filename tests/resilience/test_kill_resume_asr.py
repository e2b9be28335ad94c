"""Kill and resume of CTC fine-tuning: ``speechx train-asr`` is SIGKILLed while writing a
checkpoint, then resumed; the final weights equal an uninterrupted run's, bitwise.  (The
checkpoint, lock and clean-up code is the loop's that ``speechx distill`` shares, tested more
thoroughly in test_kill_resume_distill.py; this shows the CTC task's state resumes too.)"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from resilience_helpers import kill_hard, start_worker, tmp_files, wait_for_marker

from speechx.asr import load_asr_config, train_asr
from speechx.cli import main as cli_main
from speechx.distill.checkpoint import list_checkpoints, load_checkpoint
from speechx.testing import make_kaldi_dir

TEXTS = ["ab ba", "Abba!", "baba ab", "ba ab ba", "abab"]


def test_sigkill_in_checkpoint_write_then_resume_is_bitwise_exact(tmp_path: Path) -> None:
    data = make_kaldi_dir(tmp_path / "data", 5, seconds=(0.4, 0.3, 0.35), texts=TEXTS)
    conf = tmp_path / "asr.yaml"
    conf.write_text(
        yaml.safe_dump(
            {
                "data": {"train": [str(data)], "dev": [str(data)], "max_batch_seconds": 0.8},
                "model": {
                    "source": "tiny",
                    "embed_dim": 8,
                    "ctc": {"time_mask_prob": 0.2, "dropout": 0.1},
                },
                "optim": {"warmup_steps": 1, "lr_head": 0.01, "lr_backbone": 0.001},
                "max_steps": 6,
                "eval_every": 2,
                "save_every": 2,
                "keep_last_n": 5,
                "log_every": 1,
                "num_threads": 1,
            }
        )
    )
    straight = train_asr(load_asr_config(conf), tmp_path / "straight")

    exp = tmp_path / "killed"
    argv = ["train-asr", "--config", str(conf), "--exp-dir", str(exp)]
    log = tmp_path / "worker.log"
    proc = start_worker("ckpt:4", tmp_path / "m", log, "speechx", *argv)
    try:
        wait_for_marker(proc, tmp_path / "m", log)
    finally:
        kill_hard(proc)
    assert [s for s, _ in list_checkpoints(exp / "checkpoints")] == [2]
    assert len(tmp_files(exp / "checkpoints")) == 1

    assert cli_main([*argv, "--resume"]) == 0
    assert tmp_files(exp) == []
    assert [s for s, _ in list_checkpoints(exp / "checkpoints")] == [2, 4, 6]
    a = load_checkpoint(straight.last_checkpoint)["model"]
    b = load_checkpoint(exp / "checkpoints" / "ckpt-6.pt")["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
