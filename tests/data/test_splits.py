"""Tests of speechx.data.splits: sentence-level splits, subsets and the leak check."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechx.data.kaldi import KaldiDir
from speechx.data.splits import (
    SentenceLeakError,
    SplitError,
    check_no_leak,
    first_n,
    read_assignment,
    sentence_ids,
    split_sentences,
    subset_by_language,
    subset_by_split,
)


def _kdir(rows: list[tuple[str, str, str]]) -> KaldiDir:
    """A dir from ``(utt, sentence, lang)`` rows."""
    kd = KaldiDir()
    for utt, sent, lang in rows:
        kd.wav_scp[utt] = f"/x/{utt}.wav"
        kd.text[utt] = f"text of {sent}"
        kd.utt2spk[utt] = f"{lang}-spk"
        kd.utt2lang[utt] = lang
        kd.utt2sent[utt] = sent
    return kd


def test_split_counts_are_exact_and_cover_every_id() -> None:
    ids = [f"s{i:03d}" for i in range(1000)]
    a = split_sentences(ids)
    assert set(a) == set(ids)
    counts = {n: sum(v == n for v in a.values()) for n in ("train", "dev", "test")}
    assert counts == {"train": 800, "dev": 100, "test": 100}


def test_split_rounds_to_the_nearest_cut() -> None:
    a = split_sentences([f"s{i}" for i in range(7)], ratios=(0.5, 0.25, 0.25))
    counts = [sum(v == n for v in a.values()) for n in ("train", "dev", "test")]
    # cuts at round(3.5)=4 and round(5.25)=5
    assert counts == [4, 1, 2]


def test_split_is_deterministic_and_seed_dependent() -> None:
    ids = [f"sent-{i}" for i in range(200)]
    a = split_sentences(ids, seed=0)
    assert a == split_sentences(list(ids), seed=0)
    b = split_sentences(ids, seed=1)
    assert a != b
    assert sorted(a.values()) == sorted(b.values())


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=60), st.randoms())
def test_split_ignores_input_order_and_duplicates(ids: list[str], rnd: random.Random) -> None:
    shuffled = ids + ids[: len(ids) // 2]
    rnd.shuffle(shuffled)
    assert split_sentences(ids, seed=3) == split_sentences(shuffled, seed=3)


def test_split_custom_names_and_empty_input() -> None:
    a = split_sentences(["a", "b", "c", "d"], ratios=(0.5, 0.5), names=("fit", "eval"))
    assert sorted(a.values()) == ["eval", "eval", "fit", "fit"]
    assert split_sentences([]) == {}


@pytest.mark.parametrize(
    ("ratios", "names", "match"),
    [
        ((0.8, 0.1), ("train", "dev", "test"), "differ in length"),
        ((0.8, 0.3, -0.1), ("train", "dev", "test"), "non-negative"),
        ((0.8, 0.1, 0.2), ("train", "dev", "test"), "sum to 1"),
        ((0.5, 0.5), ("train", "train"), "repeat"),
    ],
)
def test_split_rejects_bad_requests(ratios, names, match) -> None:
    with pytest.raises(SplitError, match=match):
        split_sentences(["a", "b"], ratios=ratios, names=names)


def test_subset_by_split_keeps_all_renditions_together() -> None:
    rows = [(f"{lang}-u{i}", f"s{i % 10}", lang) for lang in ("nl", "de") for i in range(40)]
    kd = _kdir(rows)
    a = split_sentences({s for _, s, _ in rows}, ratios=(0.6, 0.2, 0.2))
    parts = {name: subset_by_split(kd, a, name) for name in ("train", "dev", "test")}
    assert sum(len(p) for p in parts.values()) == len(kd)
    for name, part in parts.items():
        assert {a[s] for s in part.utt2sent.values()} <= {name}
        assert set(part.wav_scp) == set(part.utt2spk)
    check_no_leak([parts["train"]], [parts["dev"], parts["test"]])


def test_subset_by_split_names_unassigned_sentence() -> None:
    kd = _kdir([("u1", "s1", "nl"), ("u2", "s2", "nl")])
    with pytest.raises(SplitError, match=r"'s2'.*'u2'"):
        subset_by_split(kd, {"s1": "train"}, "train")


def test_subset_requires_utt2sent(tmp_path: Path) -> None:
    kd = _kdir([("u1", "s1", "nl")])
    kd.utt2sent = {}
    kd.write(tmp_path / "d")
    with pytest.raises(SplitError, match="utt2sent"):
        subset_by_split(tmp_path / "d", {"s1": "train"}, "train")
    with pytest.raises(SplitError, match=str(tmp_path / "d")):
        sentence_ids(tmp_path / "d")


def test_subset_by_language_and_first_n(tmp_path: Path) -> None:
    kd = _kdir([("a", "s1", "nl"), ("b", "s1", "de"), ("c", "s2", "en"), ("d", "s3", "nl")])
    kd.write(tmp_path / "d")
    assert subset_by_language(tmp_path / "d", "nl").utt_ids == ["a", "d"]
    assert subset_by_language(kd, ["de", "en"]).utt_ids == ["b", "c"]
    assert first_n(kd, 2).utt_ids == ["a", "b"]
    assert first_n(kd, 10).utt_ids == ["a", "b", "c", "d"]
    with pytest.raises(SplitError):
        first_n(kd, -1)
    kd.utt2lang.pop("c")
    with pytest.raises(SplitError, match="'c'"):
        subset_by_language(kd, "nl")


def test_check_no_leak_raises_and_names_the_sentence(tmp_path: Path) -> None:
    _kdir([("nl-1", "s1", "nl"), ("nl-2", "s2", "nl")]).write(tmp_path / "nl_train")
    _kdir([("de-3", "s3", "de"), ("de-2", "s2", "de")]).write(tmp_path / "de_test")
    _kdir([("de-4", "s4", "de")]).write(tmp_path / "de_dev")
    stats = check_no_leak([tmp_path / "nl_train"], [tmp_path / "de_dev"])
    assert stats == {"train_sentences": 2, "test_sentences": 1}
    with pytest.raises(SentenceLeakError, match=r"1 sentence id.*'s2'.*nl_train.*de_test"):
        check_no_leak([tmp_path / "nl_train"], [tmp_path / "de_dev", tmp_path / "de_test"])


def test_read_assignment(tmp_path: Path) -> None:
    p = tmp_path / "s.tsv"
    p.write_text("sent_id\tsplit\ten\ns1\ttrain\tHello\ns2\ttest\t\n", encoding="utf-8")
    assert read_assignment(p) == {"s1": "train", "s2": "test"}
    p.write_text("id\tsplit\ns1\ttrain\n", encoding="utf-8")
    with pytest.raises(SplitError, match="header"):
        read_assignment(p)
    p.write_text("sent_id\tsplit\ns1\ttrain\ns1\tdev\n", encoding="utf-8")
    with pytest.raises(SplitError, match="duplicate"):
        read_assignment(p)
