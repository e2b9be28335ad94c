"""data_prep.commonvoice on tiny releases written in the published layout at test time."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep import CorpusWarning
from data_prep.commonvoice import (
    CommonVoiceError,
    check_commonvoice,
    main,
    prepare_commonvoice,
    read_tsv,
    sentence_id,
    speaker_id,
)
from speechx.data.kaldi import KaldiDir
from speechx.data.splits import check_no_leak
from speechx.data.validate import validate_data_dir

NEW_HEADER = (
    "client_id\tpath\tsentence_id\tsentence\tsentence_domain\tup_votes\tdown_votes\tage\t"
    "gender\taccents\tvariant\tlocale\tsegment"
)
OLD_HEADER = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccent"


def mp3(path: Path, seconds: float, sr: int, freq: float = 330.0) -> Path:
    """A sine written as MP3 by libsndfile (LAME)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, format="MP3")
    return path


def row(client: str, clip: str, sentence: str, locale: str = "nl", votes: str = "2\t0") -> str:
    """A data row under :data:`NEW_HEADER` (sentence written as given, tabs and all)."""
    sid = f"sid{abs(hash(sentence)) % 10**6}"
    return f"{client}\t{clip}\t{sid}\t{sentence}\t\t{votes}\tthirties\tfemale\t\t\t{locale}\t"


