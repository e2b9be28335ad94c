"""Corpus preparation: each ``data_prep/<corpus>.py`` turns a corpus on disk into Kaldi dirs.

Every preparer is ``prepare_<corpus>(source, out_dir, ...) -> PrepReport`` and has a
``python -m data_prep.<corpus> --help`` face.  ``speechx`` never imports this package; a CLI
reaches the preparers through :data:`PREPARERS` and :func:`get_preparer`.

Layering: this package may import :mod:`speechx.audio` and :mod:`speechx.data`, nothing above.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from speechx.data.kaldi import atomic_write_text

#: corpus name -> (module, function); resolved lazily by :func:`get_preparer`.
PREPARERS: dict[str, tuple[str, str]] = {
    "fillets": ("data_prep.fillets", "prepare_fillets"),
    "synth": ("data_prep.synth", "prepare_synth"),
    "ascend": ("data_prep.ascend", "prepare_ascend"),
    "seame": ("data_prep.seame", "prepare_seame"),
    "synthcs": ("data_prep.synth_codeswitch", "prepare_synthcs"),
}


@dataclass
class PrepReport:
    """What a preparation run produced.

    Attributes:
        corpus: corpus name ("fillets", "synth", ...).
        out_dir: where the Kaldi dirs were written.
        dirs: Kaldi dir name -> number of utterances written to it.
        used: number of clips written (over all dirs).
        skipped: reason -> number of clips left out.
        splits: split name -> number of utterances (over all languages).
        hours: total audio written, in hours.
        n_sentences: distinct sentences considered (before any audio was looked at).
        coverage: text language -> fraction of written utterances that have that translation.
        elapsed: wall time in seconds.
        extra: corpus-specific numbers (e.g. files synthesised vs. reused).
    """

    corpus: str
    out_dir: str
    dirs: dict[str, int] = field(default_factory=dict)
    used: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    hours: float = 0.0
    n_sentences: int = 0
    coverage: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def skip(self, reason: str, n: int = 1) -> None:
        """Count ``n`` clips left out for ``reason``."""
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return asdict(self)

    def summary(self) -> str:
        """A few human-readable lines: counts, skips by reason, per split and dir, time."""
        lines = [
            f"{self.corpus}: {self.used} clips used ({self.hours:.2f} h) from "
            f"{self.n_sentences} sentences, written to {self.out_dir} in {self.elapsed:.1f} s"
        ]
        if self.skipped:
            parts = ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items()))
            lines.append(f"  skipped {sum(self.skipped.values())}: {parts}")
        if self.splits:
            lines.append("  per split: " + ", ".join(f"{k}={v}" for k, v in self.splits.items()))
        for name, n in sorted(self.dirs.items()):
            lines.append(f"  {name}: {n} utterances")
        if self.coverage:
            cov = ", ".join(f"{k}={v:.1%}" for k, v in self.coverage.items())
            lines.append(f"  translation coverage: {cov}")
        for k, v in self.extra.items():
            lines.append(f"  {k}: {v}")
        return "\n".join(lines)

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (without the run-dependent ``elapsed``); returns path."""
        p = Path(path)
        d = self.to_dict()
        d.pop("elapsed")
        atomic_write_text(p, json.dumps(d, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        return p


def get_preparer(name: str) -> Callable[..., PrepReport]:
    """The ``prepare_<corpus>`` function registered under ``name``.

    Raises:
        KeyError: ``name`` is not in :data:`PREPARERS` (the known names are listed).
    """
    if name not in PREPARERS:
        raise KeyError(f"unknown corpus {name!r}; known: {', '.join(sorted(PREPARERS))}")
    module, func = PREPARERS[name]
    return getattr(importlib.import_module(module), func)


__all__ = ["PREPARERS", "PrepReport", "get_preparer"]
