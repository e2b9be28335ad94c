"""Tests of data_prep.synth with the real espeak-ng on a three-sentence table."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import soundfile as sf

from data_prep import get_preparer
from data_prep.synth import (
    SynthError,
    Voice,
    VoiceSpace,
    check_espeak,
    choose_voice,
    main,
    prepare_synth,
    read_sentence_table,
    sentences_from_kaldi,
    synthesize,
)
from speechx.data.kaldi import KaldiDir
from speechx.data.splits import check_no_leak

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

TABLE = (
    "sent_id\tsplit\ten\tnl\tde\n"
    "fs-aaa\ttrain\tHello there.\tHallo daar.\tHallo da.\n"
    "fs-bbb\tdev\tThe fish swims.\tDe vis zwemt.\t\n"
    "fs-ccc\ttest\tWhere is the key?\tWaar is de sleutel?\tWo ist der Schlüssel?\n"
)


@pytest.fixture
def table(sentence_table) -> Path:
    return sentence_table(TABLE)


def test_choose_voice_is_deterministic_and_varied() -> None:
    v = choose_voice("de", "fs-aaa", seed=0)
    assert v == choose_voice("de", "fs-aaa", seed=0)
    assert v.variant in VoiceSpace().variants and v.espeak_voice == "de"
    assert choose_voice("en", "fs-aaa").espeak_voice == "en-us"
    speakers = {choose_voice("nl", f"s{i}", seed=0).speaker for i in range(200)}
    assert len(speakers) > 50
    seeds = {choose_voice("nl", "s1", seed=s).speaker for s in range(20)}
    assert len(seeds) > 1
    assert v.command()[:3] == ["espeak-ng", "-v", f"de+{v.variant}"]


def test_check_espeak_errors() -> None:
    assert Path(check_espeak(["en", "nl"])).name == "espeak-ng"
    with pytest.raises(SynthError, match="not found on PATH"):
        check_espeak(["en"], executable="no-such-espeak-binary")
    with pytest.raises(SynthError, match="'qq'"):
        check_espeak(["qq"])


def test_synthesize_resamples_to_16k() -> None:
    wav = synthesize("Hallo daar.", Voice("nl", "nl", "f2", 160, 50), sample_rate=16000)
    assert wav.dtype.name == "float32" and wav.ndim == 1
    assert 0.3 < wav.size / 16000 < 5.0
    assert abs(wav).max() > 0.01


def test_prepare_synth_writes_dirs_and_reuses_split(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    rep = prepare_synth(table, out, langs=["en", "de"], nj=2, seed=0, progress=False)
    # de has no text for fs-bbb
    assert rep.used == 5 and rep.skipped == {"no_text": 1}
    assert rep.extra["synthesised"] == 5 and rep.extra["reused"] == 0
    assert sorted(rep.dirs) == [
        "synth_de_test",
        "synth_de_train",
        "synth_en_dev",
        "synth_en_test",
        "synth_en_train",
    ]
    split_of = {"fs-aaa": "train", "fs-bbb": "dev", "fs-ccc": "test"}
    audio_root = (tmp_path / "wav" / "synth").resolve()
    for name in rep.dirs:
        kd = KaldiDir.read(out / name)
        lang, split = name.split("_")[1:]
        assert {split_of[s] for s in kd.utt2sent.values()} == {split}
        for utt in kd.utt_ids:
            path = Path(kd.wav_scp[utt])
            assert path.parent == audio_root / lang  # outside the Kaldi dir
            info = sf.info(str(path))
            assert info.samplerate == 16000 and info.subtype == "PCM_16"
            assert kd.utt2dur[utt] == pytest.approx(info.frames / 16000, abs=1e-3)
            assert kd.utt2lang[utt] == lang
            assert kd.utt2spk[utt].startswith(f"{lang}-") and utt.startswith(kd.utt2spk[utt])
            assert kd.text[utt] == kd.translations[lang][utt]
    de = KaldiDir.read(out / "synth_de_test")
    (utt,) = de.utt_ids
    assert de.text[utt] == "Wo ist der Schlüssel?"
    assert de.translations["nl"][utt] == "Waar is de sleutel?"
    assert de.translations["en"][utt] == "Where is the key?"
    check_no_leak(
        [out / "synth_en_train", out / "synth_de_train"],
        [out / "synth_en_dev", out / "synth_en_test", out / "synth_de_test"],
    )


def test_prepare_synth_resumes_without_resynthesising(table: Path, tmp_path: Path) -> None:
    out, audio = tmp_path / "data", tmp_path / "audio"
    prepare_synth(table, out, langs=["nl"], nj=2, audio_dir=audio, progress=False)
    wavs = sorted(audio.rglob("*.wav"))
    assert len(wavs) == 3
    before = {p: p.stat().st_mtime_ns for p in wavs}
    texts = {p.name: (out / p.name / "text").read_bytes() for p in out.glob("synth_*")}
    wavs[0].write_bytes(b"")  # a clip lost midway is regenerated
    rep = prepare_synth(table, out, langs=["nl"], nj=2, audio_dir=audio, progress=False)
    assert rep.extra == {**rep.extra, "synthesised": 1, "reused": 2}
    after = {p: p.stat().st_mtime_ns for p in wavs}
    assert [p for p in wavs if after[p] != before[p]] == [wavs[0]]
    assert sf.info(str(wavs[0])).frames > 0
    assert {p.name: (out / p.name / "text").read_bytes() for p in out.glob("synth_*")} == texts


def test_prepare_synth_from_kaldi_dirs_and_max_sentences(table: Path, tmp_path: Path) -> None:
    sents = read_sentence_table(table)
    for split in ("train", "dev", "test"):
        kd = KaldiDir()
        for s in sents.values():
            if s.split != split:
                continue
            utt = f"nl-m-{s.sent_id}"
            kd.wav_scp[utt] = "/x.ogg"
            kd.utt2spk[utt] = "nl-m"
            kd.utt2lang[utt] = "nl"
            kd.text[utt] = s.texts["nl"]
            kd.utt2sent[utt] = s.sent_id
            kd.translations["en"] = {**kd.translations.get("en", {}), utt: s.texts["en"]}
        kd.write(tmp_path / "src" / f"fillets_nl_{split}")
    dirs = sorted((tmp_path / "src").iterdir())
    from_kaldi = sentences_from_kaldi(dirs)
    assert {k: (v.split, v.texts) for k, v in from_kaldi.items()} == {
        k: (v.split, {lg: t for lg, t in v.texts.items() if lg in ("en", "nl")})
        for k, v in sents.items()
    }
    rep = prepare_synth(
        dirs,
        tmp_path / "out",
        langs=["en"],
        max_sentences=2,
        splits=["train", "test"],
        audio_dir=tmp_path / "a",
        progress=False,
    )
    assert rep.used == 2 and sorted(rep.dirs) == ["synth_en_test", "synth_en_train"]
    with pytest.raises(SynthError, match="_<split>"):
        sentences_from_kaldi([tmp_path / "src"])


def test_bad_table_and_cli(table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("sent_id\tsplit\ten\nfs-1\ttrain\n", encoding="utf-8")
    with pytest.raises(SynthError, match=r"bad.tsv:2"):
        read_sentence_table(bad)
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0 and "--nj" in capsys.readouterr().out
    out = table.parent.parent
    rc = main(["--out-dir", str(out), "--langs", "nl", "--splits", "test", "--no-progress"])
    assert rc == 0
    assert "1 clips used" in capsys.readouterr().out
    assert (out / "synth_nl_test" / "wav.scp").is_file()
    assert main(["--out-dir", str(tmp_path / "empty")]) == 1
    assert "sentence table not found" in capsys.readouterr().err
    assert get_preparer("synth") is prepare_synth


def test_name_prefixes_dirs_and_audio_and_changes_nothing_else(tmp_path: Path) -> None:
    # a table of monolingual rows, as data_prep.textcorpus writes: a row is spoken only in
    # the language where it has text
    table = tmp_path / "data" / "local" / "textcorpus_sentences.tsv"
    table.parent.mkdir(parents=True)
    table.write_text(
        "sent_id\tsplit\ten\tde\n"
        "tc-000000000001\ttrain\tThe cat sat on the mat.\t\n"
        "tc-000000000002\ttrain\t\tDer Hund schläft.\n",
        encoding="utf-8",
    )
    out = tmp_path / "data"
    args = ["--sentences", str(table), "--out-dir", str(out), "--langs", "en", "de"]
    assert main([*args, "--splits", "train", "--nj", "1", "--no-progress"]) == 0
    assert main([*args, "--splits", "train", "--name", "textsynth", "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir() if p.name != "local") == [
        "synth_de_train",
        "synth_en_train",
        "textsynth_de_train",
        "textsynth_en_train",
    ]
    for lang in ("en", "de"):
        plain, named = out / f"synth_{lang}_train", out / f"textsynth_{lang}_train"
        assert sorted(f.name for f in plain.iterdir()) == sorted(f.name for f in named.iterdir())
        for f in plain.iterdir():
            if f.name != "wav.scp":
                assert (named / f.name).read_bytes() == f.read_bytes(), f.name
        wav = (named / "wav.scp").read_text(encoding="utf-8")
        audio = (tmp_path / "wav" / "textsynth").resolve()
        assert wav == (plain / "wav.scp").read_text(encoding="utf-8").replace(
            str((tmp_path / "wav" / "synth").resolve()), str(audio)
        )
        kd = KaldiDir.read(named)
        (utt,) = kd.utt_ids
        assert Path(kd.wav_scp[utt]).parent == audio / lang and Path(kd.wav_scp[utt]).is_file()
        assert set(kd.translations) == {lang}  # no empty text.<other lang>
    with pytest.raises(SynthError, match="name"):
        prepare_synth(table, out, langs=["en"], name="../x", progress=False)
