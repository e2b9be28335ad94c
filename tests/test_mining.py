"""Tests of speechx.mining: margin scores against their definition, modes, threshold, errors."""

from __future__ import annotations

import numpy as np
import pytest

from speechx.errors import MiningError
from speechx.metrics.retrieval import knn_mean, margin_scores, pair_margins
from speechx.mining import MinedPair, mine, neighbours, pair_arrays, select_pairs


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _angles(*degrees: float) -> np.ndarray:
    r = np.deg2rad(degrees)
    return np.stack([np.cos(r), np.sin(r)], axis=1).astype(np.float32)


def _direct(x: np.ndarray, y: np.ndarray, k: int, scoring: str) -> np.ndarray:
    """The full score matrix straight from Artetxe & Schwenk's definition."""
    cos = x @ y.T
    x_nn = np.sort(cos, axis=1)[:, ::-1][:, :k].sum(axis=1)  # sum over NN_k(x) in Y
    y_nn = np.sort(cos.T, axis=1)[:, ::-1][:, :k].sum(axis=1)  # sum over NN_k(y) in X
    denom = x_nn[:, None] / (2 * k) + y_nn[None, :] / (2 * k)
    return cos / denom if scoring == "ratio" else cos - denom


@pytest.mark.parametrize("scoring", ["ratio", "distance"])
def test_scores_match_the_definition(scoring: str) -> None:
    rng = np.random.default_rng(0)
    x = _unit(rng.standard_normal((7, 5)) + 2.0)  # positive cosines, as the ratio assumes
    y = _unit(rng.standard_normal((9, 5)) + 2.0)
    k = 3
    full = _direct(x, y, k, scoring)
    nb = neighbours(x, y, k=k)
    np.testing.assert_allclose(nb.src_knn, knn_mean(x, y, k), rtol=1e-5)
    np.testing.assert_allclose(nb.tgt_knn, knn_mean(y, x, k), rtol=1e-5)
    # the metrics module's matrix form and the elementwise form agree with the definition
    np.testing.assert_allclose(
        margin_scores(x @ y.T, nb.src_knn, nb.tgt_knn, scoring=scoring), full, atol=1e-5
    )
    pairs = select_pairs(nb, mode="forward", scoring=scoring)
    assert sorted(p.src_index for p in pairs) == list(range(7))
    cos = x @ y.T
    for p in pairs:
        cands = np.argsort(-cos[p.src_index], kind="stable")[:k]  # the k nearest targets
        assert p.tgt_index == cands[np.argmax(full[p.src_index, cands])]
        assert p.score == pytest.approx(full[p.src_index, p.tgt_index], abs=1e-5)
        assert p.cosine == pytest.approx(cos[p.src_index, p.tgt_index], rel=1e-5)
    assert [p.score for p in pairs] == sorted((p.score for p in pairs), reverse=True)


def test_pair_margins_broadcasts_and_ranks_zero_over_zero_last() -> None:
    out = pair_margins(np.array([[0.5], [0.0]]), np.array([[0.5], [0.0]]), np.array([0.5, 0.0]))
    assert out[0, 0] == pytest.approx(1.0) and out[1, 1] == -np.inf
    assert pair_margins(np.ones(2), np.ones(2), np.ones(2), scoring="distance").tolist() == [0, 0]


def test_modes_on_a_crafted_case() -> None:
    # x0 (0 deg) and x1 (30 deg) are both nearest to y0 (10 deg); y1 (80 deg) is nearest to x1
    x, y = _angles(0, 30), _angles(10, 80)

    def got(mode: str) -> list[tuple[str, str]]:
        return sorted((p.src_id, p.tgt_id) for p in mine(x, y, mode=mode, scoring="cosine"))

    assert got("forward") == [("0", "0"), ("1", "0")]
    assert got("backward") == [("0", "0"), ("1", "1")]
    assert got("intersection") == [("0", "0")]
    assert got("union") == [("0", "0"), ("1", "0"), ("1", "1")]
    union = mine(x, y, mode="union", scoring="cosine", src_ids=["a", "b"], tgt_ids=["p", "q"])
    assert [(p.src_id, p.tgt_id) for p in union] == [("a", "p"), ("b", "p"), ("b", "q")]
    assert union[0].score == pytest.approx(np.cos(np.deg2rad(10)), rel=1e-6)


