"""Bitext mining evaluation (BUCC style): speech of a test set against shuffled translations plus
distractor sentences.

What ``speechx evaluate-mining`` and ``recipes/mining.sh`` run. For a Kaldi test dir whose
speech is in language X with ``text.<Y>`` translations (fillets_nl_test: Dutch speech, English
texts):

* **Source**: every utterance with a ``text.<Y>`` line, embedded by the speech encoder (or read
  from ``speechx encode`` output).
* **Target**: the dir's ``text.<Y>`` sentences, each distinct text once (blanks collapsed), plus
  the distractor sentences, in a seeded random order. Distractors come from text files (one
  sentence per line) or Kaldi dirs (their ``text.<Y>``, read by
  :func:`speechx.evaluation.speech_retrieval.read_distractor_texts`); one equal to a target
  sentence (compared after lower-casing and collapsing blanks) is dropped, so a distractor is
  never a hidden gold item. The recipe uses the English lines of the fillets train and dev
  splits: the student was trained on that speech, so these are hard distractors from the same
  game.
* **Gold**: each source utterance and the target row of its own translation. Utterances that
  share a sentence make several gold pairs with one target row, so ``intersection`` (one pair
  per target) cannot reach a recall of 1 when a test sentence is spoken twice.

For each scoring (ratio margin, cosine, ...) and mode (:data:`speechx.mining.MODES`) the pairs
of the mode are mined without a threshold, then every candidate score is tried as the threshold
and the best F1 is reported (:func:`speechx.metrics.mining.best_f1`). The teacher ceiling mines
the same targets with the transcripts (``text:X``) as the source, with the same gold pairs.

Outputs in the results dir: ``mining.json``::

    {"task": "mining", "split": ..., "model": ..., "teacher": ..., "results": [row, ...],
     "ceiling": [row, ...]}

with rows ``{"set", "source": "speech:nl", "target": "text:en", "scoring", "mode", "k",
"n_source", "n_target", "n_distractors", "n_gold", "n_mined", "n_kept", "n_correct",
"precision", "recall", "f1", "threshold"}`` (``n_mined``: pairs of the mode; ``n_kept``: those
at or above the threshold), the ``## Mining`` section of ``summary.md`` and
``mining_pr.png``, precision-recall curves of every scoring and mode.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from speechx.data.kaldi import KaldiDir
from speechx.errors import EvaluationError
from speechx.evaluation.retrieval import save_figure
from speechx.evaluation.speech_retrieval import (
    audio_inputs,
    read_distractor_texts,
    speech_language,
)
from speechx.evaluation.summary import jsonable_row, write_results
from speechx.metrics.mining import best_f1, precision_recall_curve
from speechx.mining import MODES, neighbours, pair_arrays

logger = logging.getLogger(__name__)

SCORINGS = ("ratio", "cosine")
_CURVE_POINTS = 200  # points per curve kept for the plot


class _Encoder(Protocol):
    def encode(self, inputs: Sequence[Any], batch_size: int = 16) -> np.ndarray: ...


class _Teacher(Protocol):
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray: ...


@dataclass
class MiningTargets:
    """The target side of the evaluation and the gold pair of each source utterance.

    Attributes:
        ids: target ids: the first utterance whose translation it is, or ``distractor:<i>``.
        texts: the target sentences, in the shuffled order.
        gold: ``{utterance id: target row}`` for every source utterance.
        n_distractors: distractor rows among the targets.
        n_dropped: distractors left out because they equal a target sentence.
    """

    ids: list[str]
    texts: list[str]
    gold: dict[str, int]
    n_distractors: int
    n_dropped: int


def _key(text: str) -> str:
    return " ".join(text.split()).lower()


def build_targets(
    translations: dict[str, str],
    distractors: Sequence[str] = (),
    *,
    seed: int = 0,
) -> MiningTargets:
    """Deduplicate the translations, add the distractors, shuffle, and record the gold pairs.

    Args:
        translations: ``{utterance id: translation}`` of the source utterances.
        distractors: extra sentences; repeats and any equal to a translation (lower-cased,
            blanks collapsed) are left out.
        seed: the shuffle's seed.

    Returns:
        The :class:`MiningTargets`.

    Raises:
        EvaluationError: no non-blank translation.
    """
    first: dict[str, str] = {}  # text -> first utterance id
    gold_text: dict[str, str] = {}
    for u in sorted(translations):
        t = " ".join(translations[u].split())
        if t:
            first.setdefault(t, u)
            gold_text[u] = t
    if not first:
        raise EvaluationError("no source utterance has a translation to mine")
    gold_keys = {_key(t) for t in first}
    extra: dict[str, str] = {}
    dropped = 0
    for t in distractors:
        t = " ".join(t.split())
        if not t:
            continue
        if _key(t) in gold_keys:
            dropped += 1
        else:
            extra.setdefault(_key(t), t)
    texts = list(first) + list(extra.values())
    ids = list(first.values()) + [f"distractor:{i}" for i in range(len(extra))]
    order = np.random.default_rng(seed).permutation(len(texts))
    texts = [texts[i] for i in order]
    ids = [ids[i] for i in order]
    row_of_text = {t: r for r, t in enumerate(texts)}
    gold = {u: row_of_text[t] for u, t in gold_text.items()}
    return MiningTargets(ids, texts, gold, len(extra), dropped)


def score_mining(
    src: np.ndarray,
    tgt: np.ndarray,
    gold: np.ndarray,
    *,
    k: int = 4,
    scorings: Sequence[str] = SCORINGS,
    modes: Sequence[str] = MODES,
    backend: str = "exact",
    names: tuple[str, str] = ("source", "target"),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Best-threshold precision, recall and F1 of every scoring and mode.

    One k-NN search each way serves every scoring and mode.

    Args:
        src: ``[Ns, D]`` source embeddings.
        tgt: ``[Nt, D]`` target embeddings.
        gold: int ``[Ns]``, the gold target row of each source row (-1: none).
        k: the margin's neighbourhood size.
        scorings, modes: what to score.
        backend: the k-NN index backend.
        names: the two sides, for errors.

    Returns:
        ``(rows, curves)``: one row per (scoring, mode) with ``scoring``, ``mode``, ``k``,
        ``n_source``, ``n_target``, ``n_gold``, ``n_mined``, ``n_kept``, ``n_correct``,
        ``precision``, ``recall``, ``f1`` and ``threshold``; and per row its curve
        (``{"scoring", "mode", "precision": [...], "recall": [...]}``, at most about
        200 points).

    Raises:
        MiningError: as :func:`speechx.mining.neighbours`.
        EvaluationError: no gold pair, or ``gold`` of the wrong length or out of range.
    """
    g = np.asarray(gold, dtype=np.int64)
    if g.shape != (src.shape[0],):
        raise EvaluationError(f"gold has shape {g.shape} for {src.shape[0]} source rows")
    if g.max(initial=-1) >= tgt.shape[0]:
        raise EvaluationError(f"a gold target row is outside the {tgt.shape[0]} targets")
    n_gold = int((g >= 0).sum())
    if n_gold == 0:
        raise EvaluationError("no source row has a gold target")
    nb = neighbours(src, tgt, k=k, backend=backend, names=names)
    rows: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    for scoring in scorings:
        for mode in modes:
            pairs = pair_arrays(nb, mode=mode, scoring=scoring)
            correct = g[pairs.src_index] == pairs.tgt_index
            best = best_f1(pairs.score, correct, n_gold)
            rows.append(
                {
                    "scoring": scoring,
                    "mode": mode,
                    "k": k,
                    "n_source": int(src.shape[0]),
                    "n_target": int(tgt.shape[0]),
                    "n_gold": n_gold,
                    "n_mined": len(pairs),
                    "n_kept": best.n_kept,
                    "n_correct": best.n_correct,
                    "precision": best.precision,
                    "recall": best.recall,
                    "f1": best.f1,
                    "threshold": best.threshold,
                }
            )
            c = precision_recall_curve(pairs.score, correct, n_gold)
            step = max(1, len(c["recall"]) // _CURVE_POINTS)
            curves.append(
                {
                    "scoring": scoring,
                    "mode": mode,
                    "recall": [float(x) for x in c["recall"][::step]],
                    "precision": [float(x) for x in c["precision"][::step]],
                    "best": (best.recall, best.precision),
                }
            )
    return rows, curves


def evaluate_mining(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    teacher: _Teacher,
    teacher_id: str,
    encoder: _Encoder | None = None,
    source_embeddings: tuple[Sequence[str], np.ndarray] | None = None,
    distractors: Sequence[str | os.PathLike] = (),
    tgt_lang: str = "en",
    k: int = 4,
    scorings: Sequence[str] = SCORINGS,
    modes: Sequence[str] = MODES,
    backend: str = "exact",
    ceiling: bool = True,
    model_name: str = "",
    split: str = "test",
    sample_rate: int = 16000,
    batch_size: int = 16,
    seed: int = 0,
) -> Path:
    """Mine the speech of ``data_dir`` against its shuffled translations plus distractors.

    Args:
        data_dir: a Kaldi test dir with ``utt2lang`` and ``text.<tgt_lang>``.
        out_dir: the results dir (``exp/<tag>/results``).
        teacher: the text teacher the encoder was distilled into (a caching one saves time).
        teacher_id: its id, recorded in ``mining.json``.
        encoder: the speech encoder; or give ``source_embeddings``.
        source_embeddings: ``(utterance ids, [N, D] embeddings)`` from ``speechx encode``, used
            instead of encoding (the ids must be utterances of ``data_dir``).
        distractors: text files or Kaldi dirs of distractor sentences in ``tgt_lang``.
        tgt_lang: the language of the targets.
        k, scorings, modes, backend: see :func:`score_mining`.
        ceiling: also mine with the transcripts as the source (the teacher ceiling).
        model_name, split: recorded in the results.
        sample_rate, batch_size: the encoder's.
        seed: the seed of the target order.

    Returns:
        The path of ``mining.json``.

    Raises:
        EvaluationError: no ``utt2lang`` or no ``text.<tgt_lang>``, no encoder and no
            embeddings, embeddings of utterances the dir does not have, or unreadable
            distractors.
        MiningError: the speech and text embeddings differ in dimension, or ``k`` is larger
            than a side.
    """
    d = Path(data_dir)
    kdir = KaldiDir.read(d)
    src_lang = speech_language(kdir, d.name)
    translations = kdir.translations.get(tgt_lang)
    if not translations:
        raise EvaluationError(f"{d}: no text.{tgt_lang} translations to mine")
    distractor_texts = read_distractor_texts(distractors, tgt_lang) if distractors else []
    targets = build_targets(translations, distractor_texts, seed=seed)
    logger.info(
        "%s: %d target sentences + %d distractors (%d equal to a target left out)",
        d.name,
        len(targets.ids) - targets.n_distractors,
        targets.n_distractors,
        targets.n_dropped,
    )
    src_ids, speech = _source_speech(
        kdir,
        d,
        [u for u in kdir.utt_ids if u in targets.gold],
        encoder,
        source_embeddings,
        sample_rate,
        batch_size,
    )
    tgt_emb = np.asarray(teacher.encode(targets.texts), dtype=np.float32)
    gold = np.array([targets.gold[u] for u in src_ids], dtype=np.int64)
    source, target = f"speech:{src_lang}", f"text:{tgt_lang}"
    common = {"set": d.name, "source": source, "target": target}
    extra = {"n_distractors": targets.n_distractors}
    rows, curves = score_mining(
        speech,
        tgt_emb,
        gold,
        k=k,
        scorings=scorings,
        modes=modes,
        backend=backend,
        names=(f"{source} ({model_name or 'speech encoder'})", f"{target} ({teacher_id})"),
    )
    results = [{**common, **r, **extra} for r in rows]
    for c in curves:
        c["source"] = source
    ceiling_rows: list[dict[str, Any]] = []
    if ceiling:
        transcripts = [" ".join(kdir.text.get(u, "").split()) for u in src_ids]
        have = [i for i, t in enumerate(transcripts) if t]
        if have:
            t_src = f"text:{src_lang}"
            uniq = list(dict.fromkeys(transcripts[i] for i in have))
            emb = np.asarray(teacher.encode(uniq), dtype=np.float32)
            where = {t: j for j, t in enumerate(uniq)}
            src_emb = emb[[where[transcripts[i]] for i in have]]
            c_rows, c_curves = score_mining(
                src_emb, tgt_emb, gold[have], k=k, scorings=scorings, modes=modes, backend=backend
            )
            ceiling_rows = [{**common, "source": t_src, **r, **extra} for r in c_rows]
            for c in c_curves:
                c["source"] = t_src
            curves += c_curves
    return write_mining_results(
        out_dir,
        split=split,
        model=model_name,
        teacher=teacher_id,
        results=results,
        ceiling=ceiling_rows,
        curves=curves,
    )


def _source_speech(
    kdir: KaldiDir,
    d: Path,
    src_ids: list[str],
    encoder: _Encoder | None,
    source_embeddings: tuple[Sequence[str], np.ndarray] | None,
    sample_rate: int,
    batch_size: int,
) -> tuple[list[str], np.ndarray]:
    """``(ids, embeddings)`` of the source: ``src_ids`` encoded, or those of them that
    ``source_embeddings`` has."""
    if source_embeddings is not None:
        ids, emb = source_embeddings
        row = {str(u): i for i, u in enumerate(ids)}
        utts = set(kdir.utt_ids)
        unknown = [u for u in row if u not in utts]
        if unknown:
            raise EvaluationError(
                f"{d}: the source embeddings hold {len(unknown)} utterance(s) the dir does not "
                f"have, first {unknown[0]!r}; were they made from another data dir?"
            )
        missing = [u for u in src_ids if u not in row]
        if missing:
            logger.warning(
                "%s: %d utterances have no source embedding (first %r) and are left out",
                d.name,
                len(missing),
                missing[0],
            )
            src_ids = [u for u in src_ids if u in row]
        if not src_ids:
            raise EvaluationError(f"{d}: no source embedding of an utterance with a translation")
        return src_ids, np.asarray(emb, dtype=np.float32)[[row[u] for u in src_ids]]
    if encoder is None:
        raise EvaluationError("give a speech encoder or the source embeddings")
    logger.info("%s: encoding %d utterances", d.name, len(src_ids))
    emb = encoder.encode(audio_inputs(kdir, src_ids, sample_rate), batch_size=batch_size)
    return src_ids, np.asarray(emb, dtype=np.float32)


# ----------------------------------------------------------------------- writing
def write_mining_results(
    out_dir: str | os.PathLike,
    *,
    split: str,
    model: str,
    teacher: str,
    results: Sequence[dict[str, Any]],
    ceiling: Sequence[dict[str, Any]] = (),
    curves: Sequence[dict[str, Any]] = (),
) -> Path:
    """Write ``mining.json``, the ``## Mining`` section of ``summary.md`` and ``mining_pr.png``.

    ``curves`` (from :func:`score_mining`, each with a ``source``) are plotted, not stored.
    Every file is written atomically; the other sections of ``summary.md`` are kept.

    Returns:
        The path of ``mining.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "task": "mining",
        "split": split,
        "model": model,
        "teacher": teacher,
        "results": [jsonable_row(r) for r in results],
        "ceiling": [jsonable_row(r) for r in ceiling],
    }
    path = write_results(out, doc, render_summary(doc))
    if curves:
        write_pr_plot(out / "mining_pr.png", curves, title=f"{split}, {model}")
    logger.info("wrote %s", path)
    return path


def render_summary(doc: dict[str, Any]) -> str:
    """The markdown ``## Mining`` section for a ``mining.json`` document."""
    rows = doc["results"]
    lines = ["## Mining", "", f"split `{doc['split']}`, model `{doc['model']}`, "]
    lines[-1] += f"teacher `{doc['teacher']}`"
    if rows:
        r = rows[0]
        lines += [
            "",
            f"`{r['source']}` ({r.get('set', '')}, {r['n_source']} utterances, {r['n_gold']} "
            f"gold pairs) mined against `{r['target']}` ({r['n_target']} sentences, of which "
            f"{r.get('n_distractors', 0)} distractors), k = {r['k']}; precision, recall and F1 "
            "at the threshold with the best F1.",
        ]
    if doc["ceiling"]:
        lines += [
            "",
            f"The `{doc['ceiling'][0]['source']}` rows are the teacher ceiling: the transcripts "
            "mined against the same targets with the same gold pairs.",
        ]
    lines += ["", "### F1 (rows: mode, columns: source and scoring)", ""]
    lines += _f1_grid([*rows, *doc["ceiling"]])
    cols = ["source", "scoring", "mode", "n_mined", "n_kept", "precision", "recall", "f1"]
    cols += ["threshold"]
    lines += ["", "### All rows", "", *_table([*rows, *doc["ceiling"]], cols)]
    return "\n".join(lines) + "\n"


def _f1_grid(rows: Sequence[dict[str, Any]]) -> list[str]:
    cols = list(dict.fromkeys(f"{r['source']} {r['scoring']}" for r in rows))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    cell = {(r["mode"], f"{r['source']} {r['scoring']}"): r["f1"] for r in rows}
    out = ["| mode | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for m in modes:
        out.append(f"| {m} | " + " | ".join(_fmt(cell.get((m, c))) for c in cols) + " |")
    return out


def _table(rows: Sequence[dict[str, Any]], cols: Sequence[str]) -> list[str]:
    out = ["| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
    out += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def write_pr_plot(
    path: str | os.PathLike, curves: Sequence[dict[str, Any]], *, title: str = "mining"
) -> Path:
    """Precision against recall of each curve, one panel per source (speech, then the teacher
    ceiling), ratio margin solid and cosine dashed, the best-F1 point marked; written atomically.

    Returns:
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    sources = list(dict.fromkeys(c["source"] for c in curves))
    modes = list(dict.fromkeys(c["mode"] for c in curves))
    styles = {"ratio": "-", "distance": "-.", "cosine": "--"}
    fig = Figure(figsize=(4.2 * len(sources) + 0.6, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for i, src in enumerate(sources):
        ax = fig.add_subplot(1, len(sources), i + 1)
        for c in curves:
            if c["source"] != src:
                continue
            color = palette[modes.index(c["mode"]) % len(palette)]
            ax.plot(
                c["recall"],
                c["precision"],
                styles.get(c["scoring"], ":"),
                color=color,
                label=f"{c['scoring']} {c['mode']}",
                linewidth=1.2,
            )
            ax.plot(*c["best"], "o", color=color, markersize=4)
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(f"{src}: {title}", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = [
    "SCORINGS",
    "MiningTargets",
    "build_targets",
    "evaluate_mining",
    "render_summary",
    "score_mining",
    "write_mining_results",
    "write_pr_plot",
]
