"""Tests of data_prep.fillets on a tiny fake Fish Fillets tree made at test time."""

from __future__ import annotations

import builtins
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep import PrepReport, get_preparer
from data_prep.fillets import (
    FilletsError,
    find_corpus_dir,
    main,
    parse_dialog_source,
    prepare_fillets,
    sentence_id,
    speaker_of,
)
from speechx.data.kaldi import KaldiDir
from speechx.data.splits import check_no_leak, read_assignment

EN_A = """
dialogId("a-m-hello", "font_small", "Hello there.")
dialogId("a-v-quote", "font_big", "He said \\"run\\" and left.")
dialogId("a-m-notrans", "font_small", "Nobody translated me.")
dialogId("a-x-noise", "", "")
dialogId("a-v-silent", "font_big", "Hello there.")
dialogId("a-m-noaudio", "font_small", "A line without any audio.")
"""

NL_A = """
dialogId("a-m-hello", "font_small", "Hello there.")
dialogStr("Hallo daar.")

dialogId("a-v-quote", "font_big",
"He said \\"run\\" and left.")
dialogStr("Hij zei \\"ren\\" en ging weg.") -- FIXME comment

dialogId("a-m-notrans", "font_small", "Nobody translated me.")

dialogId("a-x-noise", "", "")
dialogStr("")

dialogId("a-v-silent", "font_big", "Hello there.")
dialogStr("Hallo daar.")

dialogId("a-m-noaudio", "font_small", "A line without any audio.")
dialogStr("Een regel zonder geluid.")
"""

DE_A = """
dialogId("a-m-hello", "font_small", "Hello there.")
dialogStr("Hallo da, Grüße!")
"""

EN_B = """
dialogId("b-v-again", "font_big", "Hello there.")
dialogId("b-m-path", "font_small", "Look in C:\\\\WINDOWS please.")
for i = 0, 3 do dialogId("key"..i, "", "") end
"""

NL_B = """
dialogId("b-v-again", "font_big", "Hello there.")
dialogStr("Hallo daar!")
dialogId("b-m-path", "font_small", "Look in C:\\\\WINDOWS please.")
dialogStr("Kijk in C:\\\\WINDOWS alsjeblieft, \\/etc.")
"""

EN_BLACK = 'dialogId("smrt-v-0", "font_big", "Oh, shoot!")\n'
NL_BLACK = 'dialogId("smrt-v-0", "font_big", "Oh, shoot!")\ndialogStr("Oh, verdorie!")\n'


