"""The XTREME-S FLEURS-Retrieval option: English keys of every test set padded with distractors."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speechx.errors import EvaluationError
from speechx.evaluation.retrieval import View, evaluate_retrieval_pairs, pad_pool
from speechx.evaluation.speech_retrieval import (
    evaluate_speech_retrieval,
    read_distractor_texts,
)
from speechx.testing import make_wav

DIM = 32
EN = {"s1": "The cat sleeps.", "s2": "It is raining.", "s3": "Where is the station?"}
NL = {"s1": "De kat slaapt.", "s2": "Het regent.", "s3": "Waar is het station?"}


class HashTeacher:
    """A fake teacher: a deterministic random unit vector per text."""

    name = "hash"
    teacher_id = "hash-v1"
    languages = ("en", "nl")
    dim = DIM

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str], batch_size: int = 64, **_: Any) -> np.ndarray:
        texts = list(texts)
        self.encoded += texts
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(DIM)
            out[i] = v / np.linalg.norm(v)
        return out


class TextEncoder:
    """A 'speech' encoder that embeds the English sentence its wav file name says (s1.wav ...),
    plus noise, so that a distractor close to the gold key can beat it."""

    def __init__(self, teacher: HashTeacher, noise: float = 0.0) -> None:
        self.teacher, self.noise = teacher, noise

    def encode(self, inputs: Sequence[Any], batch_size: int = 16) -> np.ndarray:
        sids = [Path(str(p)).stem.split("-")[-1] for p in inputs]
        emb = HashTeacher().encode([EN[s] for s in sids])
        rng = np.random.default_rng(0)
        emb = emb + self.noise * rng.standard_normal(emb.shape).astype(np.float32)
        return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def _test_dir(root: Path, lang: str, texts: dict[str, str], sids: list[str]) -> Path:
    d = root / f"fleurs_{lang}_test"
    d.mkdir(parents=True)
    utts = [f"fleurs-{lang}-{s}" for s in sids]
    for u, s in zip(utts, sids, strict=True):
        make_wav(d / "wav" / f"{u}-{s}.wav", 0.2)
    lines = {
        "wav.scp": [f"{u} {d / 'wav' / f'{u}-{s}.wav'}" for u, s in zip(utts, sids, strict=True)],
        "text": [f"{u} {texts[s]}" for u, s in zip(utts, sids, strict=True)],
        "text.en": [f"{u} {EN[s]}" for u, s in zip(utts, sids, strict=True)],
        "utt2spk": [f"{u} {u}" for u in utts],
        "spk2utt": [f"{u} {u}" for u in utts],
        "utt2lang": [f"{u} {lang}" for u in utts],
        "utt2sent": [f"{u} fleurs-{s}" for u, s in zip(utts, sids, strict=True)],
    }
    for name, rows in lines.items():
        (d / name).write_text("\n".join(sorted(rows)) + "\n", encoding="utf-8")
    return d


def test_pad_pool_adds_rows_that_are_never_gold() -> None:
    keys = View(["a", "b"], ["s1", "s2"], np.eye(2, 4, dtype=np.float32))
    pool = pad_pool(keys, np.ones((3, 4), dtype=np.float32))
    assert pool.ids[2:] == ["distractor:0", "distractor:1", "distractor:2"]
    assert pool.sentence_ids[:2] == ["s1", "s2"] and pool.embeddings.shape == (5, 4)
    assert pad_pool(keys, np.zeros((0, 4))) is not None
    with pytest.raises(EvaluationError, match="do not fit"):
        pad_pool(keys, np.ones((1, 3)))


def test_a_distractor_nearer_than_gold_costs_recall() -> None:
    q = View(["q1", "q2"], ["s1", "s2"], np.array([[1, 0.1, 0, 0], [0, 1, 0, 0]], np.float32))
    keys = View(["k1", "k2"], ["s1", "s2"], np.array([[1, 0, 0, 0], [0, 1, 0, 0]], np.float32))
    plain = evaluate_retrieval_pairs({"speech:nl": q}, {"text:en": keys})[0]
    assert plain["recall@1"] == 1.0 and plain["pool_size"] == 2
    decoy = np.array([[1, 0.1, 0, 0]], np.float32)  # identical to query 1
    padded = evaluate_retrieval_pairs({"speech:nl": q}, {"text:en": pad_pool(keys, decoy)})[0]
    assert padded["recall@1"] == 0.5 and padded["pool_size"] == 3
    assert padded["mrr@10"] == pytest.approx((0.5 + 1.0) / 2)


def test_read_distractor_texts(tmp_path: Path) -> None:
    f = tmp_path / "news.txt"
    f.write_text("One sentence.\n\n  one   SENTENCE. \nAnother one.\n", encoding="utf-8")
    d = _test_dir(tmp_path, "nl", NL, ["s1"])
    assert read_distractor_texts([f, d]) == ["One sentence.", "Another one.", EN["s1"]]
    with pytest.raises(EvaluationError, match="not found"):
        read_distractor_texts([tmp_path / "missing.txt"])
    with pytest.raises(EvaluationError, match="no text.de"):
        read_distractor_texts([d], "de")


def test_evaluate_speech_retrieval_with_distractors(tmp_path: Path) -> None:
    teacher = HashTeacher()
    nl = _test_dir(tmp_path / "data", "nl", NL, ["s1", "s2"])  # nl lacks s3
    en = _test_dir(tmp_path / "data", "en", EN, ["s1", "s2", "s3"])
    news = tmp_path / "news.txt"
    news.write_text(
        "A train leaves at noon.\nthe cat   sleeps.\nBananas are yellow.\n", encoding="utf-8"
    )
    out = tmp_path / "results"
    path = evaluate_speech_retrieval(
        TextEncoder(teacher),
        [nl, en],
        out,
        teacher_id=teacher.teacher_id,
        teacher=teacher,
        cache_dir=tmp_path / "cache",
        distractors=[news],
    )
    doc = json.loads(path.read_text())
    rows = [r for r in doc["results"] if r.get("protocol") == "xtreme-s"]
    # queries in the source languages only; English speech is not queried against English keys
    assert [(r["set"], r["query"], r["target"]) for r in rows] == [
        ("fleurs_nl_test", "speech:nl", "text:en+distractors")
    ]
    (row,) = rows
    # keys: the 3 English sentences of every test set (n-way) + 2 distractors; the one equal to
    # a key ("the cat sleeps.") is left out so that it cannot be a hidden gold item
    assert row["n_distractors"] == 2 and row["pool_size"] == 5
    assert row["n_queries"] == 2 and row["recall@1"] == 1.0
    assert "the cat   sleeps." not in teacher.encoded
    ceiling = [r for r in doc["ceiling"] if r.get("protocol") == "xtreme-s"]
    assert [r["query"] for r in ceiling] == ["text:nl"] and ceiling[0]["pool_size"] == 5
    # the plain per-set rows are still there, unchanged
    assert any(r["target"] == "text:en" and r["set"] == "fleurs_nl_test" for r in doc["results"])
    assert "text:en+distractors" in (out / "summary.md").read_text()


def test_distractors_need_a_teacher(tmp_path: Path) -> None:
    nl = _test_dir(tmp_path / "data", "nl", NL, ["s1"])
    with pytest.raises(EvaluationError, match="teacher"):
        evaluate_speech_retrieval(
            TextEncoder(HashTeacher()), [nl], tmp_path / "r", teacher_id="x", distractors=[nl]
        )


def test_cli_flag(tmp_path: Path) -> None:
    from speechx.cli import build_parser

    args = build_parser().parse_args(
        ["evaluate-retrieval", "--model", "m", "--data-dirs", "d", "--out-dir", "o",
         "--distractors", "a.txt", "b", "--key-lang", "en"]
    )  # fmt: skip
    assert args.distractors == [Path("a.txt"), Path("b")] and args.key_lang == "en"