def write_tsv(path: Path, header: str, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


A, B, C = "a" * 128, "b" * 128, "c" * 128


def make_release(root: Path) -> Path:
    """``root/nl``: clips at 48, 44.1 and 32 kHz and TSVs with every messy case."""
    loc = root / "nl"
    clips = loc / "clips"
    rates = {1: 48000, 2: 44100, 3: 32000, 4: 48000, 5: 48000, 6: 44100, 7: 48000, 8: 48000}
    for i, sr in rates.items():
        mp3(clips / f"common_voice_nl_{i}.mp3", 0.3 + 0.05 * i, sr, freq=200.0 + 40 * i)
    (clips / "common_voice_nl_9.mp3").write_bytes(b"not an mp3 at all" * 20)  # corrupt
    write_tsv(
        loc / "train.tsv",
        NEW_HEADER,
        [
            row(A, "common_voice_nl_1.mp3", "De vis zwemt naar huis."),
            row(A, "common_voice_nl_1.mp3", "De vis zwemt naar huis."),  # duplicate row
            row(B, "common_voice_nl_2.mp3", '"""Ga weg,"" zei de krab."'),  # CSV-quoted
            row(B, "common_voice_nl_3.mp3", 'Hij zei "hallo en liep door.'),  # unbalanced quote
            row(C, "common_voice_nl_4.mp3", "Een zin\tmet een tab erin."),  # stray tab
            row(C, "common_voice_nl_404.mp3", "Deze clip bestaat niet."),  # missing clip
            row(C, "common_voice_nl_5.mp3", "   "),  # empty sentence
            row(A, "common_voice_nl_6.mp3", "waar is de uitgang?"),  # test sentence: leak
            row(A, "common_voice_nl_9.mp3", "Kapot bestand."),  # undecodable mp3
            "garbage line without the columns",
        ],
    )
    write_tsv(loc / "dev.tsv", NEW_HEADER, [row(B, "common_voice_nl_7.mp3", "Ik ben geen krab.")])
    write_tsv(
        loc / "test.tsv",
        NEW_HEADER,
        [
            row(C, "common_voice_nl_8.mp3", "Waar is de uitgang?"),
            row(C, "common_voice_nl_1.mp3", "De vis zwemt naar huis."),  # clip also in train
            row(C, "common_voice_nl_7.mp3", "Ik ben geen krab."),  # clip also in dev
        ],
    )
    write_tsv(
        loc / "validated.tsv",
        NEW_HEADER,
        [
            row(A, "common_voice_nl_1.mp3", "De vis zwemt naar huis."),
            row(B, "common_voice_nl_3.mp3", 'Hij zei "hallo en liep door.'),
            row(B, "common_voice_nl_7.mp3", "Ik ben geen krab."),
            row(C, "common_voice_nl_8.mp3", "Waar is de uitgang?"),
        ],
    )
    return root


@pytest.fixture
def release(tmp_path: Path) -> Path:
    return make_release(tmp_path / "cv-corpus-17.0")


# ----------------------------------------------------------------------------------- TSVs
def test_read_tsv_repairs_what_is_clear_and_reports_the_rest(tmp_path: Path) -> None:
    p = write_tsv(
        tmp_path / "x.tsv",
        "client_id\tpath\tsentence\tup_votes\tdown_votes\taccents",
        [
            "a\t1.mp3\tplain\t2\t0\t",
            'b\t2.mp3\t"""Quoted,"" she said."\t2\t0\t',
            'c\t3.mp3\tan "unbalanced quote\t2\t0\t',
            'd\t4.mp3\t"a quoted\ttab"\t3\t1\t',
            "e\t5.mp3\tstray\ttab here\t2\t0\tsome accent",
            'f\t6.mp3\t"two\nlines"\t2\t0\t',
            "g\t7.mp3",
            "h\t8.mp3\tx\ty\tz\tw\tv\tu",
        ],
    )
    table = read_tsv(p, required=("client_id", "path", "sentence"))
    got = {r.cells["path"]: r.cells["sentence"] for r in table.rows}
    assert got == {
        "1.mp3": "plain",
        "2.mp3": '"Quoted," she said.',
        "3.mp3": 'an "unbalanced quote',
        "4.mp3": "a quoted\ttab",
        "5.mp3": "stray tab here",
        "6.mp3": "two\nlines",
    }
    accents = {r.cells["path"]: r.cells["accents"] for r in table.rows}
    assert accents["5.mp3"] == "some accent"
    assert [ln for ln, _ in table.malformed] == [9, 10]  # too few fields; surplus not fixable
    assert "2 fields, the header has 6" in table.malformed[0][1]
    assert table.repaired == 4


def test_read_tsv_escapechar_and_missing_columns(tmp_path: Path) -> None:
    p = write_tsv(
        tmp_path / "c.tsv",
        "path\tsentence\ttranslation\tsplit",
        ["1.mp3\tein \\\t tab\tone\\\\two\ttrain", '2.mp3\t"quoted"\t"x\ttest'],
    )
    t = read_tsv(p, required=("path",), escapechar="\\", unquote=(), int_columns=())
    assert [r.cells["sentence"] for r in t.rows] == ["ein \t tab", '"quoted"']
    assert t.rows[0].cells["translation"] == "one\\two"
    assert t.malformed == [] and len(t.rows) == 2
    with pytest.raises(CommonVoiceError, match=r"c\.tsv: header lacks column\(s\) client_id"):
        read_tsv(p, required=("client_id",))
    with pytest.raises(CommonVoiceError, match="not found"):
        read_tsv(tmp_path / "nope.tsv")


def test_ids() -> None:
    assert speaker_id("ab" * 64) == "cv-abababababababab"
    assert speaker_id("") == "cv-unknown"
    assert sentence_id("nl", "Waar is  de uitgang?") == sentence_id("nl", "waar is de uitgang?")
    assert sentence_id("nl", "x") != sentence_id("de", "x")


# ---------------------------------------------------------------------------- preparation
def test_prepare_messy_release(release: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    with pytest.warns(CorpusWarning) as caught:
        report = prepare_commonvoice(release, out, nj=1)
    assert report.skipped == {
        "duplicate_row": 1,
        "duplicate_clip": 1,
        "malformed_row": 1,
        "missing_clip": 1,
        "empty_sentence": 1,
        "sentence_in_eval_split": 2,
        "unreadable_audio": 1,
    }
    messages = " ".join(str(w.message) for w in caught)
    assert "common_voice_nl_404.mp3 not found" in messages and "train.tsv:7" in messages
    assert report.dirs == {
        "commonvoice_nl_train": 3,
        "commonvoice_nl_dev": 1,
        "commonvoice_nl_test": 2,  # clip 1 is in test and train: test keeps it
    }
    train = KaldiDir.read(out / "commonvoice_nl_train")
    texts = sorted(train.text.values())
    assert texts == sorted(
        [
            '"Ga weg," zei de krab.',
            'Hij zei "hallo en liep door.',
            "Een zin met een tab erin.",
        ]
    )
    assert train.translations["nl"] == train.text
    assert set(train.utt2lang.values()) == {"nl"}
    test = KaldiDir.read(out / "commonvoice_nl_test")
    utt = f"cv-{'c' * 16}-common_voice_nl_1"
    assert test.utt2spk[utt] == f"cv-{'c' * 16}"
    assert test.utt2sent[utt] == sentence_id("nl", "De vis zwemt naar huis.")
    # mixed 48/44.1/32 kHz MP3s all became 16 kHz mono WAVs of the right length
    for u, path in train.wav_scp.items():
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.format) == (16000, 1, "WAV")
        assert info.duration == pytest.approx(train.utt2dur[u], abs=1e-3)
    i3 = f"cv-{'b' * 16}-common_voice_nl_3"
    assert train.utt2dur[i3] == pytest.approx(0.45, abs=0.01)  # the 32 kHz clip
    for name in report.dirs:
        v = validate_data_dir(out / name)
        assert v.ok, str(v)
    check_no_leak(
        [out / "commonvoice_nl_train"], [out / "commonvoice_nl_dev", out / "commonvoice_nl_test"]
    )
    skipped = (out / "local" / "commonvoice_skipped.tsv").read_text(encoding="utf-8")
    assert skipped.count("\n") == 1 + sum(report.skipped.values())
    table = (out / "local" / "commonvoice_sentences.tsv").read_text(encoding="utf-8").splitlines()
    # every sentence with a clip listed, including the one whose MP3 did not decode
    assert table[0] == "sent_id\tsplit\tnl" and len(table) == 1 + 7
    assert (out / "local" / "commonvoice_prep.json").is_file()

    # a rerun reuses every WAV and writes the same dirs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorpusWarning)
        again = prepare_commonvoice(release, out)
    assert again.extra["wav_reused"] == 6 and again.extra["wav_written"] == 0
    assert KaldiDir.read(out / "commonvoice_nl_train").text == train.text


def test_lhotse_reads_the_dirs(release: Path, tmp_path: Path) -> None:
    lhotse_kaldi = pytest.importorskip("lhotse.kaldi")
    out = tmp_path / "data"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorpusWarning)
        prepare_commonvoice(release, out, speech_langs=["nl"], text_langs=["nl"], nj=2)
    d = out / "commonvoice_nl_train"
    kd = KaldiDir.read(d)
    recordings, supervisions, _ = lhotse_kaldi.load_kaldi_data_dir(d, sampling_rate=16000)
    assert supervisions is not None
    sups = {s.id: s for s in supervisions}
    assert sorted(sups) == kd.utt_ids
    for u in kd.utt_ids:
        assert sups[u].text == kd.text[u]
        assert sups[u].speaker == kd.utt2spk[u]
        assert sups[u].language == "nl"
    audio = recordings[kd.utt_ids[0]].load_audio()
    assert audio.shape[0] == 1 and abs(audio.shape[1] / 16000 - kd.utt2dur[kd.utt_ids[0]]) < 2e-3


