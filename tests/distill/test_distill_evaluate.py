"""Tests of the dev evaluation helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from distill_helpers import TEACHER, MakeData, tiny_config

from speechx.distill.data import SourceSpec, build_distill_data
from speechx.distill.errors import TrainingError
from speechx.distill.evaluate import duration_batches, evaluate_dev, is_better, retrieval_pool
from speechx.distill.trainer import train_distill
from speechx.models import build_encoder


def test_duration_batches_bound_padded_seconds() -> None:
    durs = [0.5, 2.0, 0.4, 1.0, 0.6, 3.5]
    batches = list(duration_batches(durs, 2.0))
    assert sorted(i for b in batches for i in b) == list(range(6))
    for b in batches:
        assert len(b) == 1 or max(durs[i] for i in b) * len(b) <= 2.0


def test_retrieval_pool_dedupes_and_maps_groups() -> None:
    t = np.array([[1, 0], [0, 1], [1, 0], [0.6, 0.8]], dtype=np.float32)
    groups = np.array([0, 1, 0, 1])  # the last text is another rendition of sentence 1
    cands, gold = retrieval_pool(t, groups)
    assert cands.shape == (3, 2)
    assert gold == [{0}, {1, 2}, {0}, {1, 2}]


def test_is_better_direction() -> None:
    assert is_better("recall@1", 0.5, None) and is_better("recall@1", 0.6, 0.5)
    assert not is_better("recall@1", 0.4, 0.5)
    assert is_better("xsim_error", 0.1, 0.2) and not is_better("cosine_distance", 0.3, 0.2)
    assert not is_better("recall@1", float("nan"), None)


def test_evaluate_dev_keys_and_ranges(make_data: MakeData) -> None:
    a, b = make_data("a", 3), make_data("b", 2, seed=1)
    dev = build_distill_data(
        [SourceSpec(str(a), TEACHER, ["text"]), SourceSpec(str(b), TEACHER, ["text"])],
        sample_rate=16000,
    )
    m = evaluate_dev(build_encoder("tiny", 8), dev)
    assert m["dev_a_n_queries"] == 3 and m["dev_b_pool_size"] == 2
    assert m["dev_recall@1"] == pytest.approx(
        (3 * m["dev_a_recall@1"] + 2 * m["dev_b_recall@1"]) / 5
    )
    assert 0 <= m["dev_recall@1"] <= m["dev_recall@5"] <= 1
    assert 0 <= m["dev_cosine_distance"] <= 2


def test_wrong_teacher_id_lists_present_ids(make_data: MakeData, tmp_path: Path) -> None:
    d = make_data("a", 2)
    cfg = tiny_config([d], max_steps=1, **{"data.teacher_id": "use-multilingual"})
    with pytest.raises(TrainingError, match="fake-teacher"):
        train_distill(cfg, tmp_path / "exp")


def test_mean_pairwise_cosine() -> None:
    from speechx.distill.evaluate import mean_pairwise_cosine

    same = np.tile(np.array([[0.6, 0.8]], dtype=np.float32), (5, 1))
    assert mean_pairwise_cosine(same) == pytest.approx(1.0)
    eye = np.eye(4, dtype=np.float32)
    assert mean_pairwise_cosine(eye) == pytest.approx(0.0)
    assert np.isnan(mean_pairwise_cosine(eye[:1]))
