"""speechx.audio_search: window merging, building from streamed recordings, save/load, search by
vector, text and audio, merging part indexes, resuming, errors, and the memory bound."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechx.audio_search import (
    AudioIndex,
    AudioIndexConfig,
    MergeConfig,
    merge_windows,
    window_positions,
)
from speechx.errors import AudioError, AudioIndexError
from speechx.models.presets import build_encoder

SR = 16000


@pytest.fixture(scope="module")
def encoder():  # noqa: ANN201
    import torch

    torch.manual_seed(0)
    return build_encoder("tiny", embed_dim=8).eval()


def noisy(seconds: float, seed: int) -> np.ndarray:
    """Noise whose colour changes every 0.5 s, so that windows at different places differ."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * SR))
    t = np.arange(n) / SR
    freq = 200 + 400 * rng.random(int(seconds * 2) + 1)[(t * 2).astype(int)]
    x = np.sin(2 * np.pi * freq * t) + 0.5 * rng.standard_normal(n)
    return (0.1 * x).astype(np.float32)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("recs")
    out = []
    for i, sec in enumerate((6.0, 4.5)):
        p = d / f"rec{i}.wav"
        sf.write(str(p), noisy(sec, i), SR, subtype="FLOAT")
        out.append(p)
    return out


CFG = AudioIndexConfig(window=1.0, hop=0.5, batch_size=4)


@pytest.fixture(scope="module")
def index(encoder, recordings: list[Path]) -> AudioIndex:  # noqa: ANN001
    return AudioIndex.build(encoder, recordings, CFG, model="tiny", teacher="fake-teacher")


# ------------------------------------------------------------------------------ merging
def _merge(windows, cfg=None):  # noqa: ANN001, ANN202
    rec, st, en, sc = zip(*windows, strict=True)
    return merge_windows(
        np.array(rec), np.array(st), np.array(en), np.arange(len(rec)), np.array(sc),
        ["a", "b"], cfg,
    )  # fmt: skip


def test_overlapping_windows_of_one_recording_become_one_hit() -> None:
    windows = [
        (0, 10.0, 14.0, 0.80),
        (0, 11.0, 15.0, 0.90),  # the best
        (0, 12.0, 16.0, 0.87),
        (0, 13.0, 17.0, 0.60),
        (0, 30.0, 34.0, 0.70),  # a second place in the same recording
        (1, 11.0, 15.0, 0.85),  # the same times in another recording
    ]
    hits = _merge(windows)
    assert [(h.recording, len(h.windows)) for h in hits] == [("a", 4), ("b", 1), ("a", 1)]
    top = hits[0]
    assert top.score == pytest.approx(0.90)
    # core: windows within 0.05 of the best (0.90 and 0.87); their intersection is [12, 15]
    assert (top.start, top.end) == (12.0, 15.0)
    assert [w.start for w in top.windows] == [10.0, 11.0, 12.0, 13.0]  # every merged window
    assert (hits[1].start, hits[1].end, hits[2].start) == (11.0, 15.0, 30.0)
    union = _merge(windows, MergeConfig(span="union"))[0]
    assert (union.start, union.end) == (11.0, 16.0)
    best = _merge(windows, MergeConfig(span="best"))[0]
    assert (best.start, best.end) == (11.0, 15.0)
    wide = _merge(windows, MergeConfig(span="union", span_margin=0.2))[0]
    assert (wide.start, wide.end) == (10.0, 16.0)  # 0.60 is more than 0.2 below the best
    weighted = _merge(windows, MergeConfig(span="weighted"))[0]
    assert 11.0 < weighted.start < 12.0 and 15.0 < weighted.end < 16.0
    soft = _merge(windows, MergeConfig(score="soft", tau=0.02))[0]
    expected = 0.90 + 0.02 * np.log(1 + np.exp((0.87 - 0.90) / 0.02))
    assert soft.score == pytest.approx(expected)


def test_touching_windows_merge_only_within_gap() -> None:
    windows = [(0, 0.0, 2.0, 0.5), (0, 2.0, 4.0, 0.6), (0, 4.5, 6.5, 0.7)]
    assert [len(h.windows) for h in _merge(windows)] == [1, 2]  # touching merges, a gap does not
    assert len(_merge(windows, MergeConfig(gap=0.5))) == 1


def test_intersection_falls_back_to_the_best_window() -> None:
    # two core windows that are linked only through a third: no common stretch
    windows = [(0, 0.0, 2.0, 0.90), (0, 1.5, 3.5, 0.89), (0, 3.0, 5.0, 0.88)]
    hit = _merge(windows)[0]
    assert (hit.start, hit.end) == (0.0, 2.0)


# -------------------------------------------------------------------------- build/search
def test_build_windows_and_metadata(index: AudioIndex, recordings: list[Path]) -> None:
    assert [r.id for r in index.recordings] == ["rec0", "rec1"]
    assert [r.duration for r in index.recordings] == pytest.approx([6.0, 4.5])
    n0 = int((index.window_recording == 0).sum())
    assert n0 == 11 and len(index) == 11 + 8  # 1-s windows every 0.5 s
    assert index.window_start[:3].tolist() == [0.0, 0.5, 1.0]
    assert index.window_end[n0 - 1] == 6.0 and index.window_end[-1] == 4.5
    assert index.hours == pytest.approx(10.5 / 3600) and index.seconds > 0
    assert index.model == "tiny" and index.dim == 8 and "2 recordings" in repr(index)


