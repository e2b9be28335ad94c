"""Fixtures for distillation tests (the helpers live in distill_helpers.py)."""

from distill_helpers import make_data  # noqa: F401  (re-exported pytest fixture)
