"""FLEURS: n-way parallel read speech in 102 languages (Google, CC BY 4.0).

FLEURS is the speech version of FLoRes-101: about 2,000 English Wikipedia sentences, translated
into 102 languages and read aloud, each by up to three speakers.  The ``id`` of a sentence is the
same in every language, which is what n-way retrieval (XTREME-S FLEURS-Retrieval) needs, and it
is kept in ``utt2sent`` as ``fleurs-<id>``.

Every language is one *config* such as ``nl_nl``, ``en_us`` or ``cmn_hans_cn``.
:func:`prepare_fleurs` reads a local copy with one directory per config, in ``corpus_dir`` or
``corpus_dir/data``, in any of these layouts (found per config by :func:`find_config`):

* **tsv** (the original release, also ``data/<config>/`` of the ``google/fleurs`` hub repo):
  ``<config>/{train,dev,test}.tsv`` plus ``<config>/audio/{train,dev,test}/*.wav`` or the
  unextracted ``<config>/audio/{train,dev,test}.tar.gz`` (the files needed are extracted to
  ``<out>/fleurs_audio/<config>/<split>/``).  The TSV has no header and no quoting; its seven
  tab-separated columns are ``id``, ``file name``, ``raw transcription``, ``transcription``
  (normalised), ``characters`` (``|``-separated), ``num_samples`` and ``gender``
  (``MALE``/``FEMALE``/``OTHER``).
* **arrow**: what ``load_dataset("google/fleurs", "<config>").save_to_disk("<config>")`` writes
  (``dataset_dict.json`` and ``train``/``validation``/``test`` directories).
* **parquet**: the hub's parquet conversion, ``<config>/fleurs-{train,validation,test}*.parquet``
  (or any ``*.parquet`` whose name starts with the split, or that sits in a split directory).

The hub layouts (arrow, parquet) are read with :mod:`datasets`, with the columns ``id``,
``num_samples``, ``path``, ``audio``, ``transcription``, ``raw_transcription``, ``gender``
(0 male, 1 female, 2 other), ``lang_id``, ``language`` and ``lang_group_id``; the audio is cast to
``Audio(decode=False)`` and its bytes are decoded here with soundfile and written as 16 kHz
WAVs under ``<out>/fleurs_audio/<config>/<split>/`` (a rerun reuses them).

Output: ``<out>/fleurs_<lang>_{train,dev,test}`` where ``<lang>`` is the short code of the
config (:func:`short_code`: the part before the first ``_``, so ``nl_nl`` -> ``nl``, ``en_us`` ->
``en``, ``es_419`` -> ``es``; ``cmn_hans_cn`` -> ``zh`` as the text teachers call Mandarin).
``--speech-langs`` and ``--text-langs`` accept short codes or config names; ``nl`` finds the
config ``nl_nl`` in the corpus.  Each dir has ``wav.scp``, ``text`` (the raw transcription:
cased and punctuated, as a text teacher wants; ``transcript="normalized"`` writes the
normalised one), ``utt2spk`` (FLEURS has no speaker ids, so every utterance is its own
speaker), ``spk2gender``, ``utt2lang``, ``utt2dur``, ``utt2sent`` and ``text.<lang>`` for every
text language: the other language's transcription of the same sentence id, from any of its
splits (its own transcript for the spoken language).

Splits never leak: FLEURS splits each language separately, so a sentence could be in ``test``
for one language and ``train`` for another.  With ``leak_policy="drop"`` (default) an utterance
whose sentence is in a later split (test after dev after train) of any language read is left
out (reason ``sentence_in_<split>_elsewhere``); ``"keep"`` keeps the published splits.

Skipped, each with a warning naming the utterance and a row in
``<out>/local/fleurs_skipped.tsv``: ``malformed_row`` (a TSV line without seven fields or with a
non-numeric id), ``duplicate_row`` (the same file twice in one split), ``empty_transcript``,
``missing_audio``, ``unreadable_audio``, ``too_short``/``too_long`` and the leak reasons above.
``<out>/local/fleurs_prep.json`` holds the :class:`~data_prep.PrepReport`.

Run ``python -m data_prep.fleurs --help``.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf

from data_prep import (
    PrepReport,
    SkipLog,
    add_duration_args,
    existing_duration,
    parse_list,
    prep_parser,
    preparer_kwargs,
    run_preparer,
    safe_id,
)
from speechx.audio import load_audio, save_audio
from speechx.data.kaldi import KaldiDir, write_mapping
from speechx.errors import SpeechxError

SAMPLE_RATE = 16000
#: speechx split -> upstream names (TSV layout first, hub layouts second)
SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "dev": ("dev", "validation"),
    "test": ("test",),
}
SPLIT_ORDER: tuple[str, ...] = ("train", "dev", "test")
#: configs whose short code is not the part before the first underscore
SHORT_CODES: dict[str, str] = {"cmn_hans_cn": "zh"}
GENDERS: dict[str, str] = {"male": "m", "female": "f", "0": "m", "1": "f"}
LEAK_POLICIES: tuple[str, ...] = ("drop", "keep")
TRANSCRIPTS: tuple[str, ...] = ("raw", "normalized")
REPORT_JSON = "local/fleurs_prep.json"
SKIPPED_TSV = "local/fleurs_skipped.tsv"

_CONFIG = re.compile(r"^[a-z]{2,3}(?:_[a-z0-9]+)+$")
_TSV_FIELDS = 7


class FleursError(SpeechxError, ValueError):
    """A FLEURS copy that cannot be found or prepared as asked (the message says where)."""


def short_code(config: str) -> str:
    """The language code used in dir names and ``text.<lang>``: ``nl_nl`` -> ``nl``."""
    return SHORT_CODES.get(config, config.split("_")[0])


# --------------------------------------------------------------------------- layouts
@dataclass(frozen=True)
class FleursSource:
    """Where one split of one config is stored.

    Attributes:
        config: the FLEURS config (``nl_nl``).
        split: the speechx split (``train``, ``dev``, ``test``).
        kind: ``tsv``, ``arrow`` or ``parquet``.
        paths: the TSV file, the ``save_to_disk`` split dir, or the parquet files.
        audio: for ``tsv``: the directory of WAVs or the ``.tar.gz`` archive (may not exist).
    """

    config: str
    split: str
    kind: str
    paths: tuple[Path, ...]
    audio: Path | None = None


def corpus_root(corpus_dir: str | os.PathLike) -> Path:
    """``corpus_dir/data`` when that holds the configs (the hub repo layout), else ``corpus_dir``.

    Raises:
        FleursError: ``corpus_dir`` is not a directory.
    """
    root = Path(corpus_dir)
    if not root.is_dir():
        raise FleursError(
            f"{root}: FLEURS corpus directory not found (expected config dirs such as "
            f"{root}/nl_nl/ with train.tsv dev.tsv test.tsv and audio/, or hub copies)"
        )
    if (root / "data").is_dir() and any(_CONFIG.match(p.name) for p in (root / "data").iterdir()):
        return root / "data"
    return root


def list_configs(corpus_dir: str | os.PathLike) -> list[str]:
    """Config directories present (``nl_nl``, ...), sorted."""
    root = corpus_root(corpus_dir)
    return sorted(p.name for p in root.iterdir() if _CONFIG.match(p.name) and p.is_dir())


def resolve_langs(langs: Sequence[str], configs: Sequence[str], *, where: str) -> dict[str, str]:
    """Map requested languages (short codes or config names) onto present configs.

    Returns:
        ``{short code: config}`` in request order.

    Raises:
        FleursError: a language matches no config (the configs present are listed) or several.
    """
    out: dict[str, str] = {}
    for lang in langs:
        if lang in configs:
            hits = [lang]
        else:
            hits = [c for c in configs if short_code(c) == lang or c.split("_")[0] == lang]
        if len(hits) != 1:
            have = ", ".join(configs) or "none"
            what = "no config" if not hits else f"several configs ({', '.join(hits)})"
            raise FleursError(f"{where}: {what} for language {lang!r} (configs present: {have})")
        out[short_code(hits[0])] = hits[0]
    return out


def _parquet_split(path: Path) -> str | None:
    stem = path.name.removeprefix("fleurs-")
    for split, names in SPLITS.items():
        if any(stem.startswith(n) for n in names) or path.parent.name in names:
            return split
    return None


def find_config(corpus_dir: str | os.PathLike, config: str) -> dict[str, FleursSource]:
    """The splits of one config in whichever layout it is stored.

    Returns:
        speechx split -> :class:`FleursSource`, for the splits found.

    Raises:
        FleursError: the config dir is missing or holds none of the known layouts; what was
            looked for and where is named.
    """
    d = corpus_root(corpus_dir) / config
    if not d.is_dir():
        raise FleursError(f"{d}: FLEURS config directory not found")
    found: dict[str, FleursSource] = {}
    for split, names in SPLITS.items():
        tsv = d / f"{names[0]}.tsv"
        if tsv.is_file():
            audio_dir = d / "audio" / names[0]
            archive = d / "audio" / f"{names[0]}.tar.gz"
            audio = audio_dir if audio_dir.is_dir() or not archive.is_file() else archive
            found[split] = FleursSource(config, split, "tsv", (tsv,), audio)
    if found:
        return found
    if (d / "dataset_dict.json").is_file():
        try:
            names_on_disk = json.loads((d / "dataset_dict.json").read_text("utf-8"))["splits"]
        except (ValueError, KeyError) as exc:
            raise FleursError(f"{d / 'dataset_dict.json'}: unreadable ({exc})") from None
        for split, names in SPLITS.items():
            for n in names:
                if n in names_on_disk and (d / n).is_dir():
                    found[split] = FleursSource(config, split, "arrow", (d / n,))
        return found
    parquet: dict[str, list[Path]] = {}
    for f in sorted(d.rglob("*.parquet")):
        split = _parquet_split(f)
        if split is not None:
            parquet.setdefault(split, []).append(f)
    for split, files in parquet.items():
        found[split] = FleursSource(config, split, "parquet", tuple(files))
    if not found:
        raise FleursError(
            f"{d}: no FLEURS data found (looked for {{train,dev,test}}.tsv with audio/, a "
            "save_to_disk dir with dataset_dict.json, or {train,validation,test}*.parquet)"
        )
    return found


def check_fleurs(
    corpus_dir: str | os.PathLike | None,
    speech_langs: Sequence[str] = (),
    text_langs: Sequence[str] = (),
) -> list[str]:
    """What is missing for a preparation run, without reading audio (for ``--dry-run``).

    Args:
        corpus_dir: the local copy (``None``: not given, which is itself a problem).
        speech_langs, text_langs: as for :func:`prepare_fleurs`.

    Returns:
        One message per missing thing (a language without a config, a config without a split,
        a TSV split without its audio), naming the path looked at; empty when all is there.
    """
    if corpus_dir is None or str(corpus_dir) == "":
        return ["FLEURS has no default location: pass --corpus-dir (the dir of nl_nl/, en_us/...)"]
    try:
        configs = list_configs(corpus_dir)
    except FleursError as exc:
        return [str(exc)]
    root = corpus_root(corpus_dir)
    problems: list[str] = []
    if not configs:
        problems.append(f"{root}: no FLEURS config directories (nl_nl, en_us, ...)")
    wanted: dict[str, bool] = {}
    for lang in parse_list(list(speech_langs)) or []:
        wanted[lang] = True
    for lang in parse_list(list(text_langs)) or []:
        wanted.setdefault(lang, False)
    for lang, speech in wanted.items():
        try:
            (config,) = resolve_langs([lang], configs, where=str(root)).values()
            sources = find_config(root, config)
        except FleursError as exc:
            problems.append(str(exc))
            continue
        for split in SPLIT_ORDER if speech else ():
            src = sources.get(split)
            if src is None:
                problems.append(f"{root / config}: split {split!r} missing")
            elif src.kind == "tsv" and (src.audio is None or not src.audio.exists()):
                problems.append(
                    f"{root / config / 'audio'}: neither {split}/ nor {split}.tar.gz exists"
                )
    return problems


# --------------------------------------------------------------------------- rows
@dataclass
class FleursRow:
    """One utterance of FLEURS, whatever the layout it came from."""

    sent_id: str
    file_name: str
    raw: str
    normalized: str
    gender: str | None
    audio_bytes: bytes | None = None
    audio_path: str | None = None
    problem: str | None = None  # a malformed TSV line


def _gender(value: Any) -> str | None:
    return GENDERS.get(str(value).strip().lower()) if value is not None else None


def _iter_tsv(src: FleursSource) -> Iterator[FleursRow]:
    path = src.paths[0]
    with open(path, encoding="utf-8", newline="") as fh:
        for no, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            # FLEURS TSVs are not quoted: a '"' is part of the text, a tab always separates
            cells = line.split("\t")
            if len(cells) != _TSV_FIELDS or not cells[0].strip().isdigit():
                yield FleursRow(
                    "", f"{path.name}:{no}", "", "", None,
                    problem=f"{path}:{no}: expected {_TSV_FIELDS} tab-separated fields starting "
                    f"with a numeric id, got {len(cells)} field(s)",
                )  # fmt: skip
                continue
            sid, fname, raw, norm, _chars, _n, gender = cells
            yield FleursRow(sid.strip(), fname.strip(), raw, norm, _gender(gender))


def _open_hf(src: FleursSource, with_audio: bool) -> Any:
    import datasets  # heavy import, only for the hub layouts

    try:
        if src.kind == "arrow":
            ds: Any = datasets.load_from_disk(str(src.paths[0]))
        else:
            ds = datasets.load_dataset(
                "parquet",
                data_files={"data": [str(p) for p in src.paths]},
                split="data",
                streaming=True,
            )
    except Exception as exc:  # datasets/pyarrow raise many types for a broken file
        names = ", ".join(str(p) for p in src.paths)
        raise FleursError(f"{names}: cannot read {src.config} {src.split} ({exc})") from None
    columns = list(ds.features or {}) if ds.features is not None else []
    missing = [c for c in ("id", "transcription") if columns and c not in columns]
    if missing:
        raise FleursError(f"{src.paths[0]}: lacks column(s) {missing}; has {columns}")
    if isinstance(ds, datasets.IterableDataset):
        ds = ds.decode(False)  # streamed parquet may not know its features: never decode here
    if "audio" in columns:
        if not with_audio:
            ds = ds.remove_columns(["audio"])
        elif isinstance(ds.features["audio"], datasets.Audio):
            ds = ds.cast_column("audio", datasets.Audio(decode=False))
    return ds


def _iter_hf(src: FleursSource, with_audio: bool) -> Iterator[FleursRow]:
    for i, ex in enumerate(_open_hf(src, with_audio)):
        audio = ex.get("audio") if with_audio else None
        a_bytes = a_path = None
        if isinstance(audio, dict):
            a_bytes, a_path = audio.get("bytes"), audio.get("path")
        local = ex.get("path")
        name = Path(a_path or local or f"row{i:06d}.wav").name
        raw = ex.get("raw_transcription")
        yield FleursRow(
            str(ex.get("id", "")).strip(),
            name,
            raw if raw is not None else ex.get("transcription") or "",
            ex.get("transcription") or "",
            _gender(ex.get("gender")),
            audio_bytes=a_bytes,
            audio_path=local if local and Path(local).is_file() else None,
        )


def iter_rows(src: FleursSource, *, with_audio: bool = True) -> Iterator[FleursRow]:
    """Yield the rows of one split of one config (audio left undecoded).

    Args:
        with_audio: read the audio column of the hub layouts (``False`` for text only).

    Raises:
        FleursError: a hub file cannot be read or lacks ``id``/``transcription``.
    """
    if src.kind == "tsv":
        yield from _iter_tsv(src)
    else:
        yield from _iter_hf(src, with_audio)


# --------------------------------------------------------------------------- audio
def _extract(archive: Path, names: set[str], dest: Path) -> None:
    """Extract the members of ``archive`` whose base name is in ``names`` (and not yet in
    ``dest``) into ``dest``, flat."""
    todo = {n for n in names if existing_duration(dest / n) is None}
    if not todo:
        return
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                base = Path(member.name).name
                if member.isfile() and base in todo:
                    fh = tar.extractfile(member)
                    if fh is not None:
                        tmp = dest / f".{base}.part"
                        tmp.write_bytes(fh.read())
                        tmp.replace(dest / base)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise FleursError(f"{archive}: cannot read the audio archive ({exc})") from None


def _wav_of(
    row: FleursRow, src: FleursSource, audio_root: Path
) -> tuple[Path | None, str, str, bool]:
    """``(path of an audio file, "", "", decoded)`` or ``(None, reason, detail, False)``;
    ``decoded`` is true when the file was written from the row's bytes just now."""
    if src.kind == "tsv":
        assert src.audio is not None
        folder = src.audio if src.audio.is_dir() else audio_root
        path = folder / row.file_name
        if not path.is_file():
            return None, "missing_audio", f"{path} not found", False
        return path, "", "", False
    if row.audio_path and not row.audio_bytes:
        return Path(row.audio_path), "", "", False
    out = audio_root / f"{Path(row.file_name).stem}.wav"
    if existing_duration(out, SAMPLE_RATE) is not None:
        return out, "", "", False
    if not row.audio_bytes:
        return None, "missing_audio", f"{row.file_name}: no audio bytes and no file", False
    try:
        data, sr = sf.read(io.BytesIO(row.audio_bytes), dtype="float32", always_2d=True)
        wav = load_audio((data, int(sr)), SAMPLE_RATE, warn_silence=False)
    except Exception as exc:  # libsndfile raises several types
        detail = f"{row.file_name}: audio bytes do not decode ({exc})"
        return None, "unreadable_audio", detail, False
    save_audio(out, wav, SAMPLE_RATE)
    return out, "", "", True


