"""Tests of data_prep.seame on a tiny tree in the LDC2015S04 layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep import CorpusWarning
from data_prep.seame import (
    SeameError,
    find_seame,
    main,
    parse_transcript,
    prepare_seame,
    read_dev_set,
    speaker_of,
)
from speechx.audio import load_audio
from speechx.data.kaldi import KaldiDir, read_mapping
from speechx.metrics.asr import mixed_tokens

CONV = "01NC01FBX_0101"
CONV2 = "02NC03FBY_0101"
INTV = "NI01MAX_0101"
INTV_MISSING = "NI02FAX_0101"
INTV_BROKEN = "UI06MAZ_0105"


def write_audio(path: Path, seconds: float, fmt: str) -> None:
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), sr, format=fmt)


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


@pytest.fixture
def seame(tmp_path: Path) -> Path:
    root = tmp_path / "LDC2015S04"
    conv = root / "seame_d1" / "data" / "conversation"
    write_audio(conv / "audio" / f"{CONV}.flac", 3.0, "FLAC")
    write_audio(conv / "audio" / f"{CONV2}.flac", 1.0, "FLAC")
    write_lines(
        conv / "transcript" / "phaseII" / f"{CONV}.txt",
        [
            f"{CONV}\t0\t1000\tCS\t我 要 去 (ppl) SHOPPING 啦",
            f"{CONV}\t1000\t2000\tZH\t我们 走 吧 。",
            f"{CONV}\t2000\t2500\tEN\tok lah <unk> see you",
            f"{CONV}\t2500\t2900\tCS\t",
            f"{CONV}\t2900\t3500\tZH\t(ppb)",
            f"{CONV}\t3000\t4000\tEN\tpast the end",
            f"{CONV}\t900\t900\tEN\tzero length",
        ],
    )
    # phase I is present too, and ignored when phase II exists
    write_lines(conv / "transcript" / "phaseI" / f"{CONV}.txt", [f"{CONV}\t0\t1000\tphase one"])
    write_lines(
        conv / "transcript" / "phaseII" / f"{CONV2}.txt",
        [f"{CONV2}\t0\t1000\tCS\t那个 meeting 是 3 点"],
    )
    intv = root / "seame_d2" / "data" / "interview"
    write_audio(intv / "audio" / f"{INTV}.flac", 2.0, "FLAC")
    (intv / "audio" / f"{INTV_BROKEN}.flac").write_bytes(b"fLaC but not really")
    write_lines(
        intv / "transcript" / "phaseII" / f"{INTV}.txt",
        [f"{INTV}\t100\t1900\tEN\tI Think ＳＯ （laugh） [noise]"],
    )
    write_lines(
        intv / "transcript" / "phaseII" / f"{INTV_MISSING}.txt",
        [f"{INTV_MISSING}\t0\t1000\tZH\t没有 声音"],
    )
    write_lines(
        intv / "transcript" / "phaseII" / f"{INTV_BROKEN}.txt",
        [f"{INTV_BROKEN}\t0\t1000\tZH\t坏 的 文件"],
    )
    return root


def all_dirs(out: Path) -> dict[str, KaldiDir]:
    return {d.name: KaldiDir.read(d) for d in sorted(out.glob("seame_zh-en_*"))}


def merged(dirs: dict[str, KaldiDir]) -> KaldiDir:
    m = KaldiDir()
    for kd in dirs.values():
        for attr in ("wav_scp", "text", "utt2spk", "segments", "utt2lang", "utt2dur"):
            getattr(m, attr).update(getattr(kd, attr))
    return m


def test_speaker_of() -> None:
    assert speaker_of("01NC01FBX_0101") == "NC01F"
    assert speaker_of("08NC16FBQ_0101") == "NC16F"
    assert speaker_of("UI06MAZ_0105") == "UI06M"
    assert speaker_of("NI01MAX_0101") == "NI01M"
    assert speaker_of("odd name_1") == "odd_name"


def test_parse_transcript_phases(tmp_path: Path) -> None:
    p = tmp_path / "t.txt"
    write_lines(
        p,
        [
            "R_01\t10\t2000\tCS\t我 ok",
            "R_01\t2000\t3000\tEN\t",
            "R_01\t3000\t4000\tEN",
            "",
            "R_01 4000 5000 ZH 好 的",
            "R_01 5000 6000 no label here",
        ],
    )
    segs = parse_transcript(p)
    assert [(s.start_ms, s.end_ms, s.label, s.text) for s in segs] == [
        (10, 2000, "CS", "我 ok"),
        (2000, 3000, "EN", ""),
        (3000, 4000, None, "EN"),
        (4000, 5000, "ZH", "好 的"),
        (5000, 6000, None, "no label here"),
    ]
    assert segs[2].source == f"{p}:3"
    assert parse_transcript(p, phase="II")[2].label == "EN"  # phase II: 4th field is a label
    phase1 = tmp_path / "p1.txt"
    write_lines(phase1, ["R_01\t0\t1000\tEN is a word here"])
    assert parse_transcript(phase1, phase="I")[0].text == "EN is a word here"
    bad = tmp_path / "bad.txt"
    write_lines(bad, ["R_01\t0\t1000\tEN\tok", "R_01\tzero\t1000\tEN\tok"])
    with pytest.raises(SeameError, match=r"bad\.txt:2: start/end 'zero'/'1000'"):
        parse_transcript(bad)
    (tmp_path / "latin1.txt").write_bytes("R\t0\t1\tEN\tcaf\xe9\n".encode("latin-1"))
    with pytest.raises(SeameError, match="not valid UTF-8"):
        parse_transcript(tmp_path / "latin1.txt")


def test_find_seame(seame: Path, tmp_path: Path) -> None:
    parts = find_seame(seame)
    assert [(p.kind, p.phase, len(p.transcripts)) for p in parts] == [
        ("conversation", "II", 2),
        ("interview", "II", 3),
    ]
    assert [p.phase for p in find_seame(seame / "seame_d1", phase="I")] == ["I"]
    with pytest.raises(SeameError, match="interview/transcript: no transcripts for phase 'I'"):
        find_seame(seame, phase="I")
    with pytest.raises(SeameError, match="phase must be"):
        find_seame(seame, phase="III")
    with pytest.raises(SeameError, match="not found"):
        find_seame(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SeameError, match="no SEAME parts"):
        find_seame(tmp_path / "empty")


def test_prepare_seame(seame: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    with pytest.warns(CorpusWarning) as record:
        report = prepare_seame(seame, out)
    messages = " | ".join(str(w.message) for w in record)
    assert f"NI02F-{INTV_MISSING}-0000000-0001000" in messages
    assert f"NC01F-{CONV}-0002500-0002900" in messages
    assert report.skipped == {
        "empty_transcript": 2,
        "segment_out_of_range": 1,
        "bad_times": 1,
        "missing_audio": 1,
        "unreadable_audio": 1,
    }
    assert report.used == 5 and report.n_sentences == 11
    dirs = all_dirs(out)
    assert sum(len(kd) for kd in dirs.values()) == 5
    # speaker-disjoint split
    spk_split: dict[str, str] = {}
    for name, kd in dirs.items():
        for spk in kd.spk2utt:
            assert spk_split.setdefault(spk, name) == name

    kd = merged(dirs)
    u1 = f"NC01F-{CONV}-0000000-0001000"
    assert kd.text == {
        u1: "我 要 去 shopping 啦",
        f"NC01F-{CONV}-0001000-0002000": "我们 走 吧",
        f"NC01F-{CONV}-0002000-0002500": "ok lah see you",
        f"NC03F-{CONV2}-0000000-0001000": "那个 meeting 是 3 点",
        f"NI01M-{INTV}-0000100-0001900": "i think so laugh",
    }
    assert set(kd.utt2lang.values()) == {"zh-en"}
    corpus_lang: dict[str, str] = {}
    for name in dirs:
        corpus_lang.update(read_mapping(out / name / "utt2lang.corpus"))
    assert corpus_lang[u1] == "zh-en"
    assert corpus_lang[f"NC01F-{CONV}-0002000-0002500"] == "en"
    assert corpus_lang[f"NC01F-{CONV}-0001000-0002000"] == "zh"
    seg = kd.segments[f"NI01M-{INTV}-0000100-0001900"]
    assert (seg.recording_id, seg.start, seg.end) == (INTV, 0.1, 1.9)
    assert kd.utt2dur[f"NI01M-{INTV}-0000100-0001900"] == pytest.approx(1.8)
    assert Path(kd.wav_scp[CONV]).is_absolute() and kd.wav_scp[CONV].endswith(".flac")
    wav = load_audio(kd.wav_scp[INTV], 16000, start=seg.start, end=seg.end)
    assert len(wav) == pytest.approx(1.8 * 16000, abs=2)

    for name in dirs:
        tags = {}
        for line in (out / name / "text.langtags").read_text(encoding="utf-8").splitlines():
            utt, *t = line.split()
            tags[utt] = t
        assert set(tags) == set(dirs[name].text)
        for utt, text in dirs[name].text.items():
            assert len(tags[utt]) == len(mixed_tokens(text))
            if utt.startswith("NC03F"):
                assert tags[utt] == ["zh", "zh", "en", "zh", "zh", "zh"]  # 3 takes zh from 是
    extra = json.loads((out / "local" / "seame_prep.json").read_text())["extra"]
    assert extra["corpus_lang"] == {"en": 2, "zh": 1, "zh-en": 2}
    from speechx.evaluation.codeswitch import read_codeswitch_dir

    for name in dirs:
        assert read_codeswitch_dir(out / name).pairs == ["zh-en"]
    assert extra["recordings"] == 3 and extra["speakers"] == 3
    assert extra["label_tag_disagreements"] == 0
    rows = (out / "local" / "seame_skipped.tsv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + 6


def test_phase_one_language_from_tags(seame: Path, tmp_path: Path) -> None:
    report = prepare_seame(
        seame / "seame_d1", tmp_path / "d", phase="I", ratios=(1, 0, 0), utt2lang="label"
    )
    kd = KaldiDir.read(tmp_path / "d" / "seame_zh-en_train")
    assert kd.text == {f"NC01F-{CONV}-0000000-0001000": "phase one"}
    assert kd.utt2lang == {f"NC01F-{CONV}-0000000-0001000": "en"}
    assert report.extra["parts"] == {str(seame / "seame_d1" / "data" / "conversation"): "phaseI"}


def test_dev_set_split(seame: Path, tmp_path: Path) -> None:
    dev = tmp_path / "SEAME-dev-set"
    # ids in 10 ms units, matched within 30 ms as ESPnet does
    write_lines(dev / "dev_man" / "text", [f"nc01f-{CONV.lower()}-00101-00199 我们 走 吧"])
    write_lines(dev / "dev_sge" / "text", [f"ni01m-{INTV.lower()}-00010-00190 i think so"])
    assert read_dev_set(dev)["devman"] == {CONV.lower(): [(101, 199)]}
    with pytest.warns(CorpusWarning):
        report = prepare_seame(seame, tmp_path / "d", dev_set_dir=dev)
    assert report.splits == {"train": 3, "devman": 1, "devsge": 1}
    assert set(KaldiDir.read(tmp_path / "d" / "seame_zh-en_devman").text) == {
        f"NC01F-{CONV}-0001000-0002000"
    }
    with pytest.raises(SeameError, match="dev_man/text: SEAME dev-set list not found"):
        read_dev_set(tmp_path / "empty")


def test_cli_and_registry(seame: Path, tmp_path: Path, capsys, corpus_cli) -> None:
    corpus_cli("seame", main, prepare_seame)
    with pytest.warns(CorpusWarning):
        code = main(
            ["--corpus-dir", str(seame), "--out-dir", str(tmp_path / "d"), "--min-duration", "0.6"]
        )
    assert code == 0
    assert "too_short=1" in capsys.readouterr().out
