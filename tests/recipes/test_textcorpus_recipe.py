"""Smoke test: the recipe's text corpus (stage 2 of recipes/distill.sh through egs/fillets/run.sh)
turns a text file into data/textsynth_<lang>_train with espeak-ng, keeps the dev and test
sentences out, validates the dir in stage 3, and reuses the table on a rerun."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from data_prep.synth import read_sentence_table
from speechx.data.kaldi import KaldiDir
from speechx.testing import make_kaldi_dir

pytest.importorskip("pysbd")
pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
recipe:
  speech_langs: [nl]
  text_langs: [nl]
  synth_langs: []
  text_corpus: [en:{src}/*.txt]
  text_corpus_max: 2
data:
  train: [data/fillets_nl_train]
model:
  source: tiny
"""

TEXT = """\
The old man walked slowly to the harbour.

The fish swims in the deep blue sea.

A small boat sails across the lake at dawn.

The dog did not like the cat at all.
"""


def test_text_corpus_stage(tmp_path: Path) -> None:
    egs = tmp_path / "egs" / "fillets"
    (egs / "conf").mkdir(parents=True)
    for name in ("run.sh", "path.sh", "cmd.sh"):
        (egs / name).symlink_to(REPO / "egs" / "fillets" / name)
    (tmp_path / "recipes").symlink_to(REPO / "recipes")
    src = tmp_path / "text"
    src.mkdir()
    (src / "a.txt").write_text(TEXT, encoding="utf-8")
    (egs / "conf" / "tc.yaml").write_text(CONFIG.format(src=src), encoding="utf-8")
    data = egs / "data"
    make_kaldi_dir(data / "fillets_nl_train", n=2, lang="nl", seconds=0.3)
    dev = make_kaldi_dir(data / "fillets_nl_dev", n=1, lang="nl", seconds=0.3)
    (dev / "text.en").write_text("spk1-utt1 the fish swims in the deep blue sea\n")
    test = make_kaldi_dir(data / "fillets_nl_test", n=1, lang="nl", seconds=0.3)
    (test / "text.en").write_text("spk1-utt1 The dog did not like the cat at all!\n")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "OMP_NUM_THREADS": "1",
    }
    cmd = ["./run.sh", "--config", "conf/tc.yaml", "--nj", "1", "--stage", "2", "--stop-stage", "3"]

    def run() -> str:
        proc = subprocess.run(cmd, cwd=egs, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout

    out = run()
    assert "Stage 2: text corpus -> en" in out and "Stage 3:" in out
    table = read_sentence_table(data / "local" / "textcorpus_sentences.tsv")
    assert sorted(s.texts["en"] for s in table.values()) == [
        "A small boat sails across the lake at dawn.",
        "The old man walked slowly to the harbour.",
    ]  # the dev and test sentences are left out; 2 remain (text_corpus_max)
    prep = json.loads((data / "local" / "textcorpus_prep.json").read_text(encoding="utf-8"))
    assert prep["extra"]["en"]["drop_leak"] == 2 and prep["extra"]["en"]["eligible"] == 2
    kd = KaldiDir.read(data / "textsynth_en_train")
    assert sorted(kd.text.values()) == sorted(s.texts["en"] for s in table.values())
    audio = (data / "audio" / "textsynth" / "en").resolve()
    assert {Path(p).parent for p in kd.wav_scp.values()} == {audio}
    assert "data/textsynth_en_train" in out  # validated in stage 3
    again = run()
    assert "reused: True" in again and "2 clips used" in again
