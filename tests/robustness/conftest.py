"""Fixture builders of the bad-input catalogue: tiny models, a runner for the real CLI, and
checks that an error is one line naming the input, and that nothing written before changed.

Every bad input is built in ``tmp_path`` at test time; see README.md for the case table.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from speechx.cli import main
from speechx.testing import make_kaldi_dir

REPO = Path(__file__).resolve().parents[2]
EMBED_DIM = 8  # the tiny speech encoder's; the tiny BERT teacher's is 32


@dataclass(frozen=True)
class CliResult:
    """Exit status and the captured output of one ``speechx`` command."""

    code: int
    out: str
    err: str

    def error_lines(self) -> list[str]:
        """The stderr lines that report an error (``speechx <verb>: error: ...``)."""
        return [ln for ln in self.err.splitlines() if ": error: " in ln]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str | os.PathLike) -> CliResult:
    """Run ``speechx <argv>`` in this process (``speechx.cli.main``) and capture its output."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    got = capsys.readouterr()
    return CliResult(code, got.out, got.err)


def run_subprocess(*argv: str | os.PathLike, cwd: Path, prefix: tuple[str, ...] = ()) -> CliResult:
    """Run ``python -m speechx.cli <argv>`` as a user would, in its own process.

    ``prefix`` goes before the interpreter (e.g. a ``setpriv`` command dropping capabilities).
    """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "speechx.cli", *map(str, argv)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(res: CliResult, *needles: str) -> str:
    """Check the catalogue's error contract and return the error line.

    The exit status is non-zero, no traceback is shown, stderr holds exactly one error line,
    at most one other line that is not a log record, and the error line contains every one of
    ``needles`` (the input's name and the problem).
    """
    assert res.code != 0, f"expected a failure, got 0; stderr: {res.err}"
    assert "Traceback" not in res.err, res.err
    errors = res.error_lines()
    assert len(errors) == 1, f"expected one error line, got: {res.err!r}"
    other = [
        ln
        for ln in res.err.splitlines()
        if ln not in errors and " INFO " not in ln and " WARNING " not in ln and ln.strip()
    ]
    assert len(other) <= 1, f"stderr is more than an error plus a hint: {res.err!r}"
    for needle in needles:
        assert needle in errors[0], f"{needle!r} not in {errors[0]!r}"
    return errors[0]


def snapshot(*roots: Path) -> dict[str, bytes]:
    """Every file under ``roots`` (or the file itself) -> its bytes."""
    out: dict[str, bytes] = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            out[str(f)] = f.read_bytes()
    return out


def _load_helper(rel: str, name: str):
    """A module of the shared test helpers (tests/ is not a package, so load it by path)."""
    spec = importlib.util.spec_from_file_location(name, REPO / rel)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny wav2vec2 speech encoder (embed_dim 8, 16 kHz).  Do not modify it."""
    helpers = _load_helper("tests/models/conftest.py", "_robust_model_helpers")
    return helpers.tiny_encoder(embed_dim=EMBED_DIM).save_pretrained(
        tmp_path_factory.mktemp("robust_model") / "model"
    )


@pytest.fixture
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model dir, for tests that damage it."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT teacher dir (hidden 32, 64 positions) for ``--teacher hf:<dir>``."""
    helpers = _load_helper("tests/teachers/conftest.py", "_robust_teacher_helpers")
    return helpers.make_tiny_bert(tmp_path_factory.mktemp("robust_bert") / "bert")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A valid three-utterance Kaldi dir with wavs under it (see speechx.testing)."""
    return make_kaldi_dir(tmp_path / "data", n=3)
