"""The cascade peer: Whisper transcribes the speech, the text teacher embeds the transcript.

This is the baseline every user tries first, scored on exactly the pools of the distilled
encoder's rows so that ``retrieval.json`` can set the two side by side::

    transcriber = WhisperTranscriber(CascadeConfig(model="whisper-base"))
    peers = evaluate_cascade(test_set, "data/fillets_nl_test", transcriber, teacher,
                             out_dir="exp/demo/results", results=results)

For each test set the speech is transcribed in that set's speech language (forced, task
``transcribe``), the transcripts are embedded with the same teacher as the text pools, and
``speech:X -> text:Y`` is scored for every text view (and ``text:all`` when the encoder's rows
have it).  The rows carry ``"system": "cascade:<model>"``, the ``set``, and the WER and CER of
the transcripts against the set's ``text``.

Files, per set, under ``<out_dir>/cascade/<set>/``:

* ``hyp.txt``: the transcripts in Kaldi text format (``utt-id transcript``);
* ``hyp.keys.json``: one cache key per utterance (model, language, decoding options, audio
  file with its size and mtime, segment), so a rerun decodes only what changed;
* ``wer.json``: WER, CER and MER (scored as ``speechx score`` scores, with per-language rows,
  error counts, the most frequent confusions and the normaliser), decode time, empty count.

Empty transcripts (Whisper sometimes returns nothing) are embedded as the teacher's embedding
of ``""`` and stay in the queries; they are counted in ``n_empty``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from speechx.audio import AudioSource, audio_info, describe_source, load_audio
from speechx.data.kaldi import KaldiDir, atomic_write_text
from speechx.errors import AudioError, EvaluationError, ModelError, SpeechxError
from speechx.evaluation.retrieval import View, evaluate_retrieval_pairs
from speechx.metrics.asr import TextNormalizer

logger = logging.getLogger(__name__)

#: Whisper's fixed input window, in seconds; longer audio goes through the long-form path
WHISPER_WINDOW_SECONDS = 30.0
_SAMPLE_RATE = 16000
_KEYS_FORMAT = 1


@dataclass(frozen=True)
class AudioRef:
    """An audio file, or a segment of one, read only when it is decoded.

    Attributes:
        path: the audio file.
        start, end: optional segment in seconds (``end=None``: to the end of the file).
    """

    path: str
    start: float | None = None
    end: float | None = None


CascadeInput = AudioSource | AudioRef


@runtime_checkable
class Transcriber(Protocol):
    """Anything that turns audio into text in a given language.

    Attributes:
        name: a short system name (``"whisper-base"``); peer rows say ``cascade:<name>``.
        cache_id: a string that changes whenever the transcripts would (weights, decoding
            options); the transcript cache is keyed by it.
    """

    name: str
    cache_id: str

    def transcribe(
        self,
        inputs: Sequence[CascadeInput],
        language: str,
        *,
        names: Sequence[str] | None = None,
        on_batch: Callable[[list[int], list[str]], None] | None = None,
    ) -> list[str]:
        """One transcript per input, in input order."""
        ...


@dataclass(frozen=True)
class CascadeConfig:
    """How the cascade's Whisper decodes.

    Attributes:
        model: a Whisper name importable by :func:`speechx.models.whisper_import.import_whisper`
            (``"whisper-base"``) or a local transformers Whisper directory.
        num_beams: 1 is greedy (the default); more is beam search.
        batch_size: utterances decoded together (sorted by length, so padding is small).
        max_new_tokens: a cap on generated tokens per utterance (``None``: the model's limit).
        max_tokens_per_second: a further cap of ``16 + this x seconds`` tokens for a batch (its
            longest utterance).  Speech runs at about 2-8 Whisper tokens per second, so real
            transcripts stay below it, while a repetition loop (greedy Whisper sometimes
            repeats a phrase until the 448-token limit, holding up its whole batch) stops early.
            ``None`` turns it off.
        whisper_cache_dir: cache root of the Whisper import (``None``: ``$SPEECHX_CACHE``).
        show_progress: a tqdm bar over utterances; ``None`` shows it on a terminal.
    """

    model: str = "whisper-base"
    num_beams: int = 1
    batch_size: int = 8
    max_new_tokens: int | None = None
    max_tokens_per_second: float | None = 12.0
    whisper_cache_dir: str | None = None
    show_progress: bool | None = None

    def __post_init__(self) -> None:
        if self.num_beams < 1:
            raise EvaluationError(f"cascade: num_beams must be >= 1, got {self.num_beams}")
        if self.batch_size < 1:
            raise EvaluationError(f"cascade: batch_size must be >= 1, got {self.batch_size}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise EvaluationError(
                f"cascade: max_new_tokens must be >= 1 or None, got {self.max_new_tokens}"
            )
        if self.max_tokens_per_second is not None and self.max_tokens_per_second <= 0:
            raise EvaluationError(
                "cascade: max_tokens_per_second must be > 0 or None, got "
                f"{self.max_tokens_per_second}"
            )


def resolve_whisper_dir(model: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The transformers Whisper directory for ``model`` (a known name or a local directory).

    Returns:
        A directory holding ``config.json`` and the tokenizer / feature-extractor files.

    Raises:
        ModelError: ``model`` is neither an importable name nor a directory with a
            ``config.json``; or the import fails (missing packages, a bad file).
    """
    from speechx.models.whisper_import import WHISPER_SOURCES, import_whisper

    if model in WHISPER_SOURCES:
        return import_whisper(model, cache_dir=cache_dir)
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path}: not a transformers Whisper directory (no config.json)")
        return path
    raise ModelError(
        f"cascade model {model!r} is neither a known Whisper name "
        f"({', '.join(sorted(WHISPER_SOURCES))}) nor a directory"
    )


