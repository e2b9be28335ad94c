"""``speechx mine`` and ``speechx evaluate-mining`` on tiny inputs, and their one-line errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import speechx.teachers
from speechx.cli import main
from speechx.evaluation.collection import parse_spec, read_sentences
from speechx.mining import MODES
from speechx.models import build_encoder
from speechx.testing import AxisTeacher, make_kaldi_dir

# Dutch and English lines of four sentences: one axis of the fake space each
NL = ["de vis zwemt", "waar is de uitgang", "ik ben geen krab", "het water"]
EN = ["the fish swims", "where is the exit", "I am not a crab", "the water"]


#: one axis per sentence pair (Dutch and English share it), axis 7 for anything else
AXES = {t: i for lang in (NL, EN) for i, t in enumerate(lang)}


@pytest.fixture
def axis_teacher(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Patch the teacher registry; returns the --teacher/--cache-dir arguments."""
    monkeypatch.setattr(speechx.teachers, "load_teacher", lambda name: AxisTeacher(AXES))
    return ["--teacher", "axis", "--cache-dir", str(tmp_path / "cache")]


def _tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def test_mine_text_files(tmp_path: Path, axis_teacher: list[str]) -> None:
    src = tmp_path / "nl.txt"
    src.write_text("\n".join([NL[2], "", NL[0], NL[1]]) + "\n")  # ids = line numbers
    tgt = tmp_path / "en.txt"
    tgt.write_text("".join(f"e{i}\t{t}\n" for i, t in enumerate(EN)))  # id<TAB>text
    out = tmp_path / "pairs.tsv"
    args = ["mine", "--src", str(src), "--tgt", f"file:{tgt}", "--out", str(out), "--k", "2"]
    assert main([*args, *axis_teacher]) == 0
    rows = _tsv(out)
    assert rows[0] == ["src_id", "tgt_id", "score", "src_text", "tgt_text"]
    assert sorted((r[0], r[1]) for r in rows[1:]) == [("1", "e2"), ("3", "e0"), ("4", "e1")]
    assert {(r[3], r[4]) for r in rows[1:]} == {(NL[i], EN[i]) for i in range(3)}
    scores = [float(r[2]) for r in rows[1:]]
    assert scores == sorted(scores, reverse=True) and scores[0] > 1.0  # ratio margin
    # a threshold above every score keeps only the header
    assert main([*args, "--threshold", "9", *axis_teacher]) == 0
    assert len(_tsv(out)) == 1