def _ogg(path: Path, seconds: float = 0.4, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    wav = (0.1 * rng.standard_normal(int(22050 * seconds))).astype(np.float32)
    sf.write(str(path), wav, 22050, format="OGG", subtype="VORBIS")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "fillets-ng"
    files = {
        "script/lvla/dialogs_en.lua": EN_A,
        "script/lvla/dialogs_nl.lua": NL_A,
        "script/lvla/dialogs_de.lua": DE_A,
        "script/lvla/dialogs_cs.lua": NL_A,
        "script/lvla/dialogs.lua": 'dialogLoad("script/"..codename.."/")\n',
        "script/lvlb/dialogs_en.lua": EN_B,
        "script/lvlb/dialogs_nl.lua": NL_B,
        "script/share/black_dialogs_en.lua": EN_BLACK,
        "script/share/black_dialogs_nl.lua": NL_BLACK,
        "script/share/blackjokes.lua": "-- code, not dialogue\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    for i, name in enumerate(["a-m-hello", "a-v-quote", "a-m-notrans", "a-x-noise", "a-v-silent"]):
        _ogg(root / f"sound/lvla/nl/{name}.ogg", seed=i)
    (root / "sound/lvla/nl/a-v-silent.ogg").write_bytes(b"")  # 0-byte clip
    _ogg(root / "sound/lvla/nl/not-in-script.ogg")
    _ogg(root / "sound/lvla/en/a-m-hello.ogg", seconds=0.5)
    _ogg(root / "sound/lvla/en/a-x-noise.ogg")
    _ogg(root / "sound/lvla/sp-bubble.ogg")  # a level sound effect, not a voice dir
    for name in ["b-v-again", "b-m-path"]:
        _ogg(root / f"sound/lvlb/nl/{name}.ogg", seconds=0.6)
    _ogg(root / "sound/lvlb/nl/key0.ogg")
    _ogg(root / "sound/share/blackjokes/nl/smrt-v-0.ogg", seconds=0.3)
    _ogg(root / "sound/lvla/cs/a-m-hello.ogg")
    _ogg(root / "sound/share/blackjokes/cs/smrt-v-0.ogg")
    return root


@pytest.fixture
def forbid_cs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every filesystem call on a ``cs`` path fail the test; returns what was touched."""
    touched: list[str] = []

    def is_cs(path: object) -> bool:
        try:
            p = Path(os.fsdecode(path))  # type: ignore[arg-type]
        except TypeError:
            return False
        return "cs" in p.parts or p.name.endswith("_cs.lua")

    def guard(fn):
        def wrapped(path, *args, **kwargs):
            if is_cs(path):
                touched.append(str(path))
                raise AssertionError(f"reserved cs path touched: {path}")
            return fn(path, *args, **kwargs)

        return wrapped

    for name in ("stat", "lstat", "listdir", "scandir", "open"):
        monkeypatch.setattr(os, name, guard(getattr(os, name)))
    monkeypatch.setattr(builtins, "open", guard(builtins.open))
    monkeypatch.setattr(sf, "info", guard(sf.info))
    monkeypatch.setattr(sf, "read", guard(sf.read))
    return touched


def test_parse_dialog_source_handles_the_oddities() -> None:
    lines = parse_dialog_source(NL_A + EN_B + NL_B)
    by_id = {(d.dialog_id, d.english): d for d in lines}
    quote = by_id[("a-v-quote", 'He said "run" and left.')]
    assert quote.translation == 'Hij zei "ren" en ging weg.'
    assert quote.font == "font_big"
    assert by_id[("a-m-notrans", "Nobody translated me.")].translation is None
    assert by_id[("a-x-noise", "")].translation == ""
    path = [d for d in lines if d.dialog_id == "b-m-path" and d.translation]
    assert path[0].english == "Look in C:\\WINDOWS please."
    assert path[0].translation == "Kijk in C:\\WINDOWS alsjeblieft, /etc."
    assert not any(d.dialog_id.startswith("key") for d in lines)  # "key"..i is not a literal


def test_parse_dialog_source_unicode_long_strings_and_escapes() -> None:
    src = (
        '--[[ dialogId("hidden", "", "commented out") ]]\n'
        'dialogId("x-m-1", "f", "Caf\\233 \\n ok")\n'
        "dialogStr([[Привет, мир]])\n"
        "dialogId('x-v-2', 'f', 'single \\'quoted\\'')\n"
        'dialogStr("Schön " .. "zusammen")\n'
    )
    lines = parse_dialog_source(src)
    assert [d.dialog_id for d in lines] == ["x-m-1", "x-v-2"]
    assert lines[0].english == "Café \n ok"
    assert lines[0].translation == "Привет, мир"
    assert lines[1].english == "single 'quoted'"
    assert lines[1].translation == "Schön zusammen"


def test_speaker_and_sentence_ids() -> None:
    assert speaker_of("nl", "zd1-m-tlac") == "nl-m"
    assert speaker_of("nl", "let-v-vrak0") == "nl-v"
    assert speaker_of("en", "laser") == "en-x"
    assert sentence_id("Hello  there.") == sentence_id("Hello there.")
    assert sentence_id("Hello there.") != sentence_id("Hello there!")
    assert sentence_id("Hello there.").startswith("fs-")


def test_prepare_fillets_on_fake_tree(corpus: Path, tmp_path: Path, forbid_cs: list[str]) -> None:
    out = tmp_path / "data"
    rep = prepare_fillets(corpus, out, ratios=(0.5, 0.25, 0.25), seed=0)
    assert forbid_cs == []
    with pytest.raises(AssertionError, match="reserved"):  # the guard is live
        os.listdir(corpus / "sound" / "lvla" / "cs")
    assert isinstance(rep, PrepReport)
    # nl: hello, quote, (notrans: no nl), (noise: no sentence), (silent: 0 bytes), again, path,
    # smrt-v-0; en: hello (noise has an empty line)
    assert rep.used == 6
    assert rep.skipped == {
        "no_transcript": 1,
        "no_sentence": 2,
        "empty_file": 1,
        "no_script_line": 2,
    }
    assert rep.n_sentences == 6  # hello, quote, notrans, noaudio, path, oh-shoot
    assert sum(rep.splits.values()) == 6
    assert rep.coverage["en"] == 1.0

    dirs = sorted(p.name for p in out.iterdir() if p.name.startswith("fillets_"))
    assert dirs == sorted(rep.dirs)
    assert all(name.split("_")[1] in ("nl", "en") for name in dirs)
    merged = KaldiDir()
    for name in dirs:
        kd = KaldiDir.read(out / name)
        lang, split = name.split("_")[1:]
        assert set(kd.utt2lang.values()) == {lang}
        assert set(kd.wav_scp) == set(kd.text) == set(kd.utt2sent) == set(kd.utt2dur)
        for utt in kd.utt_ids:
            assert Path(kd.wav_scp[utt]).is_absolute() and kd.wav_scp[utt].endswith(".ogg")
            assert kd.utt2spk[utt] in (f"{lang}-m", f"{lang}-v")
            assert utt.startswith(kd.utt2spk[utt] + "-")
        merged.text.update(kd.text)
        merged.utt2sent.update(kd.utt2sent)
        merged.utt2dur.update(kd.utt2dur)
        for tl, t in kd.translations.items():
            merged.translations.setdefault(tl, {}).update(t)

    assert merged.text["nl-m-lvla-a-m-hello"] == "Hallo daar."
    assert merged.text["en-m-lvla-a-m-hello"] == "Hello there."
    assert merged.text["nl-v-lvla-a-v-quote"] == 'Hij zei "ren" en ging weg.'
    assert merged.text["nl-v-share-blackjokes-smrt-v-0"] == "Oh, verdorie!"
    assert merged.translations["de"] == {
        "nl-m-lvla-a-m-hello": "Hallo da, Grüße!",
        "en-m-lvla-a-m-hello": "Hallo da, Grüße!",
    }
    assert merged.translations["en"]["nl-v-lvlb-b-v-again"] == "Hello there."
    # identical English lines share one sentence id, across levels and speech languages
    hello = sentence_id("Hello there.")
    assert merged.utt2sent["nl-m-lvla-a-m-hello"] == hello
    assert merged.utt2sent["nl-v-lvlb-b-v-again"] == hello
    assert merged.utt2sent["en-m-lvla-a-m-hello"] == hello
    assert merged.utt2dur["nl-v-lvlb-b-v-again"] == pytest.approx(0.6, abs=0.01)

    # the sentence table covers every script sentence, audio or not, with the same split
    assignment = read_assignment(out / "local/fillets_sentences.tsv")
    assert len(assignment) == 6 and sentence_id("A line without any audio.") in assignment
    header, *rows = (out / "local/fillets_sentences.tsv").read_text("utf-8").splitlines()
    assert header.split("\t") == [
        "sent_id",
        "split",
        "en",
        "nl",
        "de",
        "fr",
        "es",
        "it",
        "ru",
        "pl",
    ]
    row = {r.split("\t")[0]: r.split("\t") for r in rows}[hello]
    assert row[2:5] == ["Hello there.", "Hallo daar.", "Hallo da, Grüße!"]  # most common nl
    for name in dirs:
        kd = KaldiDir.read(out / name)
        assert {assignment[s] for s in kd.utt2sent.values()} == {name.split("_")[2]}

    train = [out / d for d in dirs if d.endswith("_train")]
    held = [out / d for d in dirs if not d.endswith("_train")]
    check_no_leak(train, held)


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_prepare_fillets_rerun_is_identical(corpus: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    kw = dict(speech_langs=["nl"], text_langs=["en", "de"])
    prepare_fillets(corpus, a, **kw)
    first = _snapshot(a)
    assert "fillets_nl_train/text.de" in first and not any("_en_" in f for f in first)
    prepare_fillets(corpus, a, **kw)  # rerun in place
    assert _snapshot(a) == first
    prepare_fillets(corpus, b, **kw)  # elsewhere: the same except the out_dir in the report
    second = _snapshot(b)
    report = "local/fillets_prep.json"
    assert {k: v for k, v in second.items() if k != report} == {
        k: v for k, v in first.items() if k != report
    }


def test_split_changes_with_seed(corpus: Path, tmp_path: Path) -> None:
    tsv = "local/fillets_sentences.tsv"
    prepare_fillets(corpus, tmp_path / "s0", ratios=(0.5, 0.25, 0.25), seed=0)
    prepare_fillets(corpus, tmp_path / "s5", ratios=(0.5, 0.25, 0.25), seed=5)
    a0, a5 = read_assignment(tmp_path / "s0" / tsv), read_assignment(tmp_path / "s5" / tsv)
    assert set(a0) == set(a5)
    assert sorted(a0.values()) == sorted(a5.values()) == ["dev", "dev"] + ["test"] + ["train"] * 3
    # (6 sentences: cuts at round(3)=3 and round(4.5)=5 -> 3 train, 2 dev, 1 test)


def test_reserved_language_and_missing_corpus(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(FilletsError, match="reserved"):
        prepare_fillets(corpus, tmp_path / "o", speech_langs=["cs"])
    with pytest.raises(FilletsError, match="reserved"):
        prepare_fillets(corpus, tmp_path / "o", text_langs=["en", "cs"])
    with pytest.raises(FilletsError, match=str(tmp_path / "nowhere")):
        find_corpus_dir(tmp_path / "nowhere")
    assert find_corpus_dir(corpus) == corpus


def test_corpus_dir_from_environment(
    corpus: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SPEECHX_FILLETS_DIR", str(corpus))
    assert find_corpus_dir() == corpus
    monkeypatch.setenv("SPEECHX_FILLETS_DIR", str(tmp_path / "missing"))
    monkeypatch.setattr("data_prep.fillets.DEFAULT_CORPUS_DIRS", (str(tmp_path / "also"),))
    with pytest.raises(FilletsError, match=r"missing.*also"):
        find_corpus_dir()


def test_cli(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "--speech-langs" in capsys.readouterr().out
    rc = main(
        ["--corpus-dir", str(corpus), "--out-dir", str(tmp_path / "o"), "--speech-langs", "nl,en"]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "6 clips used" in out and "empty_file=1" in out
    assert main(["--corpus-dir", str(tmp_path / "nope"), "--out-dir", str(tmp_path)]) == 1
    assert "not found" in capsys.readouterr().err
    assert get_preparer("fillets") is prepare_fillets
