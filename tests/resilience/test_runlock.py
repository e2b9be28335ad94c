"""Run locks (issue 10 section 4): two runs on the same exp dir make the second one refuse
with one clear line; a killed holder does not block the next run; runs nest under a holder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from resilience_helpers import distill_config_yaml, make_train_dir, worker_env

from speechx.cli import main as cli_main
from speechx.runlock import HELD_ENV, LOCK_NAME, RunLock, RunLockError


def _start_holder(exp: Path, tmp_path: Path) -> subprocess.Popen:
    """A real process that takes ``exp``'s lock, says so in a file, and sleeps."""
    ready = tmp_path / "ready"
    code = textwrap.dedent(
        f"""
        import pathlib, time
        from speechx.runlock import RunLock
        RunLock({str(exp)!r}).acquire()
        pathlib.Path({str(ready)!r}).write_text("1")
        time.sleep(120)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env=worker_env())
    end = time.monotonic() + 30
    while not ready.is_file():
        assert proc.poll() is None and time.monotonic() < end, "the holder did not start"
        time.sleep(0.02)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_second_run_refuses_naming_the_first_then_runs_once_it_is_killed(tmp_path: Path) -> None:
    exp = tmp_path / "exp" / "x"
    holder = _start_holder(exp, tmp_path)
    try:
        with pytest.raises(RunLockError) as err:
            RunLock(exp).acquire()
        msg = str(err.value)
        assert "\n" not in msg
        assert msg.startswith(f"{exp} is in use by another run (pid {holder.pid} on ")
        assert msg.endswith("; wait for it or use another --exp-dir")
        assert "started 20" in msg and "-c" in msg
        owner = RunLock(exp).owner()
        assert owner is not None and owner.pid == holder.pid
    finally:
        _stop(holder)
    # the kernel dropped the SIGKILLed holder's lock: the next run takes it at once
    with RunLock(exp) as lock:
        assert lock.held and not lock.nested
        assert json.loads((exp / LOCK_NAME).read_text())["pid"] == os.getpid()
        with RunLock(exp) as again:  # re-entrant in one process
            assert again.nested and not again.held
        assert lock.held
    assert not lock.held
    RunLock(exp).acquire().release()


@pytest.mark.parametrize("verb", ["distill", "train-asr"])
def test_training_verbs_refuse_a_locked_exp_dir(
    verb: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_train_dir(tmp_path / "data", n=3)
    if verb == "distill":
        conf = distill_config_yaml(tmp_path / "c.yaml", data)
    else:
        conf = tmp_path / "asr.yaml"
        conf.write_text(
            yaml.safe_dump(
                {
                    "data": {"train": [str(data)], "dev": []},
                    "model": {"source": "tiny", "embed_dim": 8},
                    "max_steps": 1,
                }
            )
        )
    exp = tmp_path / "exp"
    holder = _start_holder(exp, tmp_path)
    try:
        status = cli_main([verb, "--config", str(conf), "--exp-dir", str(exp)])
    finally:
        _stop(holder)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err[-1].startswith(
        f"speechx {verb}: error: {exp} is in use by another run (pid {holder.pid} on "
    )
    assert not (exp / "log").exists() and not (exp / "config.yaml").exists(), "nothing written"


def test_commands_under_a_holder_nest_and_others_do_not(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    probe = textwrap.dedent(
        f"""
        import sys
        from speechx.runlock import RunLock
        lock = RunLock({str(exp)!r}).acquire()
        sys.exit(0 if lock.nested and not lock.held else 3)
        """
    )
    wrap = [sys.executable, "-m", "speechx.runlock", str(exp), "--"]
    env = worker_env()
    assert subprocess.run([*wrap, sys.executable, "-c", probe], env=env).returncode == 0
    # a status passes through; the lock is free again afterwards
    assert subprocess.run([*wrap, sys.executable, "-c", "exit(7)"], env=env).returncode == 7
    RunLock(exp).acquire().release()
    # a stale or foreign HELD_ENV does not let a process in
    holder = _start_holder(exp, tmp_path)
    try:
        bad = dict(env, **{HELD_ENV: json.dumps({str(exp.resolve()): holder.pid + 1})})
        out = subprocess.run(
            [*wrap, sys.executable, "-c", "exit(0)"], env=bad, capture_output=True, text=True
        )
    finally:
        _stop(holder)
    assert out.returncode == 2
    assert f"is in use by another run (pid {holder.pid} " in out.stderr
