"""speechx train-asr / transcribe on tiny data, and evaluate_asr into asr.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechx.cli import main
from speechx.testing import make_kaldi_dir

TEXTS = ["ab ba", "Abba!", "baba ab"]

CONF = """
recipe: {{speech_langs: [nl]}}
data:
  train: [{data}]
  dev: [{data}]
  max_batch_seconds: 0.8
model: {{source: tiny, embed_dim: 8}}
optim: {{warmup_steps: 0, lr_head: 0.01}}
max_steps: 2
eval_every: 2
save_every: 2
log_every: 1
num_threads: 1
"""


def test_train_transcribe_and_score(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = make_kaldi_dir(tmp_path / "data", 3, seconds=(0.4, 0.3, 0.35), lang="nl", texts=TEXTS)
    conf = tmp_path / "asr.yaml"
    conf.write_text(CONF.format(data=data), encoding="utf-8")
    exp = tmp_path / "exp"
    assert main(["train-asr", "--config", str(conf), "--exp-dir", str(exp)]) == 0
    model = exp / "model"
    assert (model / "vocab.json").is_file()
    capsys.readouterr()

    assert main(["transcribe", "--model", str(model), "--data-dir", str(data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(" ")[0] for ln in lines] == ["spk1-utt1", "spk1-utt2", "spk2-utt3"]

    hyp = tmp_path / "hyp.txt"
    wav = sorted((data / "wav").glob("*.wav"))[0]
    assert (
        main(["transcribe", "--model", str(model), str(wav), "--beam", "3", "--out", str(hyp)]) == 0
    )
    assert hyp.read_text().split("\t")[0] == str(wav)

    res = tmp_path / "results"
    args = ["transcribe", "--model", str(model), "--data-dir", str(data), "--score-dir", str(res)]
    assert main(args) == 0
    doc = json.loads((res / "asr.json").read_text())
    assert doc["task"] == "asr" and doc["peers"] == []
    row = doc["results"][0]
    assert row["lang"] == "nl" and row["n_utts"] == 3 and row["cer"] >= 0
    assert (tmp_path / "decode" / "data" / "text").is_file()
    assert (res / "summary.md").is_file()


def test_transcribe_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["transcribe", "--model", str(tmp_path / "nope"), "x.wav"]) == 2
    assert "not found" in capsys.readouterr().err
