"""Speech-teacher targets: a trained speechx encoder's embeddings of a data dir's utterances.

Speech-to-speech distillation trains a small student to reproduce a big speech encoder's
embeddings on unlabeled speech: no transcript is needed, only audio.  The targets are computed
once per data dir and teacher and stored the way the text teacher stage stores its embeddings,
so :func:`speechx.distill.targets.load_targets` reads them unchanged (field ``"speech"``)::

    <data_dir>/teacher/speech-<hash>/ids.txt         sorted utterance ids, one per line
    <data_dir>/teacher/speech-<hash>/speech.npy      float32 [N, D], L2-normalised rows
    <data_dir>/teacher/speech-<hash>/manifest.json   the teacher, the inputs' hash, the counts

``<hash>`` is 12 hex digits of the SHA-256 of the model's ``config.json`` (as parsed JSON) and
``model.safetensors`` (:func:`speech_teacher_id`): another model, or the same model retrained,
gets another directory.  A utterance too short for the teacher gets a NaN row (training drops
it with a warning, as it drops utterances without a text).

Encoding runs in blocks of utterances, each written atomically to
``speech-<hash>/.partial-<inputs hash>/`` as soon as it is done, so an interrupted run resumes
with the blocks it finished; the final files replace the old ones in the order manifest (removed
first), ids, array, manifest (written last).  A dir whose manifest matches the teacher and the
inputs (utterance ids with their audio paths and segments) is skipped without loading the model.

Rows are taken, before any audio is encoded, from

* ``parts``: the finished targets of the parts of a split of the dir (``speechx teacher-embed
  --nj``, one job per part, merged here);
* feature stores (:mod:`speechx.distill.features`) of the teacher's frozen part: a teacher whose
  backbone was frozen in training (the Whisper-base demo model, for one) was trained on cached
  frames, and only its head has to run on them.  A store is used only when its frames match
  what the teacher computes from the audio, checked on a few utterances, and each item's frame
  count matches its duration.  Stored frames are float16, so these rows agree with encoding
  from audio to about 1e-3 (cosine above 0.9999).

>>> teacher = SpeechTeacher("exp/demo/model")                                # doctest: +SKIP
>>> res = embed_speech_data_dir("data/fillets_nl_train", teacher)           # doctest: +SKIP
>>> load_targets("data/fillets_nl_train", teacher.teacher_id, "speech")      # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from speechx.audio import audio_info, load_audio
from speechx.data.kaldi import KaldiDir
from speechx.distill.config import SPEECH_FIELD, DistillConfig
from speechx.distill.errors import TrainingError
from speechx.distill.features import FeatureStore, pad_features
from speechx.errors import DataDirError, ModelError, TeacherError
from speechx.models.encoder import CONFIG_NAME, WEIGHTS_NAME, SpeechEncoder, read_config
from speechx.teachers.cache import atomic_write
from speechx.teachers.embed import IDS_FILE, MANIFEST, load_teacher_embeddings, teacher_dir

log = logging.getLogger("speechx.distill")

#: prefix of a speech teacher's id (the rest is a hash of the model)
ID_PREFIX = "speech-"
#: utterances per block written while encoding (the unit of resumption)
BLOCK_UTTS = 256
#: frames per forward pass of the teacher's head over stored features
_HEAD_BATCH_FRAMES = 40000
#: a stored item whose frame count is this far from its duration's is not used
_FRAME_SLACK = 2
#: largest relative difference between stored and recomputed frames of one utterance
_STORE_TOLERANCE = 2e-2


def speech_teacher_id(model_dir: str | os.PathLike) -> str:
    """The teacher id of a speechx model dir: ``speech-`` and 12 hex digits of the SHA-256 of
    its ``config.json`` (parsed, keys sorted) and ``model.safetensors`` (bytes).

    Raises:
        ModelError: the directory, its config or its weights are missing or unreadable.
    """
    d = Path(model_dir)
    if not d.is_dir():
        raise ModelError(f"{d}: speech teacher model directory not found")
    read_config(d)  # a speechx encoder dir, or a one-line error saying what it is not
    weights = d / WEIGHTS_NAME
    if not weights.is_file():
        raise ModelError(f"{weights}: weights file not found")
    h = hashlib.sha256()
    config = json.loads((d / CONFIG_NAME).read_text("utf-8"))
    h.update(json.dumps(config, sort_keys=True).encode())
    with open(weights, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return ID_PREFIX + h.hexdigest()[:12]


class SpeechTeacher:
    """A trained speechx encoder dir used as a teacher; the model is loaded on first use.

    Args:
        model_dir: a directory written by ``SpeechEncoder.save_pretrained``.
        encoder: the already loaded model of ``model_dir`` (optional).

    Attributes:
        model_dir: the directory.
        teacher_id: :func:`speech_teacher_id` of it.
        dim: the embedding dimension (from its config, without loading weights).

    Raises:
        ModelError: as :func:`speech_teacher_id`.
    """

    def __init__(self, model_dir: str | os.PathLike, *, encoder: SpeechEncoder | None = None):
        self.model_dir = Path(model_dir)
        self.teacher_id = speech_teacher_id(self.model_dir)
        self.dim = int(read_config(self.model_dir).embed_dim)
        self._encoder = encoder

    @property
    def name(self) -> str:
        """``speech:<model dir>``."""
        return f"speech:{self.model_dir}"

    @property
    def encoder(self) -> SpeechEncoder:
        """The model, loaded once, in eval mode."""
        if self._encoder is None:
            log.info("speech teacher %s: loading %s", self.teacher_id, self.model_dir)
            self._encoder = SpeechEncoder.from_pretrained(self.model_dir)
        return self._encoder.eval()

    def __repr__(self) -> str:
        return f"SpeechTeacher({str(self.model_dir)!r}, id={self.teacher_id})"


@dataclass
class SpeechTargets:
    """What :func:`embed_speech_data_dir` did for one data dir.

    Attributes:
        out_dir: ``<data_dir>/teacher/<teacher_id>``.
        n_utts: utterances of the dir (rows written).
        n_encoded: utterances encoded from audio in this call.
        n_from_features: rows computed from a feature store of the teacher's frozen part.
        n_from_parts: rows taken from the finished parts of a split.
        n_resumed: rows taken from blocks an interrupted run had finished.
        n_missing: NaN rows (audio too short for the teacher).
        up_to_date: nothing was done: the stored targets were already current.
    """

    out_dir: Path
    n_utts: int
    n_encoded: int = 0
    n_from_features: int = 0
    n_from_parts: int = 0
    n_resumed: int = 0
    n_missing: int = 0
    up_to_date: bool = False

    def describe(self) -> str:
        """One line: the dir and where its rows came from."""
        if self.up_to_date:
            return f"{self.out_dir}: {self.n_utts} utterances, up to date"
        parts = [
            f"{n} {what}"
            for n, what in (
                (self.n_encoded, "encoded"),
                (self.n_from_features, "from cached features"),
                (self.n_from_parts, "from split parts"),
                (self.n_resumed, "resumed"),
                (self.n_missing, "too short (NaN)"),
            )
            if n
        ]
        return f"{self.out_dir}: {self.n_utts} utterances ({', '.join(parts) or 'none'})"


def _as_teacher(teacher: SpeechTeacher | str | os.PathLike) -> SpeechTeacher:
    return teacher if isinstance(teacher, SpeechTeacher) else SpeechTeacher(teacher)


def _inputs_sha256(data_dir: Path, kdir: KaldiDir, ids: list[str]) -> str:
    """SHA-256 over every utterance's audio source: id, wav.scp entry and segment."""
    h = hashlib.sha256()
    for u in ids:
        if kdir.segments and u not in kdir.segments:
            raise DataDirError(f"{data_dir}: utterance {u!r} has no line in segments")
        rec = kdir.recording_id(u)
        if rec not in kdir.wav_scp:
            raise DataDirError(f"{data_dir}: utterance {u!r}: recording {rec!r} is not in wav.scp")
        path = kdir.wav_scp[rec]
        start, end = kdir.segment(u)
        h.update(f"{u}\t{path}\t{start}\t{end}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _read_manifest(out: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _ids_sha256(ids: Sequence[str]) -> str:
    h = hashlib.sha256()
    for u in ids:
        h.update(u.encode("utf-8", "surrogatepass") + b"\n")
    return h.hexdigest()


def speech_targets_current(
    data_dir: str | os.PathLike, teacher: SpeechTeacher | str | os.PathLike
) -> bool:
    """Whether ``data_dir`` holds finished targets of ``teacher`` for its current utterances.

    Raises:
        DataDirError: the data dir cannot be read.
        ModelError: ``teacher`` is not a usable model dir.
    """
    teacher = _as_teacher(teacher)
    d = Path(data_dir)
    kdir = KaldiDir.read(d)
    ids = kdir.utt_ids
    return _is_current(
        teacher_dir(d, teacher.teacher_id), teacher, ids, _inputs_sha256(d, kdir, ids)
    )


def _is_current(out: Path, teacher: SpeechTeacher, ids: list[str], inputs_sha: str) -> bool:
    m = _read_manifest(out)
    return (
        m.get("teacher_id") == teacher.teacher_id
        and m.get("ids_sha256") == _ids_sha256(ids)
        and m.get("inputs_sha256") == inputs_sha
        and m.get("complete") is True
        and (out / IDS_FILE).is_file()
        and (out / f"{SPEECH_FIELD}.npy").is_file()
    )


def embed_speech_data_dir(
    data_dir: str | os.PathLike,
    teacher: SpeechTeacher | str | os.PathLike,
    *,
    batch_size: int = 16,
    block_size: int = BLOCK_UTTS,
    feature_stores: Sequence[str | os.PathLike] | None = None,
    store_name: str | None = None,
    parts: Sequence[str | os.PathLike] = (),
    num_threads: int | None = None,
    show_progress: bool | None = None,
) -> SpeechTargets:
    """Write the speech teacher's embedding of every utterance of ``data_dir`` (module doc).

    Args:
        data_dir: a Kaldi data dir (``wav.scp`` and ``utt2spk`` are enough; no ``text``).
        teacher: a :class:`SpeechTeacher` or its model dir.
        batch_size: utterances per forward pass (``SpeechEncoder.encode``).
        block_size: utterances per block written while encoding.
        feature_stores: feature stores of the teacher's frozen part to take rows from: store
            dirs, or dirs holding stores.  None looks in ``<model dir>/../features`` (where a
            training run that wrote ``exp/<tag>/model`` keeps them); ``()`` uses none.
        store_name: the data dir's name in the stores' item ids (``<name>/<utt>``); default
            the dir's own name (a part of a split passes its parent's).
        parts: data dirs that are the parts of a split of ``data_dir`` whose targets of this
            teacher are finished (the rows are taken from them).
        num_threads: torch threads while encoding (None: torch's setting).
        show_progress: a tqdm bar (None: on a terminal only).

    Returns:
        A :class:`SpeechTargets` saying where the rows came from.

    Raises:
        DataDirError: the data dir cannot be read, or an utterance has no audio entry.
        AudioError: an utterance's audio cannot be read (named).
        ModelError: ``teacher`` is not a usable model dir.
        TeacherError: a part's targets are unreadable.
    """
    teacher = _as_teacher(teacher)
    d = Path(data_dir)
    kdir = KaldiDir.read(d)
    ids = kdir.utt_ids
    inputs_sha = _inputs_sha256(d, kdir, ids)
    out = teacher_dir(d, teacher.teacher_id)
    if _is_current(out, teacher, ids, inputs_sha):
        return SpeechTargets(out, len(ids), up_to_date=True)
    out.mkdir(parents=True, exist_ok=True)
    res = SpeechTargets(out, len(ids))
    rows = np.full((len(ids), teacher.dim), np.nan, dtype=np.float32)
    done = np.zeros(len(ids), dtype=bool)
    pos = {u: i for i, u in enumerate(ids)}

    for part in parts:
        res.n_from_parts += _rows_from_part(Path(part), teacher, pos, rows, done)
    partial = out / f".partial-{inputs_sha[:12]}"
    for stale in out.glob(".partial-*"):
        if stale != partial:
            shutil.rmtree(stale, ignore_errors=True)
    if partial.is_dir():
        res.n_resumed = _rows_from_blocks(partial, pos, rows, done)
        if res.n_resumed:
            log.info("%s: resuming, %d utterances from finished blocks", out, res.n_resumed)
    if not done.all():
        todo = [ids[i] for i in np.flatnonzero(~done)]
        stores = _store_dirs(teacher, feature_stores)
        if stores and teacher.encoder.cache_point is not None:
            name = store_name or d.name
            for store in stores:
                todo = [u for u in ids if not done[pos[u]]]
                if not todo:
                    break
                res.n_from_features += _rows_from_store(
                    store, teacher, kdir, name, todo, pos, rows, done
                )
        todo = [u for u in ids if not done[pos[u]]]
    else:
        todo = []
    if todo:
        encoded, short = _encode_blocks(
            d,
            kdir,
            teacher,
            todo,
            partial,
            rows,
            pos,
            batch_size=batch_size,
            block_size=block_size,
            num_threads=num_threads,
            show_progress=show_progress,
        )
        res.n_encoded, res.n_missing = encoded, len(short)
        if short:
            log.warning(
                "%s: %d utterances are too short for the speech teacher (at least %d samples "
                "at %d Hz), their targets are NaN (e.g. %s)",
                d,
                len(short),
                teacher.encoder.min_input_samples,
                teacher.encoder.sample_rate,
                short[0],
            )
    res.n_missing = int((~np.isfinite(rows).all(axis=1)).sum())
    _write_outputs(out, teacher, ids, inputs_sha, rows, res)
    shutil.rmtree(partial, ignore_errors=True)
    return res


# --------------------------------------------------------------------------- sources of rows
def _rows_from_part(
    part: Path, teacher: SpeechTeacher, pos: dict[str, int], rows: np.ndarray, done: np.ndarray
) -> int:
    out = teacher_dir(part, teacher.teacher_id)
    if _read_manifest(out).get("complete") is not True:
        raise TeacherError(f"{out}: the targets of this part are not finished")
    part_ids, arr = load_teacher_embeddings(part, teacher.teacher_id, SPEECH_FIELD)
    return _fill_rows(part_ids, arr, pos, rows, done)


def _rows_from_blocks(
    partial: Path, pos: dict[str, int], rows: np.ndarray, done: np.ndarray
) -> int:
    n = 0
    for block in sorted(partial.glob("block-*.npz")):
        try:
            with np.load(block) as z:
                block_ids = [str(u) for u in z["ids"]]
                emb = z["emb"]
        except (OSError, ValueError, KeyError) as exc:
            log.warning("%s: unreadable block (%s), encoding it again", block, exc)
            block.unlink(missing_ok=True)
            continue
        if emb.shape != (len(block_ids), rows.shape[1]):
            block.unlink(missing_ok=True)
            continue
        n += _fill_rows(block_ids, emb, pos, rows, done)
    return n


def _fill_rows(
    ids: Sequence[str], emb: np.ndarray, pos: dict[str, int], rows: np.ndarray, done: np.ndarray
) -> int:
    """Copy ``emb[j]`` into ``rows[pos[ids[j]]]`` for the ids in ``pos`` whose row is not yet
    ``done``, marking them done; returns how many rows were filled."""
    n = 0
    for j, u in enumerate(ids):
        i = pos.get(u)
        if i is not None and not done[i]:
            rows[i] = emb[j]
            done[i] = True
            n += 1
    return n


def _store_dirs(
    teacher: SpeechTeacher, feature_stores: Sequence[str | os.PathLike] | None
) -> list[Path]:
    """Finished feature stores among ``feature_stores`` (stores, or dirs holding stores)."""
    roots = (
        [teacher.model_dir.resolve().parent / "features"]
        if feature_stores is None
        else [Path(p) for p in feature_stores]
    )
    out: list[Path] = []
    for root in roots:
        if (root / ".done").is_file():
            out.append(root)
        elif root.is_dir():
            out += sorted(p.parent for p in root.glob("*/.done"))
        elif feature_stores is not None:
            log.warning("feature store %s: not found, not used", root)
    return out


def _rows_from_store(
    path: Path,
    teacher: SpeechTeacher,
    kdir: KaldiDir,
    name: str,
    todo: list[str],
    pos: dict[str, int],
    rows: np.ndarray,
    done: np.ndarray,
) -> int:
    """Rows of ``todo`` computed by the teacher's head from a matching feature store."""
    enc = teacher.encoder
    try:
        meta = json.loads((path / "meta.json").read_text("utf-8"))
        store = FeatureStore.open(path)
    except (OSError, ValueError, TrainingError) as exc:
        log.warning("feature store %s: unreadable (%s), not used", path, exc)
        return 0
    want = {
        "hidden_size": enc.backbone.hidden_size,
        "cache_point": enc.cache_point,
        "backbone": enc.config.backbone,
    }
    if any(meta.get(k) != v for k, v in want.items()):
        log.debug("feature store %s: %s, not %s", path, meta, want)
        return 0
    index = {item: i for i, item in enumerate(store.ids)}
    matches = [(u, index[f"{name}/{u}"]) for u in todo if f"{name}/{u}" in index]
    if not matches:
        return 0
    frames = store.num_frames
    matches = _frame_counts_agree(enc, kdir, matches, frames)
    if not matches:
        return 0
    problem = _store_mismatch(enc, kdir, store, matches)
    if problem:
        log.warning(
            "feature store %s does not hold %s's frozen-part features (%s): not used",
            path,
            teacher.model_dir,
            problem,
        )
        return 0
    order = sorted(matches, key=lambda m: int(frames[m[1]]))
    batch: list[tuple[str, int]] = []
    n = 0
    with torch.inference_mode():
        for k, m in enumerate(order):
            batch.append(m)
            last = k == len(order) - 1
            if last or int(frames[order[k + 1][1]]) * (len(batch) + 1) > _HEAD_BATCH_FRAMES:
                items = [{"features": store.item(i), "seconds": 0.0} for _, i in batch]
                padded = pad_features(items)
                emb = enc(features=padded["features"], frame_lengths=padded["frame_lengths"])
                vecs = emb["embeddings"].float().cpu().numpy()
                for (u, _), v in zip(batch, vecs, strict=True):
                    rows[pos[u]] = v
                    done[pos[u]] = True
                n += len(batch)
                batch = []
    log.info("%s: %d utterances from the cached features in %s", name, n, path)
    return n


def _num_samples(kdir: KaldiDir, utt: str, sample_rate: int) -> int | None:
    """Samples of ``utt`` at ``sample_rate`` from ``utt2dur`` or its segment (None: unknown)."""
    if kdir.segments:
        start, end = kdir.segment(utt)
        if start is not None and end is not None:
            return int(round((end - start) * sample_rate))
    if utt in kdir.utt2dur:
        return int(round(kdir.utt2dur[utt] * sample_rate))
    return None


def _frame_counts_agree(
    enc: SpeechEncoder, kdir: KaldiDir, matches: list[tuple[str, int]], frames: np.ndarray
) -> list[tuple[str, int]]:
    """The matches whose stored frame count is what their duration gives (when it is known)."""
    keep = []
    for u, i in matches:
        n = _num_samples(kdir, u, enc.sample_rate)
        if n is not None:
            expect = int(enc.backbone.output_lengths(torch.tensor([n]))[0])
            if abs(expect - int(frames[i])) > _FRAME_SLACK:
                continue
        keep.append((u, i))
    if len(keep) < len(matches):
        log.info(
            "%d stored items have a frame count that does not fit their duration: encoded "
            "from audio instead",
            len(matches) - len(keep),
        )
    return keep


def _store_mismatch(
    enc: SpeechEncoder, kdir: KaldiDir, store: FeatureStore, matches: list[tuple[str, int]]
) -> str:
    """Recompute the frames of the shortest and a median-length match from audio; returns what
    differs ("" when the store holds this model's features of this audio)."""
    by_len = sorted(matches, key=lambda m: int(store.num_frames[m[1]]))
    probes = list(dict.fromkeys([by_len[0], by_len[len(by_len) // 2]]))
    for u, i in probes:
        start, end = kdir.segment(u)
        wave = load_audio(kdir.audio_path(u), enc.sample_rate, start=start, end=end)
        x = torch.from_numpy(wave)[None]
        hidden, lengths = enc.frozen_features(x, torch.tensor([x.shape[1]]))
        fresh = hidden[0, : int(lengths[0])].float().numpy()
        stored = store.item(i).astype(np.float32)
        if fresh.shape != stored.shape:
            return f"utterance {u}: {stored.shape[0]} frames stored, {fresh.shape[0]} computed"
        rel = float(np.linalg.norm(fresh - stored) / max(np.linalg.norm(fresh), 1e-12))
        if rel > _STORE_TOLERANCE:
            return f"utterance {u}: stored frames differ by {rel:.3g} (relative)"
    return ""


# --------------------------------------------------------------------------- encoding
def _encode_blocks(
    d: Path,
    kdir: KaldiDir,
    teacher: SpeechTeacher,
    todo: list[str],
    partial: Path,
    rows: np.ndarray,
    pos: dict[str, int],
    *,
    batch_size: int,
    block_size: int,
    num_threads: int | None,
    show_progress: bool | None,
) -> tuple[int, list[str]]:
    """Encode ``todo`` from audio in blocks saved to ``partial``; returns (encoded, too short)."""
    enc = teacher.encoder
    sr = enc.sample_rate
    seconds: dict[str, float] = {}
    for u in todo:
        start, end = kdir.segment(u)
        if start is not None and end is not None:
            seconds[u] = end - start
        else:
            seconds[u] = audio_info(kdir.audio_path(u)).duration
    short = [u for u in todo if seconds[u] * sr < enc.min_input_samples]
    long_enough = [u for u in todo if seconds[u] * sr >= enc.min_input_samples]
    # similar lengths share a block, so its batches carry little padding
    order = sorted(long_enough, key=lambda u: seconds[u])
    blocks = [order[i : i + block_size] for i in range(0, len(order), block_size)]
    partial.mkdir(parents=True, exist_ok=True)
    first = 1 + max((int(p.stem.split("-")[1]) for p in partial.glob("block-*.npz")), default=-1)
    total = sum(seconds[u] for u in order)
    log.info(
        "%s: encoding %d utterances (%.1f min of audio) with the speech teacher %s",
        d,
        len(order),
        total / 60,
        teacher.teacher_id,
    )
    bar = tqdm(
        total=len(order),
        disable=None if show_progress is None else not show_progress,
        unit="utt",
        desc=f"speech teacher {d.name}",
        dynamic_ncols=True,
    )
    t0, audio = time.time(), 0.0
    with bar:
        for b, block in enumerate(blocks):
            inputs: list[Any] = []
            for u in block:
                start, end = kdir.segment(u)
                if start is None:
                    inputs.append(kdir.audio_path(u))
                else:
                    inputs.append((load_audio(kdir.audio_path(u), sr, start=start, end=end), sr))
            emb = enc.encode(
                inputs, batch_size=batch_size, show_progress=False, num_threads=num_threads
            )
            path = partial / f"block-{first + b:05d}.npz"
            atomic_write(
                path,
                lambda fh, e=emb, ids=block: np.savez(fh, ids=np.asarray(ids), emb=e),
            )
            for u, v in zip(block, emb, strict=True):
                rows[pos[u]] = v
            audio += sum(seconds[u] for u in block)
            bar.update(len(block))
            log.info(
                "%s: block %d/%d done (%.1f audio-s/s)",
                d.name,
                b + 1,
                len(blocks),
                audio / max(time.time() - t0, 1e-9),
            )
    return len(order), short


def _write_outputs(
    out: Path,
    teacher: SpeechTeacher,
    ids: list[str],
    inputs_sha: str,
    rows: np.ndarray,
    res: SpeechTargets,
) -> None:
    """Replace the stored targets: manifest and array removed first, manifest written last."""
    (out / MANIFEST).unlink(missing_ok=True)
    (out / f"{SPEECH_FIELD}.npy").unlink(missing_ok=True)
    atomic_write(out / IDS_FILE, lambda fh: fh.write("".join(f"{u}\n" for u in ids).encode()))
    atomic_write(out / f"{SPEECH_FIELD}.npy", lambda fh: np.save(fh, rows, allow_pickle=False))
    manifest = {
        "teacher_id": teacher.teacher_id,
        "teacher_name": teacher.name,
        "model_dir": str(teacher.model_dir.resolve()),
        "dim": teacher.dim,
        "n": len(ids),
        "ids_sha256": _ids_sha256(ids),
        "inputs_sha256": inputs_sha,
        "fields": {
            SPEECH_FIELD: {
                "n_missing": res.n_missing,
                "n_encoded": res.n_encoded,
                "n_from_features": res.n_from_features,
                "n_from_parts": res.n_from_parts,
                "n_resumed": res.n_resumed,
            }
        },
        "complete": True,
    }
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    atomic_write(out / MANIFEST, lambda fh: fh.write(text.encode("utf-8")))


# --------------------------------------------------------------------------- configs
def speech_target_dirs(cfg: DistillConfig) -> list[str]:
    """The data dirs a distillation config needs speech-teacher targets for: its training
    sources with ``fields: [speech]`` that take ``data.speech_teacher`` (not their own
    ``teacher_id``), then its dev dirs (for the logged dev cosine), without repeats."""
    d = cfg.data
    train = [
        s.dir
        for s in d.train
        if (s.fields or d.target_fields) == [SPEECH_FIELD] and not s.teacher_id
    ]
    return list(dict.fromkeys([*train, *(s.dir for s in d.dev)]))
