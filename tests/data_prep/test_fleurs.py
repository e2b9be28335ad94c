"""data_prep.fleurs on miniature FLEURS copies in the release (tsv) and hub (arrow, parquet)
layouts."""

from __future__ import annotations

import io
import json
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

from data_prep.fleurs import (
    FleursError,
    check_fleurs,
    main,
    prepare_fleurs,
    resolve_langs,
    short_code,
)
from speechx.data.kaldi import KaldiDir
from speechx.data.splits import check_no_leak
from speechx.data.validate import validate_data_dir
from speechx.testing import make_sine, make_wav

# (id, file, raw, gender) per config and split; ids are shared across languages
NL = {
    "train": [
        (1, "101.wav", 'Hij zei: "Goedemorgen".', "MALE"),
        (1, "102.wav", 'Hij zei: "Goedemorgen".', "FEMALE"),  # a second speaker
        (2, "103.wav", "De kat slaapt.", "FEMALE"),
        (2, "103.wav", "De kat slaapt.", "FEMALE"),  # duplicate row
        (3, "104.wav", "", "MALE"),  # empty sentence
        (5, "105.wav", "Een zin die in het Engels test is.", "MALE"),  # leak: en has 5 in test
    ],
    "dev": [(4, "201.wav", "Het regent.", "OTHER")],
    "test": [
        (6, "301.wav", "Waar is het station?", "FEMALE"),
        (7, "302.wav", "Dit bestand ontbreekt.", "MALE"),  # missing clip
    ],
}
EN = {
    "train": [
        (1, "a1.wav", 'He said: "Good morning".', "MALE"),
        (2, "a2.wav", "The cat sleeps.", "MALE"),
    ],
    "dev": [(4, "a4.wav", "It is raining.", "FEMALE")],
    "test": [
        (5, "a5.wav", "A sentence that is test in English.", "MALE"),
        (6, "a6.wav", "Where is the station?", "FEMALE"),
    ],
}
DE = {"train": [(1, "d1.wav", 'Er sagte: "Guten Morgen".', "MALE")], "dev": [], "test": []}


def _tsv_line(sid: int, fname: str, raw: str, gender: str) -> str:
    norm = raw.lower().replace('"', "").replace(".", "").replace(":", "").replace("?", "")
    chars = " ".join("|".join(norm.split())) + " |"
    return "\t".join([str(sid), fname, raw, norm, chars, "8000", gender]) + "\n"


def _write_tsv_config(root: Path, config: str, table: dict, *, archive: bool = False) -> None:
    d = root / config
    d.mkdir(parents=True)
    for split, rows in table.items():
        lines = "".join(_tsv_line(*r) for r in rows)
        if config == "nl_nl" and split == "train":
            lines += "8\tbad.wav\ttab\tinside\tfield\tx\t8000\tMALE\n"  # a tab inside a field
        (d / f"{split}.tsv").write_text(lines, encoding="utf-8")
        files = {r[1] for r in rows if "ontbreekt" not in r[2]}
        adir = d / "audio" / split
        for i, f in enumerate(sorted(files)):
            sr = 48000 if f == "102.wav" else 16000  # mixed sample rates
            make_wav(adir / f, 0.3 + 0.1 * i, sr, freq=300.0 + 50 * i)
        if archive:  # the hub repo ships audio/<split>.tar.gz with <split>/<file> members
            with tarfile.open(d / "audio" / f"{split}.tar.gz", "w:gz") as tar:
                for f in sorted(files):
                    tar.add(adir / f, arcname=f"{split}/{f}")
            for f in files:
                (adir / f).unlink()
            adir.rmdir()


def make_fleurs_tsv(root: Path) -> Path:
    """nl_nl (extracted audio), en_us (tar.gz audio) and de_de in the release layout."""
    _write_tsv_config(root, "nl_nl", NL)
    _write_tsv_config(root, "en_us", EN, archive=True)
    _write_tsv_config(root, "de_de", DE)
    return root


@pytest.fixture
def tsv_corpus(tmp_path: Path) -> Path:
    return make_fleurs_tsv(tmp_path / "fleurs")


