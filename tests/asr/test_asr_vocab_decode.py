"""Vocabulary, text normalisation and the CTC decoders."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from speechx.asr.decode import (
    DecodeError,
    PyctcdecodeDecoder,
    beam_decode,
    decode_batch,
    greedy_decode,
    pyctcdecode_available,
)
from speechx.asr.vocab import TextConfig, Vocabulary
from speechx.errors import ModelError


def test_vocab_is_the_union_of_normalised_characters_in_a_stable_order() -> None:
    v = Vocabulary.build(["Hallo, Wereld!", "Straße 2"], TextConfig())
    assert v.tokens[:3] == ["<pad>", "<unk>", "|"]
    assert set(v.tokens[3:]) == set("halowerdstrasse2")  # casefold: ß -> ss
    assert v.tokens[3:] == sorted(v.tokens[3:])
    assert v == Vocabulary.build(["Straße 2", "Hallo, Wereld!"], TextConfig())
    ids = v.encode("Hallo  wereld?")
    assert ids.count(v.delimiter_id) == 1
    assert v.decode(ids) == "hallo wereld"
    assert v.encode("xyz") == [v.unk_id] * 3


def test_digits_can_be_removed_and_the_setting_round_trips(tmp_path: Path) -> None:
    text = TextConfig(digits="remove", lowercase=False)
    v = Vocabulary.build(["Level 12 is Hard"], text)
    assert "1" not in v.tokens and "H" in v.tokens
    assert v.normalize("Level 12 is Hard") == "Level is Hard"
    v.save(tmp_path)
    back = Vocabulary.load(tmp_path, TextConfig.from_dict(text.to_dict()))
    assert back == v
    with pytest.raises(ModelError, match="unknown setting"):
        TextConfig.from_dict({"casefold": True})


def test_vocab_load_names_the_file_on_bad_content(tmp_path: Path) -> None:
    (tmp_path / "vocab.json").write_text('{"a": 0, "b": 5}', encoding="utf-8")
    with pytest.raises(ModelError, match=r"vocab\.json.*0\.\.1"):
        Vocabulary.load(tmp_path)


def _lp(rows: list[list[float]]) -> np.ndarray:
    p = np.asarray(rows, dtype=np.float64)
    return np.log(p / p.sum(axis=1, keepdims=True))


VOCAB = Vocabulary(["<pad>", "<unk>", "|", "a", "b"])


def test_greedy_collapses_repeats_and_drops_blanks() -> None:
    # frames: a a <b> a | b b  -> "aa b"
    best = [3, 3, 0, 3, 2, 4, 4]
    lp = _lp([[0.9 if k == t else 0.025 for k in range(5)] for t in best])
    assert greedy_decode(lp, VOCAB) == "aa b"
    with pytest.raises(DecodeError, match=r"\[T, 5\]"):
        greedy_decode(lp[:, :4], VOCAB)


def test_beam_search_sums_alignments_where_greedy_takes_one_path() -> None:
    # Two frames.  Best path is blank-blank (0.36) -> "", but "a" has the larger total
    # probability: a-a, a-blank, blank-a = 0.16 + 0.24 + 0.24 = 0.64 > 0.36 (toy two-token
    # problem embedded in the 5-token vocabulary with near-zero other tokens).
    eps = 1e-9
    row = [0.6, eps, eps, 0.4, eps]
    lp = _lp([row, row])
    assert greedy_decode(lp, VOCAB) == ""
    assert beam_decode(lp, VOCAB, beam_size=4) == "a"
    assert beam_decode(lp, VOCAB, beam_size=4, token_prune=-math.inf) == "a"


def test_beam_search_agrees_with_greedy_on_peaked_outputs() -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        best = rng.integers(0, 5, size=30)
        lp = _lp([[0.96 if k == t else 0.01 for k in range(5)] for t in best])
        assert beam_decode(lp, VOCAB, beam_size=3) == greedy_decode(lp, VOCAB)
    assert decode_batch([lp], VOCAB, beam_size=1) == [greedy_decode(lp, VOCAB)]
    with pytest.raises(DecodeError, match="backend"):
        decode_batch([lp], VOCAB, beam_size=2, backend="nope")


def test_lm_file_must_exist(tmp_path: Path) -> None:
    if not pyctcdecode_available():
        with pytest.raises(DecodeError, match="pyctcdecode"):
            PyctcdecodeDecoder(VOCAB)
        return
    with pytest.raises(DecodeError, match="not found"):
        PyctcdecodeDecoder(VOCAB, tmp_path / "missing.arpa")


@pytest.mark.skipif(not pyctcdecode_available(), reason="pyctcdecode not installed")
def test_pyctcdecode_without_lm_matches_the_builtin_beam() -> None:
    rng = np.random.default_rng(1)
    best = rng.choice([0, 2, 3, 4], size=20)
    lp = _lp([[0.8 if k == t else 0.05 for k in range(5)] for t in best])
    dec = PyctcdecodeDecoder(VOCAB)
    assert dec(lp, beam_size=8) == beam_decode(lp, VOCAB, beam_size=8)
    assert decode_batch([lp], VOCAB, beam_size=8, backend="pyctcdecode") == [dec(lp)]
