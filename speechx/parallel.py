"""Sharded jobs, Kaldi style: one command per part of a split, run in parallel, merged in order.

A job array is a command in which the word ``JOB`` stands for the job number, as in Kaldi's
``run.pl``::

    run_jobs(["speechx", "encode", "--data-dir", "data/x/split4/JOB", "--out", "e/split4/JOB"],
             4, "exp/log/encode.JOB.log")

runs jobs 1..4 with their output in ``exp/log/encode.<i>.log``.  Without ``cmd`` the jobs run here
as subprocesses; with ``cmd`` (a launcher command line such as ``recipes/utils/run.sh`` or
``recipes/utils/slurm.sh --mem 8G``) the launcher is called once as
``<cmd> JOB=1:N <log> <command...>``, the interface of Kaldi's ``run.pl``/``slurm.pl``, and it runs
the jobs wherever it sends them.  Either way, if any job fails, :class:`JobError` names every
failed job's log.

Every log starts with ``# <command>`` and ends with ``# Ended (code <rc>) ...``, so a launcher's
logs can be checked afterwards (:func:`failed_logs`).  Each local job gets
``OMP_NUM_THREADS`` = total threads / jobs running at once (:func:`job_env`), so N jobs share the
machine instead of oversubscribing it.

:func:`merge_embeddings` concatenates the per-part ``ids.txt`` + ``embeddings.npy`` of
``speechx encode`` in part order.  Since the parts of :func:`speechx.data.split.split_data_dir`
are contiguous runs of the sorted ids, the merged rows are in the order of the whole dir.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from speechx.errors import SpeechxError

JOB_VAR = "JOB"
_ENDED = re.compile(r"^# Ended \(code (-?\d+)\)", re.MULTILINE)
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class JobError(SpeechxError, RuntimeError):
    """One or more jobs of a job array failed, or a launcher could not be run."""

    def __init__(self, message: str, logs: Sequence[Path] = ()) -> None:
        super().__init__(message)
        self.logs = list(logs)


def substitute_job(args: Sequence[str], job: int, var: str = JOB_VAR) -> list[str]:
    """``args`` with every occurrence of ``var`` replaced by the job number (as ``run.pl``).

    Returns:
        A new list of strings.
    """
    return [str(a).replace(var, str(job)) for a in args]


def total_threads(env: Mapping[str, str] | None = None) -> int:
    """Threads this process may use: ``$OMP_NUM_THREADS`` if set, else the CPUs it may run on."""
    env = os.environ if env is None else env
    try:
        n = int(env.get("OMP_NUM_THREADS", ""))
        if n > 0:
            return n
    except ValueError:
        pass
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def job_env(
    nj: int, base: Mapping[str, str] | None = None, *, threads: int | None = None
) -> dict[str, str]:
    """The environment of one of ``nj`` concurrent jobs: ``base`` (default ``os.environ``)
    with the BLAS/OpenMP thread counts set to ``threads`` (default: total threads // nj, >= 1).

    Returns:
        A new dict.
    """
    env = dict(os.environ if base is None else base)
    n = threads if threads is not None else max(1, total_threads(env) // max(1, nj))
    for var in _THREAD_VARS:
        env[var] = str(n)
    return env


def run_jobs(
    argv: Sequence[str],
    nj: int,
    log: str | os.PathLike,
    *,
    cmd: str | None = None,
    env: Mapping[str, str] | None = None,
    max_parallel: int | None = None,
) -> list[Path]:
    """Run ``argv`` as jobs 1..``nj`` (``JOB`` in ``argv`` and ``log`` becomes the job number).

    Args:
        argv: the command of one job, with ``JOB`` where the job number goes.
        nj: number of jobs (>= 1).
        log: log path pattern with ``JOB`` in it (its directory is created).
        cmd: a launcher command line (``recipes/utils/run.sh``, ``recipes/utils/slurm.sh ...``),
            called as ``<cmd> JOB=1:<nj> <log> <argv...>``; ``None`` runs the jobs here.
        env: the jobs' environment (default: :func:`job_env` for the jobs that run at once).
        max_parallel: with ``cmd=None``, how many jobs run at once (default ``nj``).

    Returns:
        The log path of every job, in job order.

    Raises:
        JobError: ``nj < 1``, ``log`` has no ``JOB``, the launcher cannot be started, or a job
            failed; the message names the log of every failed job.
    """
    if nj < 1:
        raise JobError(f"number of jobs must be >= 1, got {nj}")
    log = str(log)
    if JOB_VAR not in log:
        raise JobError(f"log path {log!r} must contain {JOB_VAR} (one log per job)")
    if not argv:
        raise JobError("no command to run")
    logs = [Path(log.replace(JOB_VAR, str(i))) for i in range(1, nj + 1)]
    logs[0].parent.mkdir(parents=True, exist_ok=True)
    running_at_once = min(nj, max_parallel or nj)
    env = job_env(running_at_once) if env is None else dict(env)
    if cmd:
        _run_launcher(shlex.split(cmd), argv, nj, log, logs, env)
    else:
        _run_local(argv, logs, env, running_at_once)
    return logs


def failed_logs(logs: Sequence[Path]) -> list[Path]:
    """The logs among ``logs`` whose job did not end with code 0 (or did not end at all).

    Returns:
        Those paths, in the given order.
    """
    bad = []
    for p in logs:
        try:
            codes = _ENDED.findall(p.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            codes = []
        if not codes or codes[-1] != "0":
            bad.append(p)
    return bad


def merge_embeddings(
    parts: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    expected_ids: Sequence[str] | None = None,
) -> Path:
    """Concatenate the ``ids.txt`` + ``embeddings.npy`` of ``parts`` (in that order) into
    ``out_dir``, writing both files atomically.

    Returns:
        ``out_dir``.

    Raises:
        JobError: a part lacks a file, its ids and rows disagree, dims differ between parts, an
            id repeats, or the merged ids differ from ``expected_ids`` (the first difference is
            named).
    """
    if not parts:
        raise JobError(f"{out_dir}: no parts to merge")
    all_ids: list[str] = []
    arrays: list[np.ndarray] = []
    for p in map(Path, parts):
        ids_path, emb_path = p / "ids.txt", p / "embeddings.npy"
        if not ids_path.is_file() or not emb_path.is_file():
            raise JobError(f"{p}: missing ids.txt or embeddings.npy (did its job finish?)")
        ids = ids_path.read_text(encoding="utf-8").split()
        emb = np.load(emb_path, allow_pickle=False)
        if emb.ndim != 2 or emb.shape[0] != len(ids):
            raise JobError(f"{emb_path}: shape {emb.shape} does not match {len(ids)} ids")
        if arrays and emb.shape[1] != arrays[0].shape[1]:
            raise JobError(
                f"{emb_path}: dim {emb.shape[1]}, but earlier parts have {arrays[0].shape[1]}"
            )
        all_ids += ids
        arrays.append(emb)
    seen: set[str] = set()
    for i in all_ids:
        if i in seen:
            raise JobError(f"{out_dir}: id {i!r} is in more than one part")
        seen.add(i)
    if expected_ids is not None and list(expected_ids) != all_ids:
        exp = list(expected_ids)
        k = next(
            (i for i, (a, b) in enumerate(zip(exp, all_ids, strict=False)) if a != b),
            min(len(exp), len(all_ids)),
        )
        got = all_ids[k] if k < len(all_ids) else "<end>"
        want = exp[k] if k < len(exp) else "<end>"
        raise JobError(
            f"{out_dir}: merged parts have {len(all_ids)} ids, expected {len(exp)}; "
            f"row {k} is {got!r}, expected {want!r}"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    merged = np.concatenate(arrays, axis=0)
    _atomic_write(out / "embeddings.npy", lambda fh: np.save(fh, merged, allow_pickle=False))
    _atomic_write(out / "ids.txt", lambda fh: fh.write("".join(f"{i}\n" for i in all_ids).encode()))
    return out


# ------------------------------------------------------------------------------ helpers
def _header(argv: Sequence[str]) -> str:
    return f"# {shlex.join(argv)}\n# Started at {time.strftime('%c')}\n#\n"


def _footer(rc: int, elapsed: float) -> str:
    return (
        f"# Accounting: time={int(round(elapsed))} threads=1\n"
        f"# Ended (code {rc}) at {time.strftime('%c')}, elapsed time {int(round(elapsed))} seconds\n"
    )


def _run_local(argv: Sequence[str], logs: list[Path], env: dict[str, str], at_once: int) -> None:
    pending = list(range(1, len(logs) + 1))
    running: dict[int, tuple[subprocess.Popen, object, float]] = {}
    codes: dict[int, int] = {}
    try:
        while pending or running:
            while pending and len(running) < at_once:
                job = pending.pop(0)
                args = substitute_job(argv, job)
                fh = open(logs[job - 1], "w", encoding="utf-8")  # noqa: SIM115 (closed below)
                fh.write(_header(args))
                fh.flush()
                try:
                    proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, env=env)
                except OSError as exc:
                    fh.write(f"cannot start: {exc}\n{_footer(127, 0.0)}")
                    fh.close()
                    codes[job] = 127
                    continue
                running[job] = (proc, fh, time.monotonic())
            for job, (proc, fh, t0) in list(running.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                fh.write(_footer(rc, time.monotonic() - t0))  # type: ignore[attr-defined]
                fh.close()  # type: ignore[attr-defined]
                codes[job] = rc
                del running[job]
            if running:
                time.sleep(0.02)
    except BaseException:
        for proc, fh, _ in running.values():
            proc.terminate()
            proc.wait()
            fh.close()  # type: ignore[attr-defined]
        raise
    failed = [logs[j - 1] for j in sorted(codes) if codes[j] != 0]
    if failed:
        raise JobError(
            f"{len(failed)} of {len(logs)} jobs failed; see {failed[0]}"
            + (f" (and {', '.join(map(str, failed[1:]))})" if len(failed) > 1 else ""),
            failed,
        )


def _run_launcher(
    launcher: list[str],
    argv: Sequence[str],
    nj: int,
    log: str,
    logs: list[Path],
    env: dict[str, str],
) -> None:
    full = [*launcher, f"{JOB_VAR}=1:{nj}", log, *argv]
    try:
        proc = subprocess.run(full, env=env)
    except OSError as exc:
        raise JobError(f"cannot run launcher {shlex.join(launcher)}: {exc}") from exc
    failed = failed_logs(logs)
    if proc.returncode != 0 or failed:
        where = failed or logs
        raise JobError(
            f"launcher {shlex.join(launcher)} exited {proc.returncode}; "
            f"{len(failed)} of {nj} jobs did not end with code 0; see {where[0]}",
            where,
        )


def _atomic_write(path: Path, write) -> None:  # noqa: ANN001 (a callable taking a binary file)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