def test_search_by_vector_finds_the_window(index: AudioIndex) -> None:
    row = 13  # rec1, 1.0 .. 2.0 s
    assert index.window_recording[row] == 1
    hits = index.search(index.index.embeddings[row], top_k=3, merge=MergeConfig(span="best"))
    assert len(hits) == 1 and 1 <= len(hits[0]) <= 3
    top = hits[0][0]
    assert top.recording == "rec1" and (top.start, top.end) == (1.0, 2.0)
    assert top.score == pytest.approx(1.0, abs=1e-5)
    assert any(w.index == row for w in top.windows)
    assert top.to_dict()["recording"] == "rec1"


def test_search_audio_with_the_encoder(index: AudioIndex, encoder, recordings) -> None:  # noqa: ANN001
    wav, _ = sf.read(str(recordings[0]), dtype="float32")
    query = wav[int(3.0 * SR) : int(4.0 * SR)]  # exactly the window 3.0 .. 4.0 of rec0
    (hits,) = index.search_audio(encoder, [(query, SR)], top_k=2, merge=MergeConfig(span="best"))
    assert (hits[0].recording, hits[0].start, hits[0].end) == ("rec0", 3.0, 4.0)
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(AudioIndexError, match="no audio queries"):
        index.search_audio(encoder, [])


class FakeTeacher:
    """Maps known texts to given vectors (the index's own windows)."""

    teacher_id = "fake-teacher"

    def __init__(self, table: dict[str, np.ndarray], dim: int = 8) -> None:
        self.table, self.dim = table, dim

    def encode(self, texts, batch_size: int = 64, show_progress=None):  # noqa: ANN001, ANN201
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


def test_search_text_through_a_teacher(index: AudioIndex) -> None:
    emb = index.index.embeddings
    teacher = FakeTeacher({"the fish": emb[4], "de vis": emb[15]})
    best = MergeConfig(span="best")
    hits = index.search_text(teacher, ["the fish", "de vis"], top_k=1, merge=best)
    got = [(h[0].recording, h[0].start) for h in hits]
    assert got == [("rec0", 2.0), ("rec1", 2.0)]
    with pytest.raises(AudioIndexError, match="dimension 4 but the index .* dimension 8"):
        index.search_text(FakeTeacher({}, dim=4), ["x"])
    other = FakeTeacher({"x": emb[0]})
    other.teacher_id = "another-teacher"
    with pytest.warns(UserWarning, match="distilled into fake-teacher.*another-teacher"):
        index.search_text(other, ["x"])


def test_top_k_hits_are_distinct_and_widened(index: AudioIndex) -> None:
    q = index.index.embeddings[0]
    (hits,) = index.search(q, top_k=4, merge=MergeConfig(candidates=None))
    assert len(hits) <= 4 and hits == sorted(hits, key=lambda h: -h.score)
    for a in hits:
        for b in hits:
            if a is not b and a.recording == b.recording:  # merged hits never overlap
                assert (
                    a.windows[-1].end < b.windows[0].start or b.windows[-1].end < a.windows[0].start
                )


@pytest.mark.parametrize("backend", ["exact", "faiss-flat"])
def test_save_load_round_trip(index: AudioIndex, tmp_path: Path, backend: str) -> None:
    copy = AudioIndex.merge([index], backend=backend, seconds=index.seconds)
    out = copy.save(tmp_path / "idx")
    (out / "stale").write_text("x")
    copy.save(out)  # replaces the directory, atomically
    assert not (out / "stale").exists()
    back = AudioIndex.load(out)
    assert back.index.config.backend == backend and back.teacher == "fake-teacher"
    assert back.config == CFG and back.recordings == index.recordings
    np.testing.assert_array_equal(back.window_start, index.window_start)
    q = index.index.embeddings[[2, 14]]
    for a, b in zip(back.search(q, top_k=3), index.search(q, top_k=3), strict=True):
        assert [(h.recording, h.start, h.end) for h in a] == [
            (h.recording, h.start, h.end) for h in b
        ]
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-5)
    assert back.seconds == pytest.approx(index.seconds)


def test_merge_of_parts_equals_the_whole(encoder, recordings, index: AudioIndex) -> None:  # noqa: ANN001
    parts = [
        AudioIndex.build(encoder, [r], CFG, model="tiny", teacher="fake-teacher")
        for r in recordings
    ]
    merged = AudioIndex.merge(parts)
    assert merged.recordings == index.recordings
    np.testing.assert_array_equal(merged.window_recording, index.window_recording)
    np.testing.assert_allclose(merged.index.embeddings, index.index.embeddings, atol=1e-6)
    with pytest.raises(AudioIndexError, match="more than one part"):
        AudioIndex.merge([parts[0], parts[0]])
    other = AudioIndex.build(encoder, recordings[:1], AudioIndexConfig(window=2.0), model="tiny")
    with pytest.raises(AudioIndexError, match="part 1 has config"):
        AudioIndex.merge([parts[1], other])


