"""Sharded jobs end to end: ``--nj 2`` gives the output of ``--nj 1`` for encoding, teacher
embedding and synthesis, and the Kaldi-style recipe form (split-data, run.sh, merge-embeddings)
gives it too."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from speechx.cli import main
from speechx.models import build_encoder
from speechx.testing import make_kaldi_dir
from tests.teachers.conftest import make_tiny_bert

REPO = Path(__file__).resolve().parents[2]
TEXTS = ["the fish swims", "a big blue sea", "the batch", "long sentence with many words", "de vis"]


def _read_dir(d: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(d.iterdir()) if f.is_file()}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return build_encoder("tiny", 8).save_pretrained(tmp_path_factory.mktemp("m") / "model")


def test_encode_nj2_equals_nj1(tmp_path: Path, tiny_model: Path) -> None:
    data = make_kaldi_dir(tmp_path / "data", 5, seconds=(1.0, 0.5, 0.75, 0.3, 0.6))
    common = ["encode", "--model", str(tiny_model), "--data-dir", str(data), "--batch-size", "2"]
    assert main([*common, "--out", str(tmp_path / "e1")]) == 0
    assert main([*common, "--out", str(tmp_path / "e2"), "--nj", "2"]) == 0
    ids1 = (tmp_path / "e1" / "ids.txt").read_text()
    assert (tmp_path / "e2" / "ids.txt").read_text() == ids1
    a, b = (np.load(tmp_path / e / "embeddings.npy") for e in ("e1", "e2"))
    np.testing.assert_allclose(b, a, atol=1e-5)
    logs = sorted((tmp_path / "e2" / "split2" / "log").glob("encode.*.log"))
    assert [p.name for p in logs] == ["encode.1.log", "encode.2.log"]
    assert "# Ended (code 0)" in logs[0].read_text()


@pytest.mark.slow
def test_encode_recipe_form_equals_nj1(tmp_path: Path, tiny_model: Path) -> None:
    """The Kaldi recipe form: split-data, the run.sh launcher, merge-embeddings."""
    data = make_kaldi_dir(tmp_path / "data", 5, seconds=(1.0, 0.5, 0.75, 0.3, 0.6))
    common = ["encode", "--model", str(tiny_model), "--data-dir", str(data), "--batch-size", "2"]
    assert main([*common, "--out", str(tmp_path / "e1")]) == 0
    ids1 = (tmp_path / "e1" / "ids.txt").read_text()
    a = np.load(tmp_path / "e1" / "embeddings.npy")
    assert main(["split-data", str(data), "2"]) == 0
    run_sh = REPO / "recipes" / "utils" / "run.sh"
    job = [sys.executable, "-m", "speechx.cli", *common[:3], "--data-dir"]
    job += [f"{data}/split2/JOB", "--out", f"{tmp_path}/e3/JOB"]
    proc = subprocess.run(
        [run_sh, "JOB=1:2", tmp_path / "log" / "enc.JOB.log", *job], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    parts = [str(tmp_path / "e3" / i) for i in ("1", "2")]
    assert (
        main(["merge-embeddings", *parts, "--out", str(tmp_path / "e3"), "--data-dir", str(data)])
        == 0
    )
    assert (tmp_path / "e3" / "ids.txt").read_text() == ids1
    np.testing.assert_allclose(np.load(tmp_path / "e3" / "embeddings.npy"), a, atol=1e-5)


@pytest.mark.slow  # tests/test_parallel.py checks the same with cheap jobs
def test_encode_failing_job_names_its_log(
    tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_kaldi_dir(tmp_path / "data", 4)
    kd_wav = sorted((data / "wav").glob("*.wav"))[-1]
    kd_wav.write_bytes(b"not audio")  # the last utterance, so job 2 fails
    argv = ["encode", "--model", str(tiny_model), "--data-dir", str(data), "--out"]
    assert main([*argv, str(tmp_path / "e"), "--nj", "2"]) == 2
    err = capsys.readouterr().err
    assert "1 of 2 jobs failed; see" in err and str(tmp_path / "e/split2/log/encode.2.log") in err
    assert "spk2-utt4" in (tmp_path / "e" / "split2" / "log" / "encode.2.log").read_text()


def test_teacher_embed_nj2_equals_nj1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bert = make_tiny_bert(tmp_path / "bert")
    dirs = [
        make_kaldi_dir(tmp_path / "a", 5, texts=TEXTS, translations_nl=True),
        make_kaldi_dir(tmp_path / "b", 3, texts=TEXTS[2:]),
        make_kaldi_dir(tmp_path / "c", 1, texts=TEXTS[:1]),  # smaller than nj: done unsplit
    ]
    copies = []
    for d in dirs:
        copies.append(tmp_path / "copy" / d.name)
        shutil.copytree(d, copies[-1])
    teacher = ["--teacher", f"hf:{bert}", "--fields", "text", "text.nl", "--skip-missing"]
    argv1 = ["teacher-embed", *teacher, "--cache-dir", str(tmp_path / "cache1"), "--"]
    assert main([*argv1, *map(str, dirs)]) == 0
    argv2 = ["teacher-embed", *teacher, "--cache-dir", str(tmp_path / "cache2"), "--nj", "2"]
    capsys.readouterr()
    assert main([*argv2, "--", *map(str, copies)]) == 0
    # the jobs filled the cache: the pass that writes the outputs encoded nothing
    assert capsys.readouterr().out.rstrip().endswith(", 0 encoded")
    (tid,) = [p.name for p in (dirs[0] / "teacher").iterdir()]
    for d, c in zip(dirs, copies, strict=True):
        one, two = d / "teacher" / tid, c / "teacher" / tid
        assert sorted(p.name for p in one.iterdir()) == sorted(p.name for p in two.iterdir())
        assert (one / "ids.txt").read_bytes() == (two / "ids.txt").read_bytes()
        assert (one / "manifest.json").read_bytes() == (two / "manifest.json").read_bytes()
        for npy in one.glob("*.npy"):
            np.testing.assert_allclose(np.load(two / npy.name), np.load(npy), atol=1e-5)
    assert (copies[0] / "split2" / "2" / "utt2spk").is_file()
    assert not (copies[2] / "split2").exists()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_synth_nj2_is_byte_identical_to_nj1(tmp_path: Path) -> None:
    from data_prep.synth import prepare_synth

    table = tmp_path / "sentences.tsv"
    table.write_text(
        "sent_id\tsplit\ten\tnl\n"
        "s1\ttrain\tHello there.\tHallo daar.\n"
        "s2\ttrain\tThe fish swims.\tDe vis zwemt.\n"
        "s3\ttest\tWhere is the key?\tWaar is de sleutel?\n",
        encoding="utf-8",
    )
    reps = {}
    for nj in (1, 2):
        out, audio = tmp_path / f"data{nj}", tmp_path / f"audio{nj}"
        reps[nj] = prepare_synth(
            table, out, langs=["en", "nl"], nj=nj, audio_dir=audio, progress=False
        )
    assert reps[1].used == reps[2].used == 6
    assert reps[2].extra["synthesised"] == 6
    for name in ("synth_en_train", "synth_nl_train", "synth_en_test", "synth_nl_test"):
        one, two = _read_dir(tmp_path / "data1" / name), _read_dir(tmp_path / "data2" / name)
        # wav.scp differs only in the audio dir it points to
        two["wav.scp"] = two["wav.scp"].replace(b"/audio2/", b"/audio1/")
        assert one == two, name
    for wav in sorted((tmp_path / "audio1").rglob("*.wav")):
        twin = tmp_path / "audio2" / wav.relative_to(tmp_path / "audio1")
        assert twin.read_bytes() == wav.read_bytes()
    # resumable: finished pieces are not run again, a lost clip is remade by its piece only
    pieces = tmp_path / "audio2" / "split2"
    stamps = {p: (p / "results.tsv").stat().st_mtime_ns for p in (pieces / "1", pieces / "2")}
    rep = prepare_synth(
        table, tmp_path / "data2", langs=["en", "nl"], nj=2, audio_dir=tmp_path / "audio2"
    )
    assert rep.extra["reused"] == 6
    assert {p: (p / "results.tsv").stat().st_mtime_ns for p in stamps} == stamps
    lost = sorted((tmp_path / "audio2" / "nl").glob("*.wav"))[-1]
    lost.unlink()
    rep = prepare_synth(
        table, tmp_path / "data2", langs=["en", "nl"], nj=2, audio_dir=tmp_path / "audio2"
    )
    assert rep.extra["synthesised"] == 1 and rep.extra["reused"] == 5 and lost.is_file()
