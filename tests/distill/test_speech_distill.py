"""Speech-to-speech distillation: a student trained on a speech teacher's embeddings of
unlabeled speech, scored on dev by speech -> text retrieval, with the dev cosine to the teacher."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from distill_helpers import TEACHER, MakeData, save_teacher, tiny_config, unlabeled_dir

from speechx.cli import main as cli_main
from speechx.data.kaldi import KaldiDir
from speechx.data.validate import validate_data_dir
from speechx.distill.config import load_config
from speechx.distill.data import build_distill_data, resolve_sources
from speechx.distill.errors import ConfigError, TrainingError
from speechx.distill.speech_teacher import (
    embed_speech_data_dir,
    speech_target_dirs,
    speech_teacher_id,
)
from speechx.distill.trainer import train_distill
from speechx.errors import ModelError
from speechx.teachers.embed import load_teacher_embeddings


def _s2s_config(teacher: Path, train: list, dev: list[Path], **top: object):  # noqa: ANN202
    return tiny_config(
        [],
        dev,
        **{
            "data.train": [s if isinstance(s, dict) else str(s) for s in train],
            "data.speech_teacher": str(teacher),
            "data.target_fields": ["speech"],
            "eval.field": "text",
            **top,
        },
    )


def _metrics(exp: Path) -> list[dict]:
    return [json.loads(x) for x in (exp / "log" / "metrics.jsonl").read_text().splitlines()]


def test_an_unlabeled_dir_trains_and_dev_logs_the_teacher_cosine(
    tmp_path: Path, make_data: MakeData
) -> None:
    teacher = save_teacher(tmp_path / "teacher")
    train = unlabeled_dir(tmp_path / "unlabeled")
    assert not (train / "text").exists() and not KaldiDir.read(train).text
    dev = make_data("dev", 4)  # text targets of the fake text teacher, same dimension
    for d in (train, dev):
        embed_speech_data_dir(d, teacher)
    cfg = _s2s_config(teacher, [train], [dev], max_steps=4)
    res = train_distill(cfg, tmp_path / "exp")
    assert res.step == 4 and (res.model_dir / "model.safetensors").is_file()
    dev_rows = [m for m in _metrics(tmp_path / "exp") if m["split"] == "dev"]
    assert dev_rows and all(-1.0 <= m["dev_speech_teacher_cos"] <= 1.0 for m in dev_rows)
    assert "dev_recall@1" in dev_rows[-1] and "dev_dev_speech_teacher_cos" in dev_rows[-1]
    log = (tmp_path / "exp" / "log" / "train.log").read_text()
    assert "speech_teacher_cos=" in log


def test_the_student_moves_toward_the_speech_teacher(tmp_path: Path, make_data: MakeData) -> None:
    teacher = save_teacher(tmp_path / "teacher", seed=3)
    train = unlabeled_dir(tmp_path / "u", n=4, seconds=(0.4, 0.5, 0.6, 0.45))
    dev = make_data("dev", 4)
    embed_speech_data_dir(train, teacher)
    embed_speech_data_dir(dev, teacher)
    torch.manual_seed(0)
    cfg = _s2s_config(
        teacher,
        [train],
        [dev],
        max_steps=24,
        eval_every=24,
        save_every=24,
        log_every=4,
        **{
            "data.max_batch_seconds": 4.0,
            "optim.lr_head": 2e-2,
            "optim.warmup_steps": 2,
            "optim.schedule": "constant",
            "loss.weights": {"cosine": 1.0},
        },
    )
    train_distill(cfg, tmp_path / "exp")
    losses = [m["loss"] for m in _metrics(tmp_path / "exp") if m["split"] == "train"]
    assert losses[-1] < 0.5 * losses[0], losses


def test_text_and_speech_sources_mix(tmp_path: Path, make_data: MakeData) -> None:
    teacher = save_teacher(tmp_path / "teacher")
    labelled = make_data("labelled", 3)
    unlabeled = unlabeled_dir(tmp_path / "unlabeled", n=3, seconds=0.5)
    embed_speech_data_dir(unlabeled, teacher)
    dev = make_data("dev", 3, seed=2)
    cfg = tiny_config(
        [],
        [dev],
        max_steps=2,
        **{
            "data.train": [
                {"dir": str(labelled), "fields": ["text"]},
                {"dir": str(unlabeled), "fields": ["speech"]},
            ],
            "data.speech_teacher": str(teacher),
        },
    )
    sid = speech_teacher_id(teacher)
    sources = resolve_sources(
        cfg.data.train, cfg.data.teacher_id, cfg.data.target_fields, speech_teacher_id=sid
    )
    assert [(s.teacher_id, s.fields) for s in sources] == [(TEACHER, ["text"]), (sid, ["speech"])]
    data = build_distill_data(sources, sample_rate=16000)
    targets = data.target_matrix()
    _, text = load_teacher_embeddings(labelled, TEACHER, "text")
    _, speech = load_teacher_embeddings(unlabeled, sid, "speech")
    assert np.allclose(targets[:3], text, atol=1e-6) and np.allclose(targets[3:], speech, atol=1e-6)
    # each unlabeled utterance is its own sentence group unless utt2sent says otherwise
    assert len(set(data.groups[3:].tolist())) == 3
    assert train_distill(cfg, tmp_path / "exp").step == 2
    assert speech_target_dirs(cfg) == [str(unlabeled), str(dev)]


def test_speech_teacher_of_another_dimension_than_the_dev_teacher(
    tmp_path: Path, make_data: MakeData
) -> None:
    teacher = tmp_path / "teacher6"
    torch.manual_seed(0)
    from speechx.models import build_encoder

    build_encoder("tiny", 6).save_pretrained(teacher)
    train = unlabeled_dir(tmp_path / "u", n=3, seconds=0.5)
    embed_speech_data_dir(train, teacher)
    dev = make_data("dev", 3)  # the fake text teacher is 8-d
    cfg = _s2s_config(teacher, [train], [dev], max_steps=2)
    with pytest.raises(TrainingError, match=r"fake-teacher.*8-d.*speech-.*6-d"):
        train_distill(cfg, tmp_path / "exp")
    assert not (tmp_path / "exp" / "checkpoints").exists()


def test_missing_teacher_dir_or_targets(tmp_path: Path, make_data: MakeData) -> None:
    train = unlabeled_dir(tmp_path / "u", n=3, seconds=0.5)
    dev = make_data("dev", 3)
    cfg = _s2s_config(tmp_path / "no-such-model", [train], [dev], max_steps=2)
    with pytest.raises(ModelError, match="no-such-model: speech teacher model directory not found"):
        train_distill(cfg, tmp_path / "exp1")
    teacher = save_teacher(tmp_path / "teacher")
    cfg = _s2s_config(teacher, [train], [dev], max_steps=2)
    with pytest.raises(TrainingError, match=r"no speech-teacher targets.*speechx teacher-embed"):
        train_distill(cfg, tmp_path / "exp2")


def test_config_checks_of_the_speech_field(tmp_path: Path) -> None:
    base = ["data.train=[d]", "max_steps=1"]
    with pytest.raises(ConfigError, match="need data.speech_teacher"):
        load_config(None, [*base, "data.target_fields=[speech]", "eval.field=text"])
    with pytest.raises(ConfigError, match="cannot be averaged with text fields"):
        load_config(None, [*base, "data.target_fields=[speech, text]", "data.speech_teacher=m"])
    with pytest.raises(ConfigError, match="eval.field"):
        load_config(None, [*base, "data.target_fields=[speech]", "data.speech_teacher=m"])
    with pytest.raises(ConfigError, match="dev sources are scored against text"):
        load_config(
            None,
            [*base, "data.speech_teacher=m", "data.dev=[{dir: e, fields: [speech]}]"],
        )
    with pytest.raises(ConfigError, match="'speech'"):
        load_config(None, [*base, "data.target_fields=[speach]"])
    ok = load_config(
        None, [*base, "data.target_fields=[speech]", "data.speech_teacher=m", "eval.field=text.en"]
    )
    assert ok.data.speech_teacher == "m" and ok.eval_field == "text.en"


def _jobs_in_process(argv, nj, log, cmd=None):  # noqa: ANN001, ANN202
    """speechx.parallel.run_jobs running each job's `python -m speechx.cli ...` in this process."""
    assert argv[1:3] == ["-m", "speechx.cli"]
    for job in range(1, nj + 1):
        assert cli_main([str(a).replace("JOB", str(job)) for a in argv[3:]]) == 0


