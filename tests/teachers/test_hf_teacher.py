"""Tests of the ``hf:<dir>`` teacher with a tiny random BERT saved to a temp dir."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from speechx.errors import TeacherError
from speechx.teachers import HFTextTeacher, TextTeacher, load_teacher

SHORT = "the fish swims"
LONG = "a long sentence with many words to pad the batch in the big blue sea"
TEXTS = [SHORT, "de vis zwemt in het water", LONG, "der fisch schwimmt im wasser"]


@pytest.mark.parametrize("pooling", ["cls", "mean", "pooler"])
def test_shapes_norms_and_padding_invariance(tiny_bert_dir: Path, pooling: str) -> None:
    t = load_teacher(f"hf:{tiny_bert_dir}", pooling=pooling)
    assert isinstance(t, TextTeacher) and t.dim == 32
    emb = t.encode(TEXTS, batch_size=3)
    assert emb.shape == (4, 32) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    alone = t.encode([SHORT])
    with_long_neighbour = t.encode([SHORT, LONG], batch_size=2)
    np.testing.assert_allclose(alone[0], with_long_neighbour[0], atol=1e-5)
    # Input order survives the length sort.
    np.testing.assert_allclose(emb[2], with_long_neighbour[1], atol=1e-5)
    assert t.encode([]).shape == (0, 32)


def test_poolings_differ_and_ids_name_them(tiny_bert_dir: Path) -> None:
    by = {p: HFTextTeacher(tiny_bert_dir, pooling=p) for p in ("cls", "mean", "pooler")}
    embs = {p: t.encode(TEXTS) for p, t in by.items()}
    for a, b in [("cls", "mean"), ("cls", "pooler"), ("mean", "pooler")]:
        assert not np.allclose(embs[a], embs[b], atol=1e-3), (a, b)
    ids = {p: t.teacher_id for p, t in by.items()}
    assert len(set(ids.values())) == 3
    for p, tid in ids.items():
        assert tid.startswith("hf-tiny-bert-") and f"-{p}-" in tid
        assert all(c.isalnum() or c in "._-" for c in tid)


def test_deterministic_across_calls_and_instances(tiny_bert_dir: Path) -> None:
    a = HFTextTeacher(tiny_bert_dir, pooling="mean")
    b = HFTextTeacher(tiny_bert_dir, pooling="mean")
    first = a.encode(TEXTS)
    np.testing.assert_array_equal(first, a.encode(TEXTS))
    np.testing.assert_array_equal(first, b.encode(TEXTS))
    assert a.teacher_id == b.teacher_id


def test_mean_pooling_matches_a_manual_computation(tiny_bert_dir: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert_dir, local_files_only=True)
    model = AutoModel.from_pretrained(tiny_bert_dir, local_files_only=True).eval()
    with torch.inference_mode():
        hidden = model(**tok([SHORT], return_tensors="pt")).last_hidden_state[0]
    expected = hidden.mean(0).numpy()
    expected /= np.linalg.norm(expected)
    got = HFTextTeacher(tiny_bert_dir, pooling="mean").encode([SHORT])[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_id_follows_weights_not_path(tiny_bert_dir: Path, tmp_path: Path, make_bert) -> None:
    copy = shutil.copytree(tiny_bert_dir, tmp_path / "elsewhere" / "tiny-bert")
    assert HFTextTeacher(copy).teacher_id == HFTextTeacher(tiny_bert_dir).teacher_id
    other = make_bert(tmp_path / "reseeded" / "tiny-bert", seed=1)
    assert HFTextTeacher(other).teacher_id != HFTextTeacher(tiny_bert_dir).teacher_id


def test_unnormalised_output_and_max_length(tiny_bert_dir: Path) -> None:
    raw = HFTextTeacher(tiny_bert_dir, pooling="mean", normalize=False)
    assert raw.teacher_id.endswith("-raw")
    norms = np.linalg.norm(raw.encode(TEXTS), axis=1)
    assert not np.allclose(norms, 1.0, atol=1e-3)
    short = HFTextTeacher(tiny_bert_dir, pooling="mean", max_length=4)
    assert "-len4" in short.teacher_id
    # With 4 tokens ([CLS] + 2 words + [SEP]) the tail of LONG is cut, so it differs from the
    # full-length embedding but equals the embedding of its first two words.
    full = HFTextTeacher(tiny_bert_dir, pooling="mean").encode([LONG])[0]
    cut = short.encode([LONG])[0]
    assert not np.allclose(full, cut, atol=1e-3)
    np.testing.assert_allclose(cut, short.encode(["a long"])[0], atol=1e-5)


def test_missing_dir_config_or_tokenizer(tmp_path: Path, tiny_bert_dir: Path) -> None:
    with pytest.raises(TeacherError, match="does not exist"):
        HFTextTeacher(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TeacherError, match="no config.json"):
        HFTextTeacher(empty)
    no_tok = tmp_path / "no_tok"
    no_tok.mkdir()
    shutil.copy(tiny_bert_dir / "config.json", no_tok)
    with pytest.raises(TeacherError, match="no tokenizer"):
        HFTextTeacher(no_tok)


def test_bad_options(tiny_bert_dir: Path) -> None:
    with pytest.raises(TeacherError, match="pooling must be one of"):
        HFTextTeacher(tiny_bert_dir, pooling="max")
    with pytest.raises(TeacherError, match="unknown option"):
        HFTextTeacher(tiny_bert_dir, poolng="cls")
    with pytest.raises(TeacherError, match="max_length"):
        HFTextTeacher(tiny_bert_dir, max_length=0)
    with pytest.raises(TeacherError, match="batch_size"):
        HFTextTeacher(tiny_bert_dir).encode(TEXTS, batch_size=0)


def test_pooler_pooling_refuses_a_checkpoint_without_pooler(tmp_path: Path, make_bert) -> None:
    d = make_bert(tmp_path / "nopool", with_pooler=False)
    HFTextTeacher(d, pooling="cls").encode([SHORT])  # the pooler is unused: fine
    with pytest.raises(TeacherError, match="pooler"):
        HFTextTeacher(d, pooling="pooler").encode([SHORT])


def test_config_without_hidden_size(tmp_path: Path, tiny_bert_dir: Path) -> None:
    d = shutil.copytree(tiny_bert_dir, tmp_path / "broken")
    cfg = json.loads((d / "config.json").read_text())
    del cfg["hidden_size"]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(TeacherError, match="hidden_size"):
        HFTextTeacher(d)
