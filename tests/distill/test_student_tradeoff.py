"""benchmarks/student_tradeoff.py: its helpers and a whole run on tiny models and tiny dirs."""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from distill_helpers import DIM, orthogonal, write_fake_teacher

from speechx.data.kaldi import KaldiDir
from speechx.models import build_encoder
from speechx.testing import make_kaldi_dir

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "student_tradeoff", ROOT / "benchmarks/student_tradeoff.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def _dev_dir(path: Path, n: int = 4, seed: int = 0) -> tuple[Path, np.ndarray]:
    """An English-speech dev dir with orthogonal fake teacher rows for text and text.en."""
    d = make_kaldi_dir(path, n=n, seconds=0.5)
    vec = orthogonal(n, DIM, seed)
    write_fake_teacher(d, {"text": vec, "text.en": vec}, teacher_id="use-multilingual-v3")
    return d, vec


class _Oracle:
    """An encoder-like object returning fixed rows in the order it is asked for the dir's
    utterances (the data dir's sorted ids)."""

    sample_rate = 16000

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows

    def encode(self, inputs: Sequence[Any], batch_size: int = 16) -> np.ndarray:
        assert len(inputs) == len(self.rows)
        return self.rows


def test_model_key_and_loading(bench: ModuleType, tmp_path: Path) -> None:
    assert bench.model_key("egs/fillets/exp/s2s_small/model") == "s2s_small"
    assert bench.model_key("w2v2-fbank-small") == "w2v2_fbank_small"
    assert bench.model_key("/x/my.student") == "my_student"
    torch.manual_seed(0)
    build_encoder("tiny", 512).save_pretrained(tmp_path / "exp" / "t" / "model")
    loaded = bench.load_model(str(tmp_path / "exp" / "t" / "model"))
    preset = bench.load_model("tiny")
    assert not loaded.training and preset.embed_dim == 512
    assert bench.count_parameters(loaded) == sum(p.numel() for p in loaded.parameters()) > 0


def test_measure_speeds_times_every_model(bench: ModuleType) -> None:
    torch.manual_seed(0)
    encoders = {"a": build_encoder("tiny", 8).eval(), "b": build_encoder("tiny", 8).eval()}
    rng = np.random.default_rng(0)
    clips = [((0.1 * rng.standard_normal(n)).astype(np.float32), 16000) for n in (8000, 4000)]
    speeds = bench.measure_speeds(encoders, clips, batch_size=2, threads=1, rounds=2)
    assert set(speeds) == {"a", "b"} and all(math.isfinite(v) and v > 0 for v in speeds.values())


def test_dev_recall_scores_speech_against_english_text(bench: ModuleType, tmp_path: Path) -> None:
    d, vec = _dev_dir(tmp_path / "synth_en_dev")
    assert bench.dev_recall(_Oracle(vec), [d]) == {"synth_en_dev": 1.0}
    # every utterance lands on another sentence's text
    assert bench.dev_recall(_Oracle(np.roll(vec, 1, axis=0)), [d]) == {"synth_en_dev": 0.0}
    # a subset: the first utterances, with their own teacher rows
    sub = bench.subset_dir(d, tmp_path / "sub", 2)
    assert KaldiDir.read(sub).utt_ids == KaldiDir.read(d).utt_ids[:2]
    assert np.array_equal(np.load(sub / "teacher/use-multilingual-v3/text.en.npy"), vec[:2])
    assert bench.dev_recall(_Oracle(vec[:2]), [d], max_utts=2) == {"synth_en_dev": 1.0}


def test_ratios_and_table(bench: ModuleType) -> None:
    rows = [
        bench.Row("exp/demo/model", "demo", 20_000_000, 40.0, {"a": 0.4, "b": 0.2}),
        bench.Row("exp/s2s_small/model", "s2s_small", 4_000_000, 200.0, {"a": 0.2, "b": 0.1}),
        bench.Row("w2v2-fbank-small", "w2v2_fbank_small", 3_000_000, 100.0),  # speed only
    ]
    r = bench.ratios(rows)
    assert r == pytest.approx(
        {
            "s2s_small_speedup_vs_teacher": 5.0,
            "s2s_small_recall_retained": 0.5,
            "w2v2_fbank_small_speedup_vs_teacher": 2.5,
        }
    )
    table = bench.format_table(rows)
    assert "s2s_small" in table and "20.00M" in table and "0.1500" in table
    assert "speed only" in table.splitlines()[-1]
    assert bench.is_preset("w2v2-fbank-small") and not bench.is_preset("exp/demo/model")


def test_a_whole_run_on_tiny_models(bench: ModuleType, tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    build_encoder("tiny", DIM).save_pretrained(tmp_path / "exp" / "teacher" / "model")
    torch.manual_seed(1)
    build_encoder("tiny", DIM).save_pretrained(tmp_path / "exp" / "s2s_tiny" / "model")
    d, _ = _dev_dir(tmp_path / "synth_en_dev")
    bench.main(
        [
            "--quick",
            "--models",
            str(tmp_path / "exp" / "teacher" / "model"),
            str(tmp_path / "exp" / "s2s_tiny" / "model"),
            "--clips-from",
            str(d / "wav.scp"),
            "--recall-sets",
            str(d),
            "--threads",
            "1",
        ]
    )
    out = capsys.readouterr().out
    lines = dict(
        line[len("ratio ") :].split("=") for line in out.splitlines() if line.startswith("ratio ")
    )
    assert set(lines) == {"s2s_tiny_speedup_vs_teacher", "s2s_tiny_recall_retained"}
    assert float(lines["s2s_tiny_speedup_vs_teacher"]) > 0
    assert "synth_en_dev" in out


def test_dev_recall_against_own_language_transcripts(bench: ModuleType, tmp_path: Path) -> None:
    d = make_kaldi_dir(tmp_path / "synth_de_dev", n=4, seconds=0.5, lang="de")
    vec = orthogonal(4, DIM, 0)
    # the German transcripts are vec; the English translations belong to other utterances
    en = np.roll(vec, 1, axis=0)
    write_fake_teacher(d, {"text": vec, "text.en": en}, teacher_id="use-multilingual-v3")
    assert bench.dev_recall(_Oracle(vec), [d], target="own") == {"synth_de_dev": 1.0}
    assert bench.dev_recall(_Oracle(vec), [d], target="en") == {"synth_de_dev": 0.0}
