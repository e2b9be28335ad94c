"""Make ``import data_prep`` find the repository package while these tests run.

``tests/conftest.py`` puts ``tests/`` on ``sys.path``, where this directory would be found as a
namespace package called ``data_prep`` and shadow the real one (the editable install's finder
runs after the path finder).  ``python -m pytest`` is unaffected because it puts the repository
root first; ``pytest`` alone needs this.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
_cached = sys.modules.get("data_prep")
if _cached is not None and getattr(_cached, "__file__", None) is None:
    del sys.modules["data_prep"]  # a namespace package picked up from tests/
