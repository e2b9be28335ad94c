"""Smoke test: speech-to-speech distillation through egs/fillets/run.sh (stages 4-6) on tiny
data dirs, a tiny random speech teacher (exp/demo/model) and a tiny random BERT text teacher;
a rerun of stage 4 encodes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from speechx.data.kaldi import KaldiDir
from speechx.distill.speech_teacher import speech_teacher_id
from speechx.models import build_encoder
from speechx.testing import make_kaldi_dir
from tests.teachers.conftest import make_tiny_bert

REPO = Path(__file__).resolve().parents[2]
LINES = ["de vis zwemt", "het water", "een grote blauwe zee", "de zee", "vis", "een vis"]

CONFIG = """
recipe:
  speech_langs: [nl]
  text_langs: [nl]
  synth_langs: []
data:
  speech_teacher: exp/demo/model
  target_fields: [speech]
  train: [data/fillets_nl_train, data/unlabeled_train]
  dev: [data/fillets_nl_dev]
  max_batch_seconds: 2
model:
  source: tiny
loss:
  weights: {cosine: 1.0, infonce: 0.5}
eval:
  field: text
max_steps: 4
eval_every: 2
save_every: 2
log_every: 1
"""


@pytest.mark.slow
def test_s2s_recipe_stages_4_to_6(tmp_path: Path) -> None:
    egs = tmp_path / "egs" / "fillets"
    (egs / "conf").mkdir(parents=True)
    for name in ("run.sh", "path.sh", "cmd.sh"):
        (egs / name).symlink_to(REPO / "egs" / "fillets" / name)
    (tmp_path / "recipes").symlink_to(REPO / "recipes")
    (egs / "conf" / "s2s_tiny.yaml").write_text(CONFIG, encoding="utf-8")
    data = egs / "data"
    for split, lines in (("train", LINES), ("dev", LINES[:3]), ("test", LINES[3:])):
        make_kaldi_dir(data / f"fillets_nl_{split}", n=len(lines), lang="nl", texts=lines,
                       seconds=(0.3, 0.4))  # fmt: skip
    unlabeled = make_kaldi_dir(data / "unlabeled_train", n=3, lang="nl", seconds=0.35)
    for name in ("text", "text.en"):
        (unlabeled / name).unlink()
    bert = make_tiny_bert(tmp_path / "bert")
    torch.manual_seed(0)
    teacher = build_encoder("tiny", 32).save_pretrained(egs / "exp" / "demo" / "model")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SPEECHX_CACHE": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
    }
    args = ["--config", "conf/s2s_tiny.yaml", "--teacher", f"hf:{bert}", "--nj", "1"]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["./run.sh", *args, *extra], cwd=egs, env=env, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc

    proc = run("--stage", "4")
    for stage in (4, 5, 6):
        assert f"Stage {stage}:" in proc.stdout
    sid = speech_teacher_id(teacher)
    for d in ("fillets_nl_train", "unlabeled_train", "fillets_nl_dev"):
        ids = (data / d / "teacher" / sid / "ids.txt").read_text().split()
        assert ids == KaldiDir.read(data / d).utt_ids
    assert not (data / "fillets_nl_test" / "teacher" / sid).exists()  # never trained on
    exp = egs / "exp" / "s2s_tiny"
    dev = [json.loads(x) for x in (exp / "log" / "metrics.jsonl").read_text().splitlines()]
    assert any("dev_speech_teacher_cos" in m for m in dev if m["split"] == "dev")
    doc = json.loads((exp / "results" / "retrieval.json").read_text())
    assert ("fillets_nl_test", "speech:nl", "text:nl") in {
        (r["set"], r["query"], r["target"]) for r in doc["results"]
    }

    again = run("--stage", "4", "--stop-stage", "4")
    assert "0 utterances encoded here" in again.stdout
    assert "3 of 3 dirs already up to date" in again.stdout
