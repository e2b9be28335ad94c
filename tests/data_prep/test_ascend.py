"""Tests of data_prep.ascend on tiny copies of ASCEND in its published layouts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from data_prep import CorpusWarning
from data_prep.ascend import AscendError, find_ascend, main, prepare_ascend
from speechx.data.kaldi import KaldiDir, read_mapping
from speechx.metrics.asr import mixed_tokens

datasets = pytest.importorskip("datasets")

FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "path": datasets.Value("string"),
        "audio": datasets.Audio(sampling_rate=16000),
        "transcription": datasets.Value("string"),
        "duration": datasets.Value("float32"),
        "language": datasets.Value("string"),
        "original_speaker_id": datasets.Value("int64"),
        "session_id": datasets.Value("int64"),
        "topic": datasets.Value("string"),
    }
)


def wav_bytes(seconds: float = 1.0, sr: int = 16000, freq: float = 220.0) -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, format="WAV")
    return buf.getvalue()


def row(rid: str, text: str, lang: str, spk: int, audio: dict | None = None) -> dict:
    name = f"ses1_spk{spk}_L{rid}_0.000_1.000.wav"
    return {
        "id": rid,
        "path": name,
        "audio": audio if audio is not None else {"bytes": wav_bytes(), "path": name},
        "transcription": text,
        "duration": 1.0,
        "language": lang,
        "original_speaker_id": spk,
        "session_id": 1,
        "topic": "persona",
    }


def table(rows: list[dict]) -> pa.Table:
    cols = {k: [r[k] for r in rows] for k in FEATURES}
    return pa.Table.from_pydict(cols, schema=FEATURES.arrow_schema)


def train_rows(corpus: Path) -> list[dict]:
    waves = corpus / "waves"
    waves.mkdir(parents=True, exist_ok=True)
    (waves / "on_disk.wav").write_bytes(wav_bytes(0.5))
    return [
        row("00000", "我 觉得 it's OK 啦", "mixed", 17),
        row(
            "00001", "嗯 我 不 知道", "zh", 17, {"bytes": wav_bytes(1.5, sr=8000), "path": "x.wav"}
        ),
        row("00002", "[UNK] that's so cool, right?", "en", 3),
        row("00003", "", "zh", 3),
        row("00004", "[UNK]", "en", 3),
        row("00005", "我 有 3 个", "zh", 5, {"bytes": None, "path": "waves/gone.wav"}),
        row("00006", "好 的", "zh", 5, {"bytes": b"RIFF not really a wav", "path": "bad.wav"}),
        row(
            "00007", "ＯＫ 啊 100 percent", "mixed", 5, {"bytes": None, "path": "waves/on_disk.wav"}
        ),
    ]


@pytest.fixture
def parquet_corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "ASCEND"
    (corpus / "main").mkdir(parents=True)
    pq.write_table(table(train_rows(corpus)), corpus / "main" / "train-00000-of-00001.parquet")
    pq.write_table(
        table([row("01000", "这个 weekend 你 去 哪里", "mixed", 9)]),
        corpus / "main" / "validation-00000-of-00001.parquet",
    )
    pq.write_table(
        table([row("02000", "yes 对", "mixed", 11), row("02001", "no", "en", 11)]),
        corpus / "main" / "test-00000-of-00001.parquet",
    )
    return corpus


def read_langtags(path: Path) -> dict[str, list[str]]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        utt, *tags = line.split()
        out[utt] = tags
    return out


# ----------------------------------------------------------------------------- layouts
def test_find_ascend_parquet(parquet_corpus: Path) -> None:
    found = find_ascend(parquet_corpus)
    assert list(found) == ["train", "validation", "test"]
    assert found["train"].kind == "parquet"


def test_find_ascend_errors(tmp_path: Path, parquet_corpus: Path) -> None:
    with pytest.raises(AscendError, match="not found"):
        find_ascend(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AscendError, match="no ASCEND data found"):
        find_ascend(tmp_path / "empty")
    other = parquet_corpus / "30s"
    other.mkdir()
    pq.write_table(table([row("9", "a", "en", 1)]), other / "train-00000-of-00001.parquet")
    with pytest.raises(AscendError, match="several directories"):
        find_ascend(parquet_corpus)


def test_missing_column_is_named(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    t = table([row("1", "ok", "en", 1)]).drop_columns(["transcription"])
    pq.write_table(t, corpus / "train-00000-of-00001.parquet")
    with pytest.raises(AscendError, match=r"lacks column\(s\) \['transcription'\]"):
        prepare_ascend(corpus, tmp_path / "out")


# ----------------------------------------------------------------------------- preparation
def test_prepare_parquet(parquet_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    with pytest.warns(CorpusWarning) as record:
        report = prepare_ascend(parquet_corpus, out)
    messages = " | ".join(str(w.message) for w in record)
    assert "ascend_spk03-00003" in messages and "ascend_spk05-00005" in messages
    assert report.skipped == {"empty_transcript": 2, "missing_audio": 1, "unreadable_audio": 1}
    assert report.dirs == {
        "ascend_zh-en_train": 4,
        "ascend_zh-en_dev": 1,
        "ascend_zh-en_test": 2,
    }
    assert report.used == 7 and report.n_sentences == 11

    d = out / "ascend_zh-en_train"
    kd = KaldiDir.read(d)
    assert kd.text == {
        "ascend_spk17-00000": "我 觉得 it's ok 啦",
        "ascend_spk17-00001": "嗯 我 不 知道",
        "ascend_spk03-00002": "that's so cool right",
        "ascend_spk05-00007": "ok 啊 100 percent",
    }
    assert set(kd.utt2lang.values()) == {"zh-en"}  # the pair, as the contract wants
    assert read_mapping(d / "utt2lang.corpus") == {
        "ascend_spk17-00000": "zh-en",
        "ascend_spk17-00001": "zh",
        "ascend_spk03-00002": "en",
        "ascend_spk05-00007": "zh-en",
    }
    assert kd.spk2utt["ascend_spk17"] == ["ascend_spk17-00000", "ascend_spk17-00001"]
    assert kd.utt2sent["ascend_spk03-00002"] == "ascend_spk03-00002"
    tags = read_langtags(d / "text.langtags")
    assert set(tags) == set(kd.text)
    for utt, text in kd.text.items():
        assert len(tags[utt]) == len(mixed_tokens(text)), utt
    assert tags["ascend_spk17-00000"] == ["zh", "zh", "zh", "en", "en", "zh"]
    assert tags["ascend_spk05-00007"] == ["en", "zh", "zh", "en"]  # "100" follows 啊

    # audio: 16 kHz mono WAVs, the 8 kHz clip resampled, the on-disk clip found by path
    for utt, path in kd.wav_scp.items():
        data, sr = sf.read(path)
        assert sr == 16000 and data.ndim == 1
        assert kd.utt2dur[utt] == pytest.approx(len(data) / 16000, abs=1e-3)
    assert kd.utt2dur["ascend_spk17-00001"] == pytest.approx(1.5, abs=1e-3)
    assert kd.utt2dur["ascend_spk05-00007"] == pytest.approx(0.5, abs=1e-3)

    skipped = (out / "local" / "ascend_skipped.tsv").read_text(encoding="utf-8").splitlines()
    assert skipped[0] == "utt\treason\tdetail"
    assert {line.split("\t")[1] for line in skipped[1:]} == {
        "empty_transcript",
        "missing_audio",
        "unreadable_audio",
    }
    saved = json.loads((out / "local" / "ascend_prep.json").read_text(encoding="utf-8"))
    assert saved["extra"]["wav_written"] == 7
    assert saved["extra"]["corpus_lang"] == {"en": 2, "zh": 1, "zh-en": 4}
    assert saved["extra"]["tokens_tagged_by_context"] == 1
    # the code-switching evaluator reads these dirs as they are
    from speechx.evaluation.codeswitch import read_codeswitch_dir

    for name in report.dirs:
        cs = read_codeswitch_dir(out / name)
        assert cs.pairs == ["zh-en"]


def test_utt2lang_label_mode(parquet_corpus: Path, tmp_path: Path) -> None:
    report = prepare_ascend(parquet_corpus, tmp_path / "d", splits=["test"], utt2lang="label")
    assert report.skipped == {}
    kd = KaldiDir.read(tmp_path / "d" / "ascend_zh-en_test")
    assert kd.utt2lang == {"ascend_spk11-02000": "zh-en", "ascend_spk11-02001": "en"}
    with pytest.raises(AscendError, match="utt2lang must be one of"):
        prepare_ascend(parquet_corpus, tmp_path / "d", utt2lang="zh")


def test_prepare_is_resumable(parquet_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    with pytest.warns(CorpusWarning):
        prepare_ascend(parquet_corpus, out, splits=["train"])
    before = (out / "ascend_zh-en_train" / "text").read_text(encoding="utf-8")
    victim = out / "ascend_wav" / "train" / "ascend_spk17-00000.wav"
    victim.unlink()
    with pytest.warns(CorpusWarning):
        report = prepare_ascend(parquet_corpus, out, splits=["train"])
    assert report.extra["wav_written"] == 1 and report.extra["wav_reused"] == 3
    assert victim.is_file()
    assert (out / "ascend_zh-en_train" / "text").read_text(encoding="utf-8") == before
    with pytest.raises(AscendError, match="not found"):
        prepare_ascend(parquet_corpus, out, splits=["dev", "nope"])


def test_prepare_arrow_save_to_disk(tmp_path: Path) -> None:
    corpus = tmp_path / "ascend_arrow"
    rows = [row("00000", "我 觉得 OK", "mixed", 17), row("00001", "good", "en", 2)]
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset(table(rows)),
            "test": datasets.Dataset(table([row("00009", "fine", "en", 4)])),
        }
    )
    dd.save_to_disk(str(corpus))
    assert find_ascend(corpus)["train"].kind == "arrow"
    report = prepare_ascend(corpus, tmp_path / "data")
    assert report.dirs == {"ascend_zh-en_train": 2, "ascend_zh-en_test": 1}
    kd = KaldiDir.read(tmp_path / "data" / "ascend_zh-en_train")
    assert kd.text["ascend_spk17-00000"] == "我 觉得 ok"


def test_prepare_metadata_csv(tmp_path: Path) -> None:
    corpus = tmp_path / "ascend_csv"
    (corpus / "waves").mkdir(parents=True)
    (corpus / "waves" / "ses1_spk17_L3823_15.3200_0.7810.wav").write_bytes(wav_bytes(0.781))
    (corpus / "train_metadata.csv").write_text(
        "file_name,transcription,duration,language,original_speaker_id,session_id,topic\n"
        "waves/ses1_spk17_L3823_15.3200_0.7810.wav,呃 ok,0.781,mixed,17,1,persona\n"
        "waves/missing.wav,好的,0.64,zh,17,1,persona\n",
        encoding="utf-8",
    )
    with pytest.warns(CorpusWarning, match="missing.wav"):
        report = prepare_ascend(corpus, tmp_path / "data")
    assert report.skipped == {"missing_audio": 1}
    kd = KaldiDir.read(tmp_path / "data" / "ascend_zh-en_train")
    assert kd.text == {"ascend_spk17-00000": "呃 ok"}
    assert kd.utt2dur["ascend_spk17-00000"] == pytest.approx(0.781, abs=1e-3)


def test_cli_and_registry(parquet_corpus: Path, tmp_path: Path, capsys, corpus_cli) -> None:
    corpus_cli("ascend", main, prepare_ascend)
    with pytest.warns(CorpusWarning):
        assert main(["--corpus-dir", str(parquet_corpus), "--out-dir", str(tmp_path / "d")]) == 0
    assert "ascend: 7 clips used" in capsys.readouterr().out
