"""Tests of speechx.evaluation.mining: targets, gold pairs, best-threshold rows, results files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from speechx.errors import EvaluationError
from speechx.evaluation.mining import build_targets, evaluate_mining, score_mining
from speechx.mining import MODES
from speechx.testing import AxisTeacher, make_kaldi_dir

# (Dutch transcript, English translation), one axis of the fake space each
SENTENCES = {
    "A": ("de vis", "the fish"),
    "B": ("waar is de uitgang", "where is the exit"),
    "C": ("ik ben geen krab", "I am not a crab"),
    "D": ("een grote blauwe zee", "a big blue sea"),
}
#: the fake teacher's axes: one per sentence (Dutch and English share it), axis 7 for the rest
AXIS = {text: i for i, pair in enumerate(SENTENCES.values()) for text in pair}


class AxisEncoder:
    """A fake speech encoder: each utterance lands on the axis given for its wav's name."""

    def __init__(self, axis_of_utt: dict[str, int]) -> None:
        self.axis_of_utt = axis_of_utt

    def encode(self, inputs: Sequence[str], batch_size: int = 16) -> np.ndarray:
        out = np.zeros((len(inputs), 8), dtype=np.float32)
        for row, path in enumerate(inputs):
            out[row, self.axis_of_utt[Path(path).stem]] = 1.0
        return out


@pytest.fixture
def test_dir(tmp_path: Path) -> Path:
    """Four Dutch utterances: sentences A, B, C, and A again (spoken twice)."""
    order = ["A", "B", "C", "A"]
    nl = [SENTENCES[s][0] for s in order]
    d = make_kaldi_dir(tmp_path / "data" / "fillets_nl_test", n=4, lang="nl", texts=nl, seconds=0.2)
    utts = sorted(line.split()[0] for line in (d / "text").read_text().splitlines())
    en = [f"{u} {SENTENCES[s][1]}\n" for u, s in zip(utts, order, strict=True)]
    (d / "text.en").write_text("".join(en))
    return d


def test_build_targets_dedupes_drops_and_shuffles() -> None:
    translations = {"u1": "Hello there.", "u2": "Hello  there.", "u3": "Bye."}
    distractors = ["hello THERE.", "Other.", "Other.", "", "Third one"]
    t = build_targets(translations, distractors, seed=0)
    assert sorted(t.texts) == ["Bye.", "Hello there.", "Other.", "Third one"]
    assert t.n_distractors == 2 and t.n_dropped == 1
    assert t.gold["u1"] == t.gold["u2"] == t.texts.index("Hello there.")
    assert t.ids[t.gold["u1"]] == "u1" and t.ids[t.gold["u3"]] == "u3"
    assert sorted(i for i in t.ids if i.startswith("distractor:")) == [
        "distractor:0",
        "distractor:1",
    ]
    assert build_targets(translations, distractors, seed=0) == t
    many = {f"u{i}": f"sentence {i}" for i in range(20)}
    assert build_targets(many, seed=0).texts != build_targets(many, seed=1).texts
    with pytest.raises(EvaluationError, match="no source utterance has a translation"):
        build_targets({"u1": "  "})


def test_score_mining_on_a_separable_case() -> None:
    src = np.eye(4, dtype=np.float32)[:3]  # e0 e1 e2
    tgt = np.eye(4, dtype=np.float32)  # e0 e1 e2 and the distractor e3
    rows, curves = score_mining(src, tgt, np.array([0, 1, 2]), k=1)
    by = {(r["scoring"], r["mode"]): r for r in rows}
    assert set(by) == {(s, m) for s in ("ratio", "cosine") for m in MODES}
    for r in rows:
        assert (r["precision"], r["recall"], r["f1"]) == (1.0, 1.0, 1.0)
        assert r["n_gold"] == 3 and r["n_source"] == 3 and r["n_target"] == 4
    assert by["cosine", "forward"]["n_mined"] == 3 and by["cosine", "forward"]["threshold"] == 1.0
    assert by["cosine", "backward"]["n_mined"] == 4  # the distractor's best source too
    assert by["cosine", "backward"]["n_kept"] == 3
    assert len(curves) == len(rows) and all(c["recall"] for c in curves)


