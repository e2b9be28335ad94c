"""Tests of data_prep.textcorpus on small hand-written inputs of each format."""

from __future__ import annotations

import gzip
import sys
import warnings
from pathlib import Path

import pytest

from data_prep import CorpusWarning, get_preparer
from data_prep.synth import read_sentence_table
from data_prep.textcorpus import (
    SentenceFilter,
    TextCorpusError,
    TextSource,
    file_kind,
    looks_like,
    main,
    normalise_key,
    paragraphs,
    prepare_textcorpus,
    segment,
    sentence_id,
)
from speechx.data.kaldi import KaldiDir
from speechx.errors import DataDirError

pytest.importorskip("pysbd")

PLAIN = """\
The cat sat on the mat. It was a sunny day in the town.

See https://example.org for the whole story of the cat.
The dog did not like the cat at all, and it barked all day long.
Short one.
The cat sat on the mat!
"""

FORTUNE = """\
You will meet a tall stranger at the old harbour.
%
A day without sunshine is like, you know, night.
\t\t-- Steve Martin
%
I have 2 cats and they are both asleep in the sun.
%
WHY IS THE CAT ON THE TABLE AGAIN?
%
Use {} and <> and x = 1 in the code of the program.
"""

HTML = """\
<!DOCTYPE html>
<html><head><title>Het boek over de vis</title>
<script>var x = "De vis zwemt in de zee.";</script>
<style>p { color: red; }</style></head>
<body><h1>Inleiding</h1>
<p>De vis zwemt in de zee en hij is erg blij.<br>Het water is koud maar de vis vindt dat niet erg.</p>
<p>Typ <code>ls</code> om de bestanden in de map te zien.</p>
<pre>Dit is een blok met code die niet gelezen moet worden.</pre>
<ul><li>De kat &amp; de hond zijn goede vrienden van de vis.</li></ul>
</body></html>
"""

GERMAN = "Der Hund schläft auf dem Sofa. Die Katze sitzt auf dem Dach und schaut zu.\n"


def _write(p: Path, text: str | bytes) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def _table(out: Path, name: str = "textcorpus") -> dict[str, tuple[str, dict[str, str]]]:
    return {
        k: (v.split, v.texts)
        for k, v in read_sentence_table(out / "local" / f"{name}_sentences.tsv").items()
    }


def _kept(out: Path, lang: str, name: str = "textcorpus") -> list[str]:
    return sorted(t[lang] for _, t in _table(out, name).values() if lang in t)


def test_segment_and_paragraphs_of_each_format() -> None:
    paras, n_attr = paragraphs(PLAIN, "text")
    assert n_attr == 0 and len(paras) == 2
    assert paras[1].startswith("See https://example.org") and "\n" not in paras[1]
    assert segment(paras[0], "en") == ["The cat sat on the mat.", "It was a sunny day in the town."]
    entries, n_attr = paragraphs(FORTUNE, "fortune")
    assert n_attr == 1 and len(entries) == 5
    assert entries[1] == "A day without sunshine is like, you know, night."
    blocks, _ = paragraphs(HTML, "html")
    assert blocks[:3] == [
        "Inleiding",
        "De vis zwemt in de zee en hij is erg blij.",
        "Het water is koud maar de vis vindt dat niet erg.",
    ]
    assert not any("var x" in b or "color" in b or "Dit is een blok" in b for b in blocks)
    assert "De kat & de hond zijn goede vrienden van de vis." in blocks
    assert any(b.startswith("Typ \ue000ls om") for b in blocks)  # inline code is marked
    assert paragraphs(".TH LS 1\n.SH NAAM\nls \\- toon\n", "groff") == ([], 0)
    # a language pysbd does not know is cut by the regex fallback
    assert segment("Olá, tudo bem? Sim. Eu estou bem.", "xx") == [
        "Olá, tudo bem?",
        "Sim.",
        "Eu estou bem.",
    ]


def test_file_kind_by_name_and_content(tmp_path: Path) -> None:
    assert file_kind(tmp_path / "a.html.gz", "whatever") == "html"
    assert file_kind(tmp_path / "a", "<!DOCTYPE html>\n<html>") == "html"
    assert file_kind(tmp_path / "ls.1", '.\\" comment\n.TH LS 1\n') == "groff"
    assert file_kind(tmp_path / "cookie", "One.\n%\nTwo.\n") == "fortune"
    assert file_kind(tmp_path / "notes.txt", "A 50 % rise.\nNo more.\n") == "text"


