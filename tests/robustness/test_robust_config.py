"""Catalogue, training configs: ``speechx distill`` and ``speechx train-asr`` reject a bad YAML
config in one line that names the file and the key, before anything is written; an existing
experiment dir is left byte-identical."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.robustness.conftest import assert_one_line_error, run_cli, snapshot

# case -> (YAML text, what the error line must say after the file name)
CONFIG_ERRORS: dict[str, tuple[str, str]] = {
    "unknown_key": (
        "data:\n  train: [d]\n  max_durations: 5\nmax_steps: 1\n",
        "'data.max_durations'",
    ),
    "wrong_type": ("data:\n  train: [d]\nmax_steps: many\n", "max_steps: expected an integer"),
    "missing_required": ("max_steps: 1\n", "data.train: no training data dir given"),
    "invalid_yaml": ("data: [d\nmax_steps: 1\n", "not valid YAML"),
}


@pytest.mark.parametrize("verb", ["distill", "train-asr"])
@pytest.mark.parametrize("case", sorted(CONFIG_ERRORS))
def test_config_errors(
    case: str, verb: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, problem = CONFIG_ERRORS[case]
    cfg = tmp_path / f"{case}.yaml"
    cfg.write_text(text, "utf-8")
    exp = tmp_path / "exp"
    (exp / "checkpoints").mkdir(parents=True)
    (exp / "checkpoints" / "ckpt-5.pt").write_bytes(b"an earlier run's checkpoint")
    (exp / "config.yaml").write_text("max_steps: 5\n", "utf-8")
    before = snapshot(exp)
    res = run_cli(capsys, verb, "--config", cfg, "--exp-dir", exp)
    assert_one_line_error(res, f"speechx {verb}: error: {cfg}: ", problem)
    assert snapshot(exp) == before


def test_config_bad_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A --train-args override of the wrong type names the override."""
    cfg = tmp_path / "ok.yaml"
    cfg.write_text("data:\n  train: [d]\nmax_steps: 1\n", "utf-8")
    res = run_cli(
        capsys,
        "distill",
        "--config",
        cfg,
        "--exp-dir",
        tmp_path / "e",
        "--train-args",
        "optim.lr_head=fast",
    )
    assert_one_line_error(res, "overrides optim.lr_head=fast", "optim.lr_head: expected a number")
    assert not (tmp_path / "e").exists()
