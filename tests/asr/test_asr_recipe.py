"""Smoke test: egs/fillets/run_asr.sh end to end on a miniature corpus and a tiny model."""

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
  text_langs: [en, nl]
  synth_langs: [en]
  peer: ""
  beam: 2
data:
  train: [data/fillets_nl_train, data/synth_en_train]
  dev: [data/fillets_nl_dev]
  max_batch_seconds: 8
model:
  source: tiny
  embed_dim: 8
max_steps: 3
eval_every: 2
save_every: 2
log_every: 1
num_threads: 1
"""

pytestmark = [
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng"),
    # about 30 s of CPU, but minutes of wall time on a busy 2-core machine
    pytest.mark.slow,
]


def _run(egs: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["./run_asr.sh", "--config", "conf/tiny_asr.yaml", *args],
        cwd=egs,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_fillets_asr_recipe_end_to_end(tmp_path: Path) -> None:
    corpus = make_fillets_tree(tmp_path / "corpus", n_lines=30)
    egs = tmp_path / "egs" / "fillets"
    (egs / "conf").mkdir(parents=True)
    for name in ("run_asr.sh", "path.sh"):
        (egs / name).symlink_to(REPO / "egs" / "fillets" / name)
    (tmp_path / "recipes").symlink_to(REPO / "recipes")
    (egs / "conf" / "tiny_asr.yaml").write_text(TINY, encoding="utf-8")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SPEECHX_CACHE": str(tmp_path / "cache"),
    }

    first = _run(egs, env, "--corpus-dir", str(corpus), "--nj", "1")
    for stage in ("Stage 1:", "Stage 2:", "Stage 3:", "Stage 4:", "Stage 5:"):
        assert stage in first.stdout
    exp = egs / "exp" / "tiny_asr"
    assert {"config.json", "model.safetensors", "vocab.json"} <= {
        p.name for p in (exp / "model").iterdir()
    }
    doc = json.loads((exp / "results" / "asr.json").read_text(encoding="utf-8"))
    assert doc["task"] == "asr" and doc["model"] == "tiny_asr"
    sets = {r["set"] for r in doc["results"]}
    assert sets == {"fillets_nl_test", "synth_en_test"}
    assert all(r["n_utts"] > 0 and r["wer"] >= 0 for r in doc["results"])
    assert (exp / "decode" / "fillets_nl_test" / "text").is_file()

    # A rerun skips training and reuses the decodes.
    second = _run(egs, env, "--stage", "4")
    assert "already trained" in second.stdout
    assert "reusing the hypotheses" in second.stdout