@pytest.mark.parametrize(
    ("sentence", "lang", "reason"),
    [
        ("The cat sat on the mat.", "en", None),
        ("„Wat doe je daar?“ vroeg de vis.", "nl", None),
        ("-- Mark Twain, in a letter", "en", "attribution"),
        ("The cat sat.", "en", "too_short"),
        (" ".join(["the cat"] * 13) + ".", "en", "too_long"),
        ("Mail me at bob@example.com about the cat.", "en", "url"),
        ("Edit the file in /etc/apt today.", "en", "url"),
        ("Open the file sources.conf in the editor.", "en", "url"),
        ("Set the value to x = y in the file.", "en", "code"),
        ("Run the tool with --verbose to see it.", "en", "code"),
        ("Kies Extra - Opties - Afdrukken in het menu.", "nl", "code"),
        ("I have 2 cats in the house.", "en", "digits"),
        ("Well... it is... what it is... !!!", "en", "letters"),
        ("WHY IS THE CAT ON THE TABLE?", "en", "shouting"),
        ("the cat sat on the mat.", "en", "fragment"),
        ("The cat sat on the mat", "en", "fragment"),
        ("Der Hund schläft auf dem Sofa.", "en", "wrong_lang"),
        ("Der Hund schläft auf dem Sofa.", "nl", "wrong_lang"),
        ("Der Hund schläft auf dem Sofa.", "de", None),
        ("Ruby Tuesday Pink Floyd forever.", "en", "wrong_lang"),
    ],
)
def test_sentence_filter_reasons(sentence: str, lang: str, reason: str | None) -> None:
    assert SentenceFilter().reason(sentence, lang) == reason


def test_sentence_filter_options() -> None:
    relaxed = SentenceFilter(allow_digits=True, allow_fragments=True, lang_check=False)
    assert relaxed.reason("I have 2 cats in the house.", "en") is None
    assert relaxed.reason("the cat sat on the mat", "en") is None
    assert relaxed.reason("Der Hund schläft auf dem Sofa.", "en") is None
    assert SentenceFilter(min_words=2).reason("The cat sat.", "en") is None
    assert looks_like("Ze zegt: it is what it is.", "xx")  # languages without a list pass
    assert not looks_like("It is what it is.", "nl")


def test_normalise_key_and_ids() -> None:
    assert normalise_key("Don’t  PANIC!") == normalise_key("don't panic") == "don t panic"
    assert normalise_key("ＡＢＣ, def.") == "abc def"  # NFKC folds full-width letters
    sid = sentence_id("en", "don t panic")
    assert sid.startswith("tc-") and len(sid) == 15
    assert sid != sentence_id("nl", "don t panic")


