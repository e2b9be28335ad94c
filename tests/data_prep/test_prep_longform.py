"""data_prep.longform: deterministic long recordings whose truth spans are exact to the sample,
from test splits only, with each query sentence placed once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep.longform import prepare_longform
from speechx.audio import load_audio
from speechx.data import KaldiDir
from speechx.data.spans import read_truth
from speechx.errors import DataDirError

EN = ["the fish swims home", "where is the exit", "no", "this pipe is too narrow"]
EN += ["we have to push the steel", "look at that old shell", "the boat is sinking"]
EN += ["can you move the chair"]
DE = ["der fisch schwimmt", "wo ist der ausgang", "nein", "dieses rohr ist zu eng"]
DE += ["wir schieben den stahl", "schau die alte muschel", "das boot sinkt"]
DE += ["kannst du den stuhl bewegen"]


def make_dir(root: Path, lang: str, texts: list[str], sr: int, seed: int) -> Path:
    """A test-split dir: utterance i speaks sentence s<i> (noise bursts of 1.0-1.7 s)."""
    rng = np.random.default_rng(seed)
    kd = KaldiDir()
    for i, text in enumerate(texts):
        utt = f"{lang}-u{i}"
        wav = root / "wav" / f"{utt}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        sec = 1.0 + 0.1 * i if text not in ("no", "nein") else 0.4
        sf.write(str(wav), (0.2 * rng.standard_normal(int(sec * sr))).astype(np.float32), sr)
        kd.wav_scp[utt] = str(wav)
        kd.text[utt] = text
        kd.utt2spk[utt] = f"{lang}-spk"
        kd.utt2lang[utt] = lang
        kd.utt2sent[utt] = f"s{i}"
        kd.translations.setdefault("en", {})[utt] = EN[i]
        kd.translations.setdefault("de", {})[utt] = DE[i]
    return kd.write(root)


@pytest.fixture
def sources(tmp_path: Path) -> list[Path]:
    return [
        make_dir(tmp_path / "src" / "synth_en_test", "en", EN, 16000, 1),
        make_dir(tmp_path / "src" / "synth_de_test", "de", DE, 22050, 2),
    ]


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_deterministic(sources: list[Path], tmp_path: Path) -> None:
    kw = {"minutes": 0.1, "progress": False}
    reps = [prepare_longform(sources, tmp_path / f"out{i}", seed=3, **kw) for i in (1, 2)]
    a, b = _files(tmp_path / "out1"), _files(tmp_path / "out2")
    assert a.keys() == b.keys() and len(a) > 5
    for name in a:
        if name.endswith(".wav") or name.endswith("truth.tsv"):
            assert a[name] == b[name], name
    assert reps[0].extra == reps[1].extra
    prepare_longform(sources, tmp_path / "out3", seed=4, **kw)
    c = _files(tmp_path / "out3")
    assert c["longform_test/truth.tsv"] != a["longform_test/truth.tsv"]


def test_spans_exact_and_nothing_leaks(sources: list[Path], tmp_path: Path) -> None:
    rep = prepare_longform(
        sources, tmp_path / "out", minutes=0.15, noise_db=None, query_fraction=0.6, progress=False
    )
    d = tmp_path / "out" / "longform_test"
    kd = KaldiDir.read(d)
    rows = read_truth(d)
    queries = [r for r in rows if r.role == "query"]
    assert rep.extra["queries"] == len(queries) > 0 and rep.extra["recordings"] == len(kd) >= 2
    # each query sentence once; distractor sentences in every rendering; no sentence in both
    q_sents = [r.sent for r in queries]
    d_sents = {r.sent for r in rows if r.role == "distractor"}
    assert len(set(q_sents)) == len(q_sents) and not set(q_sents) & d_sents
    assert sum(r.role == "distractor" for r in rows) == 2 * len(d_sents)
    assert {"s2"} <= d_sents  # "no"/"nein": too short and too few words to be a query
    for q in queries:  # the other rendering of the sentence, for spoken queries, is not placed
        assert q.alt_utt and q.alt_lang != q.lang and q.alt_utt not in {r.utt for r in rows}
        assert q.alt_utt.endswith(q.utt.split("-")[1]) and Path(q.alt_audio).is_file()
        assert q.text_in("en") == EN[int(q.sent[1:])] and q.text_in("de") == DE[int(q.sent[1:])]
    by_utt = {}
    for s in sources:
        src = KaldiDir.read(s)
        by_utt.update({u: src.audio_path(u) for u in src.utt_ids})
    for rec in kd.utt_ids:
        wav, sr = sf.read(kd.wav_scp[rec], dtype="float32")
        assert sr == 16000 and abs(wav.shape[0] / sr - kd.utt2dur[rec]) <= 0.0005  # 3 decimals
        mine = sorted((r for r in rows if r.recording == rec), key=lambda r: r.start)
        assert kd.text[rec] == " ".join(by_text(r) for r in mine)
        covered = np.zeros(wav.shape[0], bool)
        for r in mine:
            s, e = r.start * sr, r.end * sr
            assert s == int(s) and e == int(e)  # on the sample grid, written exactly
            s, e = int(s), int(e)
            ref = load_audio(by_utt[r.utt], sr)
            assert e - s == ref.shape[0]
            np.testing.assert_allclose(wav[s:e], ref, atol=1.5 / 32768)  # 16-bit rounding
            covered[s:e] = True
        assert not wav[~covered].any()  # the pauses are silent (no noise asked for)
        assert 0.3 <= mine[0].start <= 2.0


def by_text(r) -> str:  # noqa: ANN001
    return r.texts["text"]


def test_refuses_other_splits(sources: list[Path], tmp_path: Path) -> None:
    train = make_dir(tmp_path / "src" / "synth_en_train", "en", EN, 16000, 1)
    with pytest.raises(DataDirError, match="synth_en_train: not a test split"):
        prepare_longform([sources[0], train], tmp_path / "out", progress=False)
    rep = prepare_longform([train], tmp_path / "out", allow_any_split=True, progress=False)
    assert rep.used == len(EN)


def test_noise_and_cli(sources: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from speechx.cli import main

    out = tmp_path / "out"
    args = ["prepare", "longform", "--data-dirs", *map(str, sources), "--out-dir", str(out)]
    assert main([*args, "--name", "lf", "--noise-db", "-40", "--no-progress"]) == 0
    assert "queries:" in capsys.readouterr().out
    rows = read_truth(out / "lf" / "truth.tsv")
    wav, sr = sf.read(KaldiDir.read(out / "lf").wav_scp[rows[0].recording], dtype="float32")
    pause = wav[: int(rows[0].start * sr) if rows[0].recording.endswith("000") else 100]
    assert 0.005 < np.sqrt(np.mean(pause**2)) < 0.02  # -40 dBFS is 0.01 RMS
    assert (out / "audio" / "lf").is_dir()
