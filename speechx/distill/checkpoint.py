"""Training checkpoints: ``<exp>/checkpoints/ckpt-<step>.pt``, written atomically, last N kept.

A checkpoint is a ``torch.save`` dict with everything needed to continue exactly: model,
optimizer, scheduler, sampler state and position, the RNG states of every rank, step, epoch and
the best dev metric so far.  :func:`save_model_dir` writes the ``model/`` directory
(``SpeechEncoder.save_pretrained``) the same way: into a temporary sibling, then renamed.

Crash safety: a checkpoint is written to a hidden ``.ckpt-<step>.pt.*.tmp``, fsynced and renamed,
so a process killed at any moment leaves every ``ckpt-N.pt`` whole; what it may leave is a temp
file (or a ``.model.tmp-*`` / ``.model.old-*`` directory), which :func:`clean_stale` removes when
the next run starts (holding the experiment's lock, see :mod:`speechx.runlock`).  Should the
newest checkpoint still be unreadable (a disk that lost it), :func:`load_latest_checkpoint`
sets it aside and falls back to the previous one with a warning.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from speechx.distill.errors import TrainingError

_CKPT = re.compile(r"^ckpt-(\d+)\.pt$")

log = logging.getLogger("speechx.distill")


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
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(ckpt_dir)
    for _, old in list_checkpoints(ckpt_dir)[:-keep_last_n]:
        old.unlink(missing_ok=True)
    return path


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort: not every OS can open a directory)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def clean_stale(exp_dir: Path, ckpt_dir: Path, model_dir: Path) -> list[Path]:
    """Remove what a killed run left half-done: checkpoint temp files and model temp dirs.

    If ``model_dir`` is missing while a ``.<model>.old-*`` copy exists (the run died between
    the two renames of :func:`save_model_dir`), that copy is put back first.  Call it only
    while holding the experiment's lock: a live writer's temp files look the same.

    Returns:
        The paths removed (or restored), for the log.
    """
    done: list[Path] = []
    if ckpt_dir.is_dir():
        for p in sorted(ckpt_dir.glob(".ckpt-*.pt.*.tmp")):
            p.unlink(missing_ok=True)
            done.append(p)
    olds = sorted(exp_dir.glob(f".{model_dir.name}.old-*"))
    if olds and not model_dir.exists():
        os.replace(olds[-1], model_dir)
        log.warning("restored %s from %s (a run died while replacing it)", model_dir, olds[-1])
        done.append(olds.pop())
    for p in [*olds, *sorted(exp_dir.glob(f".{model_dir.name}.tmp-*"))]:
        shutil.rmtree(p, ignore_errors=True)
        done.append(p)
    return done


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


def load_latest_checkpoint(
    ckpt_dir: Path, *, set_aside: bool = True
) -> tuple[Path, dict[str, Any]] | None:
    """The newest readable checkpoint of ``ckpt_dir`` and its state.

    An unreadable newer checkpoint is skipped with a warning and, with ``set_aside``, renamed
    to ``<name>.corrupt`` (kept for inspection, no longer counted as a checkpoint).  Only one
    process of a run should set files aside (rank 0).

    Returns:
        ``(path, state)``, or None when ``ckpt_dir`` has no checkpoint.

    Raises:
        TrainingError: there are checkpoints but none can be read (each is named).
    """
    found = list_checkpoints(ckpt_dir)
    errors: list[str] = []
    for _, path in reversed(found):
        try:
            state = load_checkpoint(path)
        except TrainingError as exc:
            errors.append(str(exc))
            log.warning("%s; falling back to the previous checkpoint", exc)
            if set_aside:
                with contextlib.suppress(OSError):  # another rank was quicker
                    os.replace(path, path.with_name(path.name + ".corrupt"))
            continue
        return path, state
    if errors:
        raise TrainingError(
            f"{ckpt_dir}: no readable checkpoint ({'; '.join(errors)}); remove them to start over"
        )
    return None


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
