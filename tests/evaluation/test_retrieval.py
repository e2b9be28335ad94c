"""Tests of speechx.evaluation.retrieval: pair rows, the language-agnostic pool, results files."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from speechx.errors import EvaluationError
from speechx.evaluation.retrieval import (
    RetrievalEvaluator,
    View,
    evaluate_ceiling,
    evaluate_retrieval_pairs,
    parse_view_name,
    write_retrieval_results,
)

ROW_KEYS = [
    "query",
    "target",
    "n_queries",
    "pool_size",
    "recall@1",
    "recall@5",
    "recall@10",
    "mrr@10",
    "xsim_error",
]


def _views(n_sent: int = 12, dim: int = 16, seed: int = 0) -> dict[str, View]:
    """Text views in en/nl/de and a noisy speech:nl view of the same sentences."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n_sent, dim))
    sents = [f"sent{i:02d}" for i in range(n_sent)]

    def view(prefix: str, noise: float) -> View:
        emb = base + noise * rng.standard_normal((n_sent, dim))
        return View([f"{prefix}-{i}" for i in range(n_sent)], sents, emb.astype(np.float32))

    return {
        "text:en": view("en", 0.1),
        "text:nl": view("nl", 0.1),
        "text:de": view("de", 0.1),
        "speech:nl": view("snl", 0.2),
    }


def test_pair_rows_follow_the_schema() -> None:
    v = _views()
    texts = {k: x for k, x in v.items() if k.startswith("text:")}
    rows = evaluate_retrieval_pairs({"speech:nl": v["speech:nl"]}, texts)
    assert [(r["query"], r["target"]) for r in rows] == [
        ("speech:nl", "text:en"),
        ("speech:nl", "text:nl"),
        ("speech:nl", "text:de"),
        ("speech:nl", "text:all"),
    ]
    for r in rows[:3]:
        assert list(r) == ROW_KEYS
        assert r["n_queries"] == 12 and r["pool_size"] == 12
        assert r["recall@1"] == 1.0 and r["xsim_error"] == 0.0  # low noise: all found
    assert list(rows[3]) == [*ROW_KEYS, "own_language_top1"]
    assert rows[3]["pool_size"] == 36


def test_gold_is_the_same_sentence_and_tuples_are_accepted() -> None:
    # query 0 is sentence A; the pool has B then A: gold is index 1 whatever the order.
    q = (["u0"], ["A"], np.array([[1.0, 0.0]]))
    t = (["t0", "t1"], ["B", "A"], np.array([[0.0, 1.0], [0.9, 0.1]]))
    row = evaluate_retrieval_pairs({"speech:xx": q}, {"text:yy": t})[0]
    assert row["recall@1"] == 1.0 and row["pool_size"] == 2
    t_wrong = (["t0", "t1"], ["A", "B"], np.array([[0.0, 1.0], [0.9, 0.1]]))
    row = evaluate_retrieval_pairs({"speech:xx": q}, {"text:yy": t_wrong})[0]
    assert row["recall@1"] == 0.0 and row["mrr@10"] == 0.5


def test_language_agnostic_pool_and_own_language_top1() -> None:
    # speech query of sentence A in nl; pool: text:nl (A, B) and text:en (A, B).
    # The nl text of A is closest, then the en text of A.
    q = {"speech:nl": (["s"], ["A"], np.array([[1.0, 0.0, 0.0]]))}
    targets = {
        "text:nl": (["nA", "nB"], ["A", "B"], np.array([[0.95, 0.1, 0.0], [0.0, 1.0, 0.0]])),
        "text:en": (["eA", "eB"], ["A", "B"], np.array([[0.9, 0.0, 0.3], [0.0, 0.0, 1.0]])),
    }
    rows = evaluate_retrieval_pairs(q, targets, [("speech:nl", "text:all")])
    assert rows[0]["own_language_top1"] == 1.0 and rows[0]["recall@1"] == 1.0
    # move the en text closer: still a hit (any language counts), but not own language
    targets["text:en"] = (["eA", "eB"], ["A", "B"], np.array([[1.0, 0.0, 0.0], [0, 0, 1.0]]))
    rows = evaluate_retrieval_pairs(q, targets, [("speech:nl", "text:all")])
    assert rows[0]["own_language_top1"] == 0.0 and rows[0]["recall@1"] == 1.0


