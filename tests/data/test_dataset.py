"""SpeechDataset items, durations without decoding, and collate_audio padding."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import speechx.data.dataset as dataset_mod
from speechx.data.dataset import SpeechDataset, collate_audio
from speechx.data.kaldi import KaldiDir
from speechx.data.sampler import DynamicBucketSampler
from speechx.errors import AudioError, DataDirError
from speechx.testing import make_kaldi_dir


def test_items(kaldi_dir: Path) -> None:
    ds = SpeechDataset(kaldi_dir, sample_rate=16000)
    assert len(ds) == 3 and ds.ids == ["spk1-utt1", "spk1-utt2", "spk2-utt3"]
    item = ds[1]
    assert item["id"] == "spk1-utt2"
    assert item["audio"].dtype == torch.float32 and item["audio"].shape == (8000,)
    assert item["text"] == "where is the exit"
    assert item["lang"] == "en" and item["sentence"] == "sent2"
    assert item["translations"] == {"en": "where is the exit"}


def test_resamples(kaldi_dir: Path) -> None:
    ds = SpeechDataset(KaldiDir.read(kaldi_dir), sample_rate=8000)
    assert ds[0]["audio"].shape == (8000,)  # 1 s


def test_segments_are_honoured(kaldi_dir_segments: Path) -> None:
    ds = SpeechDataset(kaldi_dir_segments)
    assert [tuple(ds[i]["audio"].shape) for i in range(3)] == [(16000,), (8000,), (12000,)]
    # the segment of utt2 starts at 1.2 s in a 220 Hz sine recording
    t = (np.arange(8000) + 1.2 * 16000) / 16000
    expect = 0.3 * np.sin(2 * np.pi * 220.0 * t)
    np.testing.assert_allclose(ds[1]["audio"].numpy(), expect, atol=2e-4)


def test_durations_without_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("decoded audio")

    monkeypatch.setattr(dataset_mod, "load_audio", boom)
    d = make_kaldi_dir(tmp_path / "a", n=3)
    assert SpeechDataset(d).durations == pytest.approx([1.0, 0.5, 0.75])
    (d / "utt2dur").unlink()  # headers
    assert SpeechDataset(d).durations == pytest.approx([1.0, 0.5, 0.75])
    s = make_kaldi_dir(tmp_path / "b", n=3, with_segments=True)
    (s / "utt2dur").unlink()  # segments
    assert SpeechDataset(s).durations == pytest.approx([1.0, 0.5, 0.75])


def test_max_duration_skips_long(kaldi_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        ds = SpeechDataset(kaldi_dir, max_duration=0.8)
    assert ds.ids == ["spk1-utt2", "spk2-utt3"] and ds.skipped == ["spk1-utt1"]
    assert ds.durations == pytest.approx([0.5, 0.75])
    assert "left out 1 of 3" in caplog.text


def test_audio_errors_name_the_utterance(kaldi_dir: Path) -> None:
    ds = SpeechDataset(kaldi_dir)
    Path(ds.kdir.audio_path("spk1-utt2")).write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioError, match="utterance 'spk1-utt2'.*cannot read audio header"):
        ds[1]
    (kaldi_dir / "utt2dur").unlink()
    with pytest.raises(AudioError, match="utterance 'spk1-utt2'"):
        _ = SpeechDataset(kaldi_dir).durations


def test_pipes_and_missing_audio_refused(tmp_path: Path) -> None:
    kd = KaldiDir(wav_scp={"u1": "sox a.wav -t wav - |"}, utt2spk={"u1": "s"})
    with pytest.raises(DataDirError, match="'u1' reads audio through a shell pipe"):
        SpeechDataset(kd)
    with pytest.raises(DataDirError, match="'u1'.*not in wav.scp"):
        SpeechDataset(KaldiDir(utt2spk={"u1": "s"}))


def test_collate_pads_with_absolute_lengths() -> None:
    items = [
        {"id": "a", "audio": torch.ones(3), "text": "x", "lang": "nl", "sentence": "s1"},
        {"id": "b", "audio": np.full(5, 2.0, dtype=np.float64)},
    ]
    b = collate_audio(items)
    assert b["input_values"].dtype == torch.float32 and b["input_values"].shape == (2, 5)
    assert b["input_values"][0].tolist() == [1, 1, 1, 0, 0]
    assert b["input_values"][1].tolist() == [2] * 5
    assert b["attention_mask"].dtype == torch.long
    assert b["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert b["lengths"].dtype == torch.long and b["lengths"].tolist() == [3, 5]
    assert b["ids"] == ["a", "b"] and b["texts"] == ["x", ""]
    assert b["langs"] == ["nl", None] and b["sentences"] == ["s1", None]
    with pytest.raises(DataDirError, match="empty batch"):
        collate_audio([])
    with pytest.raises(DataDirError, match="'c'.*expected 1-D"):
        collate_audio([{"id": "c", "audio": torch.zeros(2, 3)}])


def test_dataloader_end_to_end(kaldi_dir: Path) -> None:
    ds = SpeechDataset(kaldi_dir)
    sampler = DynamicBucketSampler(ds.durations, max_seconds=1.6, shuffle=False)
    batches = list(DataLoader(ds, batch_sampler=sampler, collate_fn=collate_audio))
    assert sorted(i for b in batches for i in b["ids"]) == ds.ids
    for b in batches:
        assert b["input_values"].shape[1] == int(b["lengths"].max())
        assert b["input_values"].shape[0] * b["input_values"].shape[1] <= 1.6 * 16000
