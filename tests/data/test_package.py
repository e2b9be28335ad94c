"""speechx.data exports the data layer, and importing it does not import torch."""

from __future__ import annotations

import subprocess
import sys

import speechx.data as data


def test_exports_resolve() -> None:
    for name in data.__all__:
        assert getattr(data, name) is not None, name
    assert set(data.__all__) <= set(dir(data))


def test_import_does_not_pull_torch() -> None:
    code = "import sys, speechx.data; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
