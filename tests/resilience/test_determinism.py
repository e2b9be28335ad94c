"""Determinism (issue 10 section 4): the same seed gives the same weights, the same embeddings
and the same metrics, from two separately trained runs on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from resilience_helpers import TEACHER_ID, distill_config_yaml, make_train_dir

from speechx.data.kaldi import KaldiDir
from speechx.distill import load_config, train_distill
from speechx.evaluation.speech_retrieval import evaluate_speech_retrieval
from speechx.models import SpeechEncoder


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return SpeechEncoder.from_pretrained(model_dir).state_dict()


def test_same_seed_same_weights_embeddings_and_metrics(tmp_path: Path) -> None:
    data = make_train_dir(tmp_path / "tiny_nl_test")
    conf = distill_config_yaml(tmp_path / "c.yaml", data, max_steps=4)
    wavs = list(KaldiDir.read(data).wav_scp.values())

    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("other_seed", 1)):
        cfg = load_config(conf, [f"seed={seed}", "data.dev=[]"])
        res = train_distill(cfg, tmp_path / name)
        runs[name] = res.model_dir
    wa, wb, wc = (_weights(runs[n]) for n in ("a", "b", "other_seed"))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert any(not torch.equal(wa[k], wc[k]) for k in wa), "another seed trains another model"

    emb = {n: SpeechEncoder.from_pretrained(runs[n]).encode(wavs, batch_size=2) for n in runs}
    assert emb["a"].dtype == np.float32 and emb["a"].shape == (len(wavs), 8)
    assert np.array_equal(emb["a"], emb["b"])
    assert not np.array_equal(emb["a"], emb["other_seed"])
    # encoding is repeatable within one model too, whatever the batch size
    again = SpeechEncoder.from_pretrained(runs["a"]).encode(wavs, batch_size=2)
    assert np.array_equal(again, emb["a"])

    outs = {}
    for n in ("a", "b"):
        out = tmp_path / f"results_{n}"
        evaluate_speech_retrieval(
            SpeechEncoder.from_pretrained(runs[n]),
            [data],
            out,
            teacher_id=TEACHER_ID,
            model_name="tiny",
            batch_size=2,
        )
        outs[n] = out
    ja, jb = ((outs[n] / "retrieval.json").read_text() for n in ("a", "b"))
    assert '"recall@1"' in ja and ja == jb
    sa, sb = ((outs[n] / "summary.md").read_text() for n in ("a", "b"))
    assert sa == sb