class WhisperTranscriber:
    """Transcribes audio with a transformers ``WhisperForConditionalGeneration``.

    The language is forced and the task is ``transcribe``.  Inputs of up to 30 s are decoded
    in batches of similar length without timestamps (as faster-whisper does with
    ``without_timestamps=True``); longer inputs go, one at a time, through transformers'
    sequential long-form path (timestamps on), with a warning naming the utterance, so nothing
    is truncated.  Decoding runs under ``torch.inference_mode``; torch's thread count is left
    alone.  The model is loaded on first use.

    Example:
        >>> t = WhisperTranscriber(CascadeConfig(model="whisper-base"))   # doctest: +SKIP
        >>> t.transcribe(["clip.wav"], "nl")                              # doctest: +SKIP
        ['Nu komen we dichter bij de persoon ...']
    """

    def __init__(self, config: CascadeConfig | None = None, **overrides: Any) -> None:
        """Resolve (and, for a known name, import) the model directory.

        Raises:
            ModelError: unknown model, missing packages or a failed import.
        """
        base = config or CascadeConfig()
        self.config = CascadeConfig(**{**asdict(base), **overrides})
        self.model_dir = resolve_whisper_dir(self.config.model, self.config.whisper_cache_dir)
        # a known name ("whisper-base") names itself; a local directory goes by its base name
        known = self.model_dir.name == self.config.model
        self.name = self.config.model if known else self.model_dir.name
        self.cache_id = self._cache_id()
        self._model: Any = None
        self._processor: Any = None

    def __repr__(self) -> str:
        return f"WhisperTranscriber({self.config.model!r}, num_beams={self.config.num_beams})"

    def _cache_id(self) -> str:
        stamp = []
        for fname in ("model.safetensors", "pytorch_model.bin", "config.json"):
            p = self.model_dir / fname
            if p.is_file():
                st = p.stat()
                stamp.append(f"{fname}:{st.st_size}:{st.st_mtime_ns}")
        imported = self.model_dir / "speechx_import.json"
        if imported.is_file():  # an import is identified by its source checksum
            stamp = [imported.read_text("utf-8")]
        cfg = self.config
        return _sha(
            [
                "whisper",
                self.name,
                *stamp,
                cfg.num_beams,
                cfg.max_new_tokens,
                cfg.max_tokens_per_second,
                "no-timestamps",
            ]
        )

    def load(self) -> WhisperTranscriber:
        """Load the model and processor now (``transcribe`` does it on first use).

        Returns:
            ``self``.

        Raises:
            ModelError: transformers/torch are missing or the directory does not load.
        """
        if self._model is not None:
            return self
        try:
            import transformers
        except ImportError as exc:
            raise ModelError(f"the cascade needs transformers and torch ({exc})") from None
        try:
            self._processor = transformers.WhisperProcessor.from_pretrained(self.model_dir)
            model = transformers.WhisperForConditionalGeneration.from_pretrained(self.model_dir)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{self.model_dir}: cannot load Whisper ({exc})") from None
        self._model = model.eval()
        return self

    def language_token(self, language: str) -> str:
        """The ``<|xx|>`` token for ``language``.

        Raises:
            EvaluationError: the model has no such language.
        """
        self.load()
        lang_to_id = getattr(self._model.generation_config, "lang_to_id", None) or {}
        token = f"<|{language}|>"
        if lang_to_id and token not in lang_to_id:
            raise EvaluationError(
                f"Whisper {self.name!r} has no language {language!r} (known: "
                f"{', '.join(sorted(t.strip('<|>') for t in lang_to_id))})"
            )
        return token

    def transcribe(
        self,
        inputs: Sequence[CascadeInput],
        language: str,
        *,
        names: Sequence[str] | None = None,
        on_batch: Callable[[list[int], list[str]], None] | None = None,
    ) -> list[str]:
        """Transcribe ``inputs`` (paths, ``(array, sample_rate)`` pairs or :class:`AudioRef`).

        Args:
            inputs: the audio.
            language: the forced language code, e.g. ``"nl"``.
            names: one name per input for messages (utterance ids); default the source.
            on_batch: called after each batch with the input indices and their transcripts
                (the cascade uses it to save progress).

        Returns:
            One stripped transcript per input, in input order (``""`` when Whisper says
            nothing).

        Raises:
            EvaluationError: ``language`` unknown to the model, or an input that cannot be
                read (naming it).
        """
        import torch
        from tqdm.auto import tqdm

        items = list(inputs)
        labels = list(names) if names is not None else [describe_source(_src(x)) for x in items]
        if len(labels) != len(items):
            raise EvaluationError(f"{len(items)} inputs but {len(labels)} names")
        if not items:
            return []
        self.language_token(language)
        durations = [_duration(x, n) for x, n in zip(items, labels, strict=True)]
        order = sorted(range(len(items)), key=lambda i: -durations[i])
        short = [i for i in order if durations[i] <= WHISPER_WINDOW_SECONDS]
        long = [i for i in order if durations[i] > WHISPER_WINDOW_SECONDS]
        for i in long:
            logger.warning(
                "%s: %.1f s is longer than Whisper's 30-s window; decoded with the long-form "
                "(sequential, timestamped) path",
                labels[i],
                durations[i],
            )
        bs = self.config.batch_size
        batches = [(short[s : s + bs], False) for s in range(0, len(short), bs)]
        batches += [([i], True) for i in long]
        out: list[str | None] = [None] * len(items)
        show = self.config.show_progress
        with (
            torch.inference_mode(),
            tqdm(
                total=len(items),
                unit="utt",
                desc=f"whisper {language}",
                disable=None if show is None else not show,
            ) as bar,
        ):
            for idx, long_form in batches:
                waves = [_load(items[i], labels[i]) for i in idx]
                texts = self._decode(waves, language, long_form, [labels[i] for i in idx])
                for i, t in zip(idx, texts, strict=True):
                    out[i] = t
                if on_batch is not None:
                    on_batch(list(idx), texts)
                bar.update(len(idx))
        return [t or "" for t in out]

    def token_cap(self, seconds: float) -> int | None:
        """The ``max_new_tokens`` for a batch whose longest utterance lasts ``seconds``.

        Returns:
            The smaller of ``max_new_tokens`` and ``16 + max_tokens_per_second x seconds``
            (``None`` when neither is set: the model's own limit).
        """
        caps = []
        if self.config.max_new_tokens is not None:
            caps.append(self.config.max_new_tokens)
        if self.config.max_tokens_per_second is not None:
            caps.append(16 + int(np.ceil(self.config.max_tokens_per_second * seconds)))
        return min(caps) if caps else None

    def _decode(
        self, waves: list[np.ndarray], language: str, long_form: bool, names: list[str]
    ) -> list[str]:
        import transformers

        # generate() warns on every batch that max_new_tokens (our per-batch cap) overrides the
        # checkpoint's max_length; that is intended, so its warnings are muted while it runs.
        level = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()
        try:
            return self._generate(waves, language, long_form, names)
        finally:
            transformers.logging.set_verbosity(level)

    def _generate(
        self, waves: list[np.ndarray], language: str, long_form: bool, names: list[str]
    ) -> list[str]:
        self.load()
        fe = self._processor.feature_extractor
        kwargs: dict[str, Any] = {
            "language": language,
            "task": "transcribe",
            "num_beams": self.config.num_beams,
            "do_sample": False,
        }
        cap = None if long_form else self.token_cap(max(len(w) for w in waves) / _SAMPLE_RATE)
        if long_form and self.config.max_new_tokens is not None:
            cap = self.config.max_new_tokens  # per 30-s window in the long-form path
        if cap is not None:
            # the model's limit counts the 4 prompt tokens too
            limit = self._model.config.max_target_positions - 4
            cap = min(cap, limit)
            kwargs["max_new_tokens"] = cap
        if long_form:
            feats = fe(
                waves,
                sampling_rate=_SAMPLE_RATE,
                return_tensors="pt",
                truncation=False,
                padding="longest",
                return_attention_mask=True,
            )
            ids = self._model.generate(
                feats.input_features,
                attention_mask=feats.attention_mask,
                return_timestamps=True,
                **kwargs,
            )
        else:
            feats = fe(waves, sampling_rate=_SAMPLE_RATE, return_tensors="pt")
            ids = self._model.generate(feats.input_features, **kwargs)
            if cap is not None:
                eos = self._model.generation_config.eos_token_id
                n_tokens = (ids != eos).sum(dim=1).tolist()
                for name, n in zip(names, n_tokens, strict=True):
                    if n >= cap:
                        logger.warning(
                            "%s: the transcript reached the cap of %d tokens (a repetition "
                            "loop?) and was cut there",
                            name,
                            cap,
                        )
        texts = self._processor.tokenizer.batch_decode(ids, skip_special_tokens=True)
        return [t.strip() for t in texts]


