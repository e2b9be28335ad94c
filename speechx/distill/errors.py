"""Errors raised by distillation training.

They live here rather than in :mod:`speechx.errors` only because that file was being edited by
others while this package was written; both subclass :class:`speechx.errors.SpeechxError`, so
``except SpeechxError`` catches them.  The integrator may move them into ``speechx.errors``.
"""

from __future__ import annotations

from speechx.errors import SpeechxError


class ConfigError(SpeechxError, ValueError):
    """A training config (YAML file or ``key=value`` override) that cannot be used.

    The message names the offending key and says what is wrong with its value.
    """


class TrainingError(SpeechxError, RuntimeError):
    """A training run that cannot start or continue (no data, no targets, bad checkpoint)."""
