"""A worker that runs a real speechx entry point and freezes at a chosen moment, so that the
test can SIGKILL it exactly there.  Nothing in the product knows about it: it wraps library
functions (torch.save, the optimizer step hook, numpy.savez, soundfile.write) from outside.

    python crash_worker.py --pause-at ckpt:4 --marker M speechx distill --config c.yaml ...
    python crash_worker.py --pause-at step:5 --marker M speechx distill ... --resume
    python crash_worker.py --pause-at shard:3 --marker M cache CACHE_DIR TEXTS_FILE
    python crash_worker.py --pause-at wav:5 --marker M synth --out-dir ...

Pause points (the worker writes a description to the marker file, then sleeps until killed):

* ``ckpt:N``  - while writing the checkpoint of step N: half of its bytes are in the file;
* ``step:N``  - in optimizer step N (gradients accumulated, weights not yet updated);
* ``shard:N`` - while writing the N-th teacher-cache shard of this process: half written;
* ``wav:N``   - while writing the N-th audio file of this process: half written.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path
from typing import Any

SLEEP = 600.0


def _freeze(marker: Path, what: str) -> None:
    marker.write_text(f"{os.getpid()} {what}\n")
    time.sleep(SLEEP)
    sys.exit(f"crash_worker: not killed within {SLEEP} s")


def _write_half(target: Any, data: bytes) -> None:
    """Write the first half of ``data`` to a path or a binary file object, durably."""
    half = data[: len(data) // 2]
    if hasattr(target, "write"):
        target.write(half)
        target.flush()
        os.fsync(target.fileno())
    else:
        with open(target, "wb") as fh:
            fh.write(half)
            fh.flush()
            os.fsync(fh.fileno())


def pause_in_checkpoint(step: int, marker: Path) -> None:
    import torch

    real = torch.save

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(obj, dict) and obj.get("step") == step and "optimizer" in obj:
            buf = io.BytesIO()
            real(obj, buf, *args, **kwargs)
            _write_half(f, buf.getvalue())
            _freeze(marker, f"checkpoint of step {step} half written to {getattr(f, 'name', f)}")
        real(obj, f, *args, **kwargs)

    torch.save = save


def pause_in_step(step: int, marker: Path) -> None:
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    def hook(opt: Any, args: Any, kwargs: Any) -> None:
        done = max((int(s["step"]) for s in opt.state.values() if "step" in s), default=0)
        if done == step - 1:
            _freeze(marker, f"in optimizer step {step}")

    register_optimizer_step_pre_hook(hook)


def pause_in_nth_write(module: Any, attr: str, n: int, marker: Path, what: str) -> None:
    """Wrap ``module.attr(file, ...)``: its n-th call writes half the bytes and freezes."""
    real = getattr(module, attr)
    calls = [0]

    def wrapped(file: Any, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == n:
            buf = io.BytesIO()
            if attr == "write":  # soundfile.write(file, data, samplerate, ...) needs a format
                kwargs.setdefault("format", "WAV")
            real(buf, *args, **kwargs)
            _write_half(file, buf.getvalue())
            _freeze(marker, f"{what} {n} half written to {getattr(file, 'name', file)}")
        return real(file, *args, **kwargs)

    setattr(module, attr, wrapped)


def run_cache(cache_dir: str, texts_file: str) -> int:
    """Encode every line of ``texts_file`` through a CachedTeacher (4 texts per shard)."""
    from resilience_helpers import HashTeacher

    from speechx.teachers.cache import CachedTeacher

    texts = Path(texts_file).read_text(encoding="utf-8").splitlines()
    CachedTeacher(HashTeacher(), cache_dir, shard_size=4).encode(texts)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pause-at", required=True)
    ap.add_argument("--marker", required=True, type=Path)
    ap.add_argument("target", choices=["speechx", "synth", "cache"])
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    kind, n = args.pause_at.split(":")
    if kind == "ckpt":
        pause_in_checkpoint(int(n), args.marker)
    elif kind == "step":
        pause_in_step(int(n), args.marker)
    elif kind == "shard":
        import numpy

        pause_in_nth_write(numpy, "savez", int(n), args.marker, "teacher-cache shard")
    elif kind == "wav":
        import soundfile

        pause_in_nth_write(soundfile, "write", int(n), args.marker, "audio file")
    else:
        raise SystemExit(f"unknown pause point {args.pause_at!r}")
    if args.target == "speechx":
        from speechx.cli import main as cli_main

        return cli_main(args.rest)
    if args.target == "synth":
        from data_prep.synth import main as synth_main

        return synth_main(args.rest)
    return run_cache(*args.rest)


if __name__ == "__main__":
    sys.exit(main())
