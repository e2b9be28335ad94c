"""Find where in hours of audio something is said: a searchable index of recording windows.

Long recordings are cut into windows (fixed, or snapped to speech found from frame energy or a
VAD: :mod:`speechx.speech_regions`), every window is embedded by a speech encoder, streamed
from disk (:func:`speechx.longform.encode_long`, so no recording is ever held whole in memory),
and the embeddings go into an :class:`~speechx.retrieval.EmbeddingIndex` (exact or FAISS) that
keeps, for each window, its recording, start and end::

    from speechx import SpeechEncoder, load_teacher
    from speechx.audio_search import AudioIndex, AudioIndexConfig

    enc = SpeechEncoder.from_pretrained("egs/fillets/exp/demo/model")
    index = AudioIndex.build(enc, ["day1.wav", "day2.wav"], AudioIndexConfig(boundaries="vad"))
    index.save("exp/search/index")                 # a directory, written atomically
    index = AudioIndex.load("exp/search/index")
    hits = index.search_text(load_teacher("use-multilingual"), ["Where is the key?"], top_k=5)
    hits[0][0]        # AudioHit(recording='day2', start=1843.2, end=1846.9, score=0.61, ...)
    index.search_audio(enc, ["question.wav"])      # a spoken query, in any language

Because the speech encoder was distilled into the teacher's multilingual space, a text query
in any language the teacher covers, or a spoken query in any language the encoder learnt,
finds speech in any other.

**Merging windows into hits.**  The windows that overlap a spoken sentence all score well, so
the nearest windows are merged (:func:`merge_windows`): among the ``candidates`` best windows
of a query, the windows of one recording that overlap or touch (within ``gap`` seconds) form
one cluster, and each cluster is one :class:`AudioHit`, ranked by its combined score.

- *Score* (``score="max"``, the default): the best window's cosine.  ``"soft"`` adds a reward
  for agreeing neighbours, ``tau * log(sum(exp((s_i - s_max) / tau)))`` over the span's core
  windows.  On the long-form evaluation (86 queries, en/nl/de text) it changed hit@1 by at most
  one query either way, so the simpler max is the default.
- *Span* (``span="intersection"``, the default): the *core* windows are those scoring at least
  ``best - span_margin`` that are linked to the best window through overlapping core windows;
  the hit's span is their intersection (the stretch every one of them covers, which is where a
  sentence that all of them contain must lie), falling back to the best window when the
  intersection is empty.  ``"union"`` (their union), ``"best"`` (the best window) and
  ``"weighted"`` (score-weighted mean start and end) are the alternatives.  On the evaluation
  of ``egs/fillets/run_longform.sh`` with fixed 4-s windows every 2 s the intersection had the
  smallest median start error (0.7-0.9 s against 1.0-1.2 s for the union and 0.7-1.0 s for the
  best window) and the best hit@1/hit@5 of the four; with speech-snapped windows (the default
  ``energy`` boundaries, or ``vad``) a window is usually one utterance and every span rule is
  within 0.05 s.  README.md has the numbers.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from speechx.audio import AudioSource, audio_info
from speechx.errors import AudioError, AudioIndexError, RetrievalError
from speechx.longform import LongformConfig, LongformEmbeddings, encode_long, window_bounds
from speechx.retrieval import BACKENDS, EmbeddingIndex, _replace_dir, read_index_meta
from speechx.speech_regions import RegionConfig, speech_regions, windows_in_regions

logger = logging.getLogger(__name__)

BOUNDARIES = ("fixed", "energy", "vad")
SPANS = ("intersection", "union", "best", "weighted")
SCORES = ("max", "soft")
INDEX_FILE = "audio_index.json"
WINDOWS_FILE = "windows.npz"
_FORMAT_VERSION = 1


# ------------------------------------------------------------------------------ configs
@dataclass(frozen=True)
class AudioIndexConfig:
    """How recordings are windowed and embedded.

    Attributes:
        window: window length in seconds (the longest window with speech boundaries).
        hop: seconds between fixed window starts (``None``: half a window); with speech
            boundaries, the hop of the fixed windows that cut a region longer than ``window``.
        boundaries: ``fixed`` (every ``hop``), ``energy`` or ``vad`` (windows snapped to
            speech regions, see :mod:`speechx.speech_regions`).
        regions: how speech regions are found (``energy``/``vad``); its ``method`` follows
            ``boundaries``.
        min_window: shortest window with speech boundaries, seconds.
        batch_size: windows per forward pass.
        block_seconds: audio read from disk per step.
    """

    window: float = 6.0
    hop: float | None = 2.0
    boundaries: str = "energy"
    regions: RegionConfig = field(default_factory=RegionConfig)
    min_window: float = 1.0
    batch_size: int = 8
    block_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.boundaries not in BOUNDARIES:
            raise AudioIndexError(
                f"unknown boundaries {self.boundaries!r}; expected one of {BOUNDARIES}"
            )
        if isinstance(self.regions, dict):  # from JSON
            object.__setattr__(self, "regions", RegionConfig(**self.regions))
        if self.boundaries != "fixed" and self.regions.method != self.boundaries:
            object.__setattr__(self, "regions", replace(self.regions, method=self.boundaries))
        self.longform()  # checks window, hop, batch_size, block_seconds
        if not 0 < self.min_window <= self.window:
            raise AudioIndexError(
                f"min_window must be in (0, window={self.window}] seconds, got {self.min_window}"
            )

    @property
    def hop_seconds(self) -> float:
        """The hop in seconds (``hop``, or half a window)."""
        return self.window / 2 if self.hop is None else self.hop

    def longform(self) -> LongformConfig:
        """The :class:`~speechx.longform.LongformConfig` of the fixed windows and batching."""
        return LongformConfig(
            window=self.window,
            hop=self.hop_seconds,
            batch_size=self.batch_size,
            block_seconds=self.block_seconds,
        )


@dataclass(frozen=True)
class MergeConfig:
    """How the best windows of a query are merged into hits (see the module docstring).

    Attributes:
        candidates: windows retrieved per query before merging; ``None`` picks
            ``max(64, 4 * top_k * windows_per_second_of_overlap)`` and widens the search when
            fewer than ``top_k`` hits come out.
        gap: windows of one recording this many seconds apart or closer are merged.
        span: ``intersection``, ``union``, ``best`` or ``weighted``.
        span_margin: core windows score at least ``best - span_margin``.
        score: ``max`` or ``soft``.
        tau: temperature of the ``soft`` score.
    """

    candidates: int | None = None
    gap: float = 0.0
    span: str = "intersection"
    span_margin: float = 0.05
    score: str = "max"
    tau: float = 0.02

    def __post_init__(self) -> None:
        if self.span not in SPANS:
            raise AudioIndexError(f"unknown span {self.span!r}; expected one of {SPANS}")
        if self.score not in SCORES:
            raise AudioIndexError(f"unknown score {self.score!r}; expected one of {SCORES}")
        if self.candidates is not None and self.candidates < 1:
            raise AudioIndexError(f"candidates must be >= 1, got {self.candidates}")
        if not (self.gap >= 0 and self.span_margin >= 0 and self.tau > 0):
            raise AudioIndexError(
                f"gap and span_margin must be >= 0 and tau > 0, got gap={self.gap}, "
                f"span_margin={self.span_margin}, tau={self.tau}"
            )


# ------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Recording:
    """One indexed recording: its id, where its audio is, and its length in seconds."""

    id: str
    path: str
    duration: float


@dataclass(frozen=True)
class WindowScore:
    """One window among a query's candidates: its row in the index, times and cosine."""

    index: int
    start: float
    end: float
    score: float