def test_margin_discounts_a_hub() -> None:
    # y0 sits between x0 and x1 and is the cosine best of both; margin scoring lets x1 take
    # its own, slightly further translation y1, which no other source is near
    x = _angles(0, 40, 90)
    y = _angles(20, 62, 90)
    cos = [(p.src_id, p.tgt_id) for p in mine(x, y, mode="forward", scoring="cosine")]
    assert sorted(cos) == [("0", "0"), ("1", "0"), ("2", "2")]
    ratio = mine(x, y, mode="forward", scoring="ratio", k=2)
    assert sorted((p.src_id, p.tgt_id) for p in ratio) == [("0", "0"), ("1", "1"), ("2", "2")]


def test_threshold_keeps_scores_at_or_above_it() -> None:
    x, y = _angles(0, 30, 60), _angles(0, 35, 70)
    every = mine(x, y, mode="intersection", scoring="cosine")
    scores = [p.score for p in every]
    assert len(every) == 3 and scores == sorted(scores, reverse=True)
    middle = mine(x, y, mode="intersection", scoring="cosine", threshold=scores[1])
    assert [p.score for p in middle] == scores[:2]  # the pair at the threshold is kept
    assert mine(x, y, scoring="cosine", threshold=1.01) == []
    assert len(mine(x, y, scoring="cosine", threshold=-1.0)) == 3


def test_mined_pair_fields_and_arrays_agree() -> None:
    x, y = _angles(0, 45), _angles(44, 1)
    nb = neighbours(x, y, k=1, src_ids=["s0", "s1"], tgt_ids=["t0", "t1"])
    pairs = select_pairs(nb, mode="intersection", scoring="ratio")
    arrs = pair_arrays(nb, mode="intersection", scoring="ratio")
    assert all(isinstance(p, MinedPair) for p in pairs)
    assert [(p.src_id, p.tgt_id) for p in pairs] == [("s0", "t1"), ("s1", "t0")]
    assert arrs.src_index.tolist() == [p.src_index for p in pairs]
    assert arrs.score.tolist() == [p.score for p in pairs]


def test_faiss_backend_gives_the_exact_pairs() -> None:
    pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((40, 16)), rng.standard_normal((50, 16))
    exact = mine(x, y, k=4, mode="union")
    flat = mine(x, y, k=4, mode="union", backend="faiss-flat")
    assert [(p.src_id, p.tgt_id) for p in flat] == [(p.src_id, p.tgt_id) for p in exact]
    np.testing.assert_allclose([p.score for p in flat], [p.score for p in exact], rtol=1e-5)


def test_search_chunks_give_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    import speechx.mining

    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((23, 8)), rng.standard_normal((17, 8))
    whole = mine(x, y, mode="union")
    monkeypatch.setattr(speechx.mining, "SEARCH_CHUNK", 5)
    chunked = mine(x, y, mode="union")
    assert [(p.src_index, p.tgt_index) for p in chunked] == [
        (p.src_index, p.tgt_index) for p in whole
    ]
    np.testing.assert_allclose([p.score for p in chunked], [p.score for p in whole], rtol=1e-6)


def test_errors_name_the_sides() -> None:
    x, y = np.eye(3, dtype=np.float32), np.eye(4, dtype=np.float32)
    with pytest.raises(MiningError, match="src.txt has dimension 3 but tgt.txt has dimension 4"):
        mine(x, y, names=("src.txt", "tgt.txt"))
    with pytest.raises(MiningError, match=r"k=4 is larger than the source \(3 rows\)"):
        mine(x, x, k=4)
    with pytest.raises(MiningError, match="the target is empty"):
        mine(x, np.zeros((0, 3), dtype=np.float32))
    with pytest.raises(MiningError, match="unknown mining mode 'both'"):
        mine(x, x, mode="both")
    with pytest.raises(MiningError, match="unknown scoring"):
        mine(x, x, scoring="csls")
    with pytest.raises(MiningError, match="the target: .*all-zero"):
        mine(x, np.zeros((3, 3), dtype=np.float32), k=1)
    with pytest.raises(MiningError, match="duplicate id 'a'"):
        mine(x, x, k=1, tgt_ids=["a", "b", "a"])
    nb = neighbours(x, x, k=1, backward=False)
    with pytest.raises(MiningError, match="needs the backward search"):
        pair_arrays(nb, mode="intersection")
    # cosine does not use k: a small collection is fine
    assert len(mine(x, x, k=10, scoring="cosine")) == 3
