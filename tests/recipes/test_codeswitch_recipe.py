"""Smoke test: egs/codeswitch/run.sh on a miniature fillets tree with tiny given models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from speechx.asr import CtcConfig, SpeechRecognizer, Vocabulary
from speechx.models import build_encoder
from speechx.testing import make_fillets_tree

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def test_codeswitch_recipe_end_to_end(tmp_path: Path) -> None:
    corpus = make_fillets_tree(tmp_path / "corpus", n_lines=40)
    egs = tmp_path / "egs" / "codeswitch"
    egs.mkdir(parents=True)
    for name in ("run.sh", "path.sh"):
        (egs / name).symlink_to(REPO / "egs" / "codeswitch" / name)
    (tmp_path / "recipes").symlink_to(REPO / "recipes")
    torch.manual_seed(0)
    build_encoder("tiny", 512).save_pretrained(tmp_path / "encoder")  # USE's 512-d space
    vocab = Vocabulary.build(["dit is regel een", "this is line one", "das ist zeile"])
    SpeechRecognizer(build_encoder("tiny", 8), vocab, CtcConfig()).save_pretrained(tmp_path / "asr")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SPEECHX_CACHE": str(tmp_path / "cache"),
    }
    args = ["--corpus-dir", str(corpus), "--pairs", "nl-en de-en", "--methods", "inter clause"]
    args += ["--model", str(tmp_path / "encoder"), "--asr-model", str(tmp_path / "asr")]
    args += ["--peer", "", "--nj", "1", "--beam", "1"]
    proc = subprocess.run(
        ["./run.sh", *args], cwd=egs, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in (1, 2, 3, 4, 5):
        assert f"Stage {stage}:" in proc.stdout
    for pair in ("nl-en", "de-en"):
        d = egs / "data" / f"synthcs_{pair}_test"
        assert (d / "text.langtags").is_file() and (d / "utt2lang").read_text().split()[1] == pair
    doc = json.loads((egs / "exp" / "codeswitch" / "results" / "codeswitch.json").read_text())
    rows = {r["pair"]: r for r in doc["results"]}
    assert set(rows) == {"nl-en", "de-en"}
    for r in rows.values():
        assert r["mer"] >= 0.0 and set(r["per_lang"]) == set(r["pair"].split("-"))
        assert {x["target"] for x in r["retrieval"]} >= {"text:en"}
        # monolingual comparisons only with speech in the pair's own languages
        assert {x["mono_set"] for x in r["retrieval_drop"]} <= {
            f"synth_{lang}_test" for lang in r["pair"].split("-")
        }
    # a rerun of the data stages reuses everything
    again = subprocess.run(
        ["./run.sh", *args, "--stop-stage", "3"],
        cwd=egs,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0 and "already prepared" in again.stdout
