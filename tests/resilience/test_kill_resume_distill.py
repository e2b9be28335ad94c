"""Kill and resume (issue 10 section 3): ``speechx distill`` is SIGKILLed once while writing a
checkpoint and once in the middle of an optimizer step, then resumed; the final weights must
be bitwise those of an uninterrupted run with the same seed, with no half-written checkpoint
left.  The run is a real subprocess (``crash_worker.py`` around the CLI); the uninterrupted
run and the last resume run in this process (one thread each, so the arithmetic is the same).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from resilience_helpers import (
    distill_config_yaml,
    kill_hard,
    make_train_dir,
    start_worker,
    tmp_files,
    wait_for_marker,
)

from speechx.cli import main as cli_main
from speechx.distill import load_config, train_distill
from speechx.distill.checkpoint import clean_stale, list_checkpoints, load_checkpoint
from speechx.distill.errors import TrainingError
from speechx.models import SpeechEncoder
from speechx.runlock import RunLockError


def _assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _same(a: object, b: object) -> bool:
    """Deep equality of RNG states: tensors, arrays, tuples, lists and dicts of them."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _records(exp: Path) -> list[dict]:
    """metrics.jsonl, every line parsed, without the wall-clock throughput and clock."""
    lines = (exp / "log" / "metrics.jsonl").read_text().splitlines()
    clock = ("audio_sec_per_sec", "elapsed_s")
    return [{k: v for k, v in json.loads(x).items() if k not in clock} for x in lines]


def test_sigkill_in_checkpoint_write_and_mid_step_then_resume_is_bitwise_exact(
    tmp_path: Path,
) -> None:
    data = make_train_dir(tmp_path / "data")
    conf = distill_config_yaml(tmp_path / "c.yaml", data)
    cfg = load_config(conf)

    straight = train_distill(cfg, tmp_path / "straight")
    assert straight.step == 6

    exp = tmp_path / "killed"
    argv = ["speechx", "distill", "--config", str(conf), "--exp-dir", str(exp)]

    # 1. killed while writing ckpt-4: ckpt-2 is whole, ckpt-4 is half a temp file
    log1 = tmp_path / "run1.log"
    proc = start_worker("ckpt:4", tmp_path / "m1", log1, *argv)
    try:
        wait_for_marker(proc, tmp_path / "m1", log1)
        # a second run on the same exp dir while the first one is alive refuses at once
        with pytest.raises(RunLockError, match=rf"in use by another run \(pid {proc.pid} "):
            train_distill(cfg, exp, resume=True)
    finally:
        kill_hard(proc)
    assert [s for s, _ in list_checkpoints(exp / "checkpoints")] == [2]
    partial = tmp_files(exp / "checkpoints")
    assert [p.name.startswith(".ckpt-4.pt.") for p in partial] == [True]
    assert partial[0].stat().st_size > 0
    load_checkpoint(exp / "checkpoints" / "ckpt-2.pt")

    # 2. resumed, and killed in optimizer step 5 (after writing ckpt-4)
    log2 = tmp_path / "run2.log"
    proc = start_worker("step:5", tmp_path / "m2", log2, *argv, "--resume")
    try:
        wait_for_marker(proc, tmp_path / "m2", log2)
    finally:
        kill_hard(proc)
    assert [s for s, _ in list_checkpoints(exp / "checkpoints")] == [2, 4]
    assert tmp_files(exp) == [], "the resumed run removes the killed run's temp checkpoint"
    text = log2.read_text()
    assert "resumed from" in text and "ckpt-2.pt" in text

    # 3. resumed to the end with the real CLI
    assert cli_main([*argv[1:], "--resume"]) == 0

    assert tmp_files(exp) == []
    found = list_checkpoints(exp / "checkpoints")
    assert [s for s, _ in found] == [2, 4, 6]
    for _, path in found:  # every checkpoint left behind is whole
        load_checkpoint(path)
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "ckpt-6.pt")
    b = load_checkpoint(exp / "checkpoints" / "ckpt-6.pt")
    _assert_same_state(a["model"], b["model"])
    assert a["position"] == b["position"] and a["best"] == b["best"]
    assert _same(a["rng"], b["rng"])
    assert _same(a["optimizer"], b["optimizer"])
    ma = SpeechEncoder.from_pretrained(tmp_path / "straight" / "model").state_dict()
    mb = SpeechEncoder.from_pretrained(exp / "model").state_dict()
    _assert_same_state(ma, mb)
    # the log has each step once, with the uninterrupted run's losses and dev metrics
    assert _records(exp) == _records(tmp_path / "straight")


def test_unreadable_newest_checkpoint_falls_back_to_the_previous(tmp_path: Path) -> None:
    data = make_train_dir(tmp_path / "data")
    cfg = load_config(distill_config_yaml(tmp_path / "c.yaml", data), ["data.dev=[]"])
    straight = train_distill(cfg, tmp_path / "straight")
    expected = load_checkpoint(straight.last_checkpoint)

    exp = tmp_path / "damaged"
    shutil.copytree(tmp_path / "straight", exp)
    newest = exp / "checkpoints" / "ckpt-6.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # e.g. a disk that lost the end
    with open(exp / "log" / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 7, "split": "tra')  # a line torn by a kill
    res = train_distill(cfg, exp, resume=True)
    assert res.step == 6
    text = (exp / "log" / "train.log").read_text()
    assert "ckpt-6.pt: cannot read checkpoint" in text and "falling back" in text
    assert "resumed from" in text and "ckpt-4.pt: step 4" in text
    assert (exp / "checkpoints" / "ckpt-6.pt.corrupt").is_file()
    _assert_same_state(expected["model"], load_checkpoint(newest)["model"])

    assert _records(exp) == _records(tmp_path / "straight")

    for _, p in list_checkpoints(exp / "checkpoints"):
        p.write_bytes(b"")
    with pytest.raises(TrainingError, match="no readable checkpoint"):
        train_distill(cfg, exp, resume=True)


def test_clean_stale_restores_a_model_dir_caught_between_renames(tmp_path: Path) -> None:
    exp, ckpt = tmp_path / "exp", tmp_path / "exp" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "ckpt-2.pt").write_bytes(b"whole")
    (ckpt / ".ckpt-4.pt.abc123.tmp").write_bytes(b"half")
    old = exp / ".model.old-4242"  # save_model_dir moved model/ aside, then died
    old.mkdir()
    (old / "config.json").write_text("{}")
    (exp / ".model.tmp-xyz").mkdir()  # and its new copy, complete or not
    removed = clean_stale(exp, ckpt, exp / "model")
    assert (exp / "model" / "config.json").read_text() == "{}"
    assert sorted(p.name for p in exp.iterdir()) == ["checkpoints", "model"]
    assert [p.name for p in ckpt.iterdir()] == ["ckpt-2.pt"]
    assert len(removed) == 3
    assert clean_stale(exp, ckpt, exp / "model") == []
