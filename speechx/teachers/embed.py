"""The teacher stage: embed the texts of a Kaldi data dir into ``<data_dir>/teacher/<id>/``.

Output layout::

    <data_dir>/teacher/<teacher_id>/ids.txt          sorted utterance ids, one per line
    <data_dir>/teacher/<teacher_id>/text.npy         float32 [N, D], transcript embeddings
    <data_dir>/teacher/<teacher_id>/text.<lang>.npy  float32 [N, D], translation embeddings
    <data_dir>/teacher/<teacher_id>/manifest.json    what each .npy was made from

Rows follow ``ids.txt``.  An utterance without that field (no line, or an empty one) gets a row
of NaN.  Every file is written atomically, and a field whose ids and texts are unchanged since
the last run is skipped, so the stage can be rerun freely.  Texts go through
:class:`~speechx.teachers.cache.CachedTeacher`, so a sentence shared by several data dirs is
encoded once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from speechx.data import KaldiDir
from speechx.errors import TeacherError
from speechx.teachers.base import TextTeacher, check_language_coverage
from speechx.teachers.cache import CachedTeacher, atomic_write
from speechx.teachers.registry import load_teacher

TEXT_FIELD = "text"
MANIFEST = "manifest.json"
IDS_FILE = "ids.txt"


def teacher_dir(data_dir: str | os.PathLike, teacher_id: str) -> Path:
    """``<data_dir>/teacher/<teacher_id>``."""
    return Path(data_dir) / "teacher" / teacher_id


def data_dir_fields(kdir: KaldiDir) -> list[str]:
    """The fields a data dir has: ``"text"`` (if it has a ``text`` file), then ``"text.<lang>"``
    for every translation, sorted."""
    fields = [TEXT_FIELD] if kdir.text else []
    return fields + [f"{TEXT_FIELD}.{lang}" for lang in kdir.languages]


def field_texts(kdir: KaldiDir, field: str) -> dict[str, str]:
    """The ``utt -> text`` mapping behind ``field`` (``"text"`` or ``"text.<lang>"``).

    Raises:
        TeacherError: ``field`` is neither form.
    """
    if field == TEXT_FIELD:
        return kdir.text
    prefix = TEXT_FIELD + "."
    if field.startswith(prefix) and len(field) > len(prefix):
        return kdir.translations.get(field[len(prefix) :], {})
    raise TeacherError(f"unknown teacher field {field!r}: expected 'text' or 'text.<lang>'")


def embed_data_dir(
    data_dir: str | os.PathLike,
    teacher: TextTeacher | str,
    *,
    fields: list[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    batch_size: int = 64,
    show_progress: bool | None = None,
) -> Path:
    """Write the teacher embeddings of every utterance of ``data_dir`` (see the module doc).

    Args:
        data_dir: a Kaldi data dir (read with :meth:`speechx.data.KaldiDir.read`).
        teacher: a teacher, or a name for :func:`~speechx.teachers.registry.load_teacher`.
        fields: which of ``"text"`` / ``"text.<lang>"`` to embed (default: all the dir has).
        cache_dir: the text-embedding cache (default ``$SPEECHX_CACHE`` or
            ``~/.cache/speechx/teachers``); ignored if ``teacher`` is already a
            :class:`CachedTeacher` or ``use_cache`` is false.
        use_cache: put a :class:`CachedTeacher` in front of ``teacher``.
        batch_size, show_progress: passed to ``teacher.encode``.

    Returns:
        The output directory ``<data_dir>/teacher/<teacher_id>``.

    Raises:
        DataDirError: ``data_dir`` cannot be read.
        TeacherError: a requested field does not exist in the dir, or the teacher fails.
    """
    kdir = KaldiDir.read(data_dir)
    if isinstance(teacher, str):
        teacher = load_teacher(teacher)
    if use_cache and not isinstance(teacher, CachedTeacher):
        teacher = CachedTeacher(teacher, cache_dir)
    have = data_dir_fields(kdir)
    wanted = have if fields is None else list(dict.fromkeys(fields))
    for f in wanted:
        field_texts(kdir, f)  # validates the name
        if f not in have:
            raise TeacherError(
                f"{data_dir}: has no {'text' if f == TEXT_FIELD else f} file for field {f!r}; "
                f"fields it has: {have or 'none'}"
            )
    # Texts in a language the teacher was not trained on still embed, but poorly: say so.
    langs = {lang for lang in kdir.utt2lang.values() if lang} if TEXT_FIELD in wanted else set()
    langs |= {f.split(".", 1)[1] for f in wanted if f != TEXT_FIELD}
    check_language_coverage(teacher, sorted(langs), str(data_dir))
    ids = kdir.utt_ids
    out = teacher_dir(data_dir, teacher.teacher_id)
    out.mkdir(parents=True, exist_ok=True)
    ids_hash = _sha256_lines(ids)
    manifest = _read_manifest(out)
    if (
        manifest.get("ids_sha256") != ids_hash
        or manifest.get("dim") != teacher.dim
        or not (out / IDS_FILE).is_file()
    ):
        # Every existing field file is stale: drop the manifest first so that a crash from here
        # on can never pair old arrays with the new ids.txt.
        (out / MANIFEST).unlink(missing_ok=True)
        for old in out.glob(f"{TEXT_FIELD}*.npy"):
            old.unlink()
        _write_text(out / IDS_FILE, "".join(f"{u}\n" for u in ids))
        manifest = {
            "teacher_id": teacher.teacher_id,
            "teacher_name": teacher.name,
            "dim": teacher.dim,
            "n": len(ids),
            "ids_sha256": ids_hash,
            "fields": {},
        }
    for f in wanted:
        mapping = field_texts(kdir, f)
        texts = [mapping.get(u, "").strip() for u in ids]
        texts_hash = _sha256_lines(f"{u}\t{t}" for u, t in zip(ids, texts, strict=True))
        entry = manifest["fields"].get(f, {})
        if entry.get("texts_sha256") == texts_hash and (out / f"{f}.npy").is_file():
            continue
        emb = np.full((len(ids), teacher.dim), np.nan, dtype=np.float32)
        rows = [i for i, t in enumerate(texts) if t]
        unique = list(dict.fromkeys(texts[i] for i in rows))  # a repeated line is encoded once
        if unique:
            vecs = teacher.encode(unique, batch_size=batch_size, show_progress=show_progress)
            where = {t: j for j, t in enumerate(unique)}
            emb[rows] = vecs[[where[texts[i]] for i in rows]]
        atomic_write(out / f"{f}.npy", lambda fh, a=emb: np.save(fh, a, allow_pickle=False))
        manifest["fields"][f] = {"texts_sha256": texts_hash, "n_missing": len(ids) - len(rows)}
        _write_text(out / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    if not (out / MANIFEST).is_file():  # nothing to embed, but record the ids
        _write_text(out / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return out


def load_teacher_embeddings(
    data_dir: str | os.PathLike, teacher_id: str, field: str = TEXT_FIELD, *, mmap: bool = False
) -> tuple[list[str], np.ndarray]:
    """Read what :func:`embed_data_dir` wrote for one field.

    Returns:
        ``(ids, embeddings)``: the sorted utterance ids and float32 ``[len(ids), D]`` whose
        rows follow them (NaN rows for utterances without the field).  With ``mmap`` the array
        is a read-only memory map.

    Raises:
        TeacherError: ``ids.txt`` or ``<field>.npy`` is missing (the message names the file
            and lists the fields present), or the array does not match ``ids.txt``.
    """
    out = teacher_dir(data_dir, teacher_id)
    ids_path, arr_path = out / IDS_FILE, out / f"{field}.npy"
    if not ids_path.is_file():
        raise TeacherError(
            f"{ids_path}: missing; run the teacher stage (embed_data_dir) for "
            f"teacher {teacher_id!r} on {data_dir}"
        )
    if not arr_path.is_file():
        present = sorted(p.stem for p in out.glob("*.npy"))
        raise TeacherError(
            f"{arr_path}: missing; fields embedded for teacher {teacher_id!r}: {present or 'none'}"
        )
    ids = ids_path.read_text(encoding="utf-8").split()
    try:
        emb = np.load(arr_path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise TeacherError(f"{arr_path}: cannot read: {exc}") from exc
    if emb.ndim != 2 or emb.shape[0] != len(ids) or emb.dtype != np.float32:
        raise TeacherError(
            f"{arr_path}: {emb.dtype} array of shape {emb.shape} does not match {len(ids)} ids "
            f"in {ids_path} (expected float32 [{len(ids)}, D]); rerun embed_data_dir"
        )
    return ids, emb


def _sha256_lines(lines: Iterable[str]) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(str(line).encode("utf-8", "surrogatepass") + b"\n")
    return h.hexdigest()


def _read_manifest(out: Path) -> dict:
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) and "fields" in manifest else {}


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
