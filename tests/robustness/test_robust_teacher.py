"""Catalogue, text teachers: an empty text, a very long text, and a language the teacher was
not trained on are embedded (callers rely on one row per text) with a one-line warning naming
the text or the language; the teacher stage gives an empty transcript a NaN row instead."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from speechx.errors import TeacherWarning
from speechx.teachers import load_teacher
from speechx.teachers.base import check_language_coverage
from speechx.testing import make_kaldi_dir
from tests.robustness.conftest import run_cli


def test_teacher_empty_string_warns(tiny_bert: Path) -> None:
    teacher = load_teacher(f"hf:{tiny_bert}")
    with pytest.warns(TeacherWarning, match=r"1 empty text\(s\) \(#1\)"):
        emb = teacher.encode(["the fish", "", "the sea"])
    assert emb.shape == (3, 32) and np.isfinite(emb).all()


def test_teacher_very_long_text_cli(
    tmp_path: Path, tiny_bert: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A transcript longer than the model's 64 positions: truncated with a one-line warning
    naming it (it used to crash inside BERT with a tensor-size RuntimeError)."""
    long_text = "the fish swims in the water " * 200
    kd = make_kaldi_dir(tmp_path / "data", n=3, texts=["a big blue sea", long_text, "the fish"])
    res = run_cli(
        capsys,
        "teacher-embed",
        kd,
        "--teacher",
        f"hf:{tiny_bert}",
        "--cache-dir",
        tmp_path / "cache",
        "--fields",
        "text",
    )
    assert res.code == 0, res.err
    warns = [ln for ln in res.err.splitlines() if ": warning: " in ln]
    assert len(warns) == 1 and "Traceback" not in res.err
    assert "'the fish swims in the water the fish swi..." in warns[0]
    assert "1,202 tokens long; only its first 64 are embedded" in warns[0]
    (tdir,) = (kd / "teacher").iterdir()
    assert np.isfinite(np.load(tdir / "text.npy")).all()


def test_teacher_uncovered_language_use() -> None:
    """mUSE covers 16 languages; Swedish is not one of them (the one mUSE case: no encode)."""
    teacher = load_teacher("use-multilingual")
    with pytest.warns(TeacherWarning, match=r"language 'sv' \(in data/fillets_sv\) is not one"):
        missing = check_language_coverage(teacher, ["nl", "nl-BE", "sv", "en"], "data/fillets_sv")
    assert missing == ["sv"]


def test_teacher_uncovered_language_hf(tiny_bert: Path) -> None:
    teacher = load_teacher(f"hf:{tiny_bert}", languages=("en", "nl"))
    with pytest.warns(TeacherWarning, match="language 'bg'"):
        assert check_language_coverage(teacher, ["bg", "nl_NL"]) == ["bg"]
    unknown = load_teacher(f"hf:{tiny_bert}")  # languages unknown: nothing to check
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_language_coverage(unknown, ["bg"]) == []