def test_a_sentence_spoken_twice_caps_intersection_recall() -> None:
    src = np.array([[1, 0, 0], [0.99, 0.1, 0], [0, 1, 0]], dtype=np.float32)
    tgt = np.eye(3, dtype=np.float32)
    rows, _ = score_mining(src, tgt, np.array([0, 0, 1]), k=1, scorings=["cosine"])
    by = {r["mode"]: r for r in rows}
    assert by["forward"]["recall"] == 1.0
    assert by["intersection"]["recall"] == pytest.approx(2 / 3)  # target 0 pairs with one


def test_evaluate_mining_end_to_end(tmp_path: Path, test_dir: Path) -> None:
    extra = tmp_path / "distractors.txt"
    extra.write_text("a big blue sea\nThe fish\n")  # the second equals a target: dropped
    utts = sorted(line.split()[0] for line in (test_dir / "text").read_text().splitlines())
    # utterance 3 (sentence C) lands on the distractor D: one wrong pair
    encoder = AxisEncoder(dict(zip(utts, [0, 1, 3, 0], strict=True)))
    out = tmp_path / "exp" / "results"
    path = evaluate_mining(
        test_dir,
        out,
        teacher=AxisTeacher(AXIS),
        teacher_id="axis-v1",
        encoder=encoder,
        distractors=[extra],
        model_name="fake",
    )
    doc = json.loads(path.read_text())
    assert (doc["task"], doc["split"], doc["model"], doc["teacher"]) == (
        "mining",
        "test",
        "fake",
        "axis-v1",
    )
    rows = {(r["scoring"], r["mode"]): r for r in doc["results"]}
    r = rows["cosine", "forward"]
    assert (r["source"], r["target"], r["set"]) == ("speech:nl", "text:en", "fillets_nl_test")
    assert (r["n_source"], r["n_target"], r["n_gold"], r["n_distractors"]) == (4, 4, 4, 1)
    # all four pairs score 1.0; three are right: P = R = 3/4
    assert (r["precision"], r["recall"], r["f1"], r["threshold"]) == (0.75, 0.75, 0.75, 1.0)
    # intersection: the fish pairs with one of its two utterances; C's target goes unpaired
    r = rows["cosine", "intersection"]
    assert (r["n_kept"], r["n_correct"]) == (3, 2)
    assert r["f1"] == pytest.approx(4 / 7)
    ceiling = {(c["scoring"], c["mode"]): c for c in doc["ceiling"]}
    assert ceiling["ratio", "forward"]["source"] == "text:nl"
    assert ceiling["cosine", "forward"]["f1"] == 1.0
    summary = (out / "summary.md").read_text()
    assert "## Mining" in summary and "| intersection |" in summary and "teacher ceiling" in summary
    assert (out / "mining_pr.png").stat().st_size > 0
    # precomputed embeddings give the same rows
    src = (utts, encoder.encode([f"{u}.wav" for u in utts]))
    again = evaluate_mining(
        test_dir,
        tmp_path / "again",
        teacher=AxisTeacher(AXIS),
        teacher_id="axis-v1",
        source_embeddings=src,
        distractors=[extra],
        model_name="fake",
        ceiling=False,
    )
    doc2 = json.loads(again.read_text())
    assert doc2["results"] == doc["results"] and doc2["ceiling"] == []


def test_evaluate_mining_errors(tmp_path: Path, test_dir: Path) -> None:
    kwargs = {"teacher": AxisTeacher(AXIS), "teacher_id": "axis-v1"}
    with pytest.raises(EvaluationError, match="no text.fr translations"):
        evaluate_mining(test_dir, tmp_path / "r", tgt_lang="fr", encoder=AxisEncoder({}), **kwargs)
    with pytest.raises(EvaluationError, match="first 'nobody'"):
        evaluate_mining(
            test_dir, tmp_path / "r", source_embeddings=(["nobody"], np.ones((1, 8))), **kwargs
        )
    with pytest.raises(EvaluationError, match="give a speech encoder"):
        evaluate_mining(test_dir, tmp_path / "r", **kwargs)
    with pytest.raises(EvaluationError, match="distractor file or dir not found"):
        evaluate_mining(
            test_dir, tmp_path / "r", encoder=AxisEncoder({}), distractors=["nope.txt"], **kwargs
        )
