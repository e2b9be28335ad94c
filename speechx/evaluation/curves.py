"""Learning curves of several training runs side by side: a dev metric against steps and time.

Every trainer (``speechx distill``, ``train-asr``, ``pretrain``) logs its dev metrics to
``exp/<tag>/log/metrics.jsonl``, one record per evaluation, with the step and ``elapsed_s``, the
wall-clock seconds of training so far (over resumed runs too).  This module reads those records
for a few runs and draws them on one figure::

    curves = [load_curve("scratch=exp/a", "dev_recall@1"),
              load_curve("ctc init=exp/ctc+exp/b", "dev_recall@1")]
    plot_curves(curves, "dev_recall@1", "curves.png")
    print(curve_table(curves, "dev_recall@1", at_minutes=[10, 20, 30]))

A run spec is ``[LABEL=]EXP_DIR[+EXP_DIR...]``.  ``+`` chains the stages of one pipeline, such
as pretraining (or CTC training) followed by distillation: the metric comes from the stages that
log it (normally the last), and on the time axis each stage starts where the stages before it
ended, so a curve shows what the whole pipeline reached after so many minutes.  On the step axis
only the steps of the stage that logged the point count.

Runs logged before ``elapsed_s`` existed get their times from the timestamps of
``log/train.log`` (the ``... optimizer steps planned`` line starts the clock of each run, the
``step N`` lines give the times), to the second.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from speechx.errors import EvaluationError

#: metrics where lower is better are recognised by these parts of their names
LOWER_IS_BETTER = ("wer", "cer", "mer", "error", "loss", "distance")

_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)")
_STEP_LINE = re.compile(r" INFO step (\d+)\b")
_START_LINE = re.compile(r"optimizer steps planned")


@dataclass
class CurvePoint:
    """One dev evaluation: the stage's step, the pipeline's minutes (None: unknown), the value."""

    step: int
    minutes: float | None
    value: float


@dataclass
class RunCurve:
    """The dev curve of one run (or chain of runs).

    Attributes:
        label: the legend entry.
        stages: the exp dirs of the chain, in order.
        points: the evaluations that logged the metric, in order.
        stage_minutes: each stage's training minutes (None when unknown).
    """

    label: str
    stages: list[Path]
    points: list[CurvePoint] = field(default_factory=list)
    stage_minutes: list[float | None] = field(default_factory=list)

    @property
    def total_minutes(self) -> float | None:
        """Training minutes of the whole chain (None when a stage's time is unknown)."""
        if any(m is None for m in self.stage_minutes):
            return None
        return float(sum(m for m in self.stage_minutes if m is not None))


def lower_is_better(metric: str) -> bool:
    """Whether smaller values of ``metric`` are better (WER, CER, losses, xsim error)."""
    return any(part in metric.lower() for part in LOWER_IS_BETTER)


def parse_spec(spec: str) -> tuple[str, list[Path]]:
    """``[LABEL=]DIR[+DIR...]`` -> (label, dirs); the label defaults to the last dir's name.

    Raises:
        EvaluationError: an empty spec or an empty stage.
    """
    label, chain = spec.split("=", 1) if "=" in spec else ("", spec)
    parts = chain.split("+")
    if not all(p.strip() for p in parts):
        raise EvaluationError(f"run spec {spec!r}: expected [LABEL=]EXP_DIR[+EXP_DIR...]")
    dirs = [Path(p) for p in parts]
    return (label or dirs[-1].name), dirs


def load_curve(spec: str, metric: str) -> RunCurve:
    """The ``metric`` curve of a run spec (see the module docstring).

    Raises:
        EvaluationError: a stage without ``log/metrics.jsonl``, an unreadable record, or no
            stage that logged ``metric`` (the message lists the dev metrics that are there).
    """
    label, stages = parse_spec(spec)
    curve = RunCurve(label=label, stages=stages)
    offset: float | None = 0.0
    seen: set[str] = set()
    for stage in stages:
        records = _dev_records(stage)
        times = _log_times(stage) if any("elapsed_s" not in r for r in records) else {}
        for r in records:
            seen.update(k for k in r if k.startswith("dev_"))
            if metric not in r or not _finite(r[metric]):
                continue
            sec = r.get("elapsed_s", times.get(int(r["step"])))
            minutes = None if offset is None or sec is None else offset + float(sec) / 60.0
            curve.points.append(CurvePoint(int(r["step"]), minutes, float(r[metric])))
        minutes_here = _stage_minutes(stage)
        curve.stage_minutes.append(minutes_here)
        offset = None if offset is None or minutes_here is None else offset + minutes_here
    if not curve.points:
        known = ", ".join(sorted(seen)[:12]) or "none"
        raise EvaluationError(
            f"run {spec!r}: no dev record has {metric!r} (dev metrics logged: {known})"
        )
    return curve


def parse_reference(spec: str) -> tuple[str, float]:
    """``LABEL=VALUE`` (a level to compare against, e.g. the teacher's) -> ``(label, value)``."""
    label, sep, value = spec.rpartition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not sep or not label or not math.isfinite(number):
        raise EvaluationError(
            f"reference {spec!r}: expected LABEL=VALUE with a number, e.g. teacher=0.65"
        )
    return label, number


def curve_table(
    curves: Sequence[RunCurve],
    metric: str,
    *,
    at_minutes: Sequence[float] = (),
    references: Sequence[tuple[str, float]] = (),
) -> str:
    """A markdown table: per run, the last and best value (with its step and minute), the
    minutes trained, and the best value reached within each of ``at_minutes``; then one row per
    reference level (``references``: label and value, not a run).
    """
    low = lower_is_better(metric)
    head = ["run", "last", "best", "best at step", "best at min", "minutes"]
    head += [f"best within {m:g} min" for m in at_minutes]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in curves:
        best = (min if low else max)(c.points, key=lambda p: p.value)
        total = c.total_minutes
        cells = [
            c.label,
            f"{c.points[-1].value:.4f}",
            f"{best.value:.4f}",
            str(best.step),
            _fmt_min(best.minutes),
            _fmt_min(total),
        ]
        for limit in at_minutes:
            inside = [p.value for p in c.points if p.minutes is not None and p.minutes <= limit]
            cells.append(f"{(min if low else max)(inside):.4f}" if inside else "–")
        rows.append("| " + " | ".join(cells) + " |")
    for label, value in references:
        cells = [f"{label} (reference)", f"{value:.4f}", f"{value:.4f}"]
        rows.append("| " + " | ".join(cells + ["–"] * (len(head) - 3)) + " |")
    return "\n".join(rows) + "\n"


def curves_json(
    curves: Sequence[RunCurve], metric: str, references: Sequence[tuple[str, float]] = ()
) -> dict:
    """The curves as plain data (what ``speechx compare-runs --json`` writes)."""
    return {
        "metric": metric,
        "references": [{"label": label, "value": value} for label, value in references],
        "runs": [
            {
                "label": c.label,
                "stages": [str(s) for s in c.stages],
                "stage_minutes": c.stage_minutes,
                "points": [vars(p) for p in c.points],
            }
            for c in curves
        ],
    }


def plot_curves(
    curves: Sequence[RunCurve],
    metric: str,
    out_png: str | os.PathLike,
    *,
    title: str = "",
    references: Sequence[tuple[str, float]] = (),
) -> Path:
    """Draw ``metric`` against the step (left) and the pipeline's minutes (right), with each
    of ``references`` (label, value) as a dashed horizontal line on both.

    Returns:
        The PNG path (written atomically).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_step, ax_time) = plt.subplots(1, 2, figsize=(11, 4))
    for i, c in enumerate(curves):
        color = f"C{i % 10}"
        ax_step.plot(
            [p.step for p in c.points],
            [p.value for p in c.points],
            "o-",
            ms=3,
            color=color,
            label=c.label,
        )
        timed = [p for p in c.points if p.minutes is not None]
        if timed:
            ax_time.plot(
                [p.minutes for p in timed],
                [p.value for p in timed],
                "o-",
                ms=3,
                color=color,
                label=c.label,
            )
            # where the earlier stages of a chain ended
            if len(c.stages) > 1 and c.total_minutes is not None:
                for m in _cumulative(c.stage_minutes)[:-1]:
                    ax_time.axvline(m, color=color, lw=0.8, ls=":")
    for j, (label, value) in enumerate(references):
        for ax in (ax_step, ax_time):
            ax.axhline(value, color="0.3", lw=1.0, ls=("--", "-.", ":")[j % 3], label=label)
    ax_step.set_xlabel("step (of the stage that logged the point)")
    ax_time.set_xlabel("minutes of training (chained stages added)")
    for ax in (ax_step, ax_time):
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    ax_step.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, out)
    return out


# ------------------------------------------------------------------------------ helpers
def _dev_records(stage: Path) -> list[dict]:
    path = stage / "log" / "metrics.jsonl"
    if not path.is_file():
        raise EvaluationError(f"{path}: not found; is {stage} an experiment dir of speechx?")
    out = []
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvaluationError(f"{path}:{n}: not a JSON record ({exc.msg})") from None
        if isinstance(rec, dict) and rec.get("split") == "dev" and "step" in rec:
            out.append(rec)
    return out


def _stage_minutes(stage: Path) -> float | None:
    """Training minutes of a stage: its last ``elapsed_s``, else from train.log."""
    last = None
    for line in (stage / "log" / "metrics.jsonl").read_text("utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "elapsed_s" in rec:
            last = float(rec["elapsed_s"])
    if last is not None:
        return last / 60.0
    times = _log_times(stage)
    return max(times.values()) / 60.0 if times else None


def _log_times(stage: Path) -> dict[int, float]:
    """step -> seconds of training, from the timestamps of ``log/train.log`` (older runs)."""
    path = stage / "log" / "train.log"
    if not path.is_file():
        return {}
    times: dict[int, float] = {}
    base, start, last = 0.0, None, 0.0
    for line in path.read_text("utf-8", errors="replace").splitlines():
        m = _TIMESTAMP.match(line)
        if not m:
            continue
        ts = datetime.fromisoformat(m.group(1)).timestamp()
        if _START_LINE.search(line):
            base, start = last, ts  # a resumed run starts its own clock after the last one
            continue
        s = _STEP_LINE.search(line)
        if s and start is not None:
            last = base + ts - start
            times[int(s.group(1))] = last
    return times


def _cumulative(values: Sequence[float | None]) -> list[float]:
    out, total = [], 0.0
    for v in values:
        total += v or 0.0
        out.append(total)
    return out


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _fmt_min(m: float | None) -> str:
    return "–" if m is None else f"{m:.1f}"
