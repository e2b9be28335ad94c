"""Tests of data_prep.synth_codeswitch with the real espeak-ng on a tiny sentence table."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import soundfile as sf

from data_prep import get_preparer
from data_prep.codeswitch import check_langtags
from data_prep.synth import Sentence, SynthError, read_sentence_table
from data_prep.synth_codeswitch import (
    Alignment,
    Span,
    SwitchConfig,
    build_codeswitches,
    clause_cuts,
    consistent_phrases,
    eflomal_available,
    grow_diag,
    inter_pairs,
    join_spans,
    main,
    make_clause_switch,
    make_inter,
    make_phrase_switch,
    parse_pair,
    prepare_synthcs,
    split_alignments,
)
from speechx.data.kaldi import KaldiDir, read_mapping
from speechx.data.splits import check_no_leak
from speechx.metrics.asr import mixed_tokens

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

TABLE = (
    "sent_id\tsplit\ten\tnl\tde\n"
    "fs-a\ttrain\tI am tired, let us go home.\tIk ben moe, laten we naar huis gaan.\t"
    "Ich bin müde, lass uns nach Hause gehen.\n"
    "fs-b\ttrain\tThe fish swims.\tDe vis zwemt.\tDer Fisch schwimmt.\n"
    "fs-c\ttrain\tWhere is the key?\tWaar is de sleutel?\tWo ist der Schlüssel?\n"
    "fs-d\ttest\tLook, the big ship!\tKijk, het grote schip!\tSchau, das große Schiff!\n"
    "fs-e\ttest\tThe ship is red.\tHet schip is rood.\t\n"
    "fs-f\ttest\tmplayer song.ogg\tmplayer song.ogg\tmplayer song.ogg\n"
)


@pytest.fixture
def table(sentence_table) -> Path:
    return sentence_table(TABLE)


def _sent(sid: str, split: str = "train", **texts: str) -> Sentence:
    return Sentence(sid, split, dict(texts))


def test_parse_pair() -> None:
    assert parse_pair("nl-en") == ("nl", "en")
    for bad in ("nl", "nl_en", "en-en", "NL-en"):
        with pytest.raises(SynthError, match="matrix"):
            parse_pair(bad)


def test_clause_cuts_kinds() -> None:
    words = ["Look,", "the", "ship!", "It", "sinks"]
    assert clause_cuts(words) == [(0, 1, "weak"), (1, 3, "strong"), (3, 5, "")]
    assert clause_cuts(["Hello."]) == [(0, 1, "")]
    assert clause_cuts(["a", "-", "b"]) == [(0, 3, "")]  # a lone dash is no boundary


def test_grow_diag_and_consistent_phrases() -> None:
    fwd = {(0, 0), (1, 1), (2, 3)}
    rev = {(0, 0), (1, 1), (2, 2), (2, 3)}
    sym = grow_diag(fwd, rev)
    assert {(0, 0), (1, 1), (2, 3)} <= sym and (2, 2) in sym
    phrases = consistent_phrases(frozenset({(0, 0), (1, 2), (2, 1)}), 3, max_words=4)
    assert (1, 3, 1, 3) in phrases and (0, 1, 0, 1) in phrases
    # the swapped pair can only be taken together
    assert (1, 2, 2, 3) in phrases and (0, 2, 0, 3) not in phrases
    # a link leaving the box makes the phrase inconsistent
    assert (0, 1, 0, 1) not in consistent_phrases(frozenset({(0, 0), (1, 0)}), 2)


def test_join_spans_attaches_bare_punctuation() -> None:
    spans = [
        Span("nl", ("...",)),
        Span("en", ("and",)),
        Span("nl", ()),
        Span("nl", ("netten!",)),
        Span("de", (".", "!")),
    ]
    assert join_spans(spans) == (Span("en", ("...", "and")), Span("nl", ("netten!", ".", "!")))
    assert join_spans([Span("en", ("a",)), Span("en", ("b",))]) == (Span("en", ("a", "b")),)


def test_make_inter_never_crosses_splits() -> None:
    x = _sent("s1", "train", nl="Hallo daar.", en="Hello there.")
    y = _sent("s2", "train", nl="Dag.", en="Bye.")
    cs = make_inter("nl-en", x, y)
    assert cs.text == "Hallo daar. Bye." and cs.tags == ["nl", "nl", "en"]
    assert cs.cstype == "inter" and cs.sent_ids == ("s1", "s2")
    with pytest.raises(SynthError, match="different splits"):
        make_inter("nl-en", x, _sent("s3", "test", nl="Dag.", en="Bye."))


def test_inter_pairs_stay_within_split() -> None:
    sents = [_sent(f"s{i}", "train" if i < 5 else "test") for i in range(9)]
    pairs, unpaired = inter_pairs(sents, "nl-en", seed=3)
    assert len(pairs) == 4 and len(unpaired) == 1
    assert all(a.split == b.split for a, b in pairs)
    used = [s.sent_id for p in pairs for s in p] + [s.sent_id for s in unpaired]
    assert sorted(used) == sorted(s.sent_id for s in sents)
    assert inter_pairs(sents, "nl-en", seed=3) == (pairs, unpaired)


def test_clause_switch_replaces_one_aligned_clause() -> None:
    s = _sent("s1", en="I am tired, let us go home.", nl="Ik ben moe, laten we naar huis gaan.")
    cs = make_clause_switch("nl-en", s, seed=0)
    assert not isinstance(cs, str)
    assert [sp.lang for sp in cs.spans] in (["en", "nl"], ["nl", "en"])
    assert cs.text in ("I am tired, laten we naar huis gaan.", "Ik ben moe, let us go home.")
    assert len(cs.tags) == len(mixed_tokens(cs.text))
    # links that send every word across the clause boundary reject the switch
    crossed = frozenset({(i, 7 - 1 - i) for i in range(7)} | {(7, 0)})
    assert make_clause_switch("nl-en", s, crossed, seed=0) == "clause_misaligned"
    one = _sent("s2", en="The fish swims.", nl="De vis zwemt.")
    assert make_clause_switch("nl-en", one) == "clause_single"
    odd = _sent("s3", en="Look, a ship! Wow", nl="Kijk een schip! Wow")
    assert make_clause_switch("nl-en", odd) == "clause_mismatch"


def test_phrase_switch_uses_a_contiguous_aligned_span() -> None:
    s = _sent("s1", nl="Het schip is rood.", en="The ship is red.")
    diag = frozenset((i, i) for i in range(4))
    cs = make_phrase_switch("nl-en", s, Alignment(diag, diag), seed=1)
    assert not isinstance(cs, str) and cs.method == "phrase"
    langs = [sp.lang for sp in cs.spans]
    assert "en" in langs and langs[0] in ("nl", "en") and langs.count("en") == 1
    assert len(cs.tags) == len(cs.text.split()) == 4
    assert cs.tags.count("en") <= 2  # at most half of the matrix words
    # "is" reads the same in both languages and is never the switched span
    for seed in range(20):
        r = make_phrase_switch("nl-en", s, Alignment(diag, diag), seed=seed)
        assert not isinstance(r, str) and r.text != "Het schip is rood."
    none = Alignment(frozenset(), frozenset())
    assert make_phrase_switch("nl-en", s, none) == "phrase_none"


def test_missing_column_is_named(table: Path, tmp_path: Path) -> None:
    with pytest.raises(SynthError, match=r"no column 'es' for pair es-en.*--text-langs"):
        prepare_synthcs(table, tmp_path / "data", pairs=["es-en"], progress=False)


def test_prepare_writes_contract_dirs_and_resumes(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    cfg = SwitchConfig(methods=("inter", "clause"))  # no aligner needed
    rep = prepare_synthcs(
        table, out, pairs=["nl-en", "de-en"], nj=2, aligner="none", config=cfg, progress=False
    )
    assert rep.corpus == "synthcs" and rep.extra["aligner"] == "none"
    assert rep.skipped["identical_text"] == 2  # fs-f in both pairs
    assert rep.skipped["no_translation"] == 1  # fs-e has no German
    assert rep.extra["counts"]["nl-en"]["train"] == {"inter": 1, "clause": 1}
    assert rep.extra["counts"]["nl-en"]["test"] == {"inter": 1, "clause": 1}
    assert sorted(rep.dirs) == [
        "synthcs_de-en_test",
        "synthcs_de-en_train",
        "synthcs_nl-en_test",
        "synthcs_nl-en_train",
    ]
    d = out / "synthcs_nl-en_train"
    kd = KaldiDir.read(d)
    assert len(kd) == 2 and set(kd.utt2lang.values()) == {"nl-en"}
    cstype = read_mapping(d / "utt2cstype")
    assert sorted(cstype.values()) == ["inter", "intra"]
    tags = read_mapping(d / "text.langtags")
    sents = read_mapping(d / "utt2sents")
    assert check_langtags(d) == 2
    for utt in kd.utt_ids:
        t = tags[utt].split()
        assert len(t) == len(mixed_tokens(kd.text[utt]))
        assert set(t) == {"nl", "en"}  # a switch in every utterance
        assert any(a != b for a, b in zip(t, t[1:], strict=False))
        assert kd.utt2sent[utt] == sents[utt].split()[0]
        assert {"nl", "en", "de"} <= {lg for lg, tr in kd.translations.items() if utt in tr}
        info = sf.info(kd.wav_scp[utt])
        assert info.samplerate == 16000 and 0.5 < info.duration == pytest.approx(
            kd.utt2dur[utt], abs=1e-3
        )
        assert Path(kd.wav_scp[utt]).parent == tmp_path / "wav" / "synthcs" / "nl-en"
    inter = next(u for u in kd.utt_ids if cstype[u] == "inter")
    first, second = sents[inter].split()
    assert kd.translations["en"][inter].startswith(read_sentence_table(table)[first].texts["en"])
    # all sentence ids of a dir are in its split: no test sentence in train
    test_sents = {
        s
        for v in read_mapping(out / "synthcs_nl-en_test" / "utt2sents").values()
        for s in v.split()
    }
    train_sents = {s for v in sents.values() for s in v.split()}
    assert test_sents <= {"fs-d", "fs-e"} and train_sents <= {"fs-a", "fs-b", "fs-c"}
    check_no_leak([out / "synthcs_nl-en_train"], [out / "synthcs_nl-en_test"])

    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "wav").rglob("*.wav")}
    rep2 = prepare_synthcs(
        table, out, pairs=["nl-en", "de-en"], nj=2, aligner="none", config=cfg, progress=False
    )
    assert rep2.extra["synthesised"] == 0 and rep2.extra["reused"] == rep.used
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert read_mapping(d / "text") == kd.text


@pytest.mark.skipif(not eflomal_available(), reason="needs the optional eflomal package")
def test_phrase_switches_with_eflomal(table: Path, tmp_path: Path) -> None:
    sents = read_sentence_table(table)
    cache = tmp_path / "align"
    links = split_alignments(
        [s for s in sents.values() if s.texts.get("de")], "de-en", cache_dir=cache
    )
    assert set(links) == {"fs-a", "fs-b", "fs-c", "fs-d", "fs-f"}
    assert sorted(p.name for p in cache.iterdir()) == ["de-en_test.links", "de-en_train.links"]
    again = split_alignments(
        [s for s in sents.values() if s.texts.get("de")], "de-en", cache_dir=cache
    )
    assert again == links  # eflomal is not seeded: the cache makes reruns identical
    css = build_codeswitches(sents, "nl-en", align_cache=tmp_path / "align2")
    methods = {c.method for c in css}
    assert {"inter", "clause"} <= methods
    for c in css:
        assert len(c.tags) == len(mixed_tokens(c.text)) and set(c.tags) == {"nl", "en"}
        assert len({sents[s].split for s in c.sent_ids}) == 1


def test_cli_help_and_registration(capsys: pytest.CaptureFixture[str]) -> None:
    assert get_preparer("synthcs") is prepare_synthcs
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "synthcs_<pair>_<split>" in capsys.readouterr().out


def test_cli_reports_errors(table: Path, tmp_path: Path) -> None:
    code = main(["--sentences", str(table), "--out-dir", str(tmp_path / "o"), "--pairs", "fr-en"])
    assert code == 1
