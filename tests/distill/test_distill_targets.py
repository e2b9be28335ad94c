"""Tests of target loading (single fields, means, missing rows) and sentence groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from distill_helpers import DIM, TEACHER, MakeData, write_fake_teacher

from speechx.data.kaldi import KaldiDir
from speechx.distill.data import SourceSpec, build_distill_data, collate_distill
from speechx.distill.errors import TrainingError
from speechx.distill.targets import load_targets, sentence_groups


def test_single_field_and_mean_of_fields(make_data: MakeData) -> None:
    d = make_data("a", 3)
    one = load_targets(d, TEACHER, "text")
    assert one.ids == KaldiDir.read(d).utt_ids and one.dropped == []
    assert np.allclose(np.linalg.norm(one.vectors, axis=1), 1.0)
    both = load_targets(d, TEACHER, ["text", "text.en"])
    en = load_targets(d, TEACHER, "text.en")
    expect = one.vectors + en.vectors
    expect /= np.linalg.norm(expect, axis=1, keepdims=True)
    assert np.allclose(both.vectors, expect, atol=1e-6)


def test_missing_rows_are_dropped(make_data: MakeData) -> None:
    d = make_data("a", 4)
    arr = np.load(d / "teacher" / TEACHER / "text.en.npy")
    arr[1] = np.nan
    np.save(d / "teacher" / TEACHER / "text.en.npy", arr)
    ids = KaldiDir.read(d).utt_ids
    t = load_targets(d, TEACHER, ["text", "text.en"])
    assert t.dropped == [ids[1]] and len(t) == 3 and ids[1] not in t
    assert load_targets(d, TEACHER, "text").dropped == []


def test_sentence_groups_union() -> None:
    keys = [["sent:1", "text:a"], ["sent:2", "text:b"], ["sent:3", "text:a"], ["sent:2"], ["x"]]
    assert sentence_groups(keys).tolist() == [0, 1, 0, 1, 2]


def test_build_distill_data_concatenates_dirs(make_data: MakeData) -> None:
    a = make_data("a", 3, lang="nl")
    b = make_data("b", 2, lang="de", seed=1)
    data = build_distill_data(
        [SourceSpec(str(a), TEACHER, ["text"]), SourceSpec(str(b), TEACHER, ["text.en"])],
        sample_rate=16000,
    )
    assert len(data) == 5 and data.dim == DIM
    assert data.langs == ["nl"] * 3 + ["de"] * 2
    assert len(set(data.ids)) == 5 and data.ids[0].startswith("a/")
    en_b = load_targets(b, TEACHER, "text.en")
    assert np.allclose(data.target(3), en_b.vectors[0])
    batch = collate_distill([data[i] for i in range(5)])
    assert batch["targets"].shape == (5, DIM) and batch["targets"].dtype == torch.float32
    assert batch["groups"].tolist() == data.groups.tolist()
    # make_kaldi_dir numbers sentences sent1.. in every dir, so they are shared across dirs
    assert batch["groups"].tolist() == [0, 1, 2, 0, 1]


def test_shared_sentence_ids_share_a_group(make_data: MakeData) -> None:
    # make_kaldi_dir numbers sentences sent1.. in every dir: the same ids across dirs
    a = make_data("a", 2)
    b = make_data("b", 2, seed=1)
    data = build_distill_data(
        [SourceSpec(str(a), TEACHER, ["text"]), SourceSpec(str(b), TEACHER, ["text"])],
        sample_rate=16000,
    )
    assert data.groups.tolist() == [0, 1, 0, 1]


def test_dir_without_any_target_raises(make_data: MakeData, tmp_path: Path) -> None:
    d = make_data("a", 2)
    write_fake_teacher(d, {"text": np.full((2, DIM), np.nan)})
    with pytest.raises(TrainingError, match="no utterance has a teacher target"):
        build_distill_data([SourceSpec(str(d), TEACHER, ["text"])], sample_rate=16000)
