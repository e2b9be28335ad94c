"""data_prep.librispeech on a miniature LibriSpeech tree in the published layout."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from data_prep.librispeech import (
    LibriSpeechError,
    check_librispeech,
    main,
    prepare_librispeech,
    read_speakers,
)
from speechx.data.kaldi import KaldiDir
from speechx.data.validate import validate_data_dir
from speechx.testing import make_wav

SPEAKERS = """\
; Some comment lines
;ID  |SEX| SUBSET           |MINUTES| NAME
14   | F | train-clean-360  | 25.03 | Kristin LeMoine
19   | F | train-clean-100  | 25.19 | Kara Shallenberg
84   | F | dev-clean        |  8.02 | Christie Nowak
121  | F | test-clean       |  8.43 | Nikolle Doolin
1089 | M | test-clean       |  8.41 | Bill Kneeland
"""


def _chapter(root: Path, subset: str, spk: str, chapter: str, lines: dict[str, str]) -> Path:
    d = root / subset / spk / chapter
    d.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{spk}-{chapter}-{u} {t}\n" for u, t in lines.items())
    (d / f"{spk}-{chapter}.trans.txt").write_text(body, encoding="utf-8")
    return d


def make_librispeech(base: Path) -> Path:
    """A LibriSpeech tree with the messy cases; returns the dir that holds ``LibriSpeech/``."""
    root = base / "LibriSpeech"
    root.mkdir(parents=True)
    (root / "SPEAKERS.TXT").write_text(SPEAKERS, encoding="utf-8")
    d = _chapter(
        root,
        "train-clean-100",
        "19",
        "198",
        {
            "0000": "NORTHANGER ABBEY",
            "0001": "THIS LITTLE WORK WAS FINISHED IN THE YEAR EIGHTEEN O THREE",
            "0002": "",  # empty transcript
            "0003": "A LINE WITHOUT ITS AUDIO",  # missing flac
        },
    )
    make_wav(d / "19-198-0000.flac", 0.5, 16000, format="FLAC")
    make_wav(d / "19-198-0001.flac", 0.7, 16000, format="FLAC")
    make_wav(d / "19-198-0002.flac", 0.3, 16000, format="FLAC")
    make_wav(d / "19-198-0009.flac", 0.3, 16000, format="FLAC")  # no transcript line
    d = _chapter(root, "train-clean-360", "14", "208", {"0000": "CHAPTER ONE"})
    make_wav(d / "14-208-0000.flac", 0.4, 8000, format="FLAC")  # another sample rate
    d = _chapter(root, "dev-clean", "84", "121123", {"0000": "GO DO YOU HEAR"})
    make_wav(d / "84-121123-0000.flac", 0.6, 16000, format="FLAC")
    d = _chapter(
        root,
        "test-clean",
        "1089",
        "134686",
        {"0000": "HE HOPED THERE WOULD BE STEW FOR DINNER", "0001": "BROKEN FILE"},
    )
    make_wav(d / "1089-134686-0000.flac", 0.8, 16000, format="FLAC")
    (d / "1089-134686-0001.flac").write_bytes(b"fLaC not really")  # unreadable
    d = _chapter(root, "test-clean", "121", "121726", {"0000": "ALSO A HEDGE"})
    make_wav(d / "121-121726-0000.flac", 0.5, 16000, format="FLAC")
    d = _chapter(root, "test-other", "1688", "142285", {"0000": "THERE'S IRON THEY SAY"})
    make_wav(d / "1688-142285-0000.flac", 0.5, 16000, format="FLAC")
    # the same utterance id listed twice (a corrupted copy) is read once
    d = _chapter(root, "dev-clean", "84", "121550", {"0000": "SHE SAID", "0001": "SHE SAID"})
    (d / "84-121550.trans.txt").write_text(
        "84-121550-0000 SHE SAID\n84-121550-0000 SHE SAID AGAIN\n", encoding="utf-8"
    )
    make_wav(d / "84-121550-0000.flac", 0.4, 16000, format="FLAC")
    return base


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return make_librispeech(tmp_path / "corpus")


def _prepare(corpus: Path, out: Path, **kw) -> object:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = prepare_librispeech(corpus, out, **kw)
    return report, [str(w.message) for w in caught]


def test_prepare_writes_the_three_splits(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    report, warned = _prepare(corpus, out, text_langs=["en", "nl"], extra_sets=["test-other"])
    assert sorted(report.dirs) == [
        "librispeech_en_dev",
        "librispeech_en_test",
        "librispeech_en_test_other",
        "librispeech_en_train",
    ]
    assert report.skipped == {
        "empty_transcript": 1,
        "missing_audio": 1,
        "no_transcript": 1,
        "unreadable_audio": 1,
        "duplicate_id": 1,
    }
    assert any("19-198-0003" in w and "missing" in w for w in warned)
    assert any("84-121550-0000" in w for w in warned)
    train = KaldiDir.read(out / "librispeech_en_train")
    # both train subsets are pooled by default
    assert train.utt_ids == ["14-208-0000", "19-198-0000", "19-198-0001"]
    assert train.text["19-198-0000"] == "northanger abbey"
    assert train.utt2spk["14-208-0000"] == "14"
    assert train.utt2dur["14-208-0000"] == pytest.approx(0.4)
    assert train.utt2sent == {u: u for u in train.utt_ids}
    assert set(train.utt2lang.values()) == {"en"}
    assert train.translations == {"en": train.text}
    assert Path(train.wav_scp["19-198-0000"]).is_absolute()
    assert (out / "librispeech_en_train" / "spk2gender").read_text() == "14 f\n19 f\n"
    test = KaldiDir.read(out / "librispeech_en_test")
    assert test.utt_ids == ["1089-134686-0000", "121-121726-0000"]
    assert (out / "librispeech_en_test" / "spk2gender").read_text() == "1089 m\n121 f\n"
    other = KaldiDir.read(out / "librispeech_en_test_other")
    assert other.utt_ids == ["1688-142285-0000"]
    assert not (out / "librispeech_en_test_other" / "spk2gender").exists()  # 1688 not listed
    assert report.coverage == {"en": 1.0, "nl": 0.0}
    for name in report.dirs:
        rep = validate_data_dir(out / name)
        assert rep.ok, str(rep)
    doc = json.loads((out / "local" / "librispeech_prep.json").read_text())
    assert doc["used"] == report.used == 8
    skipped = (out / "local" / "librispeech_skipped.tsv").read_text().splitlines()
    assert skipped[0] == "utt\treason\tdetail" and len(skipped) == 6


def test_options_select_subsets_and_case(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    report, _ = _prepare(
        corpus / "LibriSpeech",  # the LibriSpeech dir itself works too
        out,
        train_subsets=["train-clean-100"],
        dev_subsets=["dev-clean"],
        test_subsets=["test-clean", "test-other"],
        keep_case=True,
        min_duration=0.45,
    )
    train = KaldiDir.read(out / "librispeech_en_train")
    assert train.utt_ids == ["19-198-0000", "19-198-0001"]
    assert train.text["19-198-0000"] == "NORTHANGER ABBEY"
    test = KaldiDir.read(out / "librispeech_en_test")
    assert "1688-142285-0000" in test.utt_ids
    assert report.skipped["too_short"] == 1  # 84-121550-0000 (0.4 s); train-clean-360 not read


def test_lhotse_reads_the_dirs(corpus: Path, tmp_path: Path) -> None:
    lhotse_kaldi = pytest.importorskip("lhotse.kaldi")
    out = tmp_path / "data"
    _prepare(corpus, out)
    kd = KaldiDir.read(out / "librispeech_en_train")
    recordings, sups, _ = lhotse_kaldi.load_kaldi_data_dir(
        out / "librispeech_en_train", sampling_rate=16000
    )
    assert sorted(s.id for s in sups) == kd.utt_ids
    for s in sups:
        assert s.text == kd.text[s.id] and s.speaker == kd.utt2spk[s.id]
        assert s.language == "en"
        assert s.duration == pytest.approx(kd.utt2dur[s.id], abs=1e-3)


def test_errors_name_what_is_missing(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(LibriSpeechError, match=r"nowhere.*LibriSpeech"):
        prepare_librispeech(tmp_path / "nowhere", tmp_path / "o")
    with pytest.raises(LibriSpeechError, match="English only"):
        prepare_librispeech(corpus, tmp_path / "o", speech_langs=["nl"])
    with pytest.raises(LibriSpeechError, match="dev-other"):
        prepare_librispeech(corpus, tmp_path / "o", dev_subsets=["dev-other"])
    assert check_librispeech(corpus) == []
    problems = check_librispeech(corpus, subsets=["dev-clean", "dev-other"])
    assert problems == [f"{corpus / 'LibriSpeech' / 'dev-other'}: subset directory missing"]
    assert "not found" in check_librispeech(tmp_path / "nowhere")[0]
    assert "--corpus-dir" in check_librispeech(None)[0]
    assert "English only" in check_librispeech(corpus, speech_langs=["en", "nl"])[0]


def test_read_speakers_skips_comments(tmp_path: Path) -> None:
    p = tmp_path / "SPEAKERS.TXT"
    p.write_text(SPEAKERS + "garbage line\n", encoding="utf-8")
    assert read_speakers(p) == {"14": "f", "19": "f", "84": "f", "121": "f", "1089": "m"}
    assert read_speakers(tmp_path / "none.txt") == {}


def test_cli(corpus: Path, tmp_path: Path, corpus_cli, capsys: pytest.CaptureFixture[str]) -> None:
    corpus_cli("librispeech", main, prepare_librispeech)
    out = tmp_path / "cli"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(
            [
                "--corpus-dir",
                str(corpus),
                "--out-dir",
                str(out),
                "--speech-langs",
                "en",
                "--text-langs",
                "en",
                "de",
            ]
        )
    assert rc == 0
    assert "librispeech_en_train: 3 utterances" in capsys.readouterr().out
