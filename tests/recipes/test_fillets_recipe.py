"""Smoke test: egs/fillets/run.sh from start to end on a miniature corpus and a tiny model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from speechx.testing import make_fillets_tree

REPO = Path(__file__).resolve().parents[2]

TINY = """
recipe:
  speech_langs: [nl]
  text_langs: [en, nl, de]
  synth_langs: [en]
  teacher: use-multilingual
data:
  train: [data/fillets_nl_train, data/synth_en_train]
  dev: [data/fillets_nl_dev]
  teacher_id: use-multilingual-v3
  target_fields: [text, text.en]
  max_batch_seconds: 8
model:
  source: tiny
loss:
  weights: {cosine: 1.0, infonce: 0.5}
eval:
  field: text.en
max_steps: 4
eval_every: 2
save_every: 2
log_every: 1
"""

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def _run(egs: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["./run.sh", "--config", "conf/tiny.yaml", *args],
        cwd=egs,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_fillets_recipe_end_to_end(tmp_path: Path) -> None:
    corpus = make_fillets_tree(tmp_path / "corpus", n_lines=40)
    # A copy of the recipe layout (egs/fillets + recipes) whose data/ and exp/ live in tmp_path.
    egs = tmp_path / "egs" / "fillets"
    (egs / "conf").mkdir(parents=True)
    for name in ("run.sh", "path.sh"):
        (egs / name).symlink_to(REPO / "egs" / "fillets" / name)
    (tmp_path / "recipes").symlink_to(REPO / "recipes")
    (egs / "conf" / "tiny.yaml").write_text(TINY, encoding="utf-8")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SPEECHX_CACHE": str(tmp_path / "cache"),
    }

    first = _run(egs, env, "--corpus-dir", str(corpus), "--nj", "1")
    out = first.stdout
    for stage in range(1, 7):
        assert f"Stage {stage}:" in out
    model = egs / "exp" / "tiny" / "model"
    assert (model / "config.json").is_file() and (model / "model.safetensors").is_file()
    assert (egs / "exp" / "tiny" / "log" / "train.log").is_file()
    results = egs / "exp" / "tiny" / "results"
    doc = json.loads((results / "retrieval.json").read_text(encoding="utf-8"))
    assert doc["task"] == "retrieval" and doc["model"].endswith("model")
    pairs = {(r["set"], r["query"], r["target"]) for r in doc["results"]}
    assert ("fillets_nl_test", "speech:nl", "text:en") in pairs
    assert ("synth_en_test", "speech:en", "text:de") in pairs
    for row in doc["results"]:
        assert 0.0 <= row["recall@1"] <= row["recall@5"] <= row["recall@10"] <= 1.0
        assert row["n_queries"] > 0 and row["pool_size"] > 0
    assert doc["ceiling"] and all(r["query"].startswith("text:") for r in doc["ceiling"])
    assert "speech:nl" in (results / "summary.md").read_text(encoding="utf-8")
    assert (results / "retrieval_heatmap.png").stat().st_size > 0

    # A rerun skips what is finished and evaluates again.
    second = _run(egs, env, "--corpus-dir", str(corpus), "--nj", "1")
    assert "already prepared" in second.stdout
    assert "already trained" in second.stdout
    assert "0 encoded" in second.stdout  # every teacher embedding came from the cache

    # The Python API reads the model the recipe left.
    from speechx import SpeechEncoder

    enc = SpeechEncoder.from_pretrained(model)
    wav = next((corpus / "sound").rglob("*.ogg"))
    emb = enc.encode([str(wav)])
    assert emb.shape == (1, 512) and abs(float((emb**2).sum()) - 1.0) < 1e-4
