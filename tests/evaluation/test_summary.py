"""Tests of speechx.evaluation.summary: sections of summary.md owned by one evaluation each."""

from __future__ import annotations

from pathlib import Path

from speechx.evaluation.summary import (
    section_markers,
    some_ids,
    splice_section,
    write_summary_section,
)


def test_splice_section_appends_then_replaces_in_place() -> None:
    begin, end = section_markers("asr")
    assert (begin, end) == ("<!-- speechx:asr:begin -->", "<!-- speechx:asr:end -->")
    assert splice_section("", "a\n", "asr") == f"{begin}\na\n{end}\n"
    text = splice_section("# Results\n\n", "a\n", "asr")
    assert text == f"# Results\n\n{begin}\na\n{end}\n"
    text = splice_section(text + "\n\ntail\n", "b\n", "cs")
    text = splice_section(text, "A\n", "asr")
    cs_begin, cs_end = section_markers("cs")
    assert text == (f"# Results\n\n{begin}\nA\n{end}\n\ntail\n\n{cs_begin}\nb\n{cs_end}\n")


def test_write_summary_section_keeps_other_sections(tmp_path: Path) -> None:
    p = tmp_path / "results" / "summary.md"
    write_summary_section(p, "one\n", "retrieval")
    write_summary_section(p, "two\n", "codeswitch")
    write_summary_section(p, "ONE\n", "retrieval")
    text = p.read_text(encoding="utf-8")
    assert "ONE" in text and "two" in text and "one\n" not in text
    assert text.index("ONE") < text.index("two")


def test_some_ids() -> None:
    assert some_ids(["a", "b"]) == "a, b"
    assert some_ids([str(i) for i in range(7)]) == "0, 1, 2, 3, 4, ... (2 more)"
    assert some_ids(["a", "b", "c"], limit=1) == "a, ... (2 more)"
