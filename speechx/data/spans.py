"""Where utterances lie in long recordings: the ``truth.tsv`` of a long-form search data dir.

``data_prep.longform`` builds long recordings from short utterances and writes, next to the
recordings' Kaldi dir, one row per utterance it placed; ``speechx evaluate-longform`` reads it.
The file is tab-separated with a header line::

    utt recording start end role source lang sent alt_utt alt_lang alt_audio text text.de ...

- ``utt``: the utterance's id in its source dir; ``source``: that dir's name
  (``fillets_nl_test``); ``lang``: the language spoken; ``sent``: its sentence id.
- ``recording``, ``start``, ``end``: the long recording and the utterance's span in it, in
  seconds, exact to the sample (written with 7 decimals, which represent any multiple of
  1/16000 s exactly).
- ``role``: ``query`` (an utterance searched for) or ``distractor`` (speech that is never a
  correct answer).
- ``alt_utt``, ``alt_lang``, ``alt_audio``: another rendering of the same sentence that is
  *not* in the long recordings (another language or voice), its language and its audio
  (``path``, or ``path@start-end`` for a segment), for spoken queries; empty when there is none.
- ``text`` (the transcript) and ``text.<lang>`` (translations): one column per field any row
  has; an empty cell means the utterance has no such text.  Tabs and line breaks in texts are
  written as spaces.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from speechx.data.kaldi import atomic_write_text, normalise_value
from speechx.errors import DataDirError

TRUTH_FILE = "truth.tsv"
ROLES = ("query", "distractor")
_FIXED = ("utt", "recording", "start", "end", "role", "source", "lang", "sent")
_FIXED += ("alt_utt", "alt_lang", "alt_audio")


@dataclass(frozen=True)
class PlacedUtterance:
    """One utterance placed in a long recording (a row of ``truth.tsv``).

    Attributes:
        utt, recording, start, end, role, source, lang, sent, alt_utt, alt_lang, alt_audio:
            see the module docstring.
        texts: ``"text"`` and ``"text.<lang>"`` -> text (only the fields it has).
    """

    utt: str
    recording: str
    start: float
    end: float
    role: str
    source: str
    lang: str = ""
    sent: str = ""
    alt_utt: str = ""
    alt_lang: str = ""
    alt_audio: str = ""
    texts: dict[str, str] = field(default_factory=dict)

    def text_in(self, lang: str) -> str | None:
        """The utterance's text in ``lang``: ``text.<lang>``, else the transcript when ``lang``
        is the language spoken, else ``None``."""
        t = self.texts.get(f"text.{lang}")
        if t:
            return t
        if lang == self.lang and self.texts.get("text"):
            return self.texts["text"]
        return None


def truth_path(path: str | os.PathLike) -> Path:
    """``path`` itself for a file, ``path/truth.tsv`` for a directory."""
    p = Path(path)
    return p / TRUTH_FILE if p.is_dir() else p


def write_truth(path: str | os.PathLike, rows: list[PlacedUtterance]) -> Path:
    """Write ``rows`` as a ``truth.tsv`` (atomically), in the order given.

    Returns:
        The path written.

    Raises:
        DataDirError: a row with an unknown role, ``end <= start``, or a tab in an id.
    """
    fields = sorted({k for r in rows for k in r.texts}, key=lambda k: (k != "text", k))
    lines = ["\t".join((*_FIXED, *fields)) + "\n"]
    for r in rows:
        if r.role not in ROLES:
            raise DataDirError(f"{path}: utterance {r.utt!r} has unknown role {r.role!r}")
        if not r.end > r.start:
            raise DataDirError(f"{path}: utterance {r.utt!r} has end {r.end} <= start {r.start}")
        ids = (r.utt, r.recording, r.source, r.lang, r.sent, r.alt_utt, r.alt_lang, r.alt_audio)
        if any("\t" in x or "\n" in x for x in ids):
            raise DataDirError(f"{path}: utterance {r.utt!r} has a tab or line break in an id")
        cells = [r.utt, r.recording, f"{r.start:.7f}", f"{r.end:.7f}", r.role, r.source]
        cells += [r.lang, r.sent, r.alt_utt, r.alt_lang, r.alt_audio]
        cells += [normalise_value(r.texts.get(f, "").replace("\t", " ")) for f in fields]
        lines.append("\t".join(cells) + "\n")
    p = Path(path)
    atomic_write_text(p, "".join(lines))
    return p


def read_truth(path: str | os.PathLike) -> list[PlacedUtterance]:
    """Read a ``truth.tsv`` (or the one in a directory).

    Returns:
        Its rows, in file order.

    Raises:
        DataDirError: a missing file, a header without the fixed columns, a row with the wrong
            number of cells, a bad time or role (the line is named).
    """
    p = truth_path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataDirError(
            f"{p}: not found (a long-form truth table, from speechx prepare longform)"
        ) from None
    except UnicodeDecodeError:
        raise DataDirError(f"{p}: not UTF-8") from None
    if not lines:
        raise DataDirError(f"{p}: empty (no header line)")
    header = lines[0].split("\t")
    if tuple(header[: len(_FIXED)]) != _FIXED:
        raise DataDirError(f"{p}: header must start with {' '.join(_FIXED)}")
    fields = header[len(_FIXED) :]
    rows = []
    for n, line in enumerate(lines[1:], 2):
        cells = line.split("\t")
        if len(cells) != len(header):
            raise DataDirError(f"{p}:{n}: {len(cells)} cells, the header has {len(header)}")
        utt, rec, start, end, role, source, lang, sent = cells[:8]
        alt_utt, alt_lang, alt_audio = cells[8 : len(_FIXED)]
        try:
            s, e = float(start), float(end)
        except ValueError:
            raise DataDirError(f"{p}:{n}: start/end {start!r}/{end!r} are not numbers") from None
        if not 0 <= s < e:
            raise DataDirError(f"{p}:{n}: utterance {utt!r} has start {s} and end {e}")
        if role not in ROLES:
            raise DataDirError(f"{p}:{n}: role {role!r} is not one of {ROLES}")
        texts = {f: t for f, t in zip(fields, cells[len(_FIXED) :], strict=True) if t}
        rows.append(
            PlacedUtterance(
                utt, rec, s, e, role, source, lang, sent, alt_utt, alt_lang, alt_audio, texts
            )
        )
    return rows


__all__ = ["ROLES", "TRUTH_FILE", "PlacedUtterance", "read_truth", "truth_path", "write_truth"]