def _prepare(*args, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = prepare_fleurs(*args, **kw)
    return report, [str(w.message) for w in caught]


def test_tsv_layout(tsv_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    report, warned = _prepare(
        tsv_corpus, out, speech_langs=["nl", "en_us"], text_langs=["en", "nl", "de"]
    )
    assert sorted(report.dirs) == [
        f"fleurs_{lang}_{s}" for lang in ("en", "nl") for s in ("dev", "test", "train")
    ]
    assert report.skipped == {
        "duplicate_row": 1,
        "empty_transcript": 1,
        "malformed_row": 1,
        "missing_audio": 1,
        "sentence_in_test_elsewhere": 1,
    }
    assert any("302" in w and "not found" in w for w in warned)
    nl = KaldiDir.read(out / "fleurs_nl_train")
    assert nl.utt_ids == ["fleurs-nl-1-101", "fleurs-nl-1-102", "fleurs-nl-2-103"]
    u = "fleurs-nl-1-101"
    assert nl.text[u] == 'Hij zei: "Goedemorgen".'  # quotes kept, no CSV unquoting
    assert nl.utt2sent[u] == nl.utt2sent["fleurs-nl-1-102"] == "fleurs-1"
    assert nl.translations["en"][u] == 'He said: "Good morning".'
    assert nl.translations["de"][u] == 'Er sagte: "Guten Morgen".'
    assert nl.translations["nl"] == nl.text
    assert "fleurs-nl-2-103" not in nl.translations["de"]  # de lacks sentence 2
    assert nl.utt2spk[u] == u and set(nl.utt2lang.values()) == {"nl"}
    assert nl.utt2dur["fleurs-nl-1-102"] == pytest.approx(0.4)  # the 48 kHz file
    gender = (out / "fleurs_nl_train" / "spk2gender").read_text().splitlines()
    assert gender == ["fleurs-nl-1-101 m", "fleurs-nl-1-102 f", "fleurs-nl-2-103 f"]
    # en audio came out of the tar.gz archives
    en_test = KaldiDir.read(out / "fleurs_en_test")
    assert en_test.utt_ids == ["fleurs-en-5-a5", "fleurs-en-6-a6"]
    assert Path(en_test.wav_scp["fleurs-en-5-a5"]).is_relative_to(out.resolve() / "fleurs_audio")
    # the n-way sentence id links the test sets of both languages
    nl_test = KaldiDir.read(out / "fleurs_nl_test")
    assert nl_test.utt2sent["fleurs-nl-6-301"] == en_test.utt2sent["fleurs-en-6-a6"]
    assert report.coverage["en"] == 1.0 and 0 < report.coverage["de"] < 0.5
    dirs = [out / name for name in report.dirs]
    for d in dirs:
        rep = validate_data_dir(d)
        assert rep.ok, str(rep)
    check_no_leak([KaldiDir.read(d) for d in dirs if d.name.endswith("_train")],
                  [KaldiDir.read(d) for d in dirs if d.name.endswith("_test")])  # fmt: skip
    doc = json.loads((out / "local" / "fleurs_prep.json").read_text())
    assert doc["extra"]["configs"]["speech"] == {"nl": "nl_nl", "en": "en_us"}


def test_keep_policy_and_normalized_transcript(tsv_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    report, _ = _prepare(
        tsv_corpus, out, speech_langs=["nl"], text_langs=["en"], leak_policy="keep",
        transcript="normalized",
    )  # fmt: skip
    nl = KaldiDir.read(out / "fleurs_nl_train")
    assert "fleurs-nl-5-105" in nl.utt_ids
    assert nl.text["fleurs-nl-1-101"] == "hij zei goedemorgen"
    assert nl.translations["en"]["fleurs-nl-1-101"] == "he said good morning"
    assert "sentence_in_test_elsewhere" not in report.skipped


def test_lhotse_reads_the_dirs(tsv_corpus: Path, tmp_path: Path) -> None:
    lhotse_kaldi = pytest.importorskip("lhotse.kaldi")
    out = tmp_path / "data"
    _prepare(tsv_corpus, out, speech_langs=["nl"], text_langs=["en"])
    kd = KaldiDir.read(out / "fleurs_nl_train")
    recordings, sups, _ = lhotse_kaldi.load_kaldi_data_dir(
        out / "fleurs_nl_train", sampling_rate=16000
    )
    assert sorted(s.id for s in sups) == kd.utt_ids
    for s in sups:
        assert s.text == kd.text[s.id] and s.language == "nl"
        assert s.duration == pytest.approx(kd.utt2dur[s.id], abs=1e-3)
    assert {r.id for r in recordings} == set(kd.wav_scp)


def _wav_bytes(seconds: float, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, make_sine(seconds, sr), sr, format="WAV")
    return buf.getvalue()


def _hf_split(rows: list[tuple[int, str, str, str]], sr: int = 16000):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {
            "id": datasets.Value("int32"),
            "num_samples": datasets.Value("int32"),
            "path": datasets.Value("string"),
            "audio": datasets.Audio(sampling_rate=16000),
            "transcription": datasets.Value("string"),
            "raw_transcription": datasets.Value("string"),
            "gender": datasets.ClassLabel(names=["male", "female", "other"]),
            "lang_id": datasets.Value("int32"),
            "language": datasets.Value("string"),
            "lang_group_id": datasets.Value("int32"),
        }
    )
    data: dict[str, list] = {k: [] for k in features}
    for i, (sid, fname, raw, gender) in enumerate(rows):
        data["id"].append(sid)
        data["num_samples"].append(4800)
        data["path"].append(f"/home/someone/.cache/extracted/train/{fname}")  # not here
        missing = "ontbreekt" in raw  # a row whose audio is lost
        data["audio"].append(
            None if missing else {"bytes": _wav_bytes(0.3 + 0.1 * i, sr), "path": f"train/{fname}"}
        )
        data["transcription"].append(raw.lower())
        data["raw_transcription"].append(raw)
        data["gender"].append({"MALE": 0, "FEMALE": 1}.get(gender, 2))
        data["lang_id"].append(0)
        data["language"].append("Dutch")
        data["lang_group_id"].append(0)
    # built from an arrow table: Dataset.from_dict would encode the audio (needs torchcodec)
    return datasets.Dataset(pa.Table.from_pydict(data, schema=features.arrow_schema))


@pytest.mark.parametrize("layout", ["arrow", "parquet"])
def test_hub_layouts(tmp_path: Path, layout: str) -> None:
    datasets = pytest.importorskip("datasets")
    root = tmp_path / "fleurs"
    for config, table in (("nl_nl", NL), ("en_us", EN)):
        splits = {
            {"dev": "validation"}.get(s, s): _hf_split(rows, 22050 if config == "en_us" else 16000)
            for s, rows in table.items()
        }
        if layout == "arrow":
            datasets.DatasetDict(splits).save_to_disk(str(root / config))
        else:
            for s, ds in splits.items():
                ds.to_parquet(str(root / config / f"fleurs-{s}.parquet"))
    out = tmp_path / "data"
    report, _ = _prepare(root, out, speech_langs=["nl"], text_langs=["en"], nj=1)
    nl = KaldiDir.read(out / "fleurs_nl_train")
    assert nl.utt_ids == ["fleurs-nl-1-101", "fleurs-nl-1-102", "fleurs-nl-2-103"]
    assert nl.translations["en"]["fleurs-nl-2-103"] == "The cat sleeps."
    wav = Path(nl.wav_scp["fleurs-nl-1-101"])
    assert wav.is_relative_to(out.resolve() / "fleurs_audio" / "nl_nl" / "train")
    assert sf.info(str(wav)).samplerate == 16000
    assert report.skipped["missing_audio"] == 1  # 302: no bytes, no file
    assert report.extra["wav_decoded"] == 5  # train 3, dev 1, test 1
    for name in report.dirs:
        assert validate_data_dir(out / name).ok
    # a rerun reuses the WAVs it wrote
    again, _ = _prepare(root, out, speech_langs=["nl"], text_langs=["en"], nj=1)
    assert again.dirs == report.dirs and again.extra["wav_decoded"] == 0


def test_language_names(tsv_corpus: Path) -> None:
    assert short_code("nl_nl") == "nl" and short_code("cmn_hans_cn") == "zh"
    assert short_code("es_419") == "es"
    configs = ["cmn_hans_cn", "en_us", "nl_nl"]
    assert resolve_langs(["zh", "nl_nl", "en"], configs, where="x") == {
        "zh": "cmn_hans_cn",
        "nl": "nl_nl",
        "en": "en_us",
    }
    assert resolve_langs(["cmn"], configs, where="x") == {"zh": "cmn_hans_cn"}
    with pytest.raises(FleursError, match=r"no config for language 'fr'.*en_us"):
        resolve_langs(["fr"], configs, where="x")


def test_errors_and_check(tsv_corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(FleursError, match="not found"):
        prepare_fleurs(tmp_path / "nope", tmp_path / "o")
    with pytest.raises(FleursError, match="'fr'"):
        prepare_fleurs(tsv_corpus, tmp_path / "o", speech_langs=["fr"])
    assert check_fleurs(tsv_corpus, ["nl", "en"], ["de"]) == []
    problems = check_fleurs(tsv_corpus, ["fr", "de"], [])
    assert any("'fr'" in p for p in problems)
    assert any("de_de" in p and "neither" in p for p in problems)  # de dev/test have no audio
    assert "not found" in check_fleurs(tmp_path / "nope")[0]
    assert "--corpus-dir" in check_fleurs(None, ["nl"])[0]


def test_cli(tsv_corpus: Path, tmp_path: Path, corpus_cli, capsys) -> None:
    corpus_cli("fleurs", main, prepare_fleurs)
    out = tmp_path / "cli"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["--corpus-dir", str(tsv_corpus), "--out-dir", str(out),
                   "--speech-langs", "nl", "--text-langs", "en", "nl"])  # fmt: skip
    assert rc == 0
    assert "fleurs_nl_train: 3 utterances" in capsys.readouterr().out
    assert np.isclose(
        json.loads((out / "local" / "fleurs_prep.json").read_text())["coverage"]["en"], 1.0
    )


def test_duration_limits_skip_and_empty_dirs_are_listed(tsv_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    report, warned = _prepare(tsv_corpus, out, speech_langs=["nl"], max_duration=0.35)
    assert report.skipped["too_long"] >= 1
    assert any("fleurs-nl-1-102" in w and "0.40 s" in w for w in warned)  # the 0.4 s file
    assert "fleurs-nl-1-102" not in KaldiDir.read(out / "fleurs_nl_train").utt_ids
    assert sum(report.splits.values()) == sum(report.dirs.values()) == report.used
    report, _ = _prepare(tsv_corpus, tmp_path / "d2", speech_langs=["nl"], min_duration=0.35)
    assert report.skipped["too_short"] == 3 and "too_long" not in report.skipped
    assert report.dirs == {"fleurs_nl_train": 2} and report.splits == {"train": 2}
    assert report.extra["empty_dirs"] == ["fleurs_nl_dev", "fleurs_nl_test"]
    assert not (tmp_path / "d2" / "fleurs_nl_dev").exists()
