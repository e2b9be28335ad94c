"""Dirs written by KaldiDir.write are read unchanged by lhotse's Kaldi importer (test-only dep)."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechx.data.kaldi import KaldiDir
from speechx.testing import make_kaldi_dir

lhotse_kaldi = pytest.importorskip("lhotse.kaldi")


@pytest.mark.parametrize("with_segments", [False, True])
def test_lhotse_reads_our_dirs(tmp_path: Path, with_segments: bool) -> None:
    src = make_kaldi_dir(
        tmp_path / "src",
        n=4,
        seconds=(1.0, 0.5, 0.75, 1.25),
        with_segments=with_segments,
        texts=[
            "ein Satz",
            "caf\u00e9 cr\u00e8me  br\u00fbl\u00e9e",
            "\u4f60\u597d \u4e16\u754c",
            "x",
        ],
    )
    kd = KaldiDir.read(src)
    out = kd.write(tmp_path / "written")  # what other tools see is what KaldiDir.write makes
    recordings, supervisions, _ = lhotse_kaldi.load_kaldi_data_dir(out, sampling_rate=16000)
    assert supervisions is not None
    sups = {s.id: s for s in supervisions}
    assert sorted(sups) == kd.utt_ids
    for utt in kd.utt_ids:
        s = sups[utt]
        assert s.text == kd.text[utt]
        assert s.speaker == kd.utt2spk[utt]
        assert s.language == kd.utt2lang[utt]
        assert s.duration == pytest.approx(kd.utt2dur[utt], abs=1e-3)
        assert s.recording_id == kd.recording_id(utt)
        start, _ = kd.segment(utt)
        assert s.start == pytest.approx(start or 0.0)
    assert sorted(r.id for r in recordings) == sorted(kd.wav_scp)
    for r in recordings:
        assert r.sources[0].source == kd.wav_scp[r.id]
    if not with_segments:
        for r in recordings:
            assert r.duration == pytest.approx(kd.utt2dur[r.id], abs=1e-3)
