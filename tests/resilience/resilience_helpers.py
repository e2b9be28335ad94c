"""Shared pieces of the resilience tests: tiny data and configs, a fake teacher, and the
parent side of the kill tests (start a worker, wait for its marker, SIGKILL it).

The worker (``crash_worker.py``) imports this module too (it runs as a script from this
directory), so everything here stays light: no torch at import time.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORKER = HERE / "crash_worker.py"
TEACHER_ID = "hash-v1"
DIM = 8


class HashTeacher:
    """A fake text teacher: a deterministic unit vector per text (seeded by its SHA-256)."""

    name = "hash"
    teacher_id = TEACHER_ID
    languages = ("en", "nl")
    dim = DIM

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None
    ) -> np.ndarray:
        """float32 ``[len(texts), DIM]``, L2-normalised; records what it was asked."""
        texts = list(texts)
        self.encoded += texts
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(DIM)
            out[i] = v / np.linalg.norm(v)
        return out


def make_train_dir(root: Path, n: int = 6, *, seconds: float = 0.4) -> Path:
    """A Kaldi dir of ``n`` tones whose ``text``/``text.en`` targets are orthonormal rows,
    written as teacher embeddings of :data:`TEACHER_ID` (the layout the trainer reads)."""
    from speechx.data.kaldi import KaldiDir
    from speechx.testing import make_kaldi_dir

    texts = [f"sentence number {i}" for i in range(n)]
    d = make_kaldi_dir(root, n=n, seconds=seconds, lang="nl", texts=texts)
    ids = KaldiDir.read(d).utt_ids
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((DIM, DIM)))
    vec = q[:n].astype(np.float32)
    out = d / "teacher" / TEACHER_ID
    out.mkdir(parents=True, exist_ok=True)
    (out / "ids.txt").write_text("".join(f"{u}\n" for u in ids))
    np.save(out / "text.npy", vec)
    np.save(out / "text.en.npy", np.roll(vec, 1, axis=1))
    return d


def distill_config_yaml(path: Path, train: Path, *, max_steps: int = 6) -> Path:
    """A tiny-preset distillation config with every source of randomness a resume must
    reproduce (dropout, time masks, shuffling, grad accumulation over uneven batches)."""
    import yaml

    cfg: dict[str, Any] = {
        "data": {
            "train": [str(train)],
            "dev": [str(train)],
            "teacher_id": TEACHER_ID,
            "max_batch_seconds": 0.8,
            "num_buckets": 1,
        },
        "model": {
            "source": "tiny",
            "overrides": {
                "projection_dropout": 0.2,
                "backbone_config": {
                    "hidden_dropout": 0.1,
                    "mask_time_prob": 0.3,
                    "mask_time_length": 4,
                },
            },
        },
        "optim": {
            "warmup_steps": 2,
            "lr_backbone": 1e-3,
            "lr_head": 1e-2,
            "grad_accum": 2,
            "schedule": "cosine",
        },
        "loss": {"weights": {"cosine": 1.0, "infonce": 0.5}},
        "max_steps": max_steps,
        "eval_every": 2,
        "save_every": 2,
        "keep_last_n": 5,
        "log_every": 1,
        "num_threads": 1,
        "seed": 0,
    }
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def worker_env() -> dict[str, str]:
    """The environment of a worker: one thread, CPU, the repository importable."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        SPEECHX_DEVICE="cpu",
        PYTHONUNBUFFERED="1",
    )
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


def start_worker(pause_at: str, marker: Path, log: Path, *target: str) -> subprocess.Popen:
    """Start ``crash_worker.py --pause-at PAUSE_AT --marker MARKER TARGET...`` (output to
    ``log``)."""
    argv = [sys.executable, str(WORKER), "--pause-at", pause_at, "--marker", str(marker), *target]
    with open(log, "wb") as fh:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            argv, stdout=fh, stderr=subprocess.STDOUT, env=worker_env(), cwd=REPO
        )


def wait_for_marker(proc: subprocess.Popen, marker: Path, log: Path, timeout: float = 180) -> str:
    """Wait until the worker writes ``marker`` (it is then paused); returns its content.

    Fails the test with the worker's output if it exits first or takes too long.
    """
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if marker.is_file() and marker.read_text():
            return marker.read_text()
        if proc.poll() is not None:
            raise AssertionError(
                f"worker exited ({proc.returncode}) before {marker.name}:\n"
                + log.read_text(errors="replace")[-4000:]
            )
        time.sleep(0.05)
    kill_hard(proc)
    raise AssertionError(f"worker did not reach {marker.name} in {timeout} s")


def kill_hard(proc: subprocess.Popen) -> None:
    """SIGKILL the worker and reap it."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def tmp_files(root: Path) -> list[Path]:
    """Every temp file or dir (``*.tmp``, ``*.tmp-*``, ``*.old-*``) under ``root``."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.name.endswith(".tmp") or ".tmp-" in p.name or ".old-" in p.name
    )


def tree_bytes(root: Path, skip: Sequence[str] = ()) -> dict[str, bytes]:
    """``{relative path: content}`` of every file under ``root`` (names in ``skip`` left out)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in skip
    }
