"""Tests of the helpers every preparer shares (``data_prep/__init__.py``)."""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep import (
    CorpusWarning,
    PrepReport,
    SkipLog,
    existing_duration,
    parse_list,
    ratios_arg,
    run_preparer,
    safe_id,
)
from speechx.errors import DataDirError


def test_parse_list_and_safe_id() -> None:
    assert parse_list(None) is None
    assert parse_list("nl,en de") == ["nl", "en", "de"]
    assert parse_list(["nl en", "nl,fr", ""]) == ["nl", "en", "fr"]
    assert safe_id("a b/c:d-e_f.g") == "a_b_c_d-e_f.g"


def test_ratios_arg() -> None:
    assert ratios_arg("0.8,0.1,0.1") == [0.8, 0.1, 0.1]
    with pytest.raises(argparse.ArgumentTypeError, match="comma-separated numbers, got 'a,b'"):
        ratios_arg("a,b")


def test_existing_duration(tmp_path: Path) -> None:
    p = tmp_path / "a.wav"
    assert existing_duration(p) is None
    sf.write(p, np.zeros((8000, 2), np.float32), 16000)
    assert existing_duration(p) == pytest.approx(0.5)
    assert existing_duration(p, sample_rate=16000) is None  # stereo
    sf.write(p, np.zeros(8000, np.float32), 8000)
    assert existing_duration(p, sample_rate=16000) is None  # other rate
    assert existing_duration(p, sample_rate=8000) == pytest.approx(1.0)
    sf.write(p, np.zeros(0, np.float32), 8000)
    assert existing_duration(p) is None
    p.write_bytes(b"not audio")
    assert existing_duration(p) is None


def test_skip_log_warns_up_to_a_limit_and_lists_every_skip(tmp_path: Path) -> None:
    report = PrepReport(corpus="toy", out_dir="x")
    log = SkipLog(report, max_warnings=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(3):
            log.skip(f"u{i}", "bad", f"detail\t{i}\nmore")
    assert [w.category for w in caught] == [CorpusWarning, CorpusWarning]
    assert str(caught[0].message).startswith("toy: skipping u0: detail")
    assert "further 'bad' skips are not shown" in str(caught[1].message)
    assert report.skipped == {"bad": 3}
    lines = log.write(tmp_path / "local" / "skipped.tsv").read_text().splitlines()
    assert lines == ["utt\treason\tdetail", *(f"u{i}\tbad\tdetail {i} more" for i in range(3))]


def test_finish_and_run_preparer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = PrepReport(corpus="toy", out_dir="x", used=2)
    started = time.perf_counter()
    assert report.finish(started, json_path=tmp_path / "r.json", verbose=True) is report
    assert report.elapsed >= 0.0
    assert "toy: 2 clips used" in capsys.readouterr().out
    assert "elapsed" not in json.loads((tmp_path / "r.json").read_text())

    assert run_preparer(lambda: report, report_json=str(tmp_path / "again.json")) == 0
    assert "toy: 2 clips used" in capsys.readouterr().out
    assert json.loads((tmp_path / "again.json").read_text())["used"] == 2

    def fail() -> PrepReport:
        raise DataDirError("some/dir: broken")

    assert run_preparer(fail) == 1
    assert capsys.readouterr().err == "error: some/dir: broken\n"
