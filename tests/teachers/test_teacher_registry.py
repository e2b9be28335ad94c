"""Tests of speechx.teachers.registry and the helpers in speechx.teachers.base."""

from __future__ import annotations

import numpy as np
import pytest

from speechx.errors import SpeechxError, TeacherError
from speechx.teachers import (
    TEACHERS,
    TextTeacher,
    known_teachers,
    l2_normalise,
    load_teacher,
    register_teacher,
    safe_id,
)
from speechx.teachers.base import check_texts


def test_unknown_name_lists_known_teachers() -> None:
    with pytest.raises(TeacherError) as err:
        load_teacher("labse-from-the-internet")
    msg = str(err.value)
    assert "labse-from-the-internet" in msg
    assert "use-multilingual" in msg and "hf:<local dir>" in msg
    assert isinstance(err.value, SpeechxError)


def test_prefix_without_argument_is_an_error() -> None:
    with pytest.raises(TeacherError, match="needs an argument"):
        load_teacher("hf:")


def test_hf_prefix_reaches_the_hf_teacher(tmp_path) -> None:
    with pytest.raises(TeacherError, match="does not exist"):
        load_teacher(f"hf:{tmp_path / 'nowhere'}")


def test_register_teacher_and_protocol(counting_teacher) -> None:
    register_teacher("counting-test", lambda **kw: counting_teacher)
    try:
        t = load_teacher("counting-test")
        assert t is counting_teacher
        assert isinstance(t, TextTeacher)
        assert "counting-test" in known_teachers()
        with pytest.raises(TeacherError, match="taken"):
            register_teacher("counting-test", lambda **kw: counting_teacher)
    finally:
        TEACHERS.pop("counting-test", None)


def test_object_without_encode_is_not_a_teacher() -> None:
    class NotATeacher:
        name = "x"
        teacher_id = "x"
        dim = 3
        languages = None

    assert not isinstance(NotATeacher(), TextTeacher)


def test_use_options_are_checked() -> None:
    with pytest.raises(TeacherError, match="unknown option"):
        load_teacher("use-multilingual", pooling="mean")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("LaBSE (v2)/pooler", "LaBSE-v2-pooler"), ("a_b.c-d", "a_b.c-d"), ("///", "unnamed")],
)
def test_safe_id(raw: str, expected: str) -> None:
    assert safe_id(raw) == expected


def test_l2_normalise_keeps_zero_rows() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    y = l2_normalise(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [[0.6, 0.8], [0.0, 0.0]], atol=1e-7)


def test_check_texts_rejects_a_single_string_and_non_strings() -> None:
    with pytest.raises(TeacherError, match="single str"):
        check_texts("hello", "t")
    with pytest.raises(TeacherError, match="text #1 is int"):
        check_texts(["a", 3], "t")
    assert check_texts(("a", "b"), "t") == ["a", "b"]


def test_benchmark_measures_every_setting(counting_teacher) -> None:
    from speechx.teachers.benchmark import generated_texts, measure

    texts = generated_texts(10)
    assert len(set(texts)) == 10
    register_teacher("counting-bench", lambda **kw: counting_teacher)
    try:
        rows = measure(texts, teacher="counting-bench", threads=[None], batch_sizes=[2, 5])
    finally:
        TEACHERS.pop("counting-bench", None)
    assert [(r.batch_size, r.n) for r in rows] == [(2, 10), (5, 10)]
    assert all(r.per_second > 0 for r in rows)
