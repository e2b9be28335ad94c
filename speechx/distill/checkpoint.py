"""Training checkpoints: ``<exp>/checkpoints/ckpt-<step>.pt``, written atomically, last N kept.

A checkpoint is a ``torch.save`` dict with everything needed to continue exactly: model,
optimizer, scheduler, sampler state and position, the RNG states of every rank, step, epoch and
the best dev metric so far.  :func:`save_model_dir` writes the ``model/`` directory
(``SpeechEncoder.save_pretrained``) the same way: into a temporary sibling, then renamed.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from speechx.distill.errors import TrainingError

_CKPT = re.compile(r"^ckpt-(\d+)\.pt$")


def checkpoint_path(ckpt_dir: Path, step: int) -> Path:
    """``<ckpt_dir>/ckpt-<step>.pt``."""
    return ckpt_dir / f"ckpt-{step}.pt"


def list_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every checkpoint in ``ckpt_dir``, by increasing step."""
    if not ckpt_dir.is_dir():
        return []
    out = []
    for p in ckpt_dir.iterdir():
        m = _CKPT.match(p.name)
        if m and p.is_file():
            out.append((int(m.group(1)), p))
    return sorted(out)


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The checkpoint with the highest step, or None."""
    found = list_checkpoints(ckpt_dir)
    return found[-1][1] if found else None


def save_checkpoint(state: dict[str, Any], ckpt_dir: Path, step: int, keep_last_n: int) -> Path:
    """Write ``state`` to ``ckpt-<step>.pt`` atomically, then delete all but the newest
    ``keep_last_n`` checkpoints.  Returns the path written.
    """
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(ckpt_dir, step)
    fd, tmp = tempfile.mkstemp(dir=ckpt_dir, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for _, old in list_checkpoints(ckpt_dir)[:-keep_last_n]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        TrainingError: the file cannot be read or lacks the training state.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise TrainingError(f"{path}: cannot read checkpoint ({exc})") from None
    missing = {"step", "model", "optimizer", "scheduler"} - set(state)
    if missing:
        raise TrainingError(f"{path}: not a speechx distill checkpoint (missing {sorted(missing)})")
    return state


def save_model_dir(model: Any, out_dir: Path) -> Path:
    """``model.save_pretrained`` into a temp dir next to ``out_dir``, then swap it in.

    A reader sees either the old complete directory or the new one, never a half-written one
    (there is a short moment when ``out_dir`` does not exist).  Returns ``out_dir``.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        model.save_pretrained(tmp)
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            if old.exists():
                shutil.rmtree(old)
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