def test_prepare_reads_every_format_and_filters(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write(src / "en" / "story.txt", PLAIN)
    _write(src / "en" / "cookies", FORTUNE)
    _write(src / "en" / "cookies.dat", b"\x00\x00\x00\x02binary index")
    _write(src / "en" / "more.txt.gz", gzip.compress(b"The little boat sails across the lake."))
    _write(src / "nl" / "boek.html", HTML)
    _write(src / "nl" / "ls.1", ".TH LS 1\n.SH NAAM\nls \\- toon de inhoud van een map\n")
    out = tmp_path / "data"
    rep = prepare_textcorpus(
        [f"en:{src / 'en'}", f"nl:{src / 'nl'}"], out, progress=False, verbose=False
    )
    assert _kept(out, "en") == [
        "A day without sunshine is like, you know, night.",
        "It was a sunny day in the town.",
        "The cat sat on the mat.",
        "The dog did not like the cat at all, and it barked all day long.",
        "The little boat sails across the lake.",
        "You will meet a tall stranger at the old harbour.",
    ]
    assert _kept(out, "nl") == [
        "De kat & de hond zijn goede vrienden van de vis.",
        "De vis zwemt in de zee en hij is erg blij.",
        "Het water is koud maar de vis vindt dat niet erg.",
    ]
    table = _table(out)
    assert {split for split, _ in table.values()} == {"train"}
    assert all(len(texts) == 1 for _, texts in table.values())  # monolingual rows
    for sid, (_, texts) in table.items():
        ((lang, text),) = texts.items()
        assert sid == sentence_id(lang, normalise_key(text))
    header = (out / "local" / "textcorpus_sentences.tsv").read_text().splitlines()[0]
    assert header == "sent_id\tsplit\ten\tnl"
    en = rep.extra["en"]
    assert en["kept"] == 6 and en["files"] == 3
    assert en["drop_duplicate"] == 1  # "The cat sat on the mat!" repeats the first sentence
    assert en["drop_attribution"] == 1 and en["drop_url"] == 1 and en["drop_digits"] == 1
    assert en["drop_shouting"] == 1 and en["drop_code"] == 1 and en["drop_too_short"] == 1
    assert rep.extra["nl"]["drop_code"] == 1  # the sentence with inline <code>
    assert rep.extra["files"] == {
        "fortune": 1,
        "html": 1,
        "skipped_groff": 1,
        "skipped_suffix": 1,
        "text": 2,
    }
    assert rep.used == 9 and rep.splits == {"train": 9}
    assert rep.skipped["duplicate"] == 1
    assert (out / "local" / "textcorpus_prep.json").is_file()


def test_leak_guard_drops_dev_and_test_sentences(tmp_path: Path) -> None:
    src = _write(tmp_path / "en.txt", PLAIN + "\n" + GERMAN)
    dev = KaldiDir()
    dev.utt2spk = {"u1": "s1", "u2": "s1"}
    dev.text = {"u1": "Het is koud.", "u2": "Iets anders."}
    dev.translations = {
        "en": {"u1": "the DOG did not like the cat at all and it barked all day long"}
    }
    dev.write(tmp_path / "data" / "x_dev")
    test = KaldiDir()
    test.utt2spk = {"t1": "s1"}
    test.text = {"t1": "It was a sunny day in the town!"}
    test.write(tmp_path / "data" / "x_test")
    out = tmp_path / "data"
    rep = prepare_textcorpus(
        [f"en:{src}"],
        out,
        exclude_dirs=[out / "x_dev", out / "x_test"],
        progress=False,
    )
    assert _kept(out, "en") == ["The cat sat on the mat."]
    assert rep.extra["en"]["drop_leak"] == 2 and rep.skipped["leak"] == 2
    assert rep.extra["leak_keys"] == 4
    with pytest.raises(DataDirError, match="not found"):
        prepare_textcorpus([f"en:{src}"], out, exclude_dirs=[out / "nope"], progress=False)


def test_sample_and_ids_are_deterministic(tmp_path: Path) -> None:
    lines = [
        f"The {a} {n} sat on the {b} mat."
        for a in ("big", "small", "old", "young")
        for n in ("cat", "dog", "fox")
        for b in ("red", "blue", "green")
    ]
    _write(tmp_path / "a" / "one.txt", "\n\n".join(lines[:20]))
    _write(tmp_path / "a" / "two.txt", "\n\n".join(lines[20:]))
    _write(tmp_path / "de.txt", GERMAN)
    srcs = [f"en:{tmp_path / 'a'}", f"de:{tmp_path / 'de.txt'}"]
    rep = prepare_textcorpus(srcs, tmp_path / "o1", max_per_lang=10, progress=False)
    assert rep.extra["en"] == {**rep.extra["en"], "eligible": 36, "kept": 10}
    assert rep.extra["de"]["kept"] == 2
    first = (tmp_path / "o1" / "local" / "textcorpus_sentences.tsv").read_bytes()
    # the same inputs in another order and split across other files: the same table
    _write(tmp_path / "b" / "all.txt", "\n\n".join(reversed(lines)))
    srcs2 = [f"de:{tmp_path / 'de.txt'}", f"en:{tmp_path / 'b' / '*.txt'}"]
    prepare_textcorpus(srcs2, tmp_path / "o2", max_per_lang=10, progress=False)
    second = _table(tmp_path / "o2")
    assert {k: v for k, v in second.items()} == _table(tmp_path / "o1")
    assert first.splitlines()[0] == b"sent_id\tsplit\ten\tde"
    prepare_textcorpus(srcs, tmp_path / "o3", max_per_lang=10, seed=1, progress=False)
    assert set(_table(tmp_path / "o3")) != set(_table(tmp_path / "o1"))


def test_rerun_reuses_the_table_until_an_input_changes(tmp_path: Path) -> None:
    src = _write(tmp_path / "en.txt", PLAIN)
    out = tmp_path / "data"
    rep = prepare_textcorpus([f"en:{src}"], out, progress=False)
    assert rep.extra["reused"] is False
    again = prepare_textcorpus([f"en:{src}"], out, progress=False)
    assert again.extra["reused"] is True and again.extra["en"] == rep.extra["en"]
    assert (
        prepare_textcorpus([f"en:{src}"], out, force=True, progress=False).extra["reused"] is False
    )
    assert (
        prepare_textcorpus([f"en:{src}"], out, max_per_lang=1, progress=False).extra["reused"]
        is False
    )
    src.write_text(PLAIN + "\nThe cow jumped over the moon tonight.\n", encoding="utf-8")
    rep = prepare_textcorpus([f"en:{src}"], out, max_per_lang=1, progress=False)
    assert rep.extra["reused"] is False and rep.extra["en"]["eligible"] == 4


def test_latin1_fallback_is_counted_and_warned(tmp_path: Path) -> None:
    src = _write(tmp_path / "de.txt", "Der Bär schläft auf dem Sofa im Haus.\n".encode("latin-1"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rep = prepare_textcorpus([f"de:{src}"], tmp_path / "data", progress=False)
    assert rep.extra["latin1_files"] == 1
    assert any(
        issubclass(w.category, CorpusWarning) and "latin-1" in str(w.message) for w in caught
    )
    assert _kept(tmp_path / "data", "de") == ["Der Bär schläft auf dem Sofa im Haus."]


def test_symlinks_in_a_directory_are_not_followed(tmp_path: Path) -> None:
    _write(
        tmp_path / "fortunes" / "it" / "italia",
        "Gli eserciti tradizionali perdono se non vincono.\n",
    )
    _write(tmp_path / "fortunes" / "cookie", "You will meet a tall stranger at the old harbour.\n")
    (tmp_path / "fortunes" / "italia").symlink_to("it/italia")
    (tmp_path / "fortunes" / "cookie.u8").symlink_to("cookie")
    assert [f.name for f in TextSource.parse(f"en:{tmp_path / 'fortunes' / '*'}").files()] == [
        "cookie"
    ]
    assert TextSource.parse(f"en:{tmp_path / 'fortunes' / 'italia'}").files()  # named: read


def test_bad_inputs(tmp_path: Path) -> None:
    for spec in ("nolang", "EN:/x", "english:/x", "en:"):
        with pytest.raises(TextCorpusError, match="LANG:PATH"):
            TextSource.parse(spec)
    with pytest.raises(TextCorpusError, match="no file found"):
        prepare_textcorpus([f"en:{tmp_path / 'nothing*'}"], tmp_path / "data", progress=False)
    src = _write(tmp_path / "junk.txt", "x = 1\n")
    with pytest.raises(TextCorpusError, match="no sentence kept"):
        prepare_textcorpus([f"en:{src}"], tmp_path / "data", progress=False)
    with pytest.raises(TextCorpusError, match="name"):
        prepare_textcorpus([f"en:{src}"], tmp_path / "data", name="a/b", progress=False)


def test_missing_pysbd_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import data_prep.textcorpus as tc

    monkeypatch.setitem(sys.modules, "pysbd", None)  # makes `import pysbd` raise ImportError
    monkeypatch.setattr(tc, "_SEGMENTERS", {})
    src = _write(tmp_path / "en.txt", PLAIN)
    with pytest.raises(TextCorpusError, match=r"speechx\[textcorpus\]"):
        segment("The cat sat on the mat.", "en")
    assert main(["--source", f"en:{src}", "--out-dir", str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'speechx[textcorpus]'" in err
    assert not (tmp_path / "data").exists()


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from speechx.cli import main as speechx_main

    assert get_preparer("textcorpus") is prepare_textcorpus
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0 and "--exclude-dirs" in capsys.readouterr().out
    src = _write(tmp_path / "en.txt", PLAIN)
    out = tmp_path / "data"
    argv = ["--source", f"en:{src}", "--out-dir", str(out), "--name", "fortunes"]
    rc = speechx_main(["prepare", "textcorpus", *argv, "--max-per-lang", "2", "--no-progress"])
    assert rc in (0, None)
    assert "2 clips used" in capsys.readouterr().out
    assert len(_kept(out, "en", name="fortunes")) == 2
    assert main([*argv, "--min-words", "2", "--digits", "--fragments", "--no-progress"]) == 0
    assert "Short one." in _kept(out, "en", name="fortunes")