@dataclass(frozen=True)
class AudioHit:
    """A place in a recording that matches a query.

    Attributes:
        recording: the recording id.
        start, end: the hit's span in seconds (see :class:`MergeConfig` ``span``).
        score: the combined score (see :class:`MergeConfig` ``score``).
        windows: every candidate window merged into this hit, in time order.
    """

    recording: str
    start: float
    end: float
    score: float
    windows: tuple[WindowScore, ...] = ()

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        """``{"recording", "start", "end", "score", "windows"}`` (the number of windows),
        times and score rounded for printing."""
        return {
            "recording": self.recording,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "score": round(self.score, 5),
            "windows": len(self.windows),
        }


# ------------------------------------------------------------------------------ merging
def merge_windows(
    recordings: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    rows: np.ndarray,
    scores: np.ndarray,
    recording_ids: Sequence[str],
    config: MergeConfig | None = None,
) -> list[AudioHit]:
    """Merge one query's candidate windows into hits (see the module docstring).

    Args:
        recordings: int ``[C]`` recording number of each candidate.
        starts, ends: float ``[C]`` window times in seconds.
        rows: int ``[C]`` the windows' rows in the index (kept in :class:`WindowScore`);
            rows < 0 (FAISS padding) are ignored.
        scores: float ``[C]`` cosines.
        recording_ids: recording number -> id.
        config: merging settings.

    Returns:
        The hits, best first (ties: earlier recording number, then earlier start).
    """
    cfg = config or MergeConfig()
    keep = np.asarray(rows) >= 0
    rec = np.asarray(recordings)[keep]
    st, en = np.asarray(starts, dtype=np.float64)[keep], np.asarray(ends, dtype=np.float64)[keep]
    sc, rw = np.asarray(scores, dtype=np.float64)[keep], np.asarray(rows)[keep]
    hits: list[tuple[float, int, float, AudioHit]] = []
    for r in np.unique(rec):
        idx = np.flatnonzero(rec == r)
        idx = idx[np.lexsort((en[idx], st[idx]))]
        cluster = [idx[0]]
        reach = en[idx[0]]
        for i in idx[1:]:
            if st[i] <= reach + cfg.gap:
                cluster.append(i)
                reach = max(reach, en[i])
                continue
            hits.append(_hit(cluster, int(r), st, en, sc, rw, recording_ids, cfg))
            cluster, reach = [i], en[i]
        hits.append(_hit(cluster, int(r), st, en, sc, rw, recording_ids, cfg))
    hits.sort(key=lambda h: (-h[0], h[1], h[2]))
    return [h[3] for h in hits]


