"""``speechx evaluate-codeswitch``: given hypotheses, a tiny speech encoder, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from speechx.cli import main
from speechx.models import build_encoder
from speechx.testing import AxisTeacher, make_kaldi_dir

UTTS = ("spk1-utt1", "spk1-utt2")
# Mandarin-English: each CJK character is one MER token
MIXED = ("我们 明天 有 meeting", "这个 project 很 难")
TAGS = ("zh zh zh zh zh en", "zh zh en zh zh")
ZH = ("我们明天有会议", "这个项目很难")
EN = ("We have a meeting tomorrow", "This project is hard")


def _write(path: Path, values: Sequence[str]) -> None:
    path.write_text("".join(f"{u} {v}\n" for u, v in zip(UTTS, values, strict=True)))


@pytest.fixture
def cs_dir(tmp_path: Path) -> Path:
    d = make_kaldi_dir(tmp_path / "data" / "synthcs_zh-en_test", n=2, lang="zh-en", texts=MIXED)
    _write(d / "text.langtags", TAGS)
    _write(d / "text.zh", ZH)
    _write(d / "text.en", EN)
    _write(d / "utt2cstype", ["intra", "intra"])
    return d


def fake_teacher() -> AxisTeacher:
    """A deterministic 8-d teacher: one axis per known sentence (any of its texts)."""
    axes = {t: k for k, texts in enumerate(zip(MIXED, ZH, EN, strict=True)) for t in texts}
    return AxisTeacher(axes, name="fake", teacher_id="fake-teacher")


def test_given_hypotheses(tmp_path: Path, cs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hyp = tmp_path / "hyp.txt"
    # 我们 明天 有 meeting -> 我们 明天 有 密: one substitution; 这个 project 很 难: correct
    _write(hyp, ["我们明天有密", "这个 project 很难"])
    out = tmp_path / "exp" / "results"
    rc = main(["evaluate-codeswitch", str(cs_dir), "--hyp", str(hyp), "--out-dir", str(out)])
    assert rc == 0
    assert capsys.readouterr().out.strip().endswith("codeswitch.json")
    doc = json.loads((out / "codeswitch.json").read_text())
    (row,) = doc["results"]
    assert row["pair"] == "zh-en" and row["mer"] == pytest.approx(1 / 11)
    assert row["per_lang"] == {"en": 0.5, "zh": 0.0}
    # switches 有|meeting, 个|project, project|很: switch tokens 有 meeting 个 project 很
    assert row["switch_point_error"] == pytest.approx(1 / 5)
    assert row["confusion"]["counts"]["en"]["zh"] == 1  # the script decides: 密 is Chinese
    assert "retrieval" not in row
    assert "### Switch points" in (out / "summary.md").read_text()


def test_with_speech_encoder(tmp_path: Path, cs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import speechx.teachers

    monkeypatch.setattr(speechx.teachers, "load_teacher", lambda name: fake_teacher())
    model = tmp_path / "model"
    build_encoder("tiny", 8).save_pretrained(model)
    mono = make_kaldi_dir(tmp_path / "data" / "synth_en_test", n=2, lang="en", texts=EN)
    out = tmp_path / "results"
    args = ["evaluate-codeswitch", str(cs_dir), "--model", str(model), "--out-dir", str(out)]
    args += ["--mono", str(mono), "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    (row,) = json.loads((out / "codeswitch.json").read_text())["results"]
    assert row["mer"] is None and row["per_lang"] == {}
    assert {r["target"] for r in row["retrieval"]} == {"text:zh", "text:en"}
    assert all(r["n_queries"] == 2 and r["pool_size"] == 2 for r in row["retrieval"])
    assert {r["mono_set"] for r in row["retrieval_drop"]} == {"synth_en_test"}
    assert all(r["recall@1"] == 1.0 for r in row["ceiling"])


def test_errors_are_one_line(
    tmp_path: Path, cs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "out")
    assert main(["evaluate-codeswitch", str(cs_dir), "--out-dir", out]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err
    _write(cs_dir / "text.langtags", ["zh zh en", TAGS[1]])
    hyp = tmp_path / "hyp.txt"
    _write(hyp, MIXED)
    assert main(["evaluate-codeswitch", str(cs_dir), "--hyp", str(hyp), "--out-dir", out]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "text.langtags: utterance 'spk1-utt1' has 3 language tags" in err


def test_with_asr_model(tmp_path: Path, cs_dir: Path) -> None:
    from speechx.asr import SpeechRecognizer
    from speechx.asr.vocab import Vocabulary

    model = tmp_path / "asr_model"
    SpeechRecognizer(build_encoder("tiny", 8), Vocabulary.build(MIXED)).save_pretrained(model)
    out = tmp_path / "exp" / "results"
    args = ["evaluate-codeswitch", str(cs_dir), "--asr-model", str(model), "--out-dir", str(out)]
    assert main(args) == 0
    hyps = (tmp_path / "exp" / "decode" / cs_dir.name / "text").read_text().splitlines()
    assert [h.split(" ")[0] for h in hyps] == list(UTTS)
    doc = json.loads((out / "codeswitch.json").read_text())
    assert doc["asr"] == str(model)
    (row,) = doc["results"]
    assert row["n_ref_tokens"] == 11 and row["mer"] is not None and row["mer"] >= 0


def test_whisper_peer_rows(tmp_path: Path, cs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import speechx.evaluation.cascade as cascade

    class Fake:
        name = "fake-whisper"
        cache_id = "fake-whisper-v1"
        languages: list[str] = []

        def transcribe(self, inputs, language, *, names=None, on_batch=None) -> list[str]:
            self.languages.append(language)
            texts = ["我们明天有 meeting" if n.endswith("1") else "这个 project" for n in names]
            if on_batch is not None:
                on_batch(list(range(len(texts))), texts)
            return texts

    fake = Fake()
    monkeypatch.setattr(cascade, "build_transcriber", lambda name, **kw: fake)
    hyp = tmp_path / "hyp.txt"
    _write(hyp, MIXED)
    out = tmp_path / "exp" / "results"
    args = ["evaluate-codeswitch", str(cs_dir), "--hyp", str(hyp), "--out-dir", str(out)]
    assert main([*args, "--peer", "whisper-base"]) == 0
    assert fake.languages == ["zh"]  # the matrix language of the pair, forced
    doc = json.loads((out / "codeswitch.json").read_text())
    assert doc["results"][0]["mer"] == 0.0
    (peer,) = doc["peers"]
    # the second utterance lost 很 难: 2 deletions over 11 tokens
    assert peer["system"] == "whisper:whisper-base" and peer["mer"] == pytest.approx(2 / 11)
    assert (out / "peer-whisper-base" / "codeswitch.json").is_file()
    # a rerun decodes nothing and keeps one peer row
    fake.languages.clear()
    assert main([*args, "--peer", "whisper-base"]) == 0
    assert (
        fake.languages == []
        and len(json.loads((out / "codeswitch.json").read_text())["peers"]) == 1
    )
