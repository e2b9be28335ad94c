"""Tests of data_prep.codeswitch: cleaning, tagging, text.langtags and the per-split output."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from data_prep import PrepReport
from data_prep.codeswitch import (
    CleanConfig,
    CodeSwitchSplits,
    LangtagsError,
    add_clean_args,
    check_langtags,
    clean_config_from_args,
    clean_transcript,
    language_of_tags,
    token_langtags,
    write_langtags,
)
from speechx.data.kaldi import KaldiDir, Segment, read_mapping
from speechx.errors import DataDirError
from speechx.evaluation.codeswitch import read_codeswitch_dir
from speechx.metrics.asr import mixed_tokens


# ----------------------------------------------------------------------------- text and tags
@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("我 觉得 [UNK] ＯＫ, (ppl) that's <noise> fine!", "我 觉得 ok that's fine"),
        ("< unk > (ppb) ppl [laughter]", ""),
        ("(um) he said “yes”—ok", "um he said yes ok"),
        ("don't   stop 。好的？", "don't stop 好的"),
        ("'quoted' words'", "quoted words"),
    ],
)
def test_clean_transcript(raw: str, clean: str) -> None:
    assert clean_transcript(raw) == clean


def test_clean_transcript_options() -> None:
    assert clean_transcript("OK 嗯 um 嗯对", CleanConfig(drop_fillers=True)) == "ok 嗯对"
    assert clean_transcript("OK Lah", CleanConfig(lowercase=False)) == "OK Lah"
    assert clean_transcript("[UNK] a", CleanConfig(markers=())) == "unk a"


def test_clean_args() -> None:
    ap = argparse.ArgumentParser()
    add_clean_args(ap)
    args = ap.parse_args([])
    assert (args.utt2lang, clean_config_from_args(args)) == ("pair", CleanConfig())
    args = ap.parse_args(["--keep-case", "--utt2lang", "label"])
    assert (args.utt2lang, clean_config_from_args(args)) == ("label", CleanConfig(lowercase=False))
    with pytest.raises(SystemExit):
        ap.parse_args(["--drop-fillers"])
    ap = argparse.ArgumentParser()
    add_clean_args(ap, drop_fillers=True)
    assert clean_config_from_args(ap.parse_args(["--drop-fillers"])).drop_fillers


def test_token_langtags_one_tag_per_mer_token() -> None:
    text = "我喜欢python 3 个 apple"
    tags = token_langtags(text)
    assert len(tags) == len(mixed_tokens(text))
    assert tags == ["zh", "zh", "zh", "en", "en", "zh", "en"]
    # a token without letters at the start takes the next tagged token's language
    assert token_langtags("100 个") == ["zh", "zh"]
    assert token_langtags("2020 2021", fallback="zh") == ["zh", "zh"]
    assert token_langtags("") == []
    assert language_of_tags(["zh", "en"]) == "zh-en"
    assert language_of_tags(["en"]) == "en"


# ----------------------------------------------------------------------------- text.langtags
def test_write_langtags_rejects_count_mismatch(tmp_path: Path) -> None:
    kd = KaldiDir(wav_scp={"u1": "a.wav"}, text={"u1": "我 ok"}, utt2spk={"u1": "s"})
    kd.write(tmp_path)
    with pytest.raises(
        DataDirError,
        match=r"text\.langtags: utterance 'u1' has 1 language tags but its text has 2 MER",
    ):
        write_langtags(tmp_path, kd, {"u1": ["zh"]})
    with pytest.raises(DataDirError, match="'u1' has no language tags"):
        write_langtags(tmp_path, kd, {})
    assert not (tmp_path / "text.langtags").exists()
    write_langtags(tmp_path, kd, {"u1": ["zh", "en"]})
    assert (tmp_path / "text.langtags").read_text() == "u1 zh en\n"


def test_check_langtags_names_file_and_utterance(tmp_path: Path) -> None:
    d = tmp_path / "cs"
    d.mkdir()
    (d / "text").write_text("u1 Hallo there friend\nu2 我喜欢 ok\n", encoding="utf-8")
    (d / "text.langtags").write_text("u1 nl en en\nu2 zh zh zh en\n", encoding="utf-8")
    assert check_langtags(d) == 2
    (d / "text.langtags").write_text("u1 nl en\nu2 zh zh zh en\n", encoding="utf-8")
    with pytest.raises(
        LangtagsError, match=r"text.langtags: utterance 'u1' has 2 language tags but its text has 3"
    ):
        check_langtags(d)
    (d / "text.langtags").write_text("u1 nl en en\n", encoding="utf-8")
    with pytest.raises(LangtagsError, match="utterance 'u2' is only in text$"):
        check_langtags(d)
    (d / "text.langtags").unlink()
    with pytest.raises(LangtagsError, match=r"text.langtags: missing"):
        check_langtags(d)


# ----------------------------------------------------------------------------- output dirs
LABELS = {"zh": "zh", "en": "en", "cs": "zh-en"}


def _splits(mode: str = "pair") -> CodeSwitchSplits:
    dirs = CodeSwitchSplits("toy_zh-en", LABELS, utt2lang_mode=mode)
    for split in ("train", "dev"):  # dev stays empty: reported, not written
        dirs.for_split(split)
    add = dirs.add
    add("train", "s1-u1", text="我 要 shopping", speaker="s1", label="CS", duration=1.0, wav="a")
    # a zh label on an all-English utterance is kept, and counted as a disagreement
    add("train", "s1-u2", text="ok 3", speaker="s1", label=" zh ", duration=0.5, wav="b")
    # no label: the language comes from the tags; "100" is tagged by its neighbour
    add("train", "s2-u3", text="100 个", speaker="s2", label=None, duration=0.25, wav="c")
    return dirs


def test_codeswitch_splits_tag_and_count() -> None:
    dirs = _splits()
    cs = dirs.by_split["train"]
    assert cs.langtags == {
        "s1-u1": ["zh", "zh", "en"],
        "s1-u2": ["en", "en"],
        "s2-u3": ["zh", "zh"],
    }
    assert cs.corpus_lang == {"s1-u1": "zh-en", "s1-u2": "zh", "s2-u3": "zh"}
    assert set(cs.kdir.utt2lang.values()) == {"zh-en"}
    assert dirs.extra() == {
        "utt2lang_mode": "pair",
        "corpus_lang": {"zh": 2, "zh-en": 1},
        "tokens_tagged_by_context": 2,
        "label_tag_disagreements": 1,
    }
    assert dirs.seconds == pytest.approx(1.75)


def test_codeswitch_splits_write(tmp_path: Path) -> None:
    dirs = _splits()
    seg = Segment("rec-1", 0.5, 1.25)
    dirs.add(
        "dev", "s3-x", text="好", speaker="s3", label="zh", duration=0.75, wav="r", segment=seg
    )
    report = PrepReport(corpus="toy", out_dir=str(tmp_path))
    dirs.write(tmp_path, report)
    assert report.dirs == {"toy_zh-en_train": 3, "toy_zh-en_dev": 1}
    assert (report.splits, report.used) == ({"train": 3, "dev": 1}, 4)
    assert report.hours == pytest.approx(2.5 / 3600)
    train = tmp_path / "toy_zh-en_train"
    assert read_mapping(train / "utt2lang.corpus")["s1-u2"] == "zh"
    assert read_mapping(train / "wav.scp") == {"s1-u1": "a", "s1-u2": "b", "s2-u3": "c"}
    dev = KaldiDir.read(tmp_path / "toy_zh-en_dev")
    assert dev.wav_scp == {"rec-1": "r"} and dev.segments["s3-x"] == seg
    # what is written is what the code-switching evaluator accepts
    assert read_codeswitch_dir(train).tags["s1-u1"] == ["zh", "zh", "en"]
    assert check_langtags(train) == 3


def test_codeswitch_splits_label_mode(tmp_path: Path) -> None:
    dirs = _splits("label")
    dirs.write(tmp_path, PrepReport(corpus="toy", out_dir=str(tmp_path)))
    utt2lang = read_mapping(tmp_path / "toy_zh-en_train" / "utt2lang")
    assert utt2lang == {"s1-u1": "zh-en", "s1-u2": "zh", "s2-u3": "zh"}
    assert not (tmp_path / "toy_zh-en_dev").exists()
