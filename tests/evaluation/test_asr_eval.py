"""Tests of speechx.evaluation.asr (scoring, asr.json, .pra, summary.md, chart) and of the
``speechx score`` verb end to end."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from speechx.cli import main
from speechx.errors import DataDirError, EvaluationError
from speechx.evaluation.asr import (
    load_normalizer,
    peer_rows,
    read_transcripts,
    read_utt2lang,
    score_transcripts,
    write_asr_results,
)
from speechx.metrics.asr import TextNormalizer, cer, mer, wer

REFS = {"n1": "De kat zit.", "n2": "een hond", "n3": "a b c d", "z1": "我喜欢 python"}
HYPS = {"n1": "de kat zat", "n3": "a x c d e", "z1": "我爱 python", "stray": "x"}
LANGS = {"n1": "nl", "n2": "nl", "n3": "nl", "z1": "zh"}


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def test_score_rows_per_language_and_missing_extra(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        rep = score_transcripts(REFS, HYPS, utt2lang=LANGS, set_name="mix_test")
    assert rep.missing_hyps == ["n2"] and rep.extra_hyps == ["stray"]
    assert "n2" in caplog.text and "stray" in caplog.text
    assert [r["lang"] for r in rep.rows] == ["nl", "zh", "all"]
    nl, zh, overall = rep.rows
    # nl: zit->zat (1 sub), een hond deleted (2 del), b->x and +e: 5 errors over 9 words
    assert (nl["n_utts"], nl["n_ref_words"]) == (3, 9)
    assert (nl["substitutions"], nl["deletions"], nl["insertions"]) == (2, 2, 1)
    assert nl["wer"] == pytest.approx(5 / 9)
    assert nl["n_missing_hyps"] == 1 and nl["n_empty_hyps"] == 1 and nl["set"] == "mix_test"
    # zh: WER sees 2 words (1 sub), MER 5 tokens 我 喜 欢 python (喜->爱, 欢 deleted)
    assert zh["wer"] == pytest.approx(1 / 2) and zh["mer"] == pytest.approx(2 / 4)
    assert zh["n_ref_tokens"] == 4
    # the overall row is corpus-level and equals the plain metrics on the same pairs
    ids = list(REFS)
    refs, hyps = [REFS[u] for u in ids], [HYPS.get(u, "") for u in ids]
    assert overall["wer"] == pytest.approx(wer(refs, hyps).rate)
    assert overall["cer"] == pytest.approx(cer(refs, hyps).rate)
    assert overall["mer"] == pytest.approx(mer(refs, hyps).rate)
    assert overall["wer"] != pytest.approx((nl["wer"] + zh["wer"]) / 2)
    assert overall["n_ref_words"] == 11 and overall["n_ref_chars"] == len("de kat zit") + 8 + 7 + 10
    assert rep.overall is overall and rep.has_cjk
    assert rep.errors.top_substitutions(1)[0][2] == 1
    assert ("喜", "爱", 1) in rep.errors.top_substitutions(None)  # MER tokens for CJK


def test_score_single_language_and_defaults() -> None:
    rep = score_transcripts({"u1": "a b c d"}, {"u1": "a x c d e"}, lang="nl")
    assert len(rep.rows) == 1 and rep.rows[0]["lang"] == "nl" and "set" not in rep.rows[0]
    assert rep.rows[0]["wer"] == pytest.approx(0.5)
    assert not rep.has_cjk and list(rep.alignments) == ["word"]
    assert rep.alignments["word"][0].scores == (3, 1, 0, 1)
    assert score_transcripts({"u1": "a"}, {"u1": "a"}).rows[0]["lang"] == "all"
    # one language from utt2lang: no separate "all" row
    one = score_transcripts(
        {"u1": "a", "u2": "b"}, {"u1": "a", "u2": "c"}, utt2lang={"u1": "de", "u2": "de"}
    )
    assert [r["lang"] for r in one.rows] == ["de"]


def test_score_normalizer_is_applied_and_recorded() -> None:
    refs, hyps = {"u1": "Hallo, Wereld!"}, {"u1": "hallo wereld"}
    assert score_transcripts(refs, hyps).overall["wer"] == 0.0
    verbatim = score_transcripts(refs, hyps, normalizer=TextNormalizer.verbatim())
    assert verbatim.overall["wer"] == 1.0
    assert verbatim.to_dict()["normalizer"] == TextNormalizer.verbatim().settings()


def test_score_errors_name_the_problem() -> None:
    with pytest.raises(EvaluationError, match="no reference utterances"):
        score_transcripts({}, {"u": "a"})
    with pytest.raises(EvaluationError, match="set s1: 1 utterance without a language.*u2"):
        score_transcripts({"u1": "a", "u2": "b"}, {}, utt2lang={"u1": "nl"}, set_name="s1")
    with pytest.raises(EvaluationError, match="every reference is empty"):
        score_transcripts({"u1": "...", "u2": ""}, {"u1": "a"})
    with pytest.raises(EvaluationError, match="overall row"):
        score_transcripts({"u1": "a", "u2": "b"}, {}, utt2lang={"u1": "all", "u2": "nl"})


def test_write_asr_results_files_and_schema(tmp_path: Path) -> None:
    out = tmp_path / "results"
    out.mkdir()
    (out / "summary.md").write_text("# demo\n\n## Retrieval\n\nrecall 0.9\n", encoding="utf-8")
    rep = score_transcripts(REFS, HYPS, utt2lang=LANGS, set_name="mix_test")
    peer = score_transcripts(REFS, {u: REFS[u] for u in REFS}, utt2lang=LANGS, set_name="mix_test")
    path = write_asr_results(
        out,
        split="test",
        model="exp/demo/model",
        report=rep,
        peers=peer_rows(peer, "whisper-base:zero-shot"),
        normalizer=TextNormalizer(),
    )
    assert path == out / "asr.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["task"] == "asr" and doc["split"] == "test" and doc["model"] == "exp/demo/model"
    assert doc["normalizer"] == TextNormalizer().settings()
    for row in doc["results"] + doc["peers"]:
        for key in ("lang", "n_utts", "n_ref_words", "wer", "cer"):
            assert key in row
    assert doc["peers"][0]["system"] == "whisper-base:zero-shot"
    assert all(r["wer"] == 0.0 for r in doc["peers"]) and "normalizer" not in doc["peers"][0]
    assert doc["missing_hyps"] == {"mix_test": ["n2"]}
    assert doc["extra_hyps"] == {"mix_test": ["stray"]}
    assert doc["confusions"]["mix_test"]["substitutions"][0]["count"] == 1
    assert doc["alignments"] == ["asr_alignments.mix_test.pra", "asr_alignments.mix_test.mer.pra"]
    pra = (out / "asr_alignments.mix_test.pra").read_text(encoding="utf-8")
    assert "id: (n3)\nScores: (#C #S #D #I) 3 1 0 1\nREF:  a B c d ***\nHYP:  a X c d E\n" in pra
    assert "id: (n2)\nScores: (#C #S #D #I) 0 0 2 0\n" in pra
    assert "HYP:  *** ***" in (out / "asr_alignments.mix_test.mer.pra").read_text("utf-8")
    png = (out / "asr_error_rates.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 2000
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("# demo\n\n## Retrieval\n\nrecall 0.9\n")  # other sections kept
    assert "| mix_test | nl | 3 | 9 | 55.56 |" in summary
    assert "| whisper-base:zero-shot | mix_test | nl | 3 | 9 | 0.00 |" in summary
    assert "| zit | zat | 1 |" in summary and "n2" in summary
    # a second write replaces the section instead of appending another
    write_asr_results(out, split="dev", model="m2", report=rep)
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert summary.count("## ASR") == 1 and "split `dev`" in summary and "## Retrieval" in summary
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_write_asr_results_several_sets_and_checks(tmp_path: Path) -> None:
    a = score_transcripts({"u1": "a b"}, {"u1": "a b"}, lang="nl", set_name="fillets_nl_test")
    b = score_transcripts({"v1": "x y"}, {"v1": "x"}, lang="de", set_name="synth_de_test")
    doc = json.loads(
        write_asr_results(tmp_path, split="test", model="m", report=[a, b]).read_text()
    )
    assert [(r["set"], r["lang"]) for r in doc["results"]] == [
        ("fillets_nl_test", "nl"),
        ("synth_de_test", "de"),
    ]
    assert (tmp_path / "asr_alignments.synth_de_test.pra").is_file()
    unnamed = score_transcripts({"u1": "a"}, {"u1": "a"})
    with pytest.raises(EvaluationError, match="distinct set names"):
        write_asr_results(tmp_path, split="t", model="m", report=[unnamed, unnamed])
    with pytest.raises(EvaluationError, match="not the expected"):
        write_asr_results(
            tmp_path, split="t", model="m", report=a, normalizer=TextNormalizer.verbatim()
        )
    other = score_transcripts({"u1": "a"}, {"u1": "a"}, normalizer=TextNormalizer.verbatim())
    with pytest.raises(EvaluationError, match="not comparable"):
        write_asr_results(tmp_path, split="t", model="m", report=a, peers=peer_rows(other, "w"))
    with pytest.raises(EvaluationError, match="peers row 0 has no 'system'"):
        write_asr_results(tmp_path, split="t", model="m", report=a, peers=[{"lang": "nl"}])


def test_readers_name_file_and_line(tmp_path: Path) -> None:
    text = _write(tmp_path / "text", ["u1 hallo wereld", "u2", "u3  twee  spaties"])
    assert read_transcripts(text) == {"u1": "hallo wereld", "u2": "", "u3": "twee  spaties"}
    d = tmp_path / "data"
    d.mkdir()
    _write(d / "text", ["u1 a"])
    assert read_transcripts(d) == {"u1": "a"}
    with pytest.raises(DataDirError, match=r"dup:2: duplicate id 'u1'"):
        read_transcripts(_write(tmp_path / "dup", ["u1 a", "u1 b"]))
    with pytest.raises(EvaluationError, match="no utterances"):
        read_transcripts(_write(tmp_path / "empty", []))
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(EvaluationError, match="without a 'text' file"):
        read_transcripts(bare)
    with pytest.raises(EvaluationError, match="no such file"):
        read_transcripts(tmp_path / "nope")
    with pytest.raises(DataDirError, match=r"u2l:2: line for 'u2' has no value"):
        read_utt2lang(_write(tmp_path / "u2l", ["u1 nl", "u2"]))


def test_load_normalizer_from_results_and_model_dirs(tmp_path: Path) -> None:
    norm = TextNormalizer(lowercase=False)
    (tmp_path / "n.json").write_text(json.dumps(norm.settings()))
    assert load_normalizer(tmp_path / "n.json") == norm
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"arch": "x", "normalizer": norm.settings()}))
    assert load_normalizer(model) == norm
    asr_model = tmp_path / "asr_model"
    asr_model.mkdir()
    text_norm = {"unicode_form": None, "lowercase": True, "remove_punctuation": False}
    cfg = {"vocab": {"vocab_size": 30, "text_normalization": {**text_norm, "digits": "remove"}}}
    (asr_model / "config.json").write_text(json.dumps(cfg))
    assert load_normalizer(asr_model) == TextNormalizer(**text_norm)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(EvaluationError, match="bad.json: not valid JSON"):
        load_normalizer(tmp_path / "bad.json")
    (tmp_path / "odd.json").write_text(json.dumps({"lower": True}))
    with pytest.raises(EvaluationError, match="odd.json: unknown normalizer setting 'lower'"):
        load_normalizer(tmp_path / "odd.json")


def test_cli_score_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "fillets_nl_test"
    d.mkdir()
    _write(d / "text", [f"{u} {t}" for u, t in REFS.items()])
    _write(d / "utt2lang", [f"{u} {lang}" for u, lang in LANGS.items()])
    hyp = _write(tmp_path / "hyp.txt", [f"{u} {t}" for u, t in HYPS.items()])
    peer = _write(tmp_path / "whisper.txt", [f"{u} {t}" for u, t in REFS.items()])
    out = tmp_path / "results"
    rc = main(
        [
            "score",
            str(d),
            str(hyp),
            "--out-dir",
            str(out),
            "--set",
            "fillets_nl_test",
            "--model",
            "ctc",
            "--metric",
            "wer",
            "cer",
            "--peer",
            f"whisper-base:zero-shot={peer}",
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0
    assert "nl " in printed and "55.56" in printed and "MER%" not in printed  # utt2lang from dir
    assert (
        "1 reference utterance without a hypothesis" in printed
        and "n2" in printed
        and "stray" in printed
    )
    assert "peer whisper-base:zero-shot: WER 0.00%" in printed
    doc = json.loads((out / "asr.json").read_text(encoding="utf-8"))
    assert doc["model"] == "ctc" and [r["lang"] for r in doc["results"]] == ["nl", "zh", "all"]
    assert doc["peers"][0]["system"] == "whisper-base:zero-shot"
    assert (out / "asr_alignments.fillets_nl_test.pra").is_file()


def test_cli_score_normalisation_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = _write(tmp_path / "ref", ["u1 Hallo, wereld!"])
    hyp = _write(tmp_path / "hyp", ["u1 hallo wereld"])
    assert main(["score", str(ref), str(hyp), "--metric", "wer"]) == 0
    assert re.search(r"^all +1 +2 +0\.00 ", capsys.readouterr().out, re.M)
    assert main(["score", str(ref), str(hyp), "--metric", "wer", "--no-lowercase"]) == 0
    assert re.search(r"^all +1 +2 +50\.00 ", capsys.readouterr().out, re.M)
    assert main(["score", str(ref), str(hyp), "--no-normalize", "--metric", "wer"]) == 0
    assert "100.00" in capsys.readouterr().out
    settings = tmp_path / "norm.json"
    settings.write_text(json.dumps(TextNormalizer(remove_punctuation=False).settings()))
    assert main(["score", str(ref), str(hyp), "--normalizer", str(settings)]) == 0
    assert "punctuation kept" in capsys.readouterr().out


def test_cli_score_bad_input_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = _write(tmp_path / "ref", ["u1 a", "u1 b"])
    hyp = _write(tmp_path / "hyp", ["u1 a"])
    assert main(["score", str(ref), str(hyp)]) == 2
    assert f"{ref}:2: duplicate id 'u1'" in capsys.readouterr().err
    empty = _write(tmp_path / "empty", [])
    assert main(["score", str(hyp), str(empty)]) == 2
    assert "no utterances (hypotheses file is empty)" in capsys.readouterr().err
    assert main(["score", str(hyp), str(hyp), "--peer", "nohyp"]) == 2
    assert "expected SYSTEM=HYP_FILE" in capsys.readouterr().err
