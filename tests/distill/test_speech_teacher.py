"""Speech-teacher targets: computed once per data dir and model, cached, resumable, and taken
from a matching feature store of the teacher's frozen part."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from distill_helpers import DIM, TEACHER, save_teacher, unlabeled_dir, write_fake_teacher

from speechx.audio import load_audio
from speechx.data.kaldi import KaldiDir
from speechx.distill.data import SourceSpec, build_distill_data
from speechx.distill.features import build_feature_store
from speechx.distill.speech_teacher import (
    SpeechTeacher,
    embed_speech_data_dir,
    speech_targets_current,
    speech_teacher_id,
)
from speechx.distill.targets import load_targets
from speechx.errors import DataDirError, ModelError
from speechx.models import SpeechEncoder, build_encoder
from speechx.teachers.embed import load_teacher_embeddings
from speechx.testing import make_kaldi_dir


def from_audio(model_dir: Path, data_dir: Path) -> np.ndarray:
    kdir = KaldiDir.read(data_dir)
    enc = SpeechEncoder.from_pretrained(model_dir)
    return enc.encode([kdir.audio_path(u) for u in kdir.utt_ids], show_progress=False)


def test_targets_are_the_teachers_embeddings_and_cached(tmp_path: Path) -> None:
    model = save_teacher(tmp_path / "teacher")
    d = unlabeled_dir(tmp_path / "a")
    teacher = SpeechTeacher(model)
    assert teacher.teacher_id == speech_teacher_id(model) and teacher.teacher_id.startswith(
        "speech-"
    )
    first = embed_speech_data_dir(d, teacher)
    assert (first.n_utts, first.n_encoded, first.up_to_date) == (5, 5, False)
    ids, arr = load_teacher_embeddings(d, teacher.teacher_id, "speech")
    assert ids == KaldiDir.read(d).utt_ids and arr.dtype == np.float32
    assert np.allclose(arr, from_audio(model, d), atol=1e-5)
    assert speech_targets_current(d, model)

    # a second run computes nothing and does not even load the model
    again = SpeechTeacher(model)
    second = embed_speech_data_dir(d, again)
    assert second.up_to_date and second.n_encoded == 0 and again._encoder is None
    # load_targets reads them through the text teacher's path (no transcript needed)
    table = load_targets(d, teacher.teacher_id, "speech")
    assert table.ids == ids and np.allclose(table.vectors, arr, atol=1e-6)

    # another audio file for one utterance: the inputs changed, everything is recomputed
    kdir = KaldiDir.read(d)
    u0, u1 = kdir.utt_ids[:2]
    kdir.wav_scp[u0] = kdir.wav_scp[u1]
    kdir.write(d)
    assert not speech_targets_current(d, model)
    third = embed_speech_data_dir(d, model)
    assert third.n_encoded == 5
    _, arr3 = load_teacher_embeddings(d, teacher.teacher_id, "speech")
    assert np.allclose(arr3[0], arr3[1], atol=1e-6) and not np.allclose(arr3[0], arr[0])


def test_the_id_follows_the_model(tmp_path: Path) -> None:
    a = save_teacher(tmp_path / "a", seed=0)
    b = save_teacher(tmp_path / "b", seed=1)
    assert speech_teacher_id(a) != speech_teacher_id(b)
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in a.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    assert speech_teacher_id(copy) == speech_teacher_id(a)
    with pytest.raises(ModelError, match="not found"):
        SpeechTeacher(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="config.json"):
        speech_teacher_id(tmp_path / "empty")


def test_interrupted_run_resumes_from_finished_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = save_teacher(tmp_path / "teacher")
    d = unlabeled_dir(tmp_path / "a")
    want = from_audio(model, d)
    calls = {"n": 0}
    real = SpeechEncoder.encode

    def dies_on_second_block(self, inputs, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, inputs, *args, **kwargs)

    monkeypatch.setattr(SpeechEncoder, "encode", dies_on_second_block)
    with pytest.raises(KeyboardInterrupt):
        embed_speech_data_dir(d, model, block_size=2)
    out = d / "teacher" / speech_teacher_id(model)
    assert not (out / "speech.npy").exists() and len(list(out.glob(".partial-*/block-*"))) == 1
    monkeypatch.setattr(SpeechEncoder, "encode", real)
    res = embed_speech_data_dir(d, model, block_size=2)
    assert (res.n_resumed, res.n_encoded) == (2, 3)
    _, arr = load_teacher_embeddings(d, speech_teacher_id(model), "speech")
    assert np.allclose(arr, want, atol=1e-5)
    assert not list(out.glob(".partial-*"))  # the blocks are gone once the targets are written


def test_too_short_audio_gets_no_target(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = save_teacher(tmp_path / "teacher")
    d = unlabeled_dir(tmp_path / "a", n=3, seconds=(0.5, 0.001, 0.5))
    with caplog.at_level(logging.WARNING, logger="speechx.distill"):
        res = embed_speech_data_dir(d, model)
    assert (res.n_encoded, res.n_missing) == (2, 1)
    assert "too short" in caplog.text
    table = load_targets(d, speech_teacher_id(model), "speech")
    short = KaldiDir.read(d).utt_ids[1]
    assert table.dropped == [short] and len(table) == 2


def _store_for(model: SpeechEncoder, d: Path, root: Path) -> Path:
    """A feature store of ``model``'s frozen part over the utterances of ``d``."""
    n = len(KaldiDir.read(d))
    write_fake_teacher(d, {"text": np.eye(n, DIM, dtype=np.float32)})
    data = build_distill_data([SourceSpec(str(d), TEACHER, ["text"])], sample_rate=16000)
    return build_feature_store(model, data, root, role="train").path