def test_mine_speech_and_embeddings(
    tmp_path: Path, axis_teacher: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    model = build_encoder("tiny", 8).save_pretrained(tmp_path / "model")
    data = make_kaldi_dir(tmp_path / "data" / "nl_test", n=3, lang="nl", texts=NL[:3])
    (data / "text.en").write_text(
        "".join(f"spk{1 + i // 2}-utt{i + 1} {EN[i]}\n" for i in range(3))
    )
    out = tmp_path / "pairs.tsv"
    args = ["mine", "--src", f"speech:{data}", "--tgt", f"text.en:{data}", "--out", str(out)]
    assert main([*args, "--model", str(model), "--k", "2", "--mode", "forward", *axis_teacher]) == 0
    rows = _tsv(out)
    assert len(rows) == 4 and {r[0] for r in rows[1:]} == {"spk1-utt1", "spk1-utt2", "spk2-utt3"}
    assert {r[3] for r in rows[1:]} == set(NL[:3])  # the transcripts beside the speech
    # `speechx encode` output as the source, printed to stdout: the same pairs
    assert main(["encode", "--model", str(model), "--data-dir", str(data), "--out",
                 str(tmp_path / "emb")]) == 0  # fmt: skip
    capsys.readouterr()
    args = ["mine", "--src", f"emb:{tmp_path / 'emb'}", "--tgt", f"text.en:{data}", "--out", "-"]
    assert main([*args, "--k", "2", "--mode", "forward", *axis_teacher]) == 0
    printed = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert printed[0] == ["src_id", "tgt_id", "score", "src_text", "tgt_text"]
    assert [r[:2] for r in printed[1:]] == [r[:2] for r in rows[1:]]
    assert all(r[3] == "" for r in printed[1:])  # an encode dir has no texts


def test_mine_teacher_embed_field(tmp_path: Path, axis_teacher: list[str]) -> None:
    data = make_kaldi_dir(tmp_path / "data" / "x", n=3, lang="nl", texts=NL[:3])
    (data / "text.en").write_text(f"spk1-utt1 {EN[0]}\nspk2-utt3 {EN[2]}\n")  # utt2: no line
    assert main(["teacher-embed", str(data), *axis_teacher]) == 0
    field = data / "teacher" / "axis-v1" / "text.en.npy"
    out = tmp_path / "p.tsv"
    argv = ["mine", "--src", f"text:{data}", "--tgt", str(field), "--out", str(out), "--k", "1"]
    assert main([*argv, *axis_teacher]) == 0
    rows = _tsv(out)
    # the NaN row of spk1-utt2 is left out; texts come from the data dir
    assert sorted((r[0], r[1], r[4]) for r in rows[1:]) == [
        ("spk1-utt1", "spk1-utt1", EN[0]),
        ("spk2-utt3", "spk2-utt3", EN[2]),
    ]


def test_mine_errors_are_one_line(
    tmp_path: Path, axis_teacher: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_kaldi_dir(tmp_path / "data" / "d", n=3, lang="nl", texts=NL[:3])
    en = tmp_path / "en.txt"
    en.write_text("\n".join(EN) + "\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    emb = tmp_path / "emb5"
    emb.mkdir()
    np.save(emb / "embeddings.npy", np.eye(4, 5, dtype=np.float32))
    (emb / "ids.txt").write_text("a\nb\nc\nd\n")
    out = str(tmp_path / "p.tsv")

    def err(*argv: str) -> str:
        assert main(["mine", *argv, "--out", out, *axis_teacher]) == 2
        msg = capsys.readouterr().err.strip()
        assert len(msg.splitlines()) == 1, msg
        return msg

    assert "--src speech:" in err("--src", f"speech:{data}", "--tgt", str(en))
    assert "speech needs --model" in err("--src", f"speech:{data}", "--tgt", str(en))
    msg = err("--src", f"emb:{emb}", "--tgt", str(en))
    assert f"--src emb:{emb} has dimension 5 but --tgt {en} has dimension 8" in msg
    assert "the collection is empty" in err("--src", str(empty), "--tgt", str(en))
    msg = err("--src", f"text:{data}", "--tgt", str(en), "--k", "4")
    assert f"k=4 is larger than --src text:{data} (3 rows)" in msg
    assert "say which view to mine: speech:" in err("--src", str(data), "--tgt", str(en))
    assert "no text.fr lines" in err("--src", f"text.fr:{data}", "--tgt", str(en))
    assert "unknown collection kind 'spech'" in err("--src", f"spech:{data}", "--tgt", str(en))
    assert "no such file or directory" in err("--src", str(tmp_path / "nope"), "--tgt", str(en))
    assert not Path(out).exists()


def test_spec_parsing_and_sentence_files(tmp_path: Path) -> None:
    f = tmp_path / "s.txt"
    f.write_text("a\tHello  there\nb\tBye\n")
    assert read_sentences(f) == (["a", "b"], ["Hello there", "Bye"])
    f.write_text("a\tone\na\ttwo\n")
    with pytest.raises(Exception, match=r"s.txt:2: the id 'a' was already used on line 1"):
        read_sentences(f)
    s = parse_spec(f"text.de:{tmp_path}")
    assert (s.kind, s.field, s.needs_teacher, s.needs_encoder) == ("text", "text.de", True, False)
    assert parse_spec(f"speech:{tmp_path}").needs_encoder
    np.save(tmp_path / "x.npy", np.zeros((1, 2), dtype=np.float32))
    assert parse_spec(str(tmp_path / "x.npy")).kind == "emb"


def test_cli_modes_match_the_library() -> None:
    from speechx.cli import build_parser
    from speechx.metrics.retrieval import SCORINGS

    parser = build_parser()
    args = parser.parse_args(["mine", "--src", "a", "--tgt", "b", "--out", "c"])
    assert (args.mode, args.scoring, args.k, args.threshold) == ("intersection", "ratio", 4, None)
    (verbs,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for verb, dest, choices in (("mine", "mode", MODES), ("mine", "scoring", SCORINGS)):
        (action,) = [a for a in verbs.choices[verb]._actions if a.dest == dest]
        assert tuple(action.choices) == tuple(choices)
    ev = parser.parse_args(["evaluate-mining", "--data-dir", "d", "--out-dir", "o"])
    assert (ev.modes, ev.scorings) == (list(MODES), ["ratio", "cosine"])


def test_evaluate_mining_verb(
    tmp_path: Path, axis_teacher: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_kaldi_dir(tmp_path / "data" / "fillets_nl_test", n=3, lang="nl", texts=NL[:3])
    (data / "text.en").write_text(
        "".join(f"spk{1 + i // 2}-utt{i + 1} {EN[i]}\n" for i in range(3))
    )
    emb = tmp_path / "emb"
    emb.mkdir()
    np.save(emb / "embeddings.npy", np.eye(3, 8, dtype=np.float32))  # a perfect student
    (emb / "ids.txt").write_text("spk1-utt1\nspk1-utt2\nspk2-utt3\n")
    distractors = tmp_path / "more.txt"
    distractors.write_text(f"{EN[3]}\n")
    out = tmp_path / "results"
    argv = ["evaluate-mining", "--data-dir", str(data), "--embeddings", str(emb)]
    argv += ["--distractors", str(distractors), "--out-dir", str(out), "--k", "2"]
    assert main([*argv, "--modes", "forward", "intersection", *axis_teacher]) == 0
    assert capsys.readouterr().out.strip().endswith("mining.json")
    doc = json.loads((out / "mining.json").read_text())
    assert doc["model"] == str(emb) and doc["teacher"] == "axis-v1"
    assert len(doc["results"]) == 4 and len(doc["ceiling"]) == 4
    for r in doc["results"]:
        assert (r["n_target"], r["n_distractors"], r["f1"]) == (4, 1, 1.0)
    assert main([*argv[:3], "--out-dir", str(out), *axis_teacher]) == 2
    assert "give either --model" in capsys.readouterr().err
    # --model encodes the speech itself (a tiny random encoder in the fake 8-d space)
    torch.manual_seed(0)
    model = build_encoder("tiny", 8).save_pretrained(tmp_path / "model")
    argv = ["evaluate-mining", "--data-dir", str(data), "--model", str(model), "--out-dir"]
    assert main([*argv, str(tmp_path / "r2"), "--k", "2", "--no-ceiling", *axis_teacher]) == 0
    doc = json.loads((tmp_path / "r2" / "mining.json").read_text())
    assert doc["model"] == str(model) and doc["ceiling"] == []
    assert {r["n_source"] for r in doc["results"]} == {3}