# -------------------------------------------------------------------- transcript cache
def utterance_sources(kdir: KaldiDir, ids: Sequence[str]) -> list[AudioRef]:
    """An :class:`AudioRef` per utterance of ``kdir`` (its file, and segment if any)."""
    out = []
    for u in ids:
        start, end = kdir.segment(u)
        out.append(AudioRef(kdir.audio_path(u), start, end))
    return out


def source_key(cache_id: str, language: str, utt: str, source: CascadeInput) -> str:
    """The cache key of one transcript.

    It covers the transcriber's :attr:`~Transcriber.cache_id`, the language, the utterance
    id and the audio: a file's path, size and mtime (and segment), or an array's bytes.

    Returns:
        A hex digest.
    """
    src = _src(source)
    if isinstance(src, tuple):
        arr = np.ascontiguousarray(np.asarray(src[0]))
        audio: list[Any] = ["array", hashlib.sha256(arr.tobytes()).hexdigest(), str(arr.dtype)]
        audio += [list(arr.shape), int(src[1])]
    else:
        p = Path(src)
        try:
            st = p.stat()
            audio = [str(p.resolve()), st.st_size, st.st_mtime_ns]
        except OSError:
            audio = [str(p), None, None]
    if isinstance(source, AudioRef):
        audio += [source.start, source.end]
    return _sha([cache_id, language, utt, *audio])