def test_rows_from_the_teachers_own_feature_store(tmp_path: Path) -> None:
    # a teacher with a frozen backbone trained on cached frames: exp/<tag>/{model,features}
    exp = tmp_path / "exp"
    model_dir = save_teacher(exp / "model", freeze_backbone=True)
    enc = SpeechEncoder.from_pretrained(model_dir)
    assert enc.cache_point == -1
    d = make_kaldi_dir(tmp_path / "data" / "a", n=4, seconds=(0.4, 0.6, 0.5, 0.7))
    _store_for(enc, d, exp / "features")
    res = embed_speech_data_dir(d, model_dir)  # finds exp/features by itself
    assert (res.n_from_features, res.n_encoded) == (4, 0)
    _, arr = load_teacher_embeddings(d, speech_teacher_id(model_dir), "speech")
    cos = np.sum(arr * from_audio(model_dir, d), axis=1)
    assert cos.min() > 0.999  # float16 frames
    manifest = json.loads(
        (d / "teacher" / speech_teacher_id(model_dir) / "manifest.json").read_text()
    )
    assert manifest["fields"]["speech"]["n_from_features"] == 4

    # feature stores can be turned off
    d2 = make_kaldi_dir(tmp_path / "data2" / "a", n=2, seconds=0.5)
    assert embed_speech_data_dir(d2, model_dir, feature_stores=[]).n_encoded == 2


def test_a_store_of_another_model_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model_dir = save_teacher(tmp_path / "exp" / "model", freeze_backbone=True)
    other = build_encoder("tiny", DIM, freeze_backbone=True)  # other random weights
    d = make_kaldi_dir(tmp_path / "data" / "a", n=3, seconds=0.5)
    store = _store_for(other, d, tmp_path / "elsewhere")
    with caplog.at_level(logging.WARNING, logger="speechx.distill"):
        res = embed_speech_data_dir(d, model_dir, feature_stores=[store])
    assert (res.n_from_features, res.n_encoded) == (0, 3)
    assert "does not hold" in caplog.text


def test_segments_and_a_missing_recording(tmp_path: Path) -> None:
    model = save_teacher(tmp_path / "teacher")
    d = make_kaldi_dir(tmp_path / "seg", n=3, seconds=(0.4, 0.5, 0.6), with_segments=True)
    embed_speech_data_dir(d, model)
    kdir = KaldiDir.read(d)
    enc = SpeechEncoder.from_pretrained(model)
    cuts = [
        (load_audio(kdir.audio_path(u), 16000, start=s, end=e), 16000)
        for u in kdir.utt_ids
        for s, e in [kdir.segment(u)]
    ]
    _, arr = load_teacher_embeddings(d, speech_teacher_id(model), "speech")
    assert np.allclose(arr, enc.encode(cuts, show_progress=False), atol=1e-5)
    bad = make_kaldi_dir(tmp_path / "bad", n=2, seconds=0.5)
    (bad / "wav.scp").write_text((bad / "wav.scp").read_text().splitlines()[0] + "\n")
    with pytest.raises(DataDirError, match=r"spk1-utt2.*not in wav.scp"):
        embed_speech_data_dir(bad, model)