def _hit(
    cluster: list[int],
    rec: int,
    st: np.ndarray,
    en: np.ndarray,
    sc: np.ndarray,
    rw: np.ndarray,
    recording_ids: Sequence[str],
    cfg: MergeConfig,
) -> tuple[float, int, float, AudioHit]:
    c = np.asarray(cluster)
    best = c[np.argmax(sc[c])]  # first of equal scores: the earliest window
    top = sc[best]
    # core: windows within span_margin of the best, linked to it through overlapping core windows
    core_all = c[sc[c] >= top - cfg.span_margin]
    core = [best]
    lo, hi = st[best], en[best]
    changed = True
    while changed:
        changed = False
        for i in core_all:
            if i not in core and st[i] <= hi + cfg.gap and en[i] >= lo - cfg.gap:
                core.append(i)
                lo, hi = min(lo, st[i]), max(hi, en[i])
                changed = True
    k = np.asarray(core)
    if cfg.span == "best":
        start, end = st[best], en[best]
    elif cfg.span == "union":
        start, end = lo, hi
    elif cfg.span == "intersection":
        start, end = st[k].max(), en[k].min()
        if end <= start:
            start, end = st[best], en[best]
    else:  # weighted: the margin's floor gets weight ~0, the best window weight 1
        w = sc[k] - (top - cfg.span_margin) + 1e-6
        start, end = float(np.dot(w, st[k]) / w.sum()), float(np.dot(w, en[k]) / w.sum())
    score = top
    if cfg.score == "soft":
        score = top + cfg.tau * math.log(float(np.exp((sc[k] - top) / cfg.tau).sum()))
    windows = tuple(
        WindowScore(int(rw[i]), float(st[i]), float(en[i]), float(sc[i]))
        for i in c  # already in time order
    )
    hit = AudioHit(recording_ids[rec], float(start), float(end), float(score), windows)
    return float(score), rec, float(start), hit


