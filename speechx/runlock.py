"""An exclusive lock on an experiment directory, held for the length of a run.

Two runs writing the same ``exp/<tag>`` would interleave checkpoints, logs and the model
directory.  A run therefore takes ``fcntl.flock`` on ``<dir>/.lock`` and keeps it until it
ends; the kernel drops the lock when the process dies, however it dies, so a SIGKILLed run
never blocks its own ``--resume``.  The lock file records who holds it (pid, host, start time,
command line) so that the second run can say whom it is waiting for::

    exp/x is in use by another run (pid 1234 on host1, started 2025-01-01T12:00:00+00:00:
    speechx distill ...); wait for it or use another --exp-dir

Runs nest: a process started under a holder (``python -m speechx.runlock DIR -- CMD``, or a
trainer started by a recipe stage that holds the lock) proceeds without taking the lock again,
because the holder exports its pid for that directory in ``$SPEECHX_RUNLOCK_HELD``.  A
process that already holds the lock may also take it again (re-entrant).

``flock`` is advisory and local: it works on local disks and on most modern NFS mounts
(Linux >= 2.6.12 emulates it with POSIX locks there), not on every network file system.

Example:
    >>> with RunLock("exp/x"):               # doctest: +SKIP
    ...     train(...)
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from speechx.errors import SpeechxError

#: The lock file inside the locked directory.
LOCK_NAME = ".lock"
#: Environment variable through which a holder tells its child processes which directories
#: it holds: a JSON object ``{"/abs/dir": pid}``.
HELD_ENV = "SPEECHX_RUNLOCK_HELD"


class RunLockError(SpeechxError, RuntimeError):
    """The directory is in use by another run (the message names it and the holder)."""


@dataclass(frozen=True)
class LockOwner:
    """Who holds a lock, as its lock file records it.

    Attributes:
        pid: process id of the holder.
        host: host name of the holder.
        started: ISO 8601 time the lock was taken.
        command: the holder's command line.
    """

    pid: int
    host: str
    started: str
    command: str

    def describe(self) -> str:
        """``pid 1234 on host, started <time>: <command>`` (the command shortened)."""
        cmd = self.command if len(self.command) <= 120 else self.command[:117] + "..."
        return f"pid {self.pid} on {self.host}, started {self.started}" + (
            f": {cmd}" if cmd else ""
        )


def _held_by_ancestors() -> dict[str, int]:
    try:
        held = json.loads(os.environ.get(HELD_ENV, "") or "{}")
    except ValueError:
        return {}
    if not isinstance(held, dict):
        return {}
    return {str(k): int(v) for k, v in held.items() if isinstance(v, int)}


class RunLock:
    """An exclusive, process-lifetime lock on ``directory`` (see the module docstring).

    Args:
        directory: the directory to lock (created if missing).
        option: how the user names this directory on the command line, for the error
            message (``--exp-dir``, ``--audio-dir``...).
    """

    def __init__(self, directory: str | os.PathLike, *, option: str = "--exp-dir") -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.option = option
        self._fd: int | None = None
        #: True when the lock is held by this process or an ancestor, so this one did not take it.
        self.nested = False

    @property
    def held(self) -> bool:
        """Whether this object holds the lock itself (not nested)."""
        return self._fd is not None

    def owner(self) -> LockOwner | None:
        """The holder recorded in the lock file (the last one, if nobody holds it now), or
        None when the file is missing or unreadable."""
        try:
            rec = json.loads(self.path.read_text(encoding="utf-8"))
            return LockOwner(
                int(rec["pid"]), str(rec["host"]), str(rec["started"]), str(rec["command"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def acquire(self) -> RunLock:
        """Take the lock without waiting.

        Returns:
            ``self``; :attr:`nested` is True when this process or an ancestor that exported
            :data:`HELD_ENV` already holds it (then nothing is taken, and :meth:`release`
            does nothing).

        Raises:
            RunLockError: another run holds the lock (its pid, host, start and command are
                named), or the lock file cannot be created.
        """
        if self._fd is not None or self.nested:
            return self
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            raise RunLockError(f"{self.path}: cannot create the run lock: {exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunLockError(f"{self.path}: cannot lock: {exc}") from None
            owner = self.owner()
            if owner is not None and self._is_ours(owner):
                self.nested = True
                return self
            who = owner.describe() if owner else "holder unknown"
            raise RunLockError(
                f"{self.directory} is in use by another run ({who}); wait for it or use "
                f"another {self.option}"
            ) from None
        owner = LockOwner(
            pid=os.getpid(),
            host=socket.gethostname(),
            started=_dt.datetime.now(_dt.UTC).astimezone().isoformat(timespec="seconds"),
            command=shlex.join(sys.argv),
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(asdict(owner)) + "\n").encode("utf-8"), 0)
        self._fd = fd
        return self

    def _is_ours(self, owner: LockOwner) -> bool:
        if owner.host != socket.gethostname():
            return False
        if owner.pid == os.getpid():
            return True
        key = str(self.directory.resolve())
        return _held_by_ancestors().get(key) == owner.pid

    def release(self) -> None:
        """Let the lock go (a no-op when nested or not held).  The file stays."""
        fd, self._fd = self._fd, None
        self.nested = False
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def child_env(self, env: dict[str, str] | None = None) -> dict[str, str]:
        """``env`` (default ``os.environ``) plus :data:`HELD_ENV` naming this lock, for child
        processes that should run inside it."""
        out = dict(os.environ if env is None else env)
        held = _held_by_ancestors()
        held[str(self.directory.resolve())] = os.getpid()
        out[HELD_ENV] = json.dumps(held)
        return out

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "held" if self.held else "nested" if self.nested else "free"
        return f"RunLock({str(self.directory)!r}, {state})"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m speechx.runlock DIR -- COMMAND ...``: run COMMAND holding DIR's lock.

    For recipe stages (e.g. evaluation into ``exp/<tag>/results``): speechx trainers started
    inside see the lock as their own.  COMMAND inherits the locked descriptor, so the lock is
    held until both this process and COMMAND have ended.

    Returns:
        COMMAND's exit status; 2 (and one line on stderr) when DIR is in use; 127 when
        COMMAND cannot be started.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" in args:
        at = args.index("--")
        head, cmd = args[:at], args[at + 1 :]
    else:
        head, cmd = args[:1], args[1:]
    if len(head) != 1 or not cmd:
        print("usage: python -m speechx.runlock DIR -- COMMAND [ARG ...]", file=sys.stderr)
        return 2
    lock = RunLock(head[0])
    try:
        lock.acquire()
    except RunLockError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        # the command inherits the locked descriptor: the lock lasts while either one lives
        fds = (lock._fd,) if lock._fd is not None else ()
        return subprocess.call(cmd, env=lock.child_env(), pass_fds=fds)
    except OSError as exc:
        print(f"error: cannot run {cmd[0]!r}: {exc}", file=sys.stderr)
        return 127
    finally:
        lock.release()


if __name__ == "__main__":
    sys.exit(main())
