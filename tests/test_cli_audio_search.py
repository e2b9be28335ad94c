"""``speechx index-audio`` / ``search-audio`` / ``evaluate-longform`` with a tiny encoder and a
tiny random BERT teacher (both 32-d): output formats, --nj 2 equal to --nj 1, one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechx import cli
from speechx.audio_search import AudioIndex, AudioIndexConfig, MergeConfig
from speechx.cli import main
from speechx.models import build_encoder
from speechx.testing import make_kaldi_dir
from tests.teachers.conftest import make_tiny_bert

SR = 16000


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli_audio")
    torch.manual_seed(0)
    model = build_encoder("tiny", 32).save_pretrained(root / "model")
    bert = make_tiny_bert(root / "bert")
    rng = np.random.default_rng(0)
    wavs = []
    for i, sec in enumerate((5.0, 3.5, 4.0)):
        p = root / "wav" / f"talk{i}.wav"
        p.parent.mkdir(exist_ok=True)
        sf.write(str(p), (0.1 * rng.standard_normal(int(sec * SR))).astype(np.float32), SR)
        wavs.append(p)
    return {"root": root, "model": model, "bert": bert, "wavs": wavs}  # type: ignore[dict-item]


def _index(assets, out: Path, *extra: str) -> int:  # noqa: ANN001
    argv = ["index-audio", "--model", str(assets["model"]), "--out", str(out)]
    return main([*argv, "--window", "2", "--hop", "1", *extra])


def test_index_and_search(assets, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    out = tmp_path / "idx"
    assert _index(assets, out, *map(str, assets["wavs"])) == 0
    printed = capsys.readouterr().out
    assert "3 recordings" in printed and "h/h" in printed
    index = AudioIndex.load(out)
    assert [r.id for r in index.recordings] == ["talk0", "talk1", "talk2"]
    assert len(index) == 4 + 3 + 3 and index.config.window == 2.0
    assert not list(tmp_path.glob(".idx.work"))  # the resume cache is gone after success

    text = ["search-audio", "--index", str(out), "--teacher", f"hf:{assets['bert']}"]
    text += ["--cache-dir", str(tmp_path / "cache")]
    assert main([*text, "--text", "the fish swims", "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert 1 <= len(lines) <= 2
    rec, start, end, score = lines[0].split("\t")
    assert (
        rec in {"talk0", "talk1", "talk2"} and float(start) < float(end) and -1 <= float(score) <= 1
    )
    assert main([*text, "--text", "the fish", "de vis", "--json"]) == 0
    docs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [d["query"] for d in docs] == ["the fish", "de vis"]
    assert set(docs[0]["hits"][0]) == {"recording", "start", "end", "score", "windows"}

    # a spoken query: the first 2 s of talk1 are exactly its first window
    wav, _ = sf.read(str(assets["wavs"][1]), dtype="float32")
    q = tmp_path / "q.wav"
    sf.write(str(q), wav[: 2 * SR], SR, subtype="FLOAT")
    argv = [
        "search-audio",
        "--index",
        str(out),
        "--audio",
        str(q),
        "--span",
        "best",
        "--top-k",
        "1",
    ]
    assert main(argv) == 0
    rec, start, end, score = capsys.readouterr().out.split("\t")
    assert (rec, float(start), float(end)) == ("talk1", 0.0, 2.0) and float(score) > 0.999


@pytest.mark.slow  # the two jobs are subprocesses that import torch: ~15-45 s here
def test_nj2_equals_nj1(assets, tmp_path: Path) -> None:  # noqa: ANN001
    data = tmp_path / "data" / "talks"
    make_kaldi_dir(data, 4, seconds=(3.0, 2.5, 4.0, 2.0))
    assert _index(assets, tmp_path / "one", "--data-dir", str(data)) == 0
    assert _index(assets, tmp_path / "two", "--data-dir", str(data), "--nj", "2") == 0
    one, two = AudioIndex.load(tmp_path / "one"), AudioIndex.load(tmp_path / "two")
    assert (
        [r.id for r in two.recordings]
        == [r.id for r in one.recordings]
        == sorted(r.id for r in one.recordings)
    )
    np.testing.assert_array_equal(two.window_recording, one.window_recording)
    np.testing.assert_array_equal(two.window_start, one.window_start)
    np.testing.assert_allclose(two.index.embeddings, one.index.embeddings, atol=1e-5)
    assert (data / "split2" / "2" / "utt2spk").is_file()  # split Kaldi-style
    assert not (tmp_path / "two" / "split2").exists()  # the part indexes were merged, removed


def test_errors_are_one_line(
    assets,  # noqa: ANN001
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert main(["search-audio", "--index", str(tmp_path), "--text", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "audio_index.json: not found" in err
    monkeypatch.setitem(sys.modules, "webrtcvad", None)
    monkeypatch.setitem(sys.modules, "silero_vad", None)
    assert _index(assets, tmp_path / "v", str(assets["wavs"][0]), "--boundaries", "vad") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'speechx[vad]'" in err
    assert _index(assets, tmp_path / "x", str(tmp_path / "missing.wav")) == 2
    assert "missing.wav: audio file not found" in capsys.readouterr().err
    # a teacher of another dimension
    out = tmp_path / "idx"
    torch.manual_seed(0)
    small = build_encoder("tiny", 8).save_pretrained(tmp_path / "small")
    argv = ["index-audio", "--model", str(small), "--out", str(out), str(assets["wavs"][1])]
    assert main(argv) == 0
    capsys.readouterr()
    argv = ["search-audio", "--index", str(out), "--text", "the fish"]
    assert main([*argv, "--teacher", f"hf:{assets['bert']}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has dimension 32 but the index" in err


def test_cli_defaults_follow_the_library() -> None:
    from speechx.audio_search import BOUNDARIES, SCORES, SPANS
    from speechx.speech_regions import VAD_BACKENDS

    m, c = MergeConfig(), AudioIndexConfig()
    assert {"span": m.span, "score": m.score, "span_margin": m.span_margin} == cli._MERGE_DEFAULTS
    assert {
        "window": c.window,
        "hop": c.hop,
        "boundaries": c.boundaries,
        "min_window": c.min_window,
        "batch_size": c.batch_size,
    } == cli._INDEX_DEFAULTS
    assert (cli._SPANS, cli._SCORES, cli._BOUNDARIES) == (SPANS, SCORES, BOUNDARIES)
    assert cli._VAD_BACKENDS == VAD_BACKENDS