def test_work_dir_resumes(encoder, recordings, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import speechx.audio_search as mod

    work = tmp_path / "work"
    first = AudioIndex.build(encoder, recordings, CFG, work_dir=work)
    assert sorted(p.name for p in work.glob("*.npz")) == ["rec0.npz", "rec1.npz"]
    calls = []
    real = mod.embed_recording
    monkeypatch.setattr(mod, "embed_recording", lambda *a, **k: calls.append(a) or real(*a, **k))
    again = AudioIndex.build(encoder, recordings, CFG, work_dir=work)
    assert calls == []  # every recording came from the work dir
    np.testing.assert_array_equal(again.index.embeddings, first.index.embeddings)
    AudioIndex.build(encoder, recordings, AudioIndexConfig(window=1.5, hop=0.5), work_dir=work)
    assert len(calls) == 2  # other settings: embedded again


def test_speech_boundaries_snap_windows(encoder, tmp_path: Path) -> None:  # noqa: ANN001
    x = np.concatenate([np.zeros(SR), noisy(1.5, 5), np.zeros(SR), noisy(1.0, 6), np.zeros(SR)])
    x = x + 0.001 * np.random.default_rng(0).standard_normal(x.shape[0])
    p = tmp_path / "talk.wav"
    sf.write(str(p), x.astype(np.float32), SR, subtype="FLOAT")
    cfg = AudioIndexConfig(window=4.0, hop=1.0, boundaries="energy")
    bounds = window_positions(p, SR, cfg)
    # the two regions (1.0-2.5 s and 3.5-4.5 s, padded by 0.05 s), and one window over both
    expected = [(0.95, 2.55), (0.95, 4.55), (3.45, 4.55)]
    np.testing.assert_allclose(np.asarray(bounds) / SR, expected, atol=0.03)
    idx = AudioIndex.build(encoder, [p], cfg)
    assert len(idx) == 3 and idx.config.regions.method == "energy"


def test_errors(encoder, recordings, tmp_path: Path, index: AudioIndex) -> None:  # noqa: ANN001
    with pytest.raises(AudioIndexError, match="several recordings have the id 'rec0'"):
        AudioIndex.build(encoder, [recordings[0], ("rec0", recordings[1])])
    with pytest.raises(AudioIndexError, match="no recordings"):
        AudioIndex.build(encoder, [])
    with pytest.raises(AudioError, match=r"nope\.wav: audio file not found"):
        AudioIndex.build(encoder, [tmp_path / "nope.wav"])
    with pytest.raises(AudioIndexError, match="unknown boundaries"):
        AudioIndexConfig(boundaries="sometimes")
    with pytest.raises(AudioIndexError, match=r"audio_index\.json: not found"):
        AudioIndex.load(tmp_path)
    with pytest.raises(AudioIndexError, match="do not fit the index's dimension 8"):
        index.search(np.ones(5, np.float32))
    with pytest.raises(AudioIndexError, match="top_k must be a positive integer"):
        index.search(np.ones(8, np.float32), top_k=0)
    with pytest.raises(AudioIndexError, match="unknown span"):
        MergeConfig(span="middle")


class CountingEncoder:
    """Stands in for a speech encoder (the memory bound is about the audio path): a random unit
    vector per window; records the longest input it was given."""

    sample_rate = SR
    embed_dim = 8
    min_input_samples = 400

    def __init__(self) -> None:
        self.longest = 0

    def encode(self, inputs, batch_size: int = 8, show_progress=None):  # noqa: ANN001, ANN201
        self.longest = max([self.longest] + [x[0].shape[0] for x in inputs])
        v = np.random.default_rng(len(inputs)).standard_normal((len(inputs), 8))
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("boundaries", ["fixed", "energy"])
def test_indexing_holds_no_whole_recording_in_memory(tmp_path: Path, boundaries: str) -> None:
    """A 10-minute file is 38 MB of float32 at 16 kHz; indexing reads it in 5-s blocks, so the
    numpy memory at its peak (tracemalloc sees numpy's buffers: a few blocks in the reader, the
    resampler and the window cutter) stays far below that, and no input to the encoder is
    longer than a window."""
    p = tmp_path / "long.wav"
    with sf.SoundFile(str(p), "w", SR, 1, subtype="PCM_16") as fh:
        for i in range(60):
            fh.write(noisy(10.0, i % 7) * (i % 3 != 0))  # every third block silent
    whole = 600 * SR * 4
    cfg = AudioIndexConfig(window=4.0, hop=2.0, boundaries=boundaries, block_seconds=5.0)
    enc = CountingEncoder()
    tracemalloc.start()
    try:
        idx = AudioIndex.build(enc, [p], cfg)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert idx.recordings[0].duration == pytest.approx(600.0)
    assert enc.longest <= 4 * SR
    assert peak < whole / 8, (peak, whole)