# --------------------------------------------------------------------------- preparation
def _text_table(rows: Sequence[FleursRow], field: str) -> dict[str, str]:
    """``{sentence id: most common transcript}`` over the rows of one language."""
    votes: dict[str, Counter] = {}
    for r in rows:
        t = " ".join(getattr(r, field).split())
        if r.problem is None and r.sent_id and t:
            votes.setdefault(r.sent_id, Counter())[t] += 1
    return {s: c.most_common(1)[0][0] for s, c in votes.items()}


def prepare_fleurs(
    corpus_dir: str | os.PathLike,
    out_dir: str | os.PathLike = "data",
    *,
    speech_langs: Sequence[str] | None = None,
    text_langs: Sequence[str] | None = None,
    transcript: str = "raw",
    leak_policy: str = "drop",
    min_duration: float = 0.0,
    max_duration: float = 40.0,
    nj: int = 4,
    max_warnings: int | None = 20,
    verbose: bool = False,
) -> PrepReport:
    """Write Kaldi dirs ``<out_dir>/fleurs_<lang>_{train,dev,test}`` from a local FLEURS copy.

    Args:
        corpus_dir: the directory of config dirs (or of ``data/<config>``).
        out_dir: where the dirs, the extracted/decoded audio (``fleurs_audio/``),
            ``local/fleurs_prep.json`` and ``local/fleurs_skipped.tsv`` go.
        speech_langs: languages whose speech is prepared (short codes or config names;
            default: every config present).
        text_langs: languages written as ``text.<lang>`` (default: the speech languages plus
            ``en``, when present).
        transcript: ``"raw"`` (cased, punctuated) or ``"normalized"`` for ``text`` and every
            ``text.<lang>``.
        leak_policy: ``"drop"`` or ``"keep"`` (see the module docstring).
        min_duration, max_duration: utterances outside this range (seconds) are skipped.
        nj: threads reading audio headers.
        max_warnings: warnings per skip reason (the TSV lists every skip).
        verbose: print the summary.

    Returns:
        A :class:`PrepReport`: skips by reason, utterances per dir and split, hours,
        ``n_sentences`` (distinct sentence ids of the speech languages) and translation
        coverage per text language.

    Raises:
        FleursError: the corpus or a requested language is not found, an option value is
            unknown, a hub file is unreadable, or nothing at all was prepared.
    """
    t0 = time.perf_counter()
    if transcript not in TRANSCRIPTS:
        raise FleursError(f"transcript must be one of {TRANSCRIPTS}, got {transcript!r}")
    if leak_policy not in LEAK_POLICIES:
        raise FleursError(f"leak_policy must be one of {LEAK_POLICIES}, got {leak_policy!r}")
    field = "raw" if transcript == "raw" else "normalized"
    root = corpus_root(corpus_dir)
    configs = list_configs(root)
    if not configs:
        raise FleursError(f"{root}: FLEURS not found: no config directories (nl_nl, en_us, ...)")
    speech = resolve_langs(parse_list(speech_langs) or configs, configs, where=str(root))
    default_text = [*speech, *(["en"] if any(short_code(c) == "en" for c in configs) else [])]
    text = resolve_langs(parse_list(text_langs) or default_text, configs, where=str(root))
    out = Path(out_dir)

    report = PrepReport(corpus="fleurs", out_dir=str(out))
    log = SkipLog(report, max_warnings=max_warnings)
    sources = {lang: find_config(root, cfg) for lang, cfg in {**speech, **text}.items()}
    rows: dict[tuple[str, str], list[FleursRow]] = {}
    for lang, splits in sources.items():
        for split, src in splits.items():
            rows[(lang, split)] = list(iter_rows(src, with_audio=lang in speech))
    tables = {
        lang: _text_table([r for s in SPLIT_ORDER for r in rows.get((lang, s), [])], field)
        for lang in text
    }
    latest: dict[str, int] = {}  # sentence id -> index of the latest split it is in
    for (_, split), rs in rows.items():
        for r in rs:
            if r.problem is None and r.sent_id:
                latest[r.sent_id] = max(latest.get(r.sent_id, 0), SPLIT_ORDER.index(split))

    kdirs: dict[str, KaldiDir] = {}
    genders: dict[str, dict[str, str]] = {}
    sentences: set[str] = set()
    seconds = 0.0
    written = 0
    with ThreadPoolExecutor(max_workers=max(1, nj)) as pool:
        for lang, config in speech.items():
            for split in SPLIT_ORDER:
                src = sources[lang].get(split)
                if src is None:
                    report.extra.setdefault("missing_splits", []).append(f"{config}/{split}")
                    continue
                name = f"fleurs_{lang}_{split}"
                kd = kdirs.setdefault(name, KaldiDir())
                audio_root = out / "fleurs_audio" / config / split
                keep: list[tuple[str, FleursRow, str]] = []
                seen: set[str] = set()
                for r in rows[(lang, split)]:
                    utt = safe_id(f"fleurs-{lang}-{r.sent_id}-{Path(r.file_name).stem}")
                    if r.problem is not None:
                        log.skip(f"{config}/{split}/{r.file_name}", "malformed_row", r.problem)
                        continue
                    if r.file_name in seen:
                        log.skip(utt, "duplicate_row", f"{r.file_name} listed twice ({split})")
                        continue
                    seen.add(r.file_name)
                    t = " ".join(getattr(r, field).split())
                    if not t:
                        log.skip(utt, "empty_transcript", f"{config} {split}: no {field} text")
                        continue
                    if leak_policy == "drop" and latest[r.sent_id] > SPLIT_ORDER.index(split):
                        later = SPLIT_ORDER[latest[r.sent_id]]
                        log.skip(
                            utt,
                            f"sentence_in_{later}_elsewhere",
                            f"sentence {r.sent_id} is in the {later} split of another language",
                        )
                        continue
                    keep.append((utt, r, t))
                if src.kind == "tsv" and src.audio is not None and src.audio.is_file():
                    _extract(src.audio, {r.file_name for _, r, _ in keep}, audio_root)
                wavs = [_wav_of(r, src, audio_root) for _, r, _ in keep]
                written += sum(1 for w in wavs if w[3])
                durs = pool.map(lambda w: existing_duration(w[0]) if w[0] else None, wavs)
                for (utt, r, t), (path, reason, detail, _), dur in zip(
                    keep, wavs, durs, strict=True
                ):
                    if path is None:
                        log.skip(utt, reason, detail)
                        continue
                    if dur is None:
                        log.skip(utt, "unreadable_audio", f"{path}: no readable audio")
                        continue
                    if log.skip_duration(utt, path, dur, min_duration, max_duration):
                        continue
                    kd.wav_scp[utt] = str(path.resolve())
                    kd.text[utt] = t
                    kd.utt2spk[utt] = utt
                    kd.utt2lang[utt] = lang
                    kd.utt2dur[utt] = round(dur, 3)
                    kd.utt2sent[utt] = f"fleurs-{r.sent_id}"
                    for tl, table in tables.items():
                        tt = t if tl == lang else table.get(r.sent_id)
                        if tt:
                            kd.translations.setdefault(tl, {})[utt] = tt
                    if r.gender:
                        genders.setdefault(name, {})[utt] = r.gender
                    sentences.add(r.sent_id)
                    report.used += 1
                    seconds += dur

    for name, kd in sorted(kdirs.items()):
        if not report.write_dir(out / name, kd, name.rsplit("_", 1)[1]):
            continue
        g = sorted(genders.get(name, {}).items())
        if g:
            write_mapping(out / name / "spk2gender", g)
    if not report.used:
        raise FleursError(f"{root}: no usable utterance for {', '.join(speech.values())}")
    report.n_sentences = len(sentences)
    report.hours = seconds / 3600.0
    report.set_coverage(kdirs.values(), text)
    report.extra["configs"] = {"speech": speech, "text": text}
    report.extra["wav_decoded"] = written
    log.write(out / SKIPPED_TSV)
    return report.finish(t0, json_path=out / REPORT_JSON, verbose=verbose)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m data_prep.fleurs``: parse arguments, run :func:`prepare_fleurs`, print."""
    ap = prep_parser(
        "fleurs",
        "Prepare a local FLEURS copy (per-config tsv + audio, save_to_disk arrow, or parquet) "
        "as Kaldi dirs fleurs_<lang>_{train,dev,test} with the shared sentence id in utt2sent "
        "and other languages' transcriptions of the same sentence as text.<lang>.",
    )
    ap.add_argument("--corpus-dir", required=True, help="dir of config dirs (nl_nl/, en_us/...)")
    ap.add_argument(
        "--speech-langs",
        nargs="+",
        default=None,
        help="speech languages: short codes (nl en) or configs (nl_nl); default: all present",
    )
    ap.add_argument(
        "--text-langs",
        nargs="+",
        default=None,
        help="languages written as text.<lang> (default: the speech languages and en)",
    )
    ap.add_argument("--transcript", choices=TRANSCRIPTS, default="raw", help="default: raw")
    ap.add_argument(
        "--leak-policy",
        choices=LEAK_POLICIES,
        default="drop",
        help="drop utterances whose sentence is in a later split of another language (default)",
    )
    add_duration_args(ap, max_duration=40.0)
    ap.add_argument("--nj", type=int, default=4, help="threads reading audio headers (default 4)")
    args = ap.parse_args(argv)
    return run_preparer(lambda: prepare_fleurs(**preparer_kwargs(args)))


if __name__ == "__main__":
    sys.exit(main())