def read_hyp_cache(hyp_dir: str | os.PathLike) -> dict[str, tuple[str, str]]:
    """Cached transcripts under ``hyp_dir``: ``{utt: (key, transcript)}``.

    A missing, partial or unreadable cache gives what can be used (possibly nothing); it
    never raises, since the worst case is decoding again.
    """
    d = Path(hyp_dir)
    try:
        keys = json.loads((d / "hyp.keys.json").read_text("utf-8"))
        text = (d / "hyp.txt").read_text("utf-8")
    except (OSError, ValueError):
        return {}
    if not isinstance(keys, dict) or keys.get("format") != _KEYS_FORMAT:
        return {}
    by_utt = keys.get("keys") or {}
    out: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        utt, _, hyp = line.partition(" ")
        if utt and utt in by_utt:
            out[utt] = (str(by_utt[utt]), hyp.strip())
    return out


def write_hyp_cache(hyp_dir: str | os.PathLike, entries: Mapping[str, tuple[str, str]]) -> Path:
    """Write ``{utt: (key, transcript)}`` as ``hyp.txt`` + ``hyp.keys.json``, atomically.

    The keys file is written after ``hyp.txt`` and lists only utterances present in it, so a
    crash between the two writes loses at most the newest transcripts.

    Returns:
        The path of ``hyp.txt``.
    """
    d = Path(hyp_dir)
    d.mkdir(parents=True, exist_ok=True)
    utts = sorted(entries)
    lines = [f"{u} {entries[u][1]}".rstrip() for u in utts]
    hyp = d / "hyp.txt"
    atomic_write_text(hyp, "".join(line + "\n" for line in lines))
    doc = {"format": _KEYS_FORMAT, "keys": {u: entries[u][0] for u in utts}}
    atomic_write_text(d / "hyp.keys.json", json.dumps(doc, indent=1) + "\n")
    return hyp


