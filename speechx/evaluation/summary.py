"""``results/summary.md``: one file that every evaluation adds its own section to, and the
``results/<task>.json`` written with it.

Each evaluation owns the text between ``<!-- speechx:<name>:begin -->`` and
``<!-- speechx:<name>:end -->``; rewriting a section leaves the others as they were, so the ASR,
retrieval and code-switching evaluations can run in any order against the same results dir.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from speechx.data.kaldi import atomic_write_text

#: utterance ids named in a log line or a summary before "..."
SHOW_IDS = 5


def section_markers(name: str) -> tuple[str, str]:
    """The begin and end markers of section ``name`` (``asr``, ``codeswitch``, ...)."""
    return f"<!-- speechx:{name}:begin -->", f"<!-- speechx:{name}:end -->"


def splice_section(old: str, section: str, name: str) -> str:
    """``old`` with section ``name`` replaced by ``section`` (appended when it is not there).

    Returns:
        The new text: the marked block stands where the old one stood, with what followed it
        kept after one blank line; a new block goes after a blank line at the end.

    Example:
        >>> splice_section("# Results\\n", "x\\n", "asr")
        '# Results\\n\\n<!-- speechx:asr:begin -->\\nx\\n<!-- speechx:asr:end -->\\n'
    """
    begin, end_marker = section_markers(name)
    block = f"{begin}\n{section}{end_marker}\n"
    start, end = old.find(begin), old.find(end_marker)
    if start >= 0 and end > start:
        rest = old[end + len(end_marker) :].lstrip("\n")
        return old[:start] + block + ("\n" + rest if rest else "")
    if not old:
        return block
    return old.rstrip("\n") + "\n\n" + block


def write_summary_section(path: str | os.PathLike, section: str, name: str) -> Path:
    """Replace section ``name`` of the summary file at ``path`` (created when missing).

    Returns:
        The path written (atomically).
    """
    p = Path(path)
    old = p.read_text(encoding="utf-8") if p.exists() else ""
    atomic_write_text(p, splice_section(old, section, name))
    return p


def some_ids(ids: Sequence[str], limit: int = SHOW_IDS) -> str:
    """The first ``limit`` ids, comma-separated, then ``... (N more)`` when there are more."""
    shown = ", ".join(ids[:limit])
    return shown + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")


def write_results(out_dir: str | os.PathLike, doc: Mapping[str, Any], section: str) -> Path:
    """Write ``doc`` as ``<out_dir>/<task>.json`` and ``section`` as the ``<task>`` section of
    ``<out_dir>/summary.md``, where ``<task>`` is ``doc["task"]``; both atomically, the other
    sections of the summary kept.

    Returns:
        The path of the JSON file.
    """
    out = Path(out_dir)
    task = str(doc["task"])
    path = out / f"{task}.json"
    atomic_write_text(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    write_summary_section(out / "summary.md", section, task)
    return path


def jsonable_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A flat results row as JSON can hold it.

    Returns:
        A new dict with string keys, numpy scalars as Python numbers and NaN or infinite floats
        as None (JSON has no NaN).
    """
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out[str(k)] = v
    return out
