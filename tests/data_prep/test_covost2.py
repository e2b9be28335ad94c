"""data_prep.covost2 on tiny CoVoST 2 copies written in the published layouts at test time."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep import CorpusWarning
from data_prep.commonvoice import sentence_id
from data_prep.covost2 import CoVoSTError, check_covost2, main, prepare_covost2
from speechx.data.kaldi import KaldiDir
from speechx.data.splits import check_no_leak
from speechx.data.validate import validate_data_dir

CV_HEADER = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccent"
A, B = "a" * 64, "b" * 64


def mp3(path: Path, seconds: float, sr: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), sr, format="MP3")


def write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_covost(root: Path) -> Path:
    """CV 4 style ``fr/`` and ``en/`` with the released CoVoST TSVs (``split`` column)."""
    fr = root / "fr"
    for i, sr in enumerate([48000, 44100, 48000, 32000, 48000], start=1):
        mp3(fr / "clips" / f"common_voice_fr_{i}.mp3", 0.3, sr)
    write(
        fr / "validated.tsv",
        [CV_HEADER]
        + [
            f"{A}\tcommon_voice_fr_1.mp3\tLe poisson nage.\t2\t0\t\t\t",
            f"{A}\tcommon_voice_fr_2.mp3\tOù est la sortie ?\t2\t0\t\t\t",
            f"{B}\tcommon_voice_fr_3.mp3\tJe ne suis pas un crabe.\t2\t0\t\t\t",
            f"{B}\tcommon_voice_fr_4.mp3\tOù est la sortie ?\t2\t0\t\t\t",
            f"{B}\tcommon_voice_fr_6.mp3\tIl manque.\t2\t0\t\t\t",
        ],
    )
    write(
        fr / "covost_v2.fr_en.tsv",
        [
            "path\tsentence\ttranslation\tsplit",
            "common_voice_fr_1.mp3\tLe poisson nage.\tThe fish swims.\ttrain",
            "common_voice_fr_1.mp3\tLe poisson nage.\tThe fish swims.\ttrain",  # duplicate
            'common_voice_fr_2.mp3\tOù est la sortie ?\t"Where\\\tis" the exit?\ttest',
            "common_voice_fr_3.mp3\tJe ne suis pas un crabe.\tI am not a crab.\ttrain_covost",
            "common_voice_fr_4.mp3\tOù est la sortie ?\tWhere is the exit?\ttrain",  # leak
            "common_voice_fr_5.mp3\tPas validé.\tNot validated.\tdev",  # not in validated
            "common_voice_fr_6.mp3\tIl manque.\tIt is missing.\tdev",  # clip missing
            "common_voice_fr_7.mp3\tx\ty\tdev_extra",
        ],
    )
    en = root / "en"
    for i in range(1, 4):
        mp3(en / "clips" / f"common_voice_en_{i}.mp3", 0.25, 48000)
    # en->X as the per-split files of get_covost_splits.py (no join needed)
    header = "path\tsentence\ttranslation\tclient_id"
    rows = {
        "train": [f"common_voice_en_1.mp3\tThe fish swims.\t{{t}} 1\t{A}"],
        "dev": [f"common_voice_en_2.mp3\tWhere is the exit?\t{{t}} 2\t{B}"],
        "test": [f"common_voice_en_3.mp3\tI am not a crab.\t{{t}} 3\t{A}"],
    }
    for tgt, word in (("de", "Fisch"), ("ja", "魚")):
        for split, lines in rows.items():
            write(
                en / f"covost_v2.en_{tgt}.{split}.tsv",
                [header, *(ln.format(t=word) for ln in lines)],
            )
    return root


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return make_covost(tmp_path / "cv-corpus-4")


def test_x_to_en(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    with pytest.warns(CorpusWarning) as caught:
        report = prepare_covost2(corpus, out, speech_langs=["fr"], text_langs=["en", "fr"])
    assert report.skipped == {
        "duplicate_row": 1,
        "not_in_validated": 1,
        "outside_split": 1,
        "sentence_in_eval_split": 1,
        "missing_clip": 1,
    }
    assert "common_voice_fr_6.mp3 not found" in " ".join(str(w.message) for w in caught)
    assert report.dirs == {"covost2_fr_train": 2, "covost2_fr_test": 1}
    assert report.extra["pairs"] == ["fr_en"]
    train = KaldiDir.read(out / "covost2_fr_train")
    assert sorted(train.translations["en"].values()) == ["I am not a crab.", "The fish swims."]
    assert train.translations["fr"] == train.text
    assert set(train.utt2lang.values()) == {"fr"}
    test = KaldiDir.read(out / "covost2_fr_test")
    (utt,) = test.utt_ids
    assert utt == f"cv-{'a' * 16}-common_voice_fr_2"
    assert test.translations["en"][utt] == '"Where is" the exit?'  # escaped tab, quotes kept
    assert test.utt2sent[utt] == sentence_id("fr", "Où est la sortie ?")
    for name in report.dirs:
        v = validate_data_dir(out / name)
        assert v.ok, str(v)
    check_no_leak([out / "covost2_fr_train"], [out / "covost2_fr_test"])
    table = (out / "local" / "covost2_sentences.tsv").read_text(encoding="utf-8").splitlines()
    assert table[0] == "sent_id\tsplit\tfr\ten"


def test_en_to_x_per_split_files_and_lhotse(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    report = prepare_covost2(corpus, out, speech_langs="en", text_langs="de,ja", nj=2)
    assert report.skipped == {}
    assert report.dirs == {"covost2_en_train": 1, "covost2_en_dev": 1, "covost2_en_test": 1}
    assert report.coverage == {"de": 1.0, "ja": 1.0}
    dev = KaldiDir.read(out / "covost2_en_dev")
    (utt,) = dev.utt_ids
    assert dev.text[utt] == "Where is the exit?"
    assert dev.translations["de"][utt] == "Fisch 2" and dev.translations["ja"][utt] == "魚 2"
    assert "en" not in dev.translations  # not asked for
    lhotse_kaldi = pytest.importorskip("lhotse.kaldi")
    _, sups, _ = lhotse_kaldi.load_kaldi_data_dir(out / "covost2_en_dev", sampling_rate=16000)
    assert sups is not None and [s.text for s in sups] == ["Where is the exit?"]


def test_check_and_errors(corpus: Path, tmp_path: Path) -> None:
    assert check_covost2(corpus, ["fr"], ["en"]) == []
    assert check_covost2(corpus, ["fr", "en"], ["en", "de", "ja"]) == []
    problems = check_covost2(corpus, ["en"], ["de", "tr"])
    assert problems == [
        f"covost2 en->tr: translation TSV not found (looked for "
        f"{corpus / 'en' / 'covost_v2.en_tr.tsv'}, {corpus / 'covost_v2.en_tr.tsv'})"
    ]
    problems = check_covost2(corpus, ["fr"], ["de"])
    assert len(problems) == 1 and "no translation from fr into de" in problems[0]
    (corpus / "fr" / "validated.tsv").unlink()
    assert check_covost2(corpus, ["fr"], ["en"]) == [
        f"covost2 fr: {corpus / 'fr' / 'validated.tsv'} not found (the speakers of "
        "covost_v2.fr_en.tsv come from Common Voice's validated.tsv)"
    ]
    with pytest.raises(CoVoSTError, match="validated.tsv not found"):
        prepare_covost2(corpus, tmp_path / "d", speech_langs=["fr"], text_langs=["en"])
    assert "not found" in check_covost2(tmp_path / "nowhere", ["fr"])[0]
    covost = tmp_path / "tsvs"
    covost.mkdir()
    assert "covost_v2.en_de.tsv" in check_covost2(corpus, ["en"], ["de"], covost_dir=covost)[0]


def test_cli(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], corpus_cli) -> None:
    corpus_cli("covost2", main, prepare_covost2)
    assert main(["--check", "--corpus-dir", str(corpus), "--speech-langs", "en"]) == 0
    assert main(["--check", "--corpus-dir", str(corpus), "--speech-langs", "pl"]) == 1
    assert "locale(s) pl not found" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorpusWarning)
        rc = main(["--corpus-dir", str(corpus), "--out-dir", str(tmp_path / "d")])
    assert rc == 0  # default: every source with a TSV (en and fr), every target on disk
    out = capsys.readouterr().out
    assert "covost2_en_train: 1 utterances" in out and "covost2_fr_train: 2 utterances" in out
