"""Make ``import data_prep`` find the repository package while these tests run; shared fixtures.

``tests/conftest.py`` puts ``tests/`` on ``sys.path``, where this directory would be found as a
namespace package called ``data_prep`` and shadow the real one (the editable install's finder
runs after the path finder).  ``python -m pytest`` is unaffected because it puts the repository
root first; ``pytest`` alone needs this.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
_cached = sys.modules.get("data_prep")
if _cached is not None and getattr(_cached, "__file__", None) is None:
    del sys.modules["data_prep"]  # a namespace package picked up from tests/


# ----------------------------------------------------------------------------- shared fixtures


@pytest.fixture
def sentence_table(tmp_path: Path) -> Callable[[str], Path]:
    """Write a sentence table at ``<tmp>/data/local/fillets_sentences.tsv``; returns its path."""

    def write(text: str) -> Path:
        p = tmp_path / "data" / "local" / "fillets_sentences.tsv"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        return p

    return write


@pytest.fixture
def corpus_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Callable[[str, Callable[[list[str]], int], Callable[..., object]], None]:
    """Check the ``python -m data_prep.<corpus>`` face of a preparer of a corpus on disk.

    ``check(name, main, prepare)`` asserts that ``name`` is registered as ``prepare``, that
    ``--help`` exits 0 and names ``--corpus-dir``, and that a missing corpus exits 1 with
    "not found" on stderr.
    """

    def check(name: str, main: Callable[[list[str]], int], prepare: Callable[..., object]) -> None:
        from data_prep import get_preparer

        assert get_preparer(name) is prepare
        with pytest.raises(SystemExit) as exc:
            main(["--help"])
        assert exc.value.code == 0
        assert "--corpus-dir" in capsys.readouterr().out
        missing = ["--corpus-dir", str(tmp_path / "nope"), "--out-dir", str(tmp_path / "nope_out")]
        assert main(missing) == 1
        assert "not found" in capsys.readouterr().err

    return check