# -------------------------------------------------------------------------------- index
class AudioIndex:
    """Embedded windows of many recordings, searchable by text or speech.

    Build it with :meth:`build` (or :meth:`merge` the indexes of parts), keep it with
    :meth:`save` / :meth:`load`, and search with :meth:`search`, :meth:`search_text` or
    :meth:`search_audio`.

    Attributes:
        config: the windowing.
        recordings: the indexed recordings, in index order.
        window_recording: int32 ``[W]`` recording number of each window.
        window_start, window_end: float64 ``[W]`` seconds.
        index: the :class:`~speechx.retrieval.EmbeddingIndex` of the window embeddings (row
            ``i`` is window ``i``).
        model: the speech encoder the windows were embedded with (its directory or name).
        teacher: the teacher whose space that is (``None`` when not known).
        sample_rate: the encoder's rate, on whose sample grid the times lie.
        seconds: wall-clock seconds spent building (embedding) the index.
    """

    def __init__(
        self,
        config: AudioIndexConfig,
        recordings: list[Recording],
        window_recording: np.ndarray,
        window_start: np.ndarray,
        window_end: np.ndarray,
        index: EmbeddingIndex,
        *,
        model: str,
        teacher: str | None = None,
        sample_rate: int = 16000,
        seconds: float = 0.0,
    ) -> None:
        n = len(index)
        if not window_recording.shape == window_start.shape == window_end.shape == (n,):
            raise AudioIndexError(
                f"{n} embeddings but window tables of shapes {window_recording.shape}, "
                f"{window_start.shape}, {window_end.shape}"
            )
        self.config = config
        self.recordings = recordings
        self.window_recording = window_recording.astype(np.int32, copy=False)
        self.window_start = window_start.astype(np.float64, copy=False)
        self.window_end = window_end.astype(np.float64, copy=False)
        self.index = index
        self.model = model
        self.teacher = teacher
        self.sample_rate = sample_rate
        self.seconds = seconds

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        return (
            f"AudioIndex({len(self.recordings)} recordings, {self.hours:.2f} h, {len(self)} "
            f"windows, {self.config.boundaries} {self.config.window:g}/{self.config.hop_seconds:g}"
            f" s, backend={self.index.config.backend!r})"
        )

    @property
    def dim(self) -> int:
        return self.index.dim

    @property
    def hours(self) -> float:
        """Hours of audio indexed."""
        return sum(r.duration for r in self.recordings) / 3600.0

    @property
    def hours_per_hour(self) -> float | None:
        """Hours of audio indexed per hour of building (``None`` when not timed)."""
        return self.hours * 3600.0 / self.seconds if self.seconds > 0 else None

    # ----------------------------------------------------------------- build
    @classmethod
    def build(
        cls,
        encoder: Any,
        recordings: Iterable[str | os.PathLike | tuple[str, str | os.PathLike]],
        config: AudioIndexConfig | None = None,
        *,
        backend: str = "exact",
        model: str | None = None,
        teacher: str | None = None,
        progress: bool | None = None,
        work_dir: str | os.PathLike | None = None,
        index_options: dict[str, Any] | None = None,
    ) -> AudioIndex:
        """Embed every window of every recording and index the embeddings.

        Recordings are embedded one after another, each streamed from disk, so at most one
        block of one recording's audio is in memory (the embeddings of every window are kept:
        about 2 KB a window at 512 dimensions).

        Args:
            encoder: a :class:`~speechx.models.SpeechEncoder` (or anything with its
                ``encode``, ``sample_rate``, ``embed_dim`` and ``min_input_samples``).
            recordings: audio paths (the id is the file stem) or ``(id, path)`` pairs.
            config: the windowing; default :class:`AudioIndexConfig()`.
            backend: the :class:`~speechx.retrieval.EmbeddingIndex` backend.
            model: the encoder's name recorded in the index (default ``"unknown"``).
            teacher: the teacher whose space the encoder was distilled into, if known.
            progress: a tqdm bar over recordings (``None``: when there are several).
            work_dir: when given, each recording's windows are saved there as they are done
                and reused by a rerun with the same settings (resume after an interruption).
            index_options: more :meth:`EmbeddingIndex.build` keyword arguments (``nlist``, ...).

        Returns:
            The index, with :attr:`seconds` set to the wall time of embedding.

        Raises:
            AudioIndexError: no recordings, duplicate ids, bad settings, a recording in which
                no window can be placed.
            AudioError: a recording that cannot be read (named).
            RetrievalError: bad index options.
        """
        cfg = config or AudioIndexConfig()
        recs = _recording_list(recordings)
        if backend not in BACKENDS:
            raise AudioIndexError(f"unknown index backend {backend!r}; expected one of {BACKENDS}")
        work = Path(work_dir) if work_dir is not None else None
        if work is not None:
            work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        infos: list[Recording] = []
        parts: list[LongformEmbeddings] = []
        show = len(recs) > 1 if progress is None else progress
        for rec_id, path in tqdm(recs, disable=not show, unit="rec", desc="index-audio"):
            part = None if work is None else _load_part(work, rec_id, path, cfg)
            if part is None:
                part = embed_recording(encoder, path, cfg, recording_id=rec_id)
                if work is not None:
                    _save_part(work, part, path, cfg)
            logger.info("%s: %d windows over %.1f s", rec_id, len(part), part.duration)
            infos.append(Recording(rec_id, str(path), float(part.duration)))
            parts.append(part)
        seconds = time.perf_counter() - t0
        return cls._from_parts(
            cfg,
            infos,
            parts,
            backend=backend,
            model=model or "unknown",
            teacher=teacher,
            sample_rate=int(encoder.sample_rate),
            seconds=seconds,
            index_options=index_options,
        )

    @classmethod
    def _from_parts(
        cls,
        cfg: AudioIndexConfig,
        infos: list[Recording],
        parts: Sequence[LongformEmbeddings],
        *,
        backend: str,
        model: str,
        teacher: str | None,
        sample_rate: int,
        seconds: float,
        index_options: dict[str, Any] | None,
    ) -> AudioIndex:
        if not parts:
            raise AudioIndexError("no recordings to index")
        rec_of = np.concatenate([np.full(len(p), i, dtype=np.int32) for i, p in enumerate(parts)])
        starts = np.concatenate([p.starts for p in parts])
        ends = np.concatenate([p.ends for p in parts])
        emb = np.concatenate([p.embeddings for p in parts], axis=0)
        ids = [f"{i}" for i in range(emb.shape[0])]
        opts = dict(index_options or {})
        index = EmbeddingIndex.build(emb, ids=ids, backend=backend, normalize=True, **opts)
        return cls(
            cfg,
            infos,
            rec_of,
            starts,
            ends,
            index,
            model=model,
            teacher=teacher,
            sample_rate=sample_rate,
            seconds=seconds,
        )

    @classmethod
    def merge(
        cls,
        parts: Sequence[AudioIndex | str | os.PathLike],
        *,
        backend: str = "exact",
        seconds: float | None = None,
        index_options: dict[str, Any] | None = None,
    ) -> AudioIndex:
        """One index over the recordings of ``parts``, in the order given.

        Args:
            parts: indexes or index directories (e.g. of the jobs of ``--nj``); they must share
                the model, the windowing and the sample rate, and no recording id.
            backend: the merged index's backend.
            seconds: the build time to record (default: the sum of the parts').

        Returns:
            The merged index: windows and recordings in part order, so a split into contiguous
            parts merges into the same index as building it whole.

        Raises:
            AudioIndexError: no parts, parts that disagree, or a recording in two parts.
        """
        loaded = [p if isinstance(p, AudioIndex) else cls.load(p) for p in parts]
        if not loaded:
            raise AudioIndexError("no audio indexes to merge")
        first = loaded[0]
        for i, p in enumerate(loaded[1:], 1):
            for what in ("model", "config", "sample_rate", "dim"):
                if getattr(p, what) != getattr(first, what):
                    raise AudioIndexError(
                        f"audio index part {i} has {what} {getattr(p, what)!r}, part 0 has "
                        f"{getattr(first, what)!r}"
                    )
        seen: set[str] = set()
        for p in loaded:
            for r in p.recordings:
                if r.id in seen:
                    raise AudioIndexError(f"recording {r.id!r} is in more than one part")
                seen.add(r.id)
        embs = [p.index.embeddings for p in loaded]
        parts_emb = []
        infos: list[Recording] = []
        for p, emb in zip(loaded, embs, strict=True):
            for i, r in enumerate(p.recordings):
                rows = p.window_recording == i
                parts_emb.append(
                    LongformEmbeddings(
                        r.id,
                        p.window_start[rows],
                        p.window_end[rows],
                        emb[rows],
                        p.sample_rate,
                        r.duration,
                    )
                )
                infos.append(r)
        total = sum(p.seconds for p in loaded) if seconds is None else seconds
        return cls._from_parts(
            first.config,
            infos,
            parts_emb,
            backend=backend,
            model=first.model,
            teacher=first.teacher,
            sample_rate=first.sample_rate,
            seconds=total,
            index_options=index_options,
        )

    # ---------------------------------------------------------------- search
    def search(
        self,
        queries: np.ndarray,
        top_k: int = 10,
        merge: MergeConfig | None = None,
    ) -> list[list[AudioHit]]:
        """The ``top_k`` best hits of each query vector (windows merged into hits).

        Args:
            queries: float ``[Q, D]`` (or one ``[D]``) in the index's space.
            top_k: hits per query.
            merge: how windows merge into hits (:class:`MergeConfig`).

        Returns:
            One list of at most ``top_k`` :class:`AudioHit` per query, best first.

        Raises:
            AudioIndexError: ``top_k < 1`` or queries of the wrong dimension.
            RetrievalError: NaN/inf or all-zero queries.
        """
        cfg = merge or MergeConfig()
        if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
            raise AudioIndexError(f"top_k must be a positive integer, got {top_k!r}")
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise AudioIndexError(
                f"queries of shape {q.shape} do not fit the index's dimension {self.dim} "
                f"(model {self.model})"
            )
        n = len(self)
        if cfg.candidates is not None:
            cand = min(n, cfg.candidates)
        else:
            per_hit = math.ceil(self.config.window / self.config.hop_seconds) + 1
            cand = min(n, max(64, 4 * int(top_k) * per_hit))
        rec_ids = [r.id for r in self.recordings]
        while True:
            res = self.index.search(q, top_k=cand)
            out = []
            for rows, scores in zip(res.indices, res.scores, strict=True):
                valid = np.where(rows >= 0, rows, 0)
                hits = merge_windows(
                    self.window_recording[valid],
                    self.window_start[valid],
                    self.window_end[valid],
                    rows,
                    scores,
                    rec_ids,
                    cfg,
                )
                out.append(hits[:top_k])
            if cfg.candidates is not None or cand >= n or all(len(h) >= top_k for h in out):
                return out
            cand = min(n, cand * 4)

    def search_text(
        self,
        teacher: Any,
        texts: Sequence[str],
        top_k: int = 10,
        merge: MergeConfig | None = None,
    ) -> list[list[AudioHit]]:
        """Search with text queries embedded by ``teacher`` (any language it covers).

        Args:
            teacher: a text teacher (``load_teacher(...)``), ideally the one the encoder was
                distilled into (:attr:`teacher`); a different teacher id is warned about.
            texts: the queries.

        Returns:
            As :meth:`search`, one list per text.

        Raises:
            AudioIndexError: no texts, or a teacher whose dimension differs from the index's.
        """
        if isinstance(texts, str):
            texts = [texts]
        if not texts:
            raise AudioIndexError("no text queries")
        if int(teacher.dim) != self.dim:
            raise AudioIndexError(
                f"teacher {getattr(teacher, 'teacher_id', teacher)} has dimension {teacher.dim} "
                f"but the index (model {self.model}) has dimension {self.dim}; search with the "
                "teacher the model was distilled into"
            )
        tid = getattr(teacher, "teacher_id", None)
        if self.teacher and tid and tid != self.teacher:
            warnings.warn(
                f"the index's model {self.model} was distilled into {self.teacher}, but the "
                f"queries are embedded by {tid}; scores may mean little",
                stacklevel=2,
            )
        return self.search(teacher.encode(list(texts)), top_k=top_k, merge=merge)

    def search_audio(
        self,
        encoder: Any,
        sources: Sequence[AudioSource],
        top_k: int = 10,
        merge: MergeConfig | None = None,
        *,
        batch_size: int = 8,
    ) -> list[list[AudioHit]]:
        """Search with spoken queries embedded by ``encoder`` (the index's, or one in its space).

        Returns:
            As :meth:`search`, one list per source.

        Raises:
            AudioIndexError: no sources or an encoder of another dimension.
            AudioError: a query that cannot be read (named).
        """
        if isinstance(sources, str | os.PathLike) or (
            isinstance(sources, tuple) and len(sources) == 2 and isinstance(sources[1], int)
        ):
            sources = [sources]
        if not sources:
            raise AudioIndexError("no audio queries")
        if int(encoder.embed_dim) != self.dim:
            raise AudioIndexError(
                f"the query encoder has dimension {encoder.embed_dim} but the index (model "
                f"{self.model}) has dimension {self.dim}"
            )
        emb = encoder.encode(list(sources), batch_size=batch_size, show_progress=False)
        return self.search(emb, top_k=top_k, merge=merge)

    # ------------------------------------------------------------- save/load
    def save(self, directory: str | os.PathLike) -> Path:
        """Write the index to ``directory`` atomically (replacing what was there).

        Layout: ``audio_index.json`` (model, teacher, windowing, recordings, build time),
        ``windows.npz`` (``recording`` int32, ``start`` and ``end`` float64 per window) and
        ``index/`` (the :class:`~speechx.retrieval.EmbeddingIndex`).

        Returns:
            The directory.
        """
        out = Path(directory)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            self.index.save(tmp / "index")
            np.savez(
                tmp / WINDOWS_FILE,
                recording=self.window_recording,
                start=self.window_start,
                end=self.window_end,
            )
            (tmp / INDEX_FILE).write_text(
                json.dumps(self.metadata(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
            _replace_dir(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out

    def metadata(self) -> dict[str, Any]:
        """What ``audio_index.json`` holds (JSON-serialisable)."""
        return {
            "format_version": _FORMAT_VERSION,
            "model": self.model,
            "teacher": self.teacher,
            "dim": self.dim,
            "sample_rate": self.sample_rate,
            "config": asdict(self.config),
            "n_windows": len(self),
            "hours": self.hours,
            "seconds": self.seconds,
            "hours_per_hour": self.hours_per_hour,
            "recordings": [asdict(r) for r in self.recordings],
        }

    @classmethod
    def load(cls, directory: str | os.PathLike) -> AudioIndex:
        """Read an index written by :meth:`save`.

        Raises:
            AudioIndexError: a missing or inconsistent file (named in the message).
        """
        d = Path(directory)
        meta_path = d / INDEX_FILE
        meta = read_index_meta(
            meta_path,
            _FORMAT_VERSION,
            what="an audio index (speechx index-audio)",
            error=AudioIndexError,
        )
        try:
            config = AudioIndexConfig(**meta["config"])
            recordings = [Recording(**r) for r in meta["recordings"]]
            model, sr = str(meta["model"]), int(meta["sample_rate"])
        except (KeyError, TypeError, ValueError) as exc:
            raise AudioIndexError(f"{meta_path}: malformed ({exc})") from None
        try:
            index = EmbeddingIndex.load(d / "index")
        except RetrievalError as exc:
            raise AudioIndexError(f"{d}: {exc}") from None
        win_path = d / WINDOWS_FILE
        try:
            with np.load(win_path, allow_pickle=False) as z:
                rec, start, end = z["recording"], z["start"], z["end"]
        except (FileNotFoundError, KeyError, ValueError, OSError) as exc:
            raise AudioIndexError(f"{win_path}: cannot read ({exc})") from None
        if rec.size and (rec.min() < 0 or rec.max() >= len(recordings)):
            raise AudioIndexError(f"{win_path}: recording numbers outside 0..{len(recordings) - 1}")
        try:
            return cls(
                config,
                recordings,
                rec,
                start,
                end,
                index,
                model=model,
                teacher=meta.get("teacher"),
                sample_rate=sr,
                seconds=float(meta.get("seconds") or 0.0),
            )
        except AudioIndexError as exc:
            raise AudioIndexError(f"{d}: {exc}") from None


# ---------------------------------------------------------------------------- embedding
def window_positions(
    source: AudioSource, sample_rate: int, config: AudioIndexConfig
) -> list[tuple[int, int]]:
    """Where the windows of ``source`` go, in samples at ``sample_rate`` (a streaming pass for
    speech boundaries; only the header for fixed windows).

    Returns:
        Sorted ``[start, end)`` ranges.  With speech boundaries and no speech found, the fixed
        windows are used, so that no recording is left out of the index.

    Raises:
        AudioError: an unreadable source; AudioIndexError: a VAD that is not installed.
    """
    if config.boundaries == "fixed":
        if isinstance(source, tuple):
            total = int(round(np.asarray(source[0]).shape[0] * sample_rate / source[1]))
        else:
            info = audio_info(source)
            total = int(round(info.num_samples * sample_rate / info.sample_rate))
        if total < 1:
            raise AudioError(f"{source}: audio has zero samples")
        return window_bounds(total, sample_rate, config.longform())
    total, regions = speech_regions(
        source, sample_rate, config.regions, block_seconds=config.block_seconds
    )
    bounds = windows_in_regions(
        regions, total, sample_rate, config.window, config.hop_seconds, config.min_window
    )
    if not bounds:
        logger.info("%s: no speech found; using fixed windows", source)
        return window_bounds(total, sample_rate, config.longform())
    return bounds


def embed_recording(
    encoder: Any,
    source: AudioSource,
    config: AudioIndexConfig | None = None,
    *,
    recording_id: str | None = None,
) -> LongformEmbeddings:
    """Embed the windows of one recording (:func:`window_positions`), streamed from disk.

    Returns:
        A :class:`~speechx.longform.LongformEmbeddings` (times in seconds, one row a window).

    Raises:
        AudioError, LongformError, AudioIndexError: see :func:`speechx.longform.encode_long`
            and :func:`window_positions`.
    """
    cfg = config or AudioIndexConfig()
    bounds = window_positions(source, int(encoder.sample_rate), cfg)
    return encode_long(encoder, source, cfg.longform(), recording_id=recording_id, bounds=bounds)


def _recording_list(
    recordings: Iterable[str | os.PathLike | tuple[str, str | os.PathLike]],
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for r in recordings:
        if isinstance(r, tuple):
            rec_id, path = str(r[0]), str(r[1])
        else:
            rec_id, path = Path(r).stem, str(r)
        if not rec_id or any(c.isspace() for c in rec_id):
            raise AudioIndexError(f"recording id {rec_id!r} ({path}) is empty or has whitespace")
        out.append((rec_id, path))
    if not out:
        raise AudioIndexError("no recordings to index")
    ids = [r for r, _ in out]
    if len(set(ids)) != len(ids):
        dup = next(r for r in ids if ids.count(r) > 1)
        paths = [p for r, p in out if r == dup]
        raise AudioIndexError(f"several recordings have the id {dup!r}: {', '.join(paths[:3])}")
    return out


def _part_key(path: str, cfg: AudioIndexConfig) -> str:
    st = os.stat(path)
    return json.dumps([path, st.st_size, st.st_mtime_ns, asdict(cfg)], sort_keys=True)


def _save_part(work: Path, part: LongformEmbeddings, path: str, cfg: AudioIndexConfig) -> None:
    target = work / f"{part.recording_id}.npz"
    fd, tmp = tempfile.mkstemp(dir=work, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(
                fh,
                key=np.array(_part_key(path, cfg)),
                starts=part.starts,
                ends=part.ends,
                embeddings=part.embeddings,
                sample_rate=part.sample_rate,
                duration=part.duration,
            )
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_part(
    work: Path, rec_id: str, path: str, cfg: AudioIndexConfig
) -> LongformEmbeddings | None:
    target = work / f"{rec_id}.npz"
    if not target.is_file():
        return None
    try:
        with np.load(target, allow_pickle=False) as z:
            if str(z["key"]) != _part_key(path, cfg):
                return None
            return LongformEmbeddings(
                rec_id,
                z["starts"],
                z["ends"],
                z["embeddings"],
                int(z["sample_rate"]),
                float(z["duration"]),
            )
    except (OSError, KeyError, ValueError):
        return None


__all__ = [
    "BOUNDARIES",
    "SCORES",
    "SPANS",
    "AudioHit",
    "AudioIndex",
    "AudioIndexConfig",
    "MergeConfig",
    "Recording",
    "WindowScore",
    "embed_recording",
    "merge_windows",
    "window_positions",
]