def transcribe_cached(
    transcriber: Transcriber,
    sources: Sequence[CascadeInput],
    ids: Sequence[str],
    language: str,
    hyp_dir: str | os.PathLike,
) -> tuple[list[str], int]:
    """Transcripts of ``sources``, reusing those cached in ``hyp_dir`` whose key still matches.

    New transcripts are saved after every batch, so an interrupted run keeps its work.

    Returns:
        ``(transcripts in input order, number decoded now)``.

    Raises:
        EvaluationError: as the transcriber's ``transcribe``.
    """
    if len(sources) != len(ids):
        raise EvaluationError(f"{len(sources)} audio sources but {len(ids)} utterance ids")
    keys = [
        source_key(transcriber.cache_id, language, u, s) for u, s in zip(ids, sources, strict=True)
    ]
    wanted = set(ids)  # lines of utterances no longer in the set are dropped
    entries = {u: kh for u, kh in read_hyp_cache(hyp_dir).items() if u in wanted}
    todo = [
        i for i, (u, k) in enumerate(zip(ids, keys, strict=True)) if entries.get(u, ("",))[0] != k
    ]
    if todo:
        logger.info(
            "%s: transcribing %d of %d utterances (%d cached) with %s",
            Path(hyp_dir).name,
            len(todo),
            len(ids),
            len(ids) - len(todo),
            transcriber.name,
        )

        def save(batch: list[int], texts: list[str]) -> None:
            for j, t in zip(batch, texts, strict=True):
                i = todo[j]
                entries[ids[i]] = (keys[i], _one_line(t))
            write_hyp_cache(hyp_dir, entries)

        texts = transcriber.transcribe(
            [sources[i] for i in todo], language, names=[ids[i] for i in todo], on_batch=save
        )
        if len(texts) != len(todo):
            raise EvaluationError(
                f"{transcriber.name}: {len(texts)} transcripts for {len(todo)} utterances"
            )
        for i, t in zip(todo, texts, strict=True):
            entries[ids[i]] = (keys[i], _one_line(t))
    write_hyp_cache(hyp_dir, entries)
    return [entries[u][1] for u in ids], len(todo)


