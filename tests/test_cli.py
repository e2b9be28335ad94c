"""The speechx command line: each verb on tiny inputs, and one-line errors for bad input."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from speechx.cli import main
from speechx.models import build_encoder
from speechx.testing import make_fillets_tree, make_kaldi_dir


def test_help_lists_every_verb(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for verb in ("prepare", "teacher-embed", "distill", "encode", "search", "evaluate-retrieval"):
        assert verb in out


def test_prepare_and_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = make_fillets_tree(tmp_path / "corpus", n_lines=20)
    rc = main(["prepare", "fillets", "--corpus-dir", str(corpus), "--out-dir", str(tmp_path / "d")])
    assert rc == 0
    assert main(["validate-data", str(tmp_path / "d" / "fillets_nl_train")]) == 0
    # A broken dir: a transcript line for an utterance that utt2spk does not know.
    bad = tmp_path / "d" / "fillets_nl_dev"
    with open(bad / "text", "a", encoding="utf-8") as fh:
        fh.write("zz-unknown hallo\n")
    capsys.readouterr()
    assert main(["validate-data", str(bad)]) == 1
    assert "zz-unknown" in capsys.readouterr().out


def test_unknown_corpus_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare", "nosuchcorpus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("speechx prepare: error:") and "fillets" in err


def test_recipe_vars(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text('recipe:\n  langs: [en, nl]\n  name: "it\'s"\nmax_steps: 3\n')
    assert main(["recipe-vars", str(cfg)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["langs='en nl'", "name='it'\"'\"'s'"]


def test_encode_index_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_kaldi_dir(tmp_path / "data", n=3)
    model_dir = tmp_path / "model"
    build_encoder("tiny", 8).save_pretrained(model_dir)
    emb_dir = tmp_path / "emb"
    assert (
        main(["encode", "--model", str(model_dir), "--data-dir", str(data), "--out", str(emb_dir)])
        == 0
    )
    emb = np.load(emb_dir / "embeddings.npy")
    ids = (emb_dir / "ids.txt").read_text().split()
    assert emb.shape == (3, 8) and len(ids) == 3
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert main(["index", "--embeddings", str(emb_dir), "--out", str(tmp_path / "idx")]) == 0
    capsys.readouterr()
    # Searching the index with the same audio finds each utterance first.
    rc = main(
        [
            "search",
            "--index",
            str(tmp_path / "idx"),
            "--model",
            str(model_dir),
            "--data-dir",
            str(data),
            "--top-k",
            "2",
        ]
    )
    assert rc == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [h["query"] for h in hits] == ids
    assert all(h["hits"][0]["id"] == h["query"] for h in hits)


def test_encode_missing_model_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["encode", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "x.wav"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err


def test_every_registered_preparer_is_reachable_from_the_cli() -> None:
    import data_prep
    from speechx.cli import CORPORA

    assert {name: module for name, (module, _) in data_prep.PREPARERS.items()} == CORPORA
    for name in CORPORA:
        assert callable(data_prep.get_preparer(name))
        assert callable(importlib.import_module(CORPORA[name]).main)