def test_old_release_source_audio_and_validated_train(tmp_path: Path) -> None:
    loc = tmp_path / "cv-corpus-5" / "de"
    for i in range(1, 5):
        mp3(loc / "clips" / f"common_voice_de_{i}.mp3", 0.4, 48000 if i % 2 else 22050)
    old = [
        f"{A}\tcommon_voice_de_1\tDer Fisch schwimmt.\t2\t0\t\t\t",  # path without ".mp3"
        f"{B}\tcommon_voice_de_2.mp3\tWo ist der Ausgang?\t2\t0\t\t\t",
        f"{B}\tcommon_voice_de_3.mp3\tIch bin keine Krabbe.\t3\t0\t\t\t",
        f"{C}\tcommon_voice_de_4.mp3\tDas Rohr ist eng.\t2\t1\t\t\t",
    ]
    write_tsv(loc / "train.tsv", OLD_HEADER, old[:2])
    write_tsv(loc / "dev.tsv", OLD_HEADER, old[2:3])
    write_tsv(loc / "test.tsv", OLD_HEADER, old[3:])
    # validated.tsv has every clip: as training data, dev and test clips are left out
    write_tsv(loc / "validated.tsv", OLD_HEADER, old)
    out = tmp_path / "data"
    with pytest.warns(CorpusWarning, match="is in dev/test"):
        report = prepare_commonvoice(loc, out, train_source="validated", audio_format="source")
    assert report.dirs == {
        "commonvoice_de_train": 2,
        "commonvoice_de_dev": 1,
        "commonvoice_de_test": 1,
    }
    assert report.skipped == {"sentence_in_eval_split": 2}
    train = KaldiDir.read(out / "commonvoice_de_train")
    assert all(p.endswith(".mp3") for p in train.wav_scp.values())
    assert sorted(train.utt2dur.values()) == pytest.approx([0.4, 0.4], abs=0.06)
    assert validate_data_dir(out / "commonvoice_de_train").ok
    assert not (out / "commonvoice_wav").exists()


def test_check_names_what_is_missing(release: Path, tmp_path: Path) -> None:
    assert check_commonvoice(release, ["nl"]) == []
    assert check_commonvoice(release) == []
    (release / "nl" / "test.tsv").unlink()
    problems = check_commonvoice(release, ["nl"])
    assert problems == [f"commonvoice nl: {release / 'nl' / 'test.tsv'} not found"]
    problems = check_commonvoice(release, ["nl", "fy-NL"])
    assert len(problems) == 1 and str(release / "fy-NL") in problems[0]
    assert "locales present: nl" in problems[0]
    assert "not found" in check_commonvoice(tmp_path / "nowhere")[0]
    assert "no corpus directory" in check_commonvoice(None)[0]
    with pytest.raises(CommonVoiceError, match=r"test\.tsv: TSV file not found"):
        prepare_commonvoice(release, tmp_path / "data")


def test_cli(release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], corpus_cli) -> None:
    corpus_cli("commonvoice", main, prepare_commonvoice)
    assert main(["--check", "--corpus-dir", str(release), "--speech-langs", "nl"]) == 0
    assert "ready" in capsys.readouterr().out
    assert main(["--check", "--corpus-dir", str(release), "--speech-langs", "xx"]) == 1
    assert "missing: locale(s) xx not found" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorpusWarning)
        rc = main(
            ["--corpus-dir", str(release), "--out-dir", str(tmp_path / "d"), "--speech-langs", "nl"]
            + ["--text-langs", "nl", "en", "--splits", "dev", "test"]
        )
    assert rc == 0
    assert "commonvoice_nl_dev: 1 utterances" in capsys.readouterr().out
    assert not (tmp_path / "d" / "commonvoice_nl_train").exists()