# ------------------------------------------------------------------------- evaluation
def evaluate_cascade(
    test_set: Any,
    data_dir: str | os.PathLike,
    transcriber: Transcriber,
    teacher: Any,
    out_dir: str | os.PathLike,
    *,
    results: Sequence[Mapping[str, Any]] | None = None,
    normalizer: TextNormalizer | None = None,
) -> list[dict[str, Any]]:
    """Transcribe, embed and score one test set; write ``<out_dir>/cascade/<set>/``.

    Args:
        test_set: a :class:`speechx.evaluation.speech_retrieval.TestSet` (its speech view
            gives the utterances and sentences, its text views the pools).
        data_dir: the Kaldi dir the set was read from (audio and reference ``text``).
        transcriber: e.g. a :class:`WhisperTranscriber`.
        teacher: the text teacher of the set's text views (``.encode(texts)``); wrap it in a
            :class:`~speechx.teachers.CachedTeacher` so transcripts are embedded once.
        out_dir: the results directory.
        results: the encoder's rows; when given, the cascade scores the same ``text:*`` targets
            of this set (including ``text:all`` only if they have it).  Default: every text
            view plus ``text:all``.
        normalizer: for WER/CER (default :class:`~speechx.metrics.asr.TextNormalizer`:
            NFKC, case-folded, punctuation removed).

    Returns:
        Peer rows ``{"system": "cascade:<name>", "set", "query": "speech:X", "target", ...,
        "wer", "cer", "n_empty"}``.

    Raises:
        EvaluationError: the set has no text views, utterances missing from ``data_dir``, a
            teacher of the wrong dimension, or a transcription failure.
    """
    d = Path(data_dir)
    kdir = KaldiDir.read(d)
    ids = list(test_set.speech.ids)
    missing = [u for u in ids if u not in kdir.utt2spk]
    if missing:
        raise EvaluationError(f"{d}: utterance {missing[0]!r} of set {test_set.name} is missing")
    if not test_set.texts:
        raise EvaluationError(f"{test_set.name}: no text views to retrieve from")
    lang = test_set.lang
    system = f"cascade:{transcriber.name}"
    set_dir = Path(out_dir) / "cascade" / test_set.name
    t0 = time.perf_counter()
    hyps, n_decoded = transcribe_cached(
        transcriber, utterance_sources(kdir, ids), ids, lang, set_dir
    )
    decode_s = time.perf_counter() - t0
    n_empty = sum(not h.strip() for h in hyps)
    if n_empty:
        logger.warning(
            '%s: %d of %d transcripts are empty (embedded as the teacher\'s ""; they stay '
            "in the queries)",
            test_set.name,
            n_empty,
            len(hyps),
        )
    emb = np.asarray(teacher.encode(hyps), dtype=np.float32)
    dim = next(iter(test_set.texts.values())).embeddings.shape[1]
    if emb.shape != (len(ids), dim):
        raise EvaluationError(
            f"{test_set.name}: the teacher gave transcript embeddings of shape {emb.shape}, "
            f"expected {(len(ids), dim)} like the text views"
        )
    query = f"speech:{lang}"
    view = View(ids, list(test_set.speech.sentence_ids), emb)
    targets = _targets(test_set, query, results)
    rows = evaluate_retrieval_pairs(
        {query: view}, test_set.texts, [(query, t) for t in targets], system=system
    )
    scores = transcript_scores(kdir, ids, hyps, normalizer, lang=lang, set_name=test_set.name)
    report = {
        "system": system,
        "set": test_set.name,
        "lang": lang,
        "model_dir": str(getattr(transcriber, "model_dir", "")),
        "n_utts": len(ids),
        "n_empty": n_empty,
        "n_decoded": n_decoded,
        "decode_seconds": round(decode_s, 2),
        **scores,
    }
    set_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(set_dir / "wer.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    wer_v, cer_v = scores["wer"], scores["cer"]
    logger.info(
        "%s %s: WER %s, CER %s, %d decoded in %.1f s",
        system,
        test_set.name,
        _fmt(wer_v),
        _fmt(cer_v),
        n_decoded,
        decode_s,
    )
    return [
        {
            "system": system,
            "set": test_set.name,
            **{k: v for k, v in r.items() if k != "system"},
            "wer": wer_v,
            "cer": cer_v,
            "n_empty": n_empty,
        }
        for r in rows
    ]


def transcript_scores(
    kdir: KaldiDir,
    ids: Sequence[str],
    hyps: Sequence[str],
    normalizer: TextNormalizer | None = None,
    *,
    lang: str | None = None,
    set_name: str | None = None,
) -> dict[str, Any]:
    """WER, CER and MER of ``hyps`` against ``kdir.text`` for the utterances that have one,
    scored by :func:`speechx.evaluation.asr.score_transcripts` (the scorer of ``speechx score``
    and the ASR recipe, so the peer's numbers and the CTC model's are comparable).

    Returns:
        ``{"wer", "cer", "mer"}`` (rates, ``None`` when no utterance has a non-empty
        reference), ``n_scored``, ``n_ref_words``, ``normalizer`` (its settings),
        ``results`` (the report's rows) and ``confusions`` (the most frequent errors).
    """
    from speechx.evaluation.asr import score_transcripts

    norm = normalizer or TextNormalizer()
    refs = {u: kdir.text[u] for u in ids if kdir.text.get(u)}
    if not refs or not any(norm(r) for r in refs.values()):
        return {"wer": None, "cer": None, "mer": None, "n_scored": 0, "n_ref_words": 0}
    by_id = dict(zip(ids, hyps, strict=True))
    report = score_transcripts(
        refs, {u: by_id[u] for u in refs}, normalizer=norm, lang=lang, set_name=set_name
    )
    row, full = report.overall, report.to_dict(top=20)
    return {
        "wer": row["wer"],
        "cer": row["cer"],
        "mer": row.get("mer"),
        "n_scored": row["n_utts"],
        "n_ref_words": row["n_ref_words"],
        "normalizer": full["normalizer"],
        "results": full["results"],
        "confusions": full["confusions"],
    }


def build_transcriber(
    cascade: str | Transcriber, *, num_beams: int = 1, batch_size: int = 8
) -> Transcriber:
    """A transcriber from a model name / directory, or ``cascade`` itself if it is one.

    Raises:
        ModelError: unknown model name or missing packages.
        EvaluationError: bad decoding options.
    """
    if isinstance(cascade, str):
        return WhisperTranscriber(
            CascadeConfig(model=cascade, num_beams=num_beams, batch_size=batch_size)
        )
    if not isinstance(cascade, Transcriber):
        raise EvaluationError(
            f"cascade must be a model name, a directory or a transcriber, got {cascade!r}"
        )
    return cascade


def _targets(test_set: Any, query: str, results: Sequence[Mapping[str, Any]] | None) -> list[str]:
    from speechx.evaluation.retrieval import ALL_TEXT

    if results is None:
        targets = sorted(test_set.texts)
        return targets + ([ALL_TEXT] if len(targets) >= 2 else [])
    out: list[str] = []
    for r in results:
        t = str(r.get("target", ""))
        same_set = r.get("set", test_set.name) == test_set.name
        if same_set and r.get("query") == query and t.startswith("text:") and t not in out:
            out.append(t)
    if not out:
        raise EvaluationError(
            f"{test_set.name}: the encoder's results have no {query} -> text:* rows to mirror"
        )
    return out


def _src(x: CascadeInput) -> AudioSource:
    return x.path if isinstance(x, AudioRef) else x


def _duration(x: CascadeInput, name: str) -> float:
    try:
        if isinstance(x, AudioRef):
            if x.end is not None:
                return float(x.end - (x.start or 0.0))
            return audio_info(x.path).duration - (x.start or 0.0)
        if isinstance(x, tuple):
            return len(np.asarray(x[0])) / float(x[1])
        return audio_info(x).duration
    except (SpeechxError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise EvaluationError(f"utterance {name!r}: cannot read its audio ({exc})") from None


def _load(x: CascadeInput, name: str) -> np.ndarray:
    try:
        if isinstance(x, AudioRef):
            return load_audio(x.path, _SAMPLE_RATE, start=x.start, end=x.end)
        return load_audio(x, _SAMPLE_RATE)
    except AudioError as exc:
        raise EvaluationError(f"utterance {name!r}: {exc}") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _sha(parts: Sequence[Any]) -> str:
    return hashlib.sha256(json.dumps(list(parts), default=str).encode("utf-8")).hexdigest()[:32]


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"
