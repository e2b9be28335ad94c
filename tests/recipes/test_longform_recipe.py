"""Smoke test: egs/fillets/run_longform.sh end to end on tiny test sets, a tiny encoder and a
tiny random BERT teacher (both 32-d); a rerun skips the finished stages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from speechx.models import build_encoder
from speechx.testing import make_kaldi_dir
from tests.teachers.conftest import make_tiny_bert

REPO = Path(__file__).resolve().parents[2]
EN = ["the fish swims in water", "a big blue sea", "the long sentence with many words"]
EN += ["a short sentence", "the fish in the sea"]
NL = ["de vis zwemt in het water", "een grote blauwe zee", "de vis", "een zee", "het water"]


@pytest.mark.slow  # three stages, each a process that imports torch: ~30 s
def test_longform_recipe_end_to_end(tmp_path: Path) -> None:
    egs = tmp_path / "egs" / "fillets"
    egs.mkdir(parents=True)
    for name in ("run_longform.sh", "path.sh"):
        (egs / name).symlink_to(REPO / "egs" / "fillets" / name)
    (tmp_path / "recipes").symlink_to(REPO / "recipes")
    secs = (1.6, 1.2, 2.0, 1.4, 1.8)
    make_kaldi_dir(egs / "data" / "synth_en_test", 5, seconds=secs, texts=EN)
    nl = make_kaldi_dir(egs / "data" / "fillets_nl_test", 5, seconds=secs, lang="nl", texts=NL)
    (nl / "text.en").write_text(
        "".join(f"spk{1 + i // 2}-utt{i + 1} {t}\n" for i, t in enumerate(EN))
    )
    torch.manual_seed(0)
    model = build_encoder("tiny", 32).save_pretrained(tmp_path / "model")
    bert = make_tiny_bert(tmp_path / "bert")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SPEECHX_CACHE": str(tmp_path / "cache"),
    }
    args = ["--model", str(model), "--teacher", f"hf:{bert}", "--minutes", "0.1"]
    args += ["--test-sets", "data/fillets_nl_test data/synth_en_test", "--query-langs", "en nl"]
    args += ["--window", "2", "--hop", "1", "--tag", "lf"]
    proc = subprocess.run(
        ["./run_longform.sh", *args], cwd=egs, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in (1, 2, 3):
        assert f"Stage {stage}:" in proc.stdout
    assert (egs / "data" / "longform_test" / "truth.tsv").is_file()
    doc = json.loads((egs / "exp" / "lf" / "results" / "longform.json").read_text())
    assert doc["task"] == "longform" and doc["index"]["boundaries"] == "energy"
    assert [r["query"] for r in doc["results"]] == ["text:en", "text:nl", "speech:alt"]
    assert all(0 <= r["hit@5"] <= 1 and r["n_queries"] >= 1 for r in doc["results"])
    assert "## Long-form search" in (egs / "exp" / "lf" / "results" / "summary.md").read_text()
    again = subprocess.run(
        ["./run_longform.sh", *args, "--stop-stage", "2"],
        cwd=egs,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "already prepared" in again.stdout and "already indexed" in again.stdout
