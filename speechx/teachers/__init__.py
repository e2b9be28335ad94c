"""Text teachers: frozen multilingual sentence encoders that define the embedding space.

Start with :func:`load_teacher` (``"use-multilingual"`` by default, or ``"hf:<local dir>"``),
put a :class:`CachedTeacher` in front of it, and use :func:`embed_data_dir` for the recipe
stage that writes ``data/<set>/teacher/<teacher_id>/``.
"""

from speechx.teachers.base import TextTeacher, l2_normalise, safe_id
from speechx.teachers.cache import CachedTeacher, default_cache_dir
from speechx.teachers.embed import embed_data_dir, load_teacher_embeddings, teacher_dir
from speechx.teachers.hf import HFTeacherConfig, HFTextTeacher
from speechx.teachers.registry import (
    DEFAULT_TEACHER,
    TEACHER_PREFIXES,
    TEACHERS,
    known_teachers,
    load_teacher,
    register_teacher,
)
from speechx.teachers.use import USE_LANGUAGES, USEConfig, USETeacher

__all__ = [
    "DEFAULT_TEACHER",
    "TEACHERS",
    "TEACHER_PREFIXES",
    "USE_LANGUAGES",
    "CachedTeacher",
    "HFTeacherConfig",
    "HFTextTeacher",
    "TextTeacher",
    "USEConfig",
    "USETeacher",
    "default_cache_dir",
    "embed_data_dir",
    "known_teachers",
    "l2_normalise",
    "load_teacher",
    "load_teacher_embeddings",
    "register_teacher",
    "safe_id",
    "teacher_dir",
]
