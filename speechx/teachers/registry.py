"""Teacher names -> factories, and :func:`load_teacher`.

Two kinds of names exist: plain names from :data:`TEACHERS` (``"use-multilingual"``), and
``<prefix>:<argument>`` names from :data:`TEACHER_PREFIXES` (``"hf:/path/to/model_dir"``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from speechx.errors import TeacherError
from speechx.teachers.base import TextTeacher
from speechx.teachers.hf import HFTextTeacher
from speechx.teachers.use import USETeacher

DEFAULT_TEACHER = "use-multilingual"

#: Plain teacher names.  A factory takes the keyword options given to :func:`load_teacher`.
TEACHERS: dict[str, Callable[..., TextTeacher]] = {
    "use-multilingual": USETeacher,
}

#: ``<prefix>:<argument>`` teacher names.  A factory takes the argument, then the options.
TEACHER_PREFIXES: dict[str, Callable[..., TextTeacher]] = {
    "hf": HFTextTeacher,
}


def known_teachers() -> list[str]:
    """Every name :func:`load_teacher` accepts, prefixes written as ``"<prefix>:<...>"``."""
    return sorted(TEACHERS) + [f"{p}:<local dir>" for p in sorted(TEACHER_PREFIXES)]


def load_teacher(name: str = DEFAULT_TEACHER, **kwargs: Any) -> TextTeacher:
    """Build the text teacher called ``name`` with options ``kwargs``.

    Example:
        >>> load_teacher().dim                                      # doctest: +SKIP
        512
        >>> load_teacher("hf:/models/LaBSE", pooling="pooler")      # doctest: +SKIP

    Returns:
        An object satisfying :class:`~speechx.teachers.base.TextTeacher`.

    Raises:
        TeacherError: ``name`` is unknown (the message lists the known names), or the
            teacher rejects its options or its files.
    """
    if name in TEACHERS:
        return TEACHERS[name](**kwargs)
    prefix, sep, arg = name.partition(":")
    if sep and prefix in TEACHER_PREFIXES:
        if not arg:
            raise TeacherError(f"teacher name {name!r} needs an argument after {prefix + ':'!r}")
        return TEACHER_PREFIXES[prefix](arg, **kwargs)
    raise TeacherError(f"unknown teacher {name!r}; known teachers: {', '.join(known_teachers())}")


def register_teacher(name: str, factory: Callable[..., TextTeacher]) -> None:
    """Add a plain teacher name (for plugins and tests).

    Raises:
        TeacherError: ``name`` is already registered or contains ``":"``.
    """
    if name in TEACHERS or ":" in name:
        raise TeacherError(f"cannot register teacher {name!r}: taken or contains ':'")
    TEACHERS[name] = factory
