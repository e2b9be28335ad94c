"""Learning curves across runs: speechx.evaluation.curves and `speechx compare-runs`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechx.cli import main
from speechx.errors import EvaluationError
from speechx.evaluation.curves import curve_table, load_curve, lower_is_better, parse_spec
from tests.distill.distill_helpers import make_data  # noqa: F401, F811  (a pytest fixture)


def _run(d: Path, dev: list[tuple[int, float, float]], metric: str = "dev_recall@1") -> Path:
    """An exp dir whose metrics.jsonl has dev records (step, elapsed seconds, value)."""
    (d / "log").mkdir(parents=True)
    lines = [{"step": 1, "split": "train", "loss": 1.0, "elapsed_s": 1.0}]
    lines += [{"step": s, "split": "dev", metric: v, "elapsed_s": t} for s, t, v in dev]
    (d / "log" / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return d


def test_a_chain_starts_each_stage_where_the_previous_ended(tmp_path: Path) -> None:
    pre = _run(tmp_path / "ctc", [(100, 300.0, 0.5)], metric="dev_cer")
    dist = _run(tmp_path / "distill", [(50, 60.0, 0.1), (100, 120.0, 0.3)])
    c = load_curve(f"ctc then distill={pre}+{dist}", "dev_recall@1")
    assert c.label == "ctc then distill"
    # the CTC stage logged no recall: its 5 minutes only shift the distillation's clock
    assert [(p.step, p.minutes, p.value) for p in c.points] == [(50, 6.0, 0.1), (100, 7.0, 0.3)]
    assert c.total_minutes == pytest.approx(7.0)


def test_table_best_within_minutes_and_direction(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", [(10, 60.0, 0.2), (20, 600.0, 0.4), (30, 1200.0, 0.35)])
    b = _run(tmp_path / "b", [(10, 60.0, 0.9), (20, 120.0, 0.5)], metric="dev_wer")
    table = curve_table([load_curve(str(a), "dev_recall@1")], "dev_recall@1", at_minutes=[5, 15])
    row = table.splitlines()[2].rstrip(" |").split(" | ")
    # last, best, best step, best minute, minutes, within 5 min, within 15 min
    assert row[1:8] == ["0.3500", "0.4000", "20", "10.0", "20.0", "0.2000", "0.4000"]
    assert lower_is_better("dev_wer") and not lower_is_better("dev_recall@1")
    wer = curve_table([load_curve(str(b), "dev_wer")], "dev_wer").splitlines()[2]
    assert " | 0.5000 | 20 | " in wer  # the lowest WER is the best


def test_times_of_older_runs_come_from_train_log(tmp_path: Path) -> None:
    d = tmp_path / "old"
    (d / "log").mkdir(parents=True)
    recs = [
        {"step": 50, "split": "dev", "dev_recall@1": 0.1},
        {"step": 100, "split": "dev", "dev_recall@1": 0.2},
    ]
    (d / "log" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (d / "log" / "train.log").write_text(
        "2026-01-01 10:00:00 INFO loss X; 100 optimizer steps planned\n"
        "2026-01-01 10:01:00 INFO step 50 dev: recall@1=0.1\n"
        # resumed: the gap between the runs is not training time
        "2026-01-01 11:00:00 INFO loss X; 100 optimizer steps planned\n"
        "2026-01-01 11:00:30 INFO step 100 dev: recall@1=0.2\n"
    )
    c = load_curve(str(d), "dev_recall@1")
    assert [p.minutes for p in c.points] == [1.0, 1.5]


def test_errors_name_the_run_and_what_is_there(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", [(10, 60.0, 0.2)])
    with pytest.raises(
        EvaluationError, match=r"no dev record has 'dev_wer' \(dev metrics logged: dev_recall@1\)"
    ):
        load_curve(str(a), "dev_wer")
    with pytest.raises(EvaluationError, match="metrics.jsonl: not found"):
        load_curve(str(tmp_path / "missing"), "dev_recall@1")
    with pytest.raises(EvaluationError, match="expected"):
        parse_spec(f"x={a}+")


def test_cli_writes_table_png_and_json(tmp_path: Path, capsys) -> None:
    a = _run(tmp_path / "a", [(10, 60.0, 0.2), (20, 120.0, 0.4)])
    b = _run(tmp_path / "b", [(10, 30.0, 0.1)])
    ctc = _run(tmp_path / "ctc", [(5, 60.0, 0.3)], metric="dev_cer")
    out, js = tmp_path / "plots" / "c.png", tmp_path / "plots" / "c.json"
    rc = main(
        [
            "compare-runs",
            f"A={a}",
            f"B={ctc}+{b}",
            "--out",
            str(out),
            "--json",
            str(js),
            "--at-minutes",
            "1.5",
            "--reference",
            "teacher=0.65",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "| A | 0.4000 | 0.4000 | 20 | 2.0 | 2.0 | 0.2000 |" in text
    # B: 1 minute of CTC (no recall logged), then b's point at 1.5 minutes
    assert "| B | 0.1000 | 0.1000 | 10 | 1.5 | 1.5 | 0.1000 |" in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(js.read_text())
    assert [r["label"] for r in doc["runs"]] == ["A", "B"]
    assert "| teacher (reference) | 0.6500 | 0.6500 | – | – | – | – |" in text
    assert doc["references"] == [{"label": "teacher", "value": 0.65}]
    assert main(["compare-runs", str(tmp_path / "nope")]) == 2
    assert main(["compare-runs", str(a), "--reference", "teacher"]) == 2
    assert main(["compare-runs", str(a), "--reference", "teacher=inf"]) == 2
    assert "reference 'teacher': expected LABEL=VALUE" in capsys.readouterr().err


def test_a_real_distillation_logs_its_clock(tmp_path: Path, make_data) -> None:  # noqa: F811
    from speechx.distill import train_distill
    from tests.distill.distill_helpers import tiny_config

    d = make_data("a", 4)
    train_distill(tiny_config([d], [d], max_steps=4, eval_every=2), tmp_path / "exp")
    c = load_curve(str(tmp_path / "exp"), "dev_recall@1")
    mins = [p.minutes for p in c.points]
    assert [p.step for p in c.points] == [2, 4]
    assert all(m is not None and m >= 0 for m in mins) and mins[0] <= mins[1]