def test_text_query_pool_leaves_out_its_own_view() -> None:
    v = _views()
    texts = {k: x for k, x in v.items() if k.startswith("text:")}
    rows = evaluate_retrieval_pairs(texts, texts, [("text:nl", "text:all")])
    assert rows[0]["pool_size"] == 24 and rows[0]["own_language_top1"] == 0.0


def test_queries_without_gold_are_left_out_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    q = (["u0", "u1"], ["A", "Z"], np.eye(2))
    t = (["t0", "t1"], ["A", "B"], np.eye(2))
    with caplog.at_level(logging.INFO, logger="speechx.evaluation.retrieval"):
        row = evaluate_retrieval_pairs({"speech:a": q}, {"text:b": t})[0]
    assert re.search(r"1 of 2 queries have no gold item.*'u1'", caplog.text)
    assert row["n_queries"] == 1 and row["recall@1"] == 1.0
    with pytest.raises(EvaluationError, match="no query sentence occurs in the pool"):
        evaluate_retrieval_pairs({"speech:a": (["u"], ["Z"], np.eye(2)[:1])}, {"text:b": t})


def test_ceiling_rows_mirror_the_speech_pairs() -> None:
    v = _views()
    texts = {k: x for k, x in v.items() if k.startswith("text:")}
    rows = evaluate_retrieval_pairs({"speech:nl": v["speech:nl"]}, texts)
    ceiling = evaluate_ceiling(texts, rows)
    # speech:nl -> text:nl has no meaningful text ceiling (it would be text:nl -> text:nl)
    assert [(r["query"], r["target"]) for r in ceiling] == [
        ("text:nl", "text:en"),
        ("text:nl", "text:de"),
        ("text:nl", "text:all"),
    ]
    assert all(r["recall@1"] == 1.0 for r in ceiling)


def test_peer_rows_carry_the_system() -> None:
    v = _views()
    rows = evaluate_retrieval_pairs(
        {"speech:nl": v["speech:nl"]}, {"text:en": v["text:en"]}, system="cascade:whisper-base"
    )
    assert rows[0]["system"] == "cascade:whisper-base" and rows[0]["query"] == "speech:nl"


def test_bad_views_and_pairs() -> None:
    v = _views()
    with pytest.raises(EvaluationError, match="'speech:nl': 2 ids, 12 sentence ids"):
        evaluate_retrieval_pairs(
            {"speech:nl": (["a", "b"], v["speech:nl"].sentence_ids, v["speech:nl"].embeddings)},
            {"text:en": v["text:en"]},
        )
    with pytest.raises(EvaluationError, match="not '<modality>:<language>'"):
        evaluate_retrieval_pairs({"nl": v["speech:nl"]}, {"text:en": v["text:en"]})
    with pytest.raises(EvaluationError, match="no target view 'text:fr'"):
        evaluate_retrieval_pairs({"speech:nl": v["speech:nl"]}, v, [("speech:nl", "text:fr")])
    with pytest.raises(EvaluationError, match="cannot be scored against itself"):
        evaluate_retrieval_pairs(v, v, [("text:en", "text:en")])
    small = View(["x"], ["sent00"], np.ones((1, 3), dtype=np.float32))
    with pytest.raises(EvaluationError, match="dimension 16 but the pool"):
        evaluate_retrieval_pairs({"speech:nl": v["speech:nl"]}, {"text:en": small})
    assert parse_view_name("speech:zh-en") == ("speech", "zh-en")


