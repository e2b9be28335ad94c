"""egs/fillets/run_pretrain.sh: the pretraining stage on tiny data dirs (the data stages are
recipes/distill.sh's, tested there), skipped once done, and the shipped configs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pretrain_helpers import make_audio_dir, tiny_yaml

from speechx.distill import load_config
from speechx.pretrain import load_pretrain_config

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "egs" / "fillets" / "conf"


def _run(egs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(
        ["./run_pretrain.sh", "--config", "conf/tiny.yaml", *args],
        cwd=egs,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_pretrain_stage_runs_once(tmp_path: Path) -> None:
    egs = tmp_path / "egs" / "fillets"
    (egs / "conf").mkdir(parents=True)
    for name in ("run_pretrain.sh", "path.sh"):
        (egs / name).symlink_to(REPO / "egs" / "fillets" / name)
    (tmp_path / "recipes").symlink_to(REPO / "recipes")
    train = make_audio_dir(egs / "data" / "fillets_nl_train", 4)
    text = "recipe: {speech_langs: [nl], synth_langs: []}\n" + tiny_yaml(
        Path("data") / train.name, steps=2, every=2
    )
    (egs / "conf" / "tiny.yaml").write_text(text, encoding="utf-8")

    first = _run(egs, "--stage", "4")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "Stage 4: pretrain -> exp/tiny" in first.stdout
    model = egs / "exp" / "tiny" / "model"
    assert (model / ".done").is_file() and (model / "model.safetensors").is_file()
    assert (egs / "exp" / "tiny" / "log" / "train.log").is_file()

    again = _run(egs, "--stage", "4")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already pretrained" in again.stdout
    assert "step 1" not in again.stderr  # nothing was trained the second time


def test_shipped_configs_train_only_on_train_splits() -> None:
    for name in ("pretrain_w2v2", "pretrain_fbank"):
        cfg = load_pretrain_config(CONF / f"{name}.yaml")
        assert cfg.data.train and all(d.endswith("_train") for d in cfg.data.train), name
        assert {"data/fillets_nl_train", "data/synth_nl_train"} <= set(cfg.data.train)
        assert all(d.endswith("_dev") for d in cfg.data.dev), name
    for name, source in (
        ("scratch_pretrained", "exp/pretrain_w2v2/model"),
        ("scratch_fbank_pretrained", "exp/pretrain_fbank/model"),
    ):
        cfg = load_config(CONF / f"{name}.yaml")
        base = load_config(CONF / "scratch.yaml")
        assert cfg.model.source == source
        # the same run as conf/scratch.yaml but for the initial weights
        assert cfg.data == base.data and cfg.optim == base.optim and cfg.max_steps == base.max_steps
