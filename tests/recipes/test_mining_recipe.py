"""Smoke test: egs/fillets/run_mining.sh end to end on tiny data dirs, a tiny random encoder and a
tiny random BERT teacher; a rerun skips every stage."""

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
# (Dutch, English) lines in the tiny BERT's vocabulary
LINES = [
    ("de vis zwemt", "the fish swims"),
    ("het water", "in the water"),
    ("een grote blauwe zee", "a big blue sea"),
    ("de zee", "the sea"),
    ("vis", "fish"),
    ("een vis", "a fish"),
]


def _set(root: Path, name: str, lines: list[tuple[str, str]]) -> Path:
    d = make_kaldi_dir(root / name, n=len(lines), lang="nl", texts=[nl for nl, _ in lines],
                       seconds=(0.3, 0.4))  # fmt: skip
    utts = [line.split()[0] for line in (d / "text").read_text().splitlines()]
    en = [f"{u} {e}\n" for u, (_, e) in zip(utts, lines, strict=True)]
    (d / "text.en").write_text("".join(en))
    return d


@pytest.mark.slow
def test_mining_recipe_end_to_end(tmp_path: Path) -> None:
    egs = tmp_path / "egs" / "fillets"
    egs.mkdir(parents=True)
    for name in ("run_mining.sh", "path.sh", "cmd.sh"):
        (egs / name).symlink_to(REPO / "egs" / "fillets" / name)
    (tmp_path / "recipes").symlink_to(REPO / "recipes")
    data = egs / "data"
    _set(data, "fillets_nl_test", LINES[:4])
    _set(data, "fillets_nl_train", LINES[2:])  # two lines equal test lines: dropped
    _set(data, "fillets_nl_dev", LINES[4:])
    torch.manual_seed(0)
    model = build_encoder("tiny", 32).save_pretrained(egs / "exp" / "demo" / "model")
    bert = make_tiny_bert(tmp_path / "bert")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SPEECHX_CACHE": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
    }
    args = ["--tag", "mining_test", "--teacher", f"hf:{bert}", "--k", "2", "--threshold", "0"]
    proc = subprocess.run(
        ["./run_mining.sh", *args], cwd=egs, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in (1, 2, 3, 4):
        assert f"Stage {stage}:" in proc.stdout
    assert "both there" in proc.stdout  # the default model exp/demo/model is reused
    exp = egs / "exp" / "mining_test"
    assert (exp / "embed" / "fillets_nl_test" / "embeddings.npy").is_file()
    pairs = (exp / "mine" / "fillets_nl_test.en.tsv").read_text().splitlines()
    assert pairs[0].split("\t") == ["src_id", "tgt_id", "score", "src_text", "tgt_text"]
    assert all(float(p.split("\t")[2]) >= 0 for p in pairs[1:])
    doc = json.loads((exp / "results" / "mining.json").read_text())
    assert doc["model"] == str(model.relative_to(egs)) and doc["teacher"].startswith("hf-")
    rows = {(r["scoring"], r["mode"]) for r in doc["results"]}
    assert {("ratio", "intersection"), ("cosine", "forward")} <= rows
    r = doc["results"][0]
    # 4 test sentences + train/dev lines that are not test lines (2 of the 4 + 2 dev)
    assert (r["n_source"], r["n_gold"], r["n_target"], r["n_distractors"]) == (4, 4, 6, 2)
    assert doc["ceiling"] and doc["ceiling"][0]["source"] == "text:nl"
    assert "## Mining" in (exp / "results" / "summary.md").read_text()
    assert (exp / "results" / "mining_pr.png").is_file()
    again = subprocess.run(
        ["./run_mining.sh", *args], cwd=egs, env=env, capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stderr[-3000:]
    for word in ("already embedded", "already mined", "already evaluated"):
        assert word in again.stdout