def test_write_results_files(tmp_path: Path) -> None:
    v = _views()
    texts = {k: x for k, x in v.items() if k.startswith("text:")}
    rows = evaluate_retrieval_pairs({"speech:nl": v["speech:nl"]}, texts)
    ceiling = evaluate_ceiling(texts, rows)
    peers = [{**rows[0], "system": "cascade:whisper-base", "recall@1": 0.5}]
    out = tmp_path / "results"
    out.mkdir()
    (out / "summary.md").write_text("# demo\n\n## ASR\n\nwer 0.3\n")
    path = write_retrieval_results(
        out,
        split="test",
        model="exp/demo/model",
        teacher="use-multilingual",
        results=rows,
        ceiling=ceiling,
        peers=peers,
    )
    assert path == out / "retrieval.json"
    doc = json.loads(path.read_text())
    assert list(doc) == ["task", "split", "model", "teacher", "results", "ceiling", "peers"]
    assert doc["task"] == "retrieval" and doc["split"] == "test"
    assert doc["results"] == json.loads(json.dumps(rows))
    assert doc["peers"][0]["system"] == "cascade:whisper-base"
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# demo\n\n## ASR\n\nwer 0.3\n")  # other sections kept
    assert "| speech:nl | 1.000 | 1.000 | 1.000 | 1.000 |" in summary
    assert "Teacher ceiling" in summary and "cascade:whisper-base" in summary
    png = (out / "retrieval_heatmap.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # a second write replaces the retrieval section instead of appending another one
    write_retrieval_results(
        out, split="dev", model="m", teacher="t", results=rows[:1], ceiling=[], peers=[]
    )
    summary = (out / "summary.md").read_text()
    assert summary.count("## Retrieval") == 1 and "split `dev`" in summary
    assert "## ASR" in summary
    assert sorted(p.name for p in out.iterdir()) == [
        "retrieval.json",
        "retrieval_heatmap.png",
        "summary.md",
    ]


def test_write_results_rejects_peers_without_system(tmp_path: Path) -> None:
    row = {"query": "speech:nl", "target": "text:en", "recall@1": 1.0}
    with pytest.raises(EvaluationError, match="peers row 0 has no 'system'"):
        write_retrieval_results(
            tmp_path, split="s", model="m", teacher="t", results=[row], ceiling=[], peers=[row]
        )


def test_evaluator_keys_and_primary_metric(tmp_path: Path) -> None:
    v = _views()
    texts = {k: x for k, x in v.items() if k.startswith("text:")}
    calls = []

    def encode(model: object) -> dict[str, View]:
        calls.append(model)
        return {"speech:nl": v["speech:nl"]}

    ev = RetrievalEvaluator(texts, encode, name="dev")
    scores = ev("model-A", output_path=tmp_path, epoch=1, steps=10)
    assert calls == ["model-A"]
    assert ev.primary_metric == "dev_recall@1" and ev.greater_is_better
    assert scores["dev_recall@1"] == 1.0
    assert scores["dev_speech:nl_to_text:en_mrr@10"] == 1.0
    assert all(k.startswith("dev_") for k in scores)
    assert all(isinstance(x, float) for x in scores.values())
    line = json.loads((tmp_path / "dev_retrieval.jsonl").read_text().splitlines()[0])
    assert line["epoch"] == 1 and line["steps"] == 10 and len(line["rows"]) == 3
    agnostic = RetrievalEvaluator(texts, encode, name="dev", language_agnostic=True)("model-B")
    assert 0.0 <= agnostic["dev_speech:nl_to_text:all_own_language_top1"] <= 1.0
    assert agnostic["dev_recall@1"] == scores["dev_recall@1"]  # the mean leaves text:all out
    with pytest.raises(EvaluationError, match="primary metric"):
        RetrievalEvaluator(texts, encode, primary="accuracy")
    assert not RetrievalEvaluator(texts, encode, primary="xsim_error").greater_is_better