def test_cli_teacher_embed_speech(
    tmp_path: Path, make_data: MakeData, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import speechx.parallel

    monkeypatch.setattr(speechx.parallel, "run_jobs", _jobs_in_process)
    teacher = save_teacher(tmp_path / "teacher")
    a = unlabeled_dir(tmp_path / "a")
    b = unlabeled_dir(tmp_path / "b", n=3, seconds=0.5)
    assert cli_main(["teacher-embed", "--speech-teacher", str(teacher), str(a)]) == 0
    sid = speech_teacher_id(teacher)
    _, one_job = load_teacher_embeddings(a, sid, "speech")
    # --nj 2: one job per part of the split, merged into the same rows
    (a / "teacher" / sid / "speech.npy").unlink()
    (a / "teacher" / sid / "manifest.json").unlink()
    assert cli_main(["teacher-embed", "--speech-teacher", str(teacher), str(a), "--nj", "2"]) == 0
    out = capsys.readouterr().out
    assert "5 from split parts" in out
    assert (a / "split2" / "1" / "teacher" / sid / "speech.npy").is_file()
    _, two_jobs = load_teacher_embeddings(a, sid, "speech")
    assert np.array_equal(one_job, two_jobs)

    # --config: the config's speech sources and dev dirs; a rerun encodes nothing
    dev = make_data("dev", 3)
    cfg = tmp_path / "s2s.yaml"
    cfg.write_text(
        f"data:\n  speech_teacher: {teacher}\n  target_fields: [speech]\n"
        f"  train: [{a}, {b}]\n  dev: [{dev}]\n  teacher_id: {TEACHER}\n"
        "eval: {field: text}\nmax_steps: 1\n"
    )
    assert cli_main(["teacher-embed", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "6 utterances encoded here" in out and "1 of 3 dirs already up to date" in out
    assert cli_main(["teacher-embed", "--config", str(cfg)]) == 0
    assert "0 utterances encoded here" in capsys.readouterr().out
    plain = tmp_path / "plain.yaml"
    plain.write_text(f"data:\n  train: [{a}]\nmax_steps: 1\n")
    assert cli_main(["teacher-embed", "--config", str(plain)]) == 0
    assert "no data.speech_teacher" in capsys.readouterr().out

    # bad input: one line, exit 2
    assert cli_main(["teacher-embed", "--speech-teacher", str(tmp_path / "none"), str(a)]) == 2
    assert "speech teacher model directory not found" in capsys.readouterr().err
    assert cli_main(["teacher-embed", "--speech-teacher", str(teacher), "--fields", "text"]) == 2
    assert "--fields is for text teachers" in capsys.readouterr().err
    assert cli_main(["teacher-embed", "--config", str(cfg), str(a)]) == 2
    assert "give no --speech-teacher or data dirs" in capsys.readouterr().err


def test_dry_run_checks_the_speech_teacher(tmp_path: Path, capsys) -> None:
    train = unlabeled_dir(tmp_path / "u", n=2, seconds=0.5)
    cfg = tmp_path / "s2s.yaml"
    body = f"  target_fields: [speech]\n  train: [{train}]\neval: {{field: text}}\nmax_steps: 1\n"
    cfg.write_text(f"data:\n  speech_teacher: {tmp_path / 'teacher'}\n{body}")
    assert cli_main(["check-recipe", "--config", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert "MISSING data.speech_teacher" in out and "train the teacher first" in out
    save_teacher(tmp_path / "teacher")
    assert cli_main(["check-recipe", "--config", str(cfg)]) == 0  # no text needed for [speech]
    out = capsys.readouterr().out
    assert f"ok      data.speech_teacher: {tmp_path / 'teacher'}" in out
    assert f"ok      data dir {train}: valid" in out
    # the same dir with text targets needs its transcripts
    cfg.write_text(f"data:\n  train: [{train}]\nmax_steps: 1\n")
    assert cli_main(["check-recipe", "--config", str(cfg)]) == 1
    assert "required file is missing" in capsys.readouterr().out
    assert validate_data_dir(train, require_text=False).ok and not validate_data_dir(train).ok
