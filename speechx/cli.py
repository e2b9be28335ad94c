"""The ``speechx`` command line: ``speechx <verb> --help``.

The CLI only parses arguments and calls library functions; every verb imports what it needs
lazily so that ``speechx --help`` stays instant.  Errors that bad input causes are printed as
one line naming the file or utterance, with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from speechx.errors import SpeechxError

# Corpus preparation modules, reached by name: speechx never imports data_prep directly
# (a test keeps this in step with data_prep.PREPARERS).
CORPORA: dict[str, str] = {
    "fillets": "data_prep.fillets",
    "synth": "data_prep.synth",
    "synthcs": "data_prep.synth_codeswitch",
    "ascend": "data_prep.ascend",
    "seame": "data_prep.seame",
    "commonvoice": "data_prep.commonvoice",
    "covost2": "data_prep.covost2",
    "fleurs": "data_prep.fleurs",
    "librispeech": "data_prep.librispeech",
    "longform": "data_prep.longform",
    "textcorpus": "data_prep.textcorpus",
}

_PASSTHROUGH = {"import-whisper"}

_VERBS: dict[str, tuple[Callable[[argparse.Namespace], int | None], str]] = {}


def _verb(name: str, help_: str):
    def deco(fn):
        _VERBS[name] = (fn, help_)
        return fn

    return deco


# ---------------------------------------------------------------------- recipe dry run
@_verb("check-recipe", "a recipe's --dry-run: name every missing input, train nothing")
def _check_recipe(args: argparse.Namespace) -> int:
    import inspect

    from speechx.recipe_check import RecipeInputs, check_recipe

    inputs = RecipeInputs(
        kind=args.kind,
        config=args.config,
        train_args=args.train_args,
        corpus=args.corpus,
        corpus_dir=args.corpus_dir,
        speech_langs=args.speech_langs,
        synth_langs=args.synth_langs,
        teacher=args.teacher,
        data_dirs=args.data_dirs,
        nproc=args.nproc,
    )
    corpus_check = None
    if args.corpus in CORPORA:  # the preparer's own check_<corpus>, when it has one
        fn = getattr(importlib.import_module(CORPORA[args.corpus]), f"check_{args.corpus}", None)
        if fn is not None:
            params = inspect.signature(fn).parameters
            kw = {
                k: v
                for k, v in (("speech_langs", args.speech_langs), ("text_langs", args.text_langs))
                if k in params
            }
            corpus_check = lambda: fn(args.corpus_dir or None, **kw)  # noqa: E731
    report = check_recipe(inputs, corpus_check)
    print(report.format())
    return 0 if report.ok else 1


def _add_check_recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", choices=["distill", "asr"], default="distill")
    p.add_argument("--config", required=True, type=Path)
    p.add_argument("--train-args", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--corpus", default="")
    p.add_argument("--corpus-dir", default="")
    for name in ("speech-langs", "text-langs", "synth-langs", "data-dirs"):
        p.add_argument(f"--{name}", nargs="*", default=[])
    p.add_argument("--teacher", default="")
    p.add_argument("--nproc", type=int, default=1)


# ---------------------------------------------------------------------------------- data
@_verb("prepare", "prepare a corpus into Kaldi data dirs (speechx prepare <corpus> --help)")
def _prepare(args: argparse.Namespace) -> int | None:
    if args.corpus not in CORPORA:
        raise SpeechxError(f"unknown corpus {args.corpus!r}; known: {', '.join(sorted(CORPORA))}")
    module = importlib.import_module(CORPORA[args.corpus])
    return module.main(args.corpus_args)


@_verb("validate-data", "validate Kaldi data dirs and list every problem")
def _validate(args: argparse.Namespace) -> int:
    from speechx.data.validate import validate_data_dir

    bad = 0
    for d in args.data_dirs:
        report = validate_data_dir(d, check_audio=not args.no_audio, allow_pipes=args.allow_pipes)
        print(report)
        bad += not report.ok
    return 1 if bad else 0


@_verb("fix-data", "sort a Kaldi data dir and drop incomplete utterances, with a report")
def _fix(args: argparse.Namespace) -> int:
    from speechx.data.validate import fix_data_dir

    for d in args.data_dirs:
        print(fix_data_dir(d))
    return 0


@_verb("split-data", "split a Kaldi data dir into N parts <dir>/splitN/<i> (reused if current)")
def _split_data(args: argparse.Namespace) -> int:
    from speechx.data.split import split_data_dir

    for part in split_data_dir(args.data_dir, args.n, by=args.by, force=args.force):
        print(part)
    return 0


@_verb("combine-data", "combine Kaldi data dirs (e.g. the parts of a split) into one")
def _combine_data(args: argparse.Namespace) -> int:
    from speechx.data.split import combine_data_dirs

    print(combine_data_dirs(args.data_dirs, args.out_dir))
    return 0


@_verb("merge-embeddings", "merge per-part `speechx encode` outputs in the order given")
def _merge_embeddings(args: argparse.Namespace) -> int:
    from speechx.data import KaldiDir
    from speechx.parallel import merge_embeddings

    expected = KaldiDir.read(args.data_dir).utt_ids if args.data_dir else None
    print(merge_embeddings(args.parts, args.out, expected_ids=expected))
    return 0


def _add_parallel_args(sub: dict[str, argparse.ArgumentParser]) -> None:
    p = sub["split-data"]
    p.add_argument("data_dir", type=Path)
    p.add_argument("n", type=int, help="number of parts")
    p.add_argument(
        "--by",
        choices=["utt", "duration"],
        default="utt",
        help="balance the utterance count (default) or the duration (utt2dur or segments)",
    )
    p.add_argument("--force", action="store_true", help="split again even if up to date")
    p = sub["combine-data"]
    p.add_argument("out_dir", type=Path, help="the combined dir (Kaldi order: dest first)")
    p.add_argument("data_dirs", nargs="+", type=Path)
    p = sub["merge-embeddings"]
    p.add_argument("parts", nargs="+", type=Path, help="encode output dirs, in order")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="check that the merged ids are this dir's utterances, in its order",
    )


@_verb("recipe-vars", "print a config's recipe: section as shell assignments (for run.sh)")
def _recipe_vars(args: argparse.Namespace) -> int:
    import yaml

    with open(args.config, encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh) or {}
    section = cfg.get("recipe") or {}
    if not isinstance(section, dict):
        raise SpeechxError(f"{args.config}: 'recipe' must be a mapping")
    for key, value in section.items():
        if not str(key).isidentifier():
            raise SpeechxError(f"{args.config}: recipe key {key!r} is not a valid variable name")
        if isinstance(value, list):
            value = " ".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif value is None:
            value = ""
        print(f"{key}={shlex.quote(str(value))}")
    return 0


def _add_data_args(sub: dict[str, argparse.ArgumentParser]) -> None:
    p = sub["prepare"]
    p.add_argument("corpus", help=f"one of: {', '.join(sorted(CORPORA))}")
    p.add_argument("corpus_args", nargs=argparse.REMAINDER, help="options of the corpus module")
    p = sub["validate-data"]
    p.add_argument("data_dirs", nargs="+", type=Path)
    p.add_argument("--no-audio", action="store_true", help="do not open the audio files")
    p.add_argument("--allow-pipes", action="store_true", help="accept 'cmd |' wav.scp entries")
    p = sub["fix-data"]
    p.add_argument("data_dirs", nargs="+", type=Path)
    p = sub["recipe-vars"]
    p.add_argument("config", type=Path)


# ------------------------------------------------------------------------------ teachers
@_verb(
    "teacher-embed",
    "embed transcripts and translations of data dirs with a text teacher, or their speech with "
    "a speech teacher (--speech-teacher MODEL_DIR, or a distillation --config)",
)
def _teacher_embed(args: argparse.Namespace) -> int:
    from speechx.teachers import CachedTeacher, embed_data_dir, load_teacher

    if args.speech_teacher is not None or args.config is not None:
        return _speech_teacher_embed(args)
    if not args.data_dirs:
        raise SpeechxError("give the data dirs to embed")
    args.batch_size = args.batch_size or 64
    _check_job_args(args)
    teacher = CachedTeacher(load_teacher(args.teacher), args.cache_dir)
    if args.nj > 1 and args.job is None:
        _teacher_embed_jobs(args)  # the jobs fill the cache; the loop below only reads it
    elif args.job is not None:
        _teacher_embed_part(args, teacher)
        return 0
    for d in args.data_dirs:
        fields = _teacher_fields(args, d)
        out = embed_data_dir(d, teacher, fields=fields, batch_size=args.batch_size)
        print(out)
    print(
        f"teacher {teacher.teacher_id}: {teacher.hits} texts from the cache, "
        f"{teacher.misses} encoded"
    )
    return 0


def _teacher_fields(args: argparse.Namespace, d: Path) -> list[str] | None:
    """The --fields a data dir has (None: all); missing ones fail unless --skip-missing."""
    from speechx.data import KaldiDir
    from speechx.teachers.embed import data_dir_fields

    fields = args.fields
    if fields is None:
        return None
    have = data_dir_fields(KaldiDir.read(d))
    missing = [f for f in fields if f not in have]
    if missing and not args.skip_missing:
        raise SpeechxError(f"{d}: has no {', '.join(missing)} (fields: {', '.join(have)})")
    if missing and args.job is None:
        print(f"{d}: skipping fields it does not have: {', '.join(missing)}")
    return [f for f in fields if f in have]


def _sharded_dirs(args: argparse.Namespace) -> list[Path]:
    """The data dirs big enough to split into --nj parts (smaller ones are done unsplit)."""
    from speechx.data import KaldiDir

    return [Path(d) for d in args.data_dirs if len(KaldiDir.read(d)) >= args.nj]


def _teacher_embed_jobs(args: argparse.Namespace) -> None:
    """Split every dir into --nj parts and embed part JOB of each in job JOB (--cmd)."""
    from speechx.data.split import split_data_dir
    from speechx.parallel import run_jobs

    dirs = _sharded_dirs(args)
    if not dirs:
        return
    for d in dirs:
        split_data_dir(d, args.nj)
    log = args.log_dir or dirs[0] / f"split{args.nj}" / "log"
    run_jobs(_job_argv(args), args.nj, Path(log) / "teacher_embed.JOB.log", cmd=args.cmd)


def _teacher_embed_part(args: argparse.Namespace, teacher: Any) -> None:
    """Job --job of --nj: embed part <job> of every dir that was split (fills the cache)."""
    from speechx.data import KaldiDir
    from speechx.data.split import split_dir
    from speechx.teachers import embed_data_dir
    from speechx.teachers.embed import data_dir_fields

    for d in _sharded_dirs(args):
        fields = _teacher_fields(args, d)
        part = split_dir(d, args.nj) / str(args.job)
        have = data_dir_fields(KaldiDir.read(part))
        fields = [f for f in (have if fields is None else fields) if f in have]
        print(embed_data_dir(part, teacher, fields=fields, batch_size=args.batch_size))
    print(
        f"job {args.job}/{args.nj}: {teacher.hits} texts from the cache, {teacher.misses} encoded"
    )


def _speech_teacher_embed(args: argparse.Namespace) -> int:
    """teacher-embed --speech-teacher MODEL DIR... or --config CONF: speech-teacher targets
    (speechx.distill.speech_teacher); --nj splits each dir, one job per part, then merges."""
    from speechx.data.split import split_data_dir, split_dir
    from speechx.distill.speech_teacher import (
        SpeechTeacher,
        embed_speech_data_dir,
        speech_target_dirs,
        speech_targets_current,
    )
    from speechx.parallel import run_jobs

    if args.fields is not None:
        raise SpeechxError("--fields is for text teachers; a speech teacher has one field, speech")
    if args.config is not None:
        if args.speech_teacher is not None or args.data_dirs:
            raise SpeechxError(
                "--config names the speech teacher (data.speech_teacher) and the data dirs; "
                "give no --speech-teacher or data dirs with it"
            )
        from speechx.distill import load_config

        cfg = load_config(args.config, list(args.train_args))
        if not cfg.data.speech_teacher:
            print(f"{args.config}: no data.speech_teacher, so no speech-teacher targets to compute")
            return 0
        model_dir = Path(cfg.data.speech_teacher)
        args.data_dirs = [Path(d) for d in speech_target_dirs(cfg)]
    else:
        if not args.data_dirs:
            raise SpeechxError("--speech-teacher: give the data dirs to embed")
        model_dir = args.speech_teacher
    _check_job_args(args)
    teacher = SpeechTeacher(model_dir)
    kw: dict[str, Any] = {
        "batch_size": args.batch_size or 16,
        "feature_stores": [] if args.no_features else args.features,
        "num_threads": args.threads,
    }
    sharded = [d for d in _sharded_dirs(args) if not speech_targets_current(d, teacher)]
    if args.job is not None:  # one job of --nj: part <job> of every dir that is split
        for d in sharded:
            part = split_dir(d, args.nj) / str(args.job)
            print(embed_speech_data_dir(part, teacher, store_name=d.name, **kw).describe())
        return 0
    parts: dict[Path, list[Path]] = {}
    if args.nj > 1 and sharded:
        for d in sharded:
            parts[d] = split_data_dir(d, args.nj)
        log = args.log_dir or sharded[0] / f"split{args.nj}" / "log"
        run_jobs(_job_argv(args), args.nj, Path(log) / "speech_teacher.JOB.log", cmd=args.cmd)
    counts = {"encoded": 0, "features": 0, "current": 0}
    for d in args.data_dirs:
        res = embed_speech_data_dir(d, teacher, parts=parts.get(Path(d), []), **kw)
        print(res.describe())
        counts["encoded"] += res.n_encoded
        counts["features"] += res.n_from_features
        counts["current"] += res.up_to_date
    print(
        f"speech teacher {teacher.teacher_id} ({model_dir}): {counts['encoded']} utterances "
        f"encoded here, {counts['features']} from cached features, {counts['current']} of "
        f"{len(args.data_dirs)} dirs already up to date"
    )
    return 0


def _check_job_args(args: argparse.Namespace) -> None:
    if args.nj < 1:
        raise SpeechxError(f"--nj must be >= 1, got {args.nj}")
    if args.job is not None and not 1 <= args.job <= args.nj:
        raise SpeechxError(f"--job {args.job} is not in 1..{args.nj} (--nj)")


def _job_argv(args: argparse.Namespace) -> list[str]:
    """This command line as one job of a job array: ``--job JOB`` right after the verb."""
    argv = list(args.argv)
    at = argv.index(args.verb) + 1
    return [sys.executable, "-m", "speechx.cli", *argv[:at], "--job", "JOB", *argv[at:]]


@_verb("import-whisper", "convert Whisper-base from its PyPI CTranslate2 files (cached)")
def _import_whisper(args: argparse.Namespace) -> int | None:
    from speechx.models.whisper_import import main as import_main

    return import_main(args.import_args)


# ------------------------------------------------------------------------------ training
@_verb("distill", "distill a speech encoder into a text teacher's space")
def _distill(args: argparse.Namespace) -> int:
    from speechx.distill import load_config, train_distill
    from speechx.teachers import load_teacher

    overrides = list(args.train_args)
    if args.teacher:
        overrides.append(f"data.teacher_id={load_teacher(args.teacher).teacher_id}")
    cfg = load_config(args.config, overrides)
    result = train_distill(cfg, args.exp_dir, resume=args.resume)
    print(result.model_dir)
    return 0


# ----------------------------------------------------------------------------------- ASR
@_verb("train-asr", "fine-tune a CTC recognizer on a speech encoder (best model by dev WER)")
def _train_asr(args: argparse.Namespace) -> int:
    from speechx.asr import load_asr_config, train_asr

    cfg = load_asr_config(args.config, list(args.train_args))
    result = train_asr(cfg, args.exp_dir, resume=args.resume)
    print(result.model_dir)
    return 0


@_verb("pretrain", "self-supervised wav2vec 2.0 pretraining of a backbone (ccc optional)")
def _pretrain(args: argparse.Namespace) -> int:
    from speechx.pretrain import load_pretrain_config, train_pretrain

    cfg = load_pretrain_config(args.config, list(args.train_args))
    result = train_pretrain(cfg, args.exp_dir, resume=args.resume)
    print(result.model_dir)
    return 0


@_verb("transcribe", "transcribe audio or data dirs with a CTC model (greedy or beam search)")
def _transcribe(args: argparse.Namespace) -> int:
    from speechx.asr import SpeechRecognizer
    from speechx.asr.evaluate import evaluate_asr, transcribe_data_dir, write_hyps

    if args.score_dir is not None:
        if not args.data_dir:
            raise SpeechxError("--score-dir needs --data-dir (references come from its text)")
        path = evaluate_asr(
            args.model,
            args.data_dir,
            args.score_dir,
            decode_dir=args.out,
            beam_size=args.beam,
            kenlm_model=args.lm,
            peer=args.peer,
            split=args.split,
            model_name=args.model_name,
        )
        print(f"wrote {path}")
        return 0
    if args.peer:
        raise SpeechxError("--peer needs --score-dir")
    model = SpeechRecognizer.from_pretrained(args.model)
    if args.data_dir:
        if len(args.data_dir) > 1 and args.out is None:
            raise SpeechxError("several --data-dir need --out DIR (one <set>/text each)")
        for d in args.data_dir:
            hyps = transcribe_data_dir(
                model, d, beam_size=args.beam, kenlm_model=args.lm, batch_size=args.batch_size
            )
            if args.out is None:
                sys.stdout.write("".join(f"{u} {t}".rstrip() + "\n" for u, t in hyps.items()))
            else:
                out = args.out / Path(d).name / "text" if len(args.data_dir) > 1 else args.out
                print(f"{len(hyps)} transcripts -> {write_hyps(out, hyps)}")
        return 0
    if not args.audio:
        raise SpeechxError("give audio files or --data-dir")
    texts = model.transcribe(
        [str(a) for a in args.audio],
        beam_size=args.beam,
        kenlm_model=args.lm,
        batch_size=args.batch_size,
    )
    lines = "".join(f"{a}\t{t}\n" for a, t in zip(args.audio, texts, strict=True))
    if args.out is None:
        sys.stdout.write(lines)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(lines, encoding="utf-8")
    return 0


def _add_training_args(p: argparse.ArgumentParser, config_help: str, example: str) -> None:
    """--config, --exp-dir, --resume and --train-args of a training verb."""
    p.add_argument("--config", required=True, type=Path, help=config_help)
    p.add_argument("--exp-dir", required=True, type=Path)
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument(
        "--train-args",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help=f"config overrides, e.g. {example}",
    )


def _add_asr_args(sub: dict[str, argparse.ArgumentParser]) -> None:
    _add_training_args(
        sub["train-asr"], "YAML ASR training config", "max_steps=100 model.ctc.time_mask_prob=0.1"
    )
    p = sub["transcribe"]
    p.add_argument("audio", nargs="*", type=Path, help="audio files")
    p.add_argument("--model", required=True, type=Path, help="speechx ASR model dir")
    p.add_argument("--data-dir", nargs="+", type=Path, help="Kaldi data dirs instead of audio")
    p.add_argument("--beam", type=int, default=1, help="beam width (1 = greedy)")
    p.add_argument("--lm", type=Path, default=None, help="KenLM model (needs pyctcdecode, kenlm)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output file (audio: path<TAB>text lines; one data dir: utt-id text lines), or a "
        "directory of <set>/text for several data dirs (default: stdout)",
    )
    p.add_argument(
        "--score-dir",
        type=Path,
        default=None,
        help="also score the data dirs: asr.json, .pra and summary.md go here",
    )
    p.add_argument(
        "--peer", default=None, help="with --score-dir: a Whisper peer, e.g. whisper-base"
    )
    p.add_argument("--split", default="test", help="split name for asr.json")
    p.add_argument("--model-name", default=None, help="model name for asr.json")


# ------------------------------------------------------------------------ encode / search
def _read_inputs(args: argparse.Namespace, sample_rate: int) -> tuple[list[str], list]:
    """Utterance ids and encoder inputs from --data-dir or audio paths."""
    from speechx.audio import load_audio
    from speechx.data import KaldiDir

    if args.data_dir:
        kdir = KaldiDir.read(args.data_dir)
        ids = kdir.utt_ids
        if not kdir.segments:
            return ids, [kdir.audio_path(u) for u in ids]
        inputs = []
        for u in ids:
            start, end = kdir.segment(u)
            inputs.append(
                (load_audio(kdir.audio_path(u), sample_rate, start=start, end=end), sample_rate)
            )
        return ids, inputs
    if not args.audio:
        raise SpeechxError("give audio files or --data-dir")
    return [str(a) for a in args.audio], [str(a) for a in args.audio]


@_verb("encode", "embed speech with a trained model (ids.txt + embeddings.npy)")
def _encode(args: argparse.Namespace) -> int:
    import numpy as np

    from speechx.models import SpeechEncoder

    if args.window is not None or args.hop is not None:
        return _encode_windows(args)
    _check_job_args(args)
    if args.nj > 1 and args.job is None:
        return _encode_jobs(args)
    if args.job is not None:
        from speechx.data.split import split_dir

        if not args.data_dir:
            raise SpeechxError("--job needs --data-dir")
        args.data_dir = split_dir(args.data_dir, args.nj) / str(args.job)
        args.out = split_dir(args.out, args.nj) / str(args.job)
    model = SpeechEncoder.from_pretrained(args.model)
    ids, inputs = _read_inputs(args, model.config.sample_rate)
    emb = model.encode(
        inputs, batch_size=args.batch_size, precision=args.precision, num_threads=args.threads
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_save(out / "embeddings.npy", lambda fh: np.save(fh, emb))
    _atomic_save(out / "ids.txt", lambda fh: fh.write("".join(f"{i}\n" for i in ids).encode()))
    print(f"{emb.shape[0]} embeddings of dim {emb.shape[1]} -> {out}")
    return 0


def _encode_jobs(args: argparse.Namespace) -> int:
    """--nj N: split --data-dir, encode part JOB in job JOB (--cmd), merge in part order."""
    from speechx.data import KaldiDir
    from speechx.data.split import split_data_dir, split_dir
    from speechx.parallel import merge_embeddings, run_jobs

    if not args.data_dir:
        raise SpeechxError("--nj > 1 needs --data-dir (it is split into --nj parts)")
    parts = split_data_dir(args.data_dir, args.nj)
    log = Path(args.log_dir or split_dir(args.out, args.nj) / "log") / "encode.JOB.log"
    run_jobs(_job_argv(args), args.nj, log, cmd=args.cmd)
    outs = [split_dir(args.out, args.nj) / p.name for p in parts]
    merge_embeddings(outs, args.out, expected_ids=KaldiDir.read(args.data_dir).utt_ids)
    print(f"{args.nj} jobs (logs: {log}) merged -> {args.out}")
    return 0


def _encode_windows(args: argparse.Namespace) -> int:
    """--window/--hop: embed each recording in windows (speechx.longform); ids, segments."""
    import numpy as np

    from speechx.longform import LongformConfig, encode_long
    from speechx.models import SpeechEncoder

    if args.window is None:
        raise SpeechxError("--hop needs --window")
    if getattr(args, "nj", 1) > 1 or getattr(args, "job", None) is not None:
        raise SpeechxError("--window does not combine with --nj/--job yet")
    cfg = LongformConfig(window=args.window, hop=args.hop, batch_size=args.batch_size)
    if args.data_dir:
        from speechx.data import KaldiDir

        kdir = KaldiDir.read(args.data_dir)
        if kdir.segments:
            raise SpeechxError(
                f"{args.data_dir}: --window embeds whole recordings, but this dir has a "
                "segments file; give a dir without segments (one recording per line)"
            )
        recordings = [(u, kdir.audio_path(u)) for u in kdir.utt_ids]
    elif args.audio:
        recordings = [(Path(a).stem, str(a)) for a in args.audio]
        stems = [r for r, _ in recordings]
        dup = sorted({r for r in stems if stems.count(r) > 1})
        if dup:
            raise SpeechxError(f"--window: several audio files share the name {dup[0]!r}")
    else:
        raise SpeechxError("give audio files or --data-dir")
    model = SpeechEncoder.from_pretrained(args.model)
    ids: list[str] = []
    segments: list[str] = []
    embs = []
    for rec, path in recordings:
        res = encode_long(_at_precision(model, args), path, cfg, recording_id=rec)
        for seg, start, end in zip(res.segment_ids(), res.starts, res.ends, strict=True):
            ids.append(seg)
            segments.append(f"{seg} {rec} {start:.3f} {end:.3f}\n")
        embs.append(res.embeddings)
    emb = np.concatenate(embs, axis=0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_save(out / "embeddings.npy", lambda fh: np.save(fh, emb))
    _atomic_save(out / "ids.txt", lambda fh: fh.write("".join(f"{i}\n" for i in ids).encode()))
    _atomic_save(out / "segments", lambda fh: fh.write("".join(segments).encode()))
    print(f"{emb.shape[0]} windows of {len(recordings)} recording(s), dim {emb.shape[1]} -> {out}")
    return 0


@_verb("index", "build a search index from embeddings (encode output, or teacher texts)")
def _index(args: argparse.Namespace) -> int:
    from speechx.retrieval import EmbeddingIndex

    if args.embeddings:
        ids, emb = _load_embeddings(args.embeddings)
    else:
        from speechx.data import KaldiDir
        from speechx.teachers import CachedTeacher, load_teacher

        teacher = CachedTeacher(load_teacher(args.teacher), args.cache_dir)
        kdir = KaldiDir.read(args.text_dir)
        texts = kdir.text if args.field == "text" else kdir.translations.get(args.field[5:], {})
        if not texts:
            raise SpeechxError(f"{args.text_dir}: no {args.field} lines")
        ids = sorted(texts)
        emb = teacher.encode([texts[i] for i in ids])
    index = EmbeddingIndex.build(
        emb,
        ids=ids,
        backend=args.backend,
        normalize=True,
        nlist=args.nlist,
        nprobe=args.nprobe,
        hnsw_m=args.hnsw_m,
        ef_construction=args.ef_construction,
        ef_search=args.ef_search,
    )
    index.save(args.out)
    print(f"{len(index)} rows -> {args.out} ({index!r})")
    return 0


@_verb("search", "search an index with speech (audio files or a data dir) or embeddings")
def _search(args: argparse.Namespace) -> int:
    from speechx.retrieval import EmbeddingIndex

    index = EmbeddingIndex.load(args.index)
    if args.queries:
        ids, emb = _load_embeddings(args.queries)
    else:
        if not args.model:
            raise SpeechxError("give --model to embed audio queries, or --queries embeddings")
        from speechx.models import SpeechEncoder

        model = SpeechEncoder.from_pretrained(args.model)
        ids, inputs = _read_inputs(args, model.config.sample_rate)
        emb = model.encode(
            inputs, batch_size=args.batch_size, precision=args.precision, num_threads=args.threads
        )
    res = index.search(emb, top_k=args.top_k)
    lines = []
    for qid, hit_ids, scores in zip(ids, res.ids, res.scores, strict=True):
        hits = [
            {"id": h, "score": round(float(s), 5)} for h, s in zip(hit_ids, scores, strict=True)
        ]
        lines.append(json.dumps({"query": qid, "hits": hits}, ensure_ascii=False))
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        _atomic_save(Path(args.out), lambda fh: fh.write(text.encode()))
    else:
        sys.stdout.write(text)
    return 0


@_verb("evaluate-retrieval", "speech/text retrieval on test data dirs -> results/retrieval.json")
def _evaluate_retrieval(args: argparse.Namespace) -> int:
    from speechx.evaluation.speech_retrieval import evaluate_speech_retrieval
    from speechx.models import SpeechEncoder
    from speechx.teachers import CachedTeacher, load_teacher

    model = SpeechEncoder.from_pretrained(args.model)
    teacher = CachedTeacher(load_teacher(args.teacher), args.cache_dir)
    path = evaluate_speech_retrieval(
        _at_precision(model, args),
        args.data_dirs,
        args.out_dir,
        teacher_id=teacher.teacher_id,
        teacher=teacher,
        text_langs=args.text_langs,
        model_name=str(args.model),
        split=args.split,
        sample_rate=model.config.sample_rate,
        batch_size=args.batch_size,
        cascade=args.cascade,
        cascade_beams=args.cascade_beams,
        cascade_batch_size=args.cascade_batch_size,
        cascade_sets=args.cascade_sets,
        distractors=args.distractors,
        key_lang=args.key_lang,
    )
    print(path)
    return 0


def _at_precision(model: Any, args: argparse.Namespace) -> Any:
    """``model``, or a wrapper whose ``encode`` uses --precision/--threads."""
    if args.precision == "fp32" and args.threads is None:
        return model
    from speechx.models.precision import PrecisionEncoder

    return PrecisionEncoder(model, args.precision, args.threads)


def _add_precision_args(p: argparse.ArgumentParser) -> None:
    """--precision and --threads of the verbs that embed speech."""
    p.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "bf16", "int8"],  # speechx.models.precision.PRECISIONS
        help="inference precision: fp32; bf16 autocast (faster only on CPUs with AVX512-BF16/AMX "
        "or GPUs); int8 dynamic quantisation of the Linear layers (CPU). See "
        "benchmarks/encode.py",
    )
    p.add_argument(
        "--threads", type=int, default=None, help="torch threads while encoding (default: torch's)"
    )


def _load_embeddings(d: Path) -> tuple[list[str], Any]:
    import numpy as np

    d = Path(d)
    if not (d / "embeddings.npy").is_file() or not (d / "ids.txt").is_file():
        raise SpeechxError(f"{d}: expected embeddings.npy and ids.txt (from `speechx encode`)")
    ids = (d / "ids.txt").read_text(encoding="utf-8").split()
    emb = np.load(d / "embeddings.npy")
    if emb.ndim != 2 or emb.shape[0] != len(ids):
        raise SpeechxError(f"{d}: {len(ids)} ids but embeddings of shape {emb.shape}")
    return ids, emb


def _atomic_save(path: Path, write: Callable[[Any], Any]) -> None:
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _add_job_args(p: argparse.ArgumentParser) -> None:
    """--nj, --cmd, --log-dir (and the internal --job) of a verb that runs as sharded jobs."""
    g = p.add_argument_group("sharded jobs (docs/parallel.md)")
    g.add_argument(
        "--nj",
        type=int,
        default=1,
        help="split each data dir into N parts (<dir>/splitN/<i>), run one job per part, merge "
        "in order (default 1: no split)",
    )
    g.add_argument(
        "--cmd",
        default=None,
        help="launcher of the jobs, called as '<cmd> JOB=1:N <log> <command>': e.g. "
        "recipes/utils/run.sh or 'recipes/utils/slurm.sh --mem 8G' (default: subprocesses here)",
    )
    g.add_argument("--log-dir", type=Path, default=None, help="where the job logs go")
    g.add_argument("--job", type=int, default=None, help=argparse.SUPPRESS)


def _add_model_args(sub: dict[str, argparse.ArgumentParser]) -> None:
    for name in ("teacher-embed", "distill", "index", "evaluate-retrieval"):
        sub[name].add_argument(
            "--teacher",
            default="use-multilingual" if name != "distill" else None,
            help="teacher name: use-multilingual (default) or hf:<dir>",
        )
    for name in ("teacher-embed", "index", "evaluate-retrieval"):
        sub[name].add_argument(
            "--cache-dir",
            type=Path,
            default=None,
            help="teacher embedding cache (default $SPEECHX_CACHE or ~/.cache)",
        )
    p = sub["teacher-embed"]
    p.add_argument("data_dirs", nargs="*", type=Path)
    p.add_argument(
        "--fields",
        nargs="+",
        default=None,
        help="text and/or text.<lang> (default: every one the dir has)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="default 64 (text), 16 (speech)")
    g = p.add_argument_group(
        "speech teacher (speech-to-speech distillation: teacher/speech-<hash>/speech.npy)"
    )
    g.add_argument(
        "--speech-teacher",
        type=Path,
        default=None,
        metavar="MODEL_DIR",
        help="a trained speechx encoder dir: embed the speech of the data dirs with it",
    )
    g.add_argument(
        "--config",
        type=Path,
        default=None,
        help="a distillation config: the targets of its data.speech_teacher for its "
        "fields: [speech] training dirs and its dev dirs (nothing when it has no speech teacher)",
    )
    g.add_argument("--train-args", nargs="*", default=[], metavar="KEY=VALUE")
    g.add_argument(
        "--features",
        nargs="+",
        type=Path,
        default=None,
        help="feature stores of the teacher's frozen part to take rows from (store dirs or "
        "dirs of stores; default: MODEL_DIR/../features)",
    )
    g.add_argument("--no-features", action="store_true", help="encode everything from audio")
    g.add_argument("--threads", type=int, default=None, help="torch threads while encoding")
    p.add_argument(
        "--skip-missing",
        action="store_true",
        help="skip requested fields a dir does not have instead of failing",
    )
    sub["import-whisper"].add_argument(
        "import_args", nargs="*", help="options (speechx import-whisper --help)"
    )
    _add_training_args(sub["distill"], "YAML training config", "max_steps=100 optim.lr_head=1e-3")
    for name in ("encode", "search"):
        p = sub[name]
        p.add_argument("audio", nargs="*", type=Path, help="audio files")
        p.add_argument("--data-dir", type=Path, help="a Kaldi data dir instead of audio files")
        p.add_argument("--batch-size", type=int, default=16)
        _add_precision_args(p)
    sub["encode"].add_argument("--model", required=True, type=Path, help="speechx model dir")
    sub["encode"].add_argument("--out", required=True, type=Path, help="output directory")
    sub["encode"].add_argument(
        "--window",
        type=float,
        default=None,
        metavar="SEC",
        help="long recordings: one embedding per window of SEC seconds, ids "
        "<utt>-<start_ms>-<end_ms> and a Kaldi segments file of their times (speechx.longform)",
    )
    sub["encode"].add_argument(
        "--hop", type=float, default=None, metavar="SEC", help="with --window (default SEC/2)"
    )
    for name in ("encode", "teacher-embed"):
        _add_job_args(sub[name])
    p = sub["search"]
    p.add_argument("--index", required=True, type=Path)
    p.add_argument("--model", type=Path, help="speechx model dir (to embed audio queries)")
    p.add_argument("--queries", type=Path, help="query embeddings dir (from `speechx encode`)")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--out", type=Path, help="write JSONL here instead of stdout")
    p = sub["index"]
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--embeddings", type=Path, help="dir with embeddings.npy + ids.txt")
    src.add_argument("--text-dir", type=Path, help="Kaldi dir whose texts are embedded")
    p.add_argument("--field", default="text", help="text or text.<lang> (with --text-dir)")
    p.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "exact", "faiss-flat", "faiss-ivf", "faiss-hnsw"],
        help="exact/faiss-flat: exact search; faiss-ivf, faiss-hnsw: approximate, for large "
        "corpora (see benchmarks/retrieval.py)",
    )
    p.add_argument("--nlist", type=int, default=None, help="faiss-ivf cells (default ~4*sqrt(N))")
    p.add_argument("--nprobe", type=int, default=16, help="faiss-ivf cells visited per query")
    p.add_argument("--hnsw-m", type=int, default=32, help="faiss-hnsw links per node")
    p.add_argument("--ef-construction", type=int, default=64, help="faiss-hnsw build effort")
    p.add_argument("--ef-search", type=int, default=64, help="faiss-hnsw search effort")
    p.add_argument("--out", required=True, type=Path)
    p = sub["evaluate-retrieval"]
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--data-dirs", nargs="+", required=True, type=Path, help="test data dirs")
    p.add_argument("--out-dir", required=True, type=Path, help="results dir")
    p.add_argument("--text-langs", nargs="*", default=None, help="text languages to score")
    p.add_argument("--split", default="test")
    p.add_argument("--batch-size", type=int, default=16)
    _add_precision_args(p)
    p.add_argument(
        "--cascade",
        default=None,
        metavar="WHISPER",
        help="also score the cascade peer: this Whisper (whisper-base, or a transformers Whisper "
        "dir) transcribes the speech in its own language, the teacher embeds the transcript; "
        "rows go to retrieval.json 'peers', transcripts and WER/CER to <out-dir>/cascade/<set>/",
    )
    p.add_argument(
        "--cascade-beams", type=int, default=1, help="cascade beam size (default 1: greedy)"
    )
    p.add_argument("--cascade-batch-size", type=int, default=8, help="utterances per Whisper batch")
    p.add_argument(
        "--cascade-sets",
        nargs="+",
        default=None,
        metavar="SET",
        help="score the cascade on these data dirs only (names or paths; default: all)",
    )
    p.add_argument(
        "--distractors",
        nargs="+",
        type=Path,
        default=None,
        metavar="PATH",
        help="XTREME-S protocol: also score speech:X -> text:<key-lang>+distractors, the keys of "
        "every test set padded with these sentences (text files, one per line, or Kaldi dirs)",
    )
    p.add_argument("--key-lang", default="en", help="language of the XTREME-S keys (default en)")


# ------------------------------------------------------------------------------- scoring
@_verb("score", "score ASR hypotheses against references: WER/CER/MER per language, alignments")
def _score(args: argparse.Namespace) -> int:
    from speechx.evaluation.asr import (
        load_normalizer,
        peer_rows,
        read_transcripts,
        read_utt2lang,
        score_transcripts,
        write_asr_results,
    )
    from speechx.metrics.asr import TextNormalizer

    if args.no_normalize:
        norm = TextNormalizer.verbatim()
    elif args.normalizer is not None:
        norm = load_normalizer(args.normalizer)
    else:
        norm = TextNormalizer()
    changes: dict[str, Any] = {}
    if args.unicode_form is not None:
        changes["unicode_form"] = None if args.unicode_form == "none" else args.unicode_form
    if args.no_lowercase:
        changes["lowercase"] = False
    if args.keep_punctuation:
        changes["remove_punctuation"] = False
    if args.no_word_apostrophes:
        changes["keep_word_apostrophes"] = False
    if changes:
        norm = TextNormalizer.from_settings({**norm.settings(), **changes})
    refs = read_transcripts(args.ref, what="references")
    hyps = read_transcripts(args.hyp, what="hypotheses")
    utt2lang = None
    if args.utt2lang is not None:
        utt2lang = read_utt2lang(args.utt2lang)
    elif args.ref.is_dir() and (args.ref / "utt2lang").is_file():
        utt2lang = read_utt2lang(args.ref)
    kwargs: dict[str, Any] = {
        "utt2lang": utt2lang,
        "normalizer": norm,
        "lang": args.lang,
        "set_name": args.set,
    }
    report = score_transcripts(refs, hyps, **kwargs)
    print(report.format(args.metric, top=args.top), end="")
    peers = []
    for spec in args.peer:
        system, sep, path = spec.partition("=")
        if not sep or not system or not path:
            raise SpeechxError(f"--peer {spec!r}: expected SYSTEM=HYP_FILE")
        peer = score_transcripts(
            refs, read_transcripts(path, what=f"{system} hypotheses"), **kwargs
        )
        peers += peer_rows(peer, system)
        overall = peer.overall
        rates = ", ".join(
            f"{m.upper()} {100 * overall[m]:.2f}%" for m in args.metric if overall[m] is not None
        )
        print(f"peer {system}: {rates}")
    if args.out_dir is not None:
        path = write_asr_results(
            args.out_dir,
            split=args.split,
            model=args.model or str(args.hyp),
            report=report,
            peers=peers,
        )
        print(f"wrote {path}")
    return 0


def _add_score_args(sub: dict[str, argparse.ArgumentParser]) -> None:
    p = sub["score"]
    p.add_argument("ref", type=Path, help="reference Kaldi text file (utt-id words...) or data dir")
    p.add_argument("hyp", type=Path, help="hypothesis Kaldi text file or dir with a text file")
    p.add_argument(
        "--utt2lang",
        type=Path,
        default=None,
        help="utt-id -> language file for the per-language breakdown (default: REF dir's)",
    )
    p.add_argument("--lang", default=None, help="language of every utterance without utt2lang")
    p.add_argument("--set", default=None, help="data set name recorded in each row")
    p.add_argument(
        "--metric",
        nargs="+",
        choices=["wer", "cer", "mer"],
        default=["wer", "cer", "mer"],
        help="rates to print (asr.json always has all three)",
    )
    p.add_argument("--top", type=int, default=10, help="most frequent errors to print")
    p.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="write asr.json, .pra alignments, summary.md and a chart here",
    )
    p.add_argument("--split", default="test", help="split name for asr.json")
    p.add_argument("--model", default=None, help="model name for asr.json (default: HYP path)")
    p.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="SYSTEM=HYP",
        help="also score another system's hypotheses as a peer row (repeatable)",
    )
    g = p.add_argument_group("normalisation (default: NFKC, case-folded, punctuation removed)")
    g.add_argument(
        "--normalizer",
        type=Path,
        default=None,
        help="JSON normaliser settings, a results/config JSON with a 'normalizer' entry, "
        "or a model dir",
    )
    g.add_argument(
        "--no-normalize",
        action="store_true",
        help="score the text as it is (only whitespace is collapsed)",
    )
    g.add_argument("--unicode-form", choices=["NFC", "NFKC", "NFD", "NFKD", "none"], default=None)
    g.add_argument("--no-lowercase", action="store_true", help="keep case")
    g.add_argument("--keep-punctuation", action="store_true", help="do not remove punctuation")
    g.add_argument(
        "--no-word-apostrophes",
        action="store_true",
        help="remove apostrophes inside words too (don't -> don t)",
    )


# ------------------------------------------------------------------------ code-switching
@_verb(
    "evaluate-codeswitch",
    "code-switched speech: MER, per-language and switch-point errors, language confusion, "
    "retrieval vs monolingual queries -> results/codeswitch.json",
)
def _evaluate_codeswitch(args: argparse.Namespace) -> int:
    from speechx.evaluation.asr import load_normalizer
    from speechx.evaluation.codeswitch import (
        evaluate_codeswitch,
        hypotheses_for_sets,
        lexicons_from_dirs,
    )
    from speechx.metrics.asr import TextNormalizer

    names = [Path(d).name for d in args.data_dirs]
    if len(set(names)) != len(names):
        raise SpeechxError(f"data dirs must have distinct names, got {names}")
    if args.hyp is None and args.asr_model is None and args.model is None:
        raise SpeechxError("nothing to evaluate: give --hyp or --asr-model, and/or --model")
    if args.mono and args.model is None:
        raise SpeechxError("--mono needs --model (a speech encoder for the retrieval)")
    if args.normalizer is not None:
        norm = load_normalizer(args.normalizer)
    elif args.asr_model is not None:
        norm = load_normalizer(args.asr_model)
    else:
        norm = TextNormalizer()
    hyps = None
    asr_name = None
    if args.hyp is not None:
        hyps = hypotheses_for_sets(args.hyp, names)
        asr_name = str(args.hyp)
    elif args.asr_model is not None:
        from speechx.asr import SpeechRecognizer
        from speechx.asr.evaluate import transcribe_data_dir, write_hyps

        recognizer = SpeechRecognizer.from_pretrained(args.asr_model)
        decode_root = args.decode_dir or args.out_dir.parent / "decode"
        hyps = {}
        for d, name in zip(args.data_dirs, names, strict=True):
            hyps[name] = transcribe_data_dir(
                recognizer, d, beam_size=args.beam, batch_size=args.asr_batch_size
            )
            written = write_hyps(decode_root / name / "text", hyps[name])
            print(f"{len(hyps[name])} transcripts -> {written}")
        asr_name = str(args.asr_model)
    encoder = teacher = None
    sample_rate = 16000
    if args.model is not None:
        from speechx.models import SpeechEncoder
        from speechx.teachers import CachedTeacher, load_teacher

        encoder = SpeechEncoder.from_pretrained(args.model)
        sample_rate = encoder.config.sample_rate
        teacher = CachedTeacher(load_teacher(args.teacher), args.cache_dir)
    lexicons = lexicons_from_dirs(args.lexicon_dirs, norm) if args.lexicon_dirs else None
    path = evaluate_codeswitch(
        args.data_dirs,
        args.out_dir,
        hyps=hyps,
        encoder=encoder,
        teacher=teacher,
        mono_dirs=args.mono,
        normalizer=norm,
        lexicons=lexicons,
        window=args.window,
        split=args.split,
        model_name=None if args.model is None else str(args.model),
        asr_name=asr_name,
        cache_dir=args.cache_dir,
        sample_rate=sample_rate,
        batch_size=args.batch_size,
    )
    if args.peer:
        from speechx.evaluation.codeswitch import add_whisper_peer

        for r in add_whisper_peer(
            args.data_dirs,
            path,
            args.peer,
            decode_dir=(args.decode_dir or args.out_dir.parent / "decode") / f"peer-{args.peer}",
            normalizer=norm,
            lexicons=lexicons,
            window=args.window,
            split=args.split,
            batch_size=args.asr_batch_size,
        ):
            print(
                f"peer {r['system']} {r.get('set', '')} {r.get('pair')}: MER {r.get('mer')}, "
                f"switch-point {r.get('switch_point_error')}"
            )
    print(path)
    return 0


def _add_codeswitch_args(sub: dict[str, argparse.ArgumentParser]) -> None:
    p = sub["evaluate-codeswitch"]
    p.add_argument(
        "data_dirs",
        nargs="+",
        type=Path,
        help="code-switched Kaldi dirs (text, text.langtags, utt2lang = <matrix>-<embedded>, "
        "utt2sent, text.<lang>)",
    )
    p.add_argument("--out-dir", required=True, type=Path, help="results dir")
    asr = p.add_mutually_exclusive_group()
    asr.add_argument(
        "--hyp",
        type=Path,
        default=None,
        help="ASR hypotheses: one Kaldi text file for every set, or a dir of <set>/text",
    )
    asr.add_argument(
        "--asr-model", type=Path, default=None, help="speechx CTC model dir to transcribe with"
    )
    p.add_argument("--beam", type=int, default=1, help="--asr-model beam width (1 = greedy)")
    p.add_argument("--asr-batch-size", type=int, default=8)
    p.add_argument(
        "--decode-dir",
        type=Path,
        default=None,
        help="--asr-model hypotheses go to <dir>/<set>/text (default: OUT_DIR/../decode)",
    )
    p.add_argument(
        "--model", type=Path, default=None, help="speechx speech encoder dir for retrieval"
    )
    p.add_argument(
        "--mono",
        nargs="+",
        default=[],
        type=Path,
        metavar="DIR",
        help="monolingual speech dirs of the same sentences (matched by utt2sent) to compare "
        "the code-switched queries with",
    )
    p.add_argument("--teacher", default="use-multilingual", help="teacher of the text views")
    p.add_argument("--cache-dir", type=Path, default=None, help="teacher embedding cache")
    p.add_argument("--batch-size", type=int, default=16, help="speech encoder batch size")
    p.add_argument(
        "--window", type=int, default=1, help="tokens on each side of a switch (default 1)"
    )
    p.add_argument(
        "--lexicon-dirs",
        nargs="+",
        default=[],
        type=Path,
        metavar="DIR",
        help="training dirs whose transcripts give each language's vocabulary for the "
        "language confusion (added to the test sets' own)",
    )
    p.add_argument(
        "--normalizer",
        type=Path,
        default=None,
        help="normaliser settings (JSON, results JSON or model dir; default: the ASR model's, "
        "else NFKC + case-folded + punctuation removed)",
    )
    p.add_argument("--split", default="test", help="split name for codeswitch.json")
    p.add_argument(
        "--peer",
        default="",
        help="also transcribe with this Whisper model (e.g. whisper-base), zero-shot with the "
        "matrix language forced, and add its rows to codeswitch.json as peers",
    )


# -------------------------------------------------------------------------------- mining
@_verb("mine", "mine translation pairs between two collections (margin scoring) -> TSV")
def _mine(args: argparse.Namespace) -> int:
    from speechx.evaluation.collection import load_collection, parse_spec, write_pairs_tsv
    from speechx.mining import mine

    specs = [parse_spec(args.src), parse_spec(args.tgt)]
    encoder = teacher = None
    sample_rate = 16000
    if any(s.needs_encoder for s in specs):
        if args.model is None:
            which = "--src" if specs[0].needs_encoder else "--tgt"
            raise SpeechxError(
                f"{which} {specs[0 if which == '--src' else 1].spec}: speech needs --model "
                "(a speechx encoder dir)"
            )
        from speechx.models import SpeechEncoder

        model = SpeechEncoder.from_pretrained(args.model)
        encoder, sample_rate = _at_precision(model, args), model.config.sample_rate
    if any(s.needs_teacher for s in specs):
        from speechx.teachers import CachedTeacher, load_teacher

        teacher = CachedTeacher(load_teacher(args.teacher), args.cache_dir)
    src, tgt = (
        load_collection(
            s,
            encoder=encoder,
            teacher=teacher,
            sample_rate=sample_rate,
            batch_size=args.batch_size,
            unify=args.unify,
        )
        for s in specs
    )
    pairs = mine(
        src.embeddings,
        tgt.embeddings,
        src_ids=src.ids,
        tgt_ids=tgt.ids,
        mode=args.mode,
        scoring=args.scoring,
        k=args.k,
        threshold=args.threshold,
        backend=args.backend,
        names=(f"--src {src.name}", f"--tgt {tgt.name}"),
    )
    out = None if str(args.out) == "-" else args.out
    text = write_pairs_tsv(out, pairs, src, tgt)
    if out is None:
        sys.stdout.write(text)
    else:
        print(
            f"{len(pairs)} pairs ({args.mode}, {args.scoring}"
            f"{'' if args.threshold is None else f' >= {args.threshold}'}) of {len(src)} x "
            f"{len(tgt)} -> {out}"
        )
    return 0


@_verb("evaluate-mining", "bitext mining F1 of test speech vs shuffled texts + distractors")
def _evaluate_mining(args: argparse.Namespace) -> int:
    from speechx.evaluation.mining import evaluate_mining
    from speechx.teachers import CachedTeacher, load_teacher

    if (args.model is None) == (args.embeddings is None):
        raise SpeechxError("give either --model (to encode the speech) or --embeddings")
    teacher = CachedTeacher(load_teacher(args.teacher), args.cache_dir)
    encoder = source = None
    sample_rate = 16000
    if args.model is not None:
        from speechx.models import SpeechEncoder

        model = SpeechEncoder.from_pretrained(args.model)
        encoder, sample_rate = _at_precision(model, args), model.config.sample_rate
    else:
        source = _load_embeddings(args.embeddings)
    path = evaluate_mining(
        args.data_dir,
        args.out_dir,
        teacher=teacher,
        teacher_id=teacher.teacher_id,
        encoder=encoder,
        source_embeddings=source,
        distractors=args.distractors,
        tgt_lang=args.tgt_lang,
        k=args.k,
        scorings=args.scorings,
        modes=args.modes,
        backend=args.backend,
        ceiling=not args.no_ceiling,
        model_name=args.model_name or str(args.model or args.embeddings),
        split=args.split,
        sample_rate=sample_rate,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    print(path)
    return 0


def _add_mining_args(sub: dict[str, argparse.ArgumentParser]) -> None:
    modes = ["forward", "backward", "intersection", "union"]  # speechx.mining.MODES
    scorings = ["ratio", "distance", "cosine"]  # speechx.metrics.retrieval.SCORINGS
    backends = ["exact", "faiss-flat", "faiss-ivf", "faiss-hnsw", "auto"]
    p = sub["mine"]
    p.description = (
        "Mine translation pairs between two collections with margin scoring (Artetxe & Schwenk "
        "2019). A SPEC is speech:DIR (a Kaldi dir's audio, needs --model), text:DIR or "
        "text.<lang>:DIR (a Kaldi dir's transcripts or translations, embedded by --teacher), "
        "emb:PATH (a `speechx encode` dir, or a `speechx teacher-embed` <field>.npy), or a text "
        "file (file:PATH or PATH; one sentence per line, ids = line numbers, or id<TAB>sentence "
        "on every line). The TSV has a header, then src_id, tgt_id, score (and src_text, "
        "tgt_text when known), best first."
    )
    p.add_argument("--src", required=True, metavar="SPEC", help="the source collection")
    p.add_argument("--tgt", required=True, metavar="SPEC", help="the target collection")
    p.add_argument("--out", required=True, type=Path, help="pairs TSV ('-' for stdout)")
    p.add_argument(
        "--mode",
        default="intersection",
        choices=modes,
        help="forward: each source's best target; backward: each target's best source; "
        "intersection (default): pairs chosen both ways; union: chosen either way",
    )
    p.add_argument(
        "--scoring",
        default="ratio",
        choices=scorings,
        help="ratio margin (default), distance margin, or plain cosine",
    )
    p.add_argument("--k", type=int, default=4, help="margin neighbourhood size (default 4)")
    p.add_argument(
        "--threshold", type=float, default=None, help="keep pairs scoring >= T (default: all)"
    )
    p.add_argument("--unify", action="store_true", help="text collections: one row per text")
    p.add_argument("--model", type=Path, default=None, help="speechx encoder dir (for speech:)")
    p.add_argument("--batch-size", type=int, default=16, help="speech encoder batch size")
    _add_precision_args(p)
    p = sub["evaluate-mining"]
    p.description = (
        "Bitext mining evaluation (BUCC style): the speech of --data-dir against its "
        "text.<tgt-lang> sentences (each distinct text once, shuffled) plus --distractors; "
        "precision, recall and F1 at the best threshold for each scoring and mode, and the "
        "teacher ceiling (transcripts as the source). Writes <out-dir>/mining.json, the "
        "## Mining section of summary.md and mining_pr.png."
    )
    p.add_argument("--data-dir", required=True, type=Path, help="the test Kaldi dir")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", type=Path, default=None, help="speechx encoder dir")
    src.add_argument(
        "--embeddings", type=Path, default=None, help="`speechx encode` output of --data-dir"
    )
    p.add_argument("--out-dir", required=True, type=Path, help="results dir")
    p.add_argument(
        "--distractors",
        nargs="+",
        type=Path,
        default=[],
        metavar="PATH",
        help="distractor sentences: text files (one per line) or Kaldi dirs (their "
        "text.<tgt-lang>), e.g. the train and dev dirs; any equal to a target is left out",
    )
    p.add_argument("--tgt-lang", default="en", help="language of the targets (default en)")
    p.add_argument("--k", type=int, default=4, help="margin neighbourhood size (default 4)")
    p.add_argument("--scorings", nargs="+", default=["ratio", "cosine"], choices=scorings)
    p.add_argument("--modes", nargs="+", default=modes, choices=modes)
    p.add_argument("--no-ceiling", action="store_true", help="skip the teacher ceiling")
    p.add_argument("--split", default="test", help="split name for mining.json")
    p.add_argument("--model-name", default=None, help="model name for mining.json")
    p.add_argument("--seed", type=int, default=0, help="seed of the target order")
    p.add_argument("--batch-size", type=int, default=16, help="speech encoder batch size")
    _add_precision_args(p)
    for name in ("mine", "evaluate-mining"):
        p = sub[name]
        p.add_argument(
            "--backend",
            default="exact",
            choices=backends,
            help="k-NN search: exact (chunked numpy) or FAISS (faiss-ivf/-hnsw approximate, "
            "for millions of rows)",
        )
        p.add_argument(
            "--teacher",
            default="use-multilingual",
            help="text teacher: use-multilingual or hf:<dir>",
        )
        p.add_argument("--cache-dir", type=Path, default=None, help="teacher embedding cache")


# ------------------------------------------------------------------------ long-form search
@_verb(
    "index-audio",
    "index long recordings in windows for search by text or speech (speechx search-audio)",
)
def _index_audio(args: argparse.Namespace) -> int:
    import shutil
    import time

    from speechx.audio_search import AudioIndex

    _check_job_args(args)
    cfg = _audio_index_config(args)
    if args.nj > 1 and args.job is None:
        return _index_audio_jobs(args)
    out = Path(args.out)
    if args.job is not None:
        from speechx.data.split import split_dir

        if not args.data_dir:
            raise SpeechxError("--job needs --data-dir")
        args.data_dir = split_dir(args.data_dir, args.nj) / str(args.job)
        out = split_dir(out, args.nj) / str(args.job)
    recordings = _audio_recordings(args)
    from speechx.models import SpeechEncoder

    model = SpeechEncoder.from_pretrained(args.model)
    work = out.parent / f".{out.name}.work"
    t0 = time.perf_counter()
    index = AudioIndex.build(
        _at_precision(model, args),
        recordings,
        cfg,
        backend="exact" if args.job is not None else args.backend,
        model=str(args.model),
        teacher=args.teacher or _model_teacher_id(args.model),
        work_dir=work,
        index_options=_index_options(args),
    )
    index.seconds = time.perf_counter() - t0
    index.save(out)
    shutil.rmtree(work, ignore_errors=True)
    print(f"{index!r} -> {out}")
    print(f"indexed {index.hours:.3f} h in {index.seconds:.1f} s ({index.hours_per_hour:.1f} h/h)")
    return 0


def _audio_index_config(args: argparse.Namespace) -> Any:
    from speechx.audio_search import AudioIndexConfig
    from speechx.speech_regions import RegionConfig, resolve_vad_backend

    method = args.boundaries if args.boundaries != "fixed" else "energy"
    if args.boundaries == "vad":
        resolve_vad_backend(args.vad_backend)  # a missing package fails before any work
    return AudioIndexConfig(
        window=args.window,
        hop=args.hop,
        boundaries=args.boundaries,
        regions=RegionConfig(method=method, vad_backend=args.vad_backend),
        min_window=min(args.min_window, args.window),
        batch_size=args.batch_size,
    )


def _audio_recordings(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(id, path) of the recordings to index: a data dir's wav.scp, or audio files (stems)."""
    from speechx.data import KaldiDir
    from speechx.data.kaldi import c_sort_key

    if args.data_dir:
        kdir = KaldiDir.read(args.data_dir)
        if kdir.segments:
            recs = sorted({s.recording_id for s in kdir.segments.values()}, key=c_sort_key)
        else:
            recs = kdir.utt_ids
        if not recs:
            raise SpeechxError(f"{args.data_dir}: no recordings")
        return [(r, kdir.wav_scp[r]) for r in recs]
    if not args.audio:
        raise SpeechxError("give audio files or --data-dir")
    return [(Path(a).stem, str(a)) for a in args.audio]


def _index_audio_jobs(args: argparse.Namespace) -> int:
    """--nj N: split --data-dir, index part JOB in job JOB (--cmd), merge in part order."""
    import time

    from speechx.audio_search import AudioIndex
    from speechx.data import KaldiDir
    from speechx.data.split import split_data_dir, split_dir
    from speechx.parallel import run_jobs

    if not args.data_dir:
        raise SpeechxError("--nj > 1 needs --data-dir (it is split into --nj parts)")
    kdir = KaldiDir.read(args.data_dir)
    if kdir.segments:
        raise SpeechxError(
            f"{args.data_dir}: --nj splits recordings, but this dir has a segments file; "
            "give a dir of whole recordings"
        )
    t0 = time.perf_counter()
    parts = split_data_dir(args.data_dir, args.nj, by="duration" if kdir.utt2dur else "utt")
    out = Path(args.out)
    log = Path(args.log_dir or split_dir(out, args.nj) / "log") / "index_audio.JOB.log"
    run_jobs(_job_argv(args), args.nj, log, cmd=args.cmd)
    outs = [split_dir(out, args.nj) / p.name for p in parts]
    merged = AudioIndex.merge(outs, backend=args.backend, index_options=_index_options(args))
    merged.seconds = time.perf_counter() - t0
    merged.save(out)
    print(f"{args.nj} jobs (logs: {log}) merged: {merged!r} -> {out}")
    print(
        f"indexed {merged.hours:.3f} h in {merged.seconds:.1f} s ({merged.hours_per_hour:.1f} h/h)"
    )
    return 0


def _index_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {"nprobe": args.nprobe}
    if args.backend == "faiss-ivf" and args.nlist is not None:
        opts["nlist"] = args.nlist
    return opts


def _model_teacher_id(model_dir: Path) -> str | None:
    """The teacher id an exp dir's config.yaml names (``<model>/../config.yaml``), if any."""
    import yaml

    cfg = Path(model_dir).parent / "config.yaml"
    try:
        data = yaml.safe_load(cfg.read_text(encoding="utf-8")) or {}
        tid = (data.get("data") or {}).get("teacher_id")
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    return str(tid) if tid else None


@_verb("search-audio", "search an audio index by text or speech: recording, start, end, score")
def _search_audio(args: argparse.Namespace) -> int:
    from speechx.audio_search import AudioIndex

    index = AudioIndex.load(args.index)
    merge = _merge_config(args)
    if args.text:
        from speechx.teachers import CachedTeacher, load_teacher

        teacher = CachedTeacher(load_teacher(args.teacher), args.cache_dir)
        queries = list(args.text)
        hits = index.search_text(teacher, queries, top_k=args.top_k, merge=merge)
    else:
        from speechx.models import SpeechEncoder

        model = SpeechEncoder.from_pretrained(args.model or index.model)
        queries = [str(a) for a in args.audio]
        hits = index.search_audio(model, queries, top_k=args.top_k, merge=merge)
    lines = []
    for q, hs in zip(queries, hits, strict=True):
        if args.json:
            doc = {"query": q, "hits": [h.to_dict() for h in hs]}
            lines.append(json.dumps(doc, ensure_ascii=False))
            continue
        if len(queries) > 1:
            lines.append(f"# {q}")
        lines += [f"{h.recording}\t{h.start:.2f}\t{h.end:.2f}\t{h.score:.4f}" for h in hs]
    sys.stdout.write("".join(f"{ln}\n" for ln in lines))
    return 0


def _merge_config(args: argparse.Namespace) -> Any:
    from speechx.audio_search import MergeConfig

    return MergeConfig(span=args.span, score=args.score, span_margin=args.span_margin)


@_verb(
    "evaluate-longform",
    "long-form search: text (and spoken) queries against an audio index and its truth table "
    "-> results/longform.json",
)
def _evaluate_longform(args: argparse.Namespace) -> int:
    from speechx.audio_search import AudioIndex
    from speechx.data.spans import read_truth
    from speechx.evaluation.longform import evaluate_longform
    from speechx.teachers import CachedTeacher, load_teacher

    index = AudioIndex.load(args.index)
    truth = read_truth(args.truth)
    teacher = CachedTeacher(load_teacher(args.teacher), args.cache_dir)
    encoder = None
    if args.audio_queries:
        from speechx.models import SpeechEncoder

        encoder = SpeechEncoder.from_pretrained(args.model or index.model)
    path = evaluate_longform(
        index,
        truth,
        args.out_dir,
        teacher=teacher,
        query_langs=args.query_langs,
        encoder=encoder,
        top_k=args.top_k,
        merge=_merge_config(args),
        iou=args.iou,
        split=args.split,
        model_name=args.model_name,
    )
    doc = json.loads(path.read_text(encoding="utf-8"))
    for r in doc["results"]:
        err = r["median_start_error"]
        print(
            f"{r['query']}: hit@1 {r['hit@1']:.3f}, hit@5 {r['hit@5']:.3f}, median start error "
            f"{'-' if err is None else f'{err:.2f} s'} (n={r['n_queries']})"
        )
    print(path)
    return 0


# The defaults and choices of speechx.audio_search (MergeConfig, AudioIndexConfig, BOUNDARIES,
# SPANS, SCORES) and speechx.speech_regions.VAD_BACKENDS, written out so that `speechx --help`
# imports nothing; tests/test_cli_audio_search.py keeps them in step.
_MERGE_DEFAULTS = {"span": "intersection", "score": "max", "span_margin": 0.05}
_INDEX_DEFAULTS = {"window": 6.0, "hop": 2.0, "boundaries": "energy", "min_window": 1.0}
_INDEX_DEFAULTS |= {"batch_size": 8}
_SPANS = ("intersection", "union", "best", "weighted")
_SCORES = ("max", "soft")
_BOUNDARIES = ("fixed", "energy", "vad")
_VAD_BACKENDS = ("auto", "webrtc", "silero")


def _add_merge_args(p: argparse.ArgumentParser) -> None:
    d = argparse.Namespace(**_MERGE_DEFAULTS)
    g = p.add_argument_group("merging windows into hits (speechx.audio_search)")
    g.add_argument("--span", choices=_SPANS, default=d.span, help=f"hit span (default {d.span})")
    g.add_argument("--score", choices=_SCORES, default=d.score, help=f"default {d.score}")
    g.add_argument(
        "--span-margin",
        type=float,
        default=d.span_margin,
        help=f"windows within this of the best define the span (default {d.span_margin})",
    )


def _add_audio_search_args(sub: dict[str, argparse.ArgumentParser]) -> None:
    d = argparse.Namespace(**_INDEX_DEFAULTS)
    p = sub["index-audio"]
    p.add_argument("audio", nargs="*", type=Path, help="recordings (ids are the file stems)")
    p.add_argument("--data-dir", type=Path, help="a Kaldi dir whose wav.scp lists the recordings")
    p.add_argument("--model", required=True, type=Path, help="speechx speech encoder dir")
    p.add_argument("--out", required=True, type=Path, help="the index directory")
    p.add_argument("--window", type=float, default=d.window, help=f"seconds (default {d.window:g})")
    p.add_argument(
        "--hop",
        type=float,
        default=d.hop,
        help=f"seconds between fixed windows (default {d.hop:g})",
    )
    p.add_argument(
        "--boundaries",
        choices=_BOUNDARIES,
        default=d.boundaries,
        help="fixed windows every --hop, or windows snapped to speech found from frame energy "
        "or a VAD (needs the optional webrtcvad-wheels or silero-vad)",
    )
    p.add_argument(
        "--vad-backend", choices=_VAD_BACKENDS, default="auto", help="with --boundaries vad"
    )
    p.add_argument(
        "--min-window",
        type=float,
        default=d.min_window,
        help=f"shortest speech-snapped window, seconds (default {d.min_window:g})",
    )
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="windows per batch")
    p.add_argument(
        "--backend",
        default="exact",
        choices=["auto", "exact", "faiss-flat", "faiss-ivf", "faiss-hnsw"],
        help="nearest-neighbour index of the windows (FAISS for many hours)",
    )
    p.add_argument("--nlist", type=int, default=None, help="faiss-ivf cells (default ~4*sqrt(N))")
    p.add_argument("--nprobe", type=int, default=16, help="faiss-ivf cells visited per query")
    p.add_argument(
        "--teacher",
        default=None,
        help="the teacher id whose space the model is in, recorded in the index (default: "
        "from the model's exp dir config.yaml)",
    )
    _add_precision_args(p)
    _add_job_args(p)
    p = sub["search-audio"]
    p.add_argument("--index", required=True, type=Path, help="from speechx index-audio")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--text", nargs="+", help="text queries, in any language the teacher covers")
    q.add_argument("--audio", nargs="+", type=Path, help="spoken queries (audio files)")
    p.add_argument("--teacher", default="use-multilingual", help="teacher of --text queries")
    p.add_argument("--cache-dir", type=Path, default=None, help="teacher embedding cache")
    p.add_argument(
        "--model", type=Path, default=None, help="encoder of --audio (default: the index's)"
    )
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--json", action="store_true", help="one JSON line per query")
    _add_merge_args(p)
    p = sub["evaluate-longform"]
    p.add_argument("--index", required=True, type=Path, help="from speechx index-audio")
    p.add_argument(
        "--truth", required=True, type=Path, help="truth.tsv, or the data dir that holds it"
    )
    p.add_argument("--query-langs", nargs="+", default=["en"], help="text query languages")
    p.add_argument("--out-dir", required=True, type=Path, help="results dir")
    p.add_argument("--teacher", default="use-multilingual", help="teacher of the text queries")
    p.add_argument("--cache-dir", type=Path, default=None, help="teacher embedding cache")
    p.add_argument(
        "--audio-queries",
        action="store_true",
        help="also query with another rendering of each sentence (speech:alt)",
    )
    p.add_argument("--model", type=Path, default=None, help="encoder of the spoken queries")
    p.add_argument("--model-name", default=None, help="model name for longform.json")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--iou", type=float, default=0.5, help="IoU of a correct hit (default 0.5)")
    p.add_argument("--split", default="test")
    _add_merge_args(p)


# ------------------------------------------------------------------------------- parsing
# ------------------------------------------------------------------------ learning curves
@_verb("compare-runs", "learning curves of several runs: a dev metric against steps and minutes")
def _compare_runs(args: argparse.Namespace) -> int:
    from speechx.evaluation.curves import (
        curve_table,
        curves_json,
        load_curve,
        parse_reference,
        plot_curves,
    )

    refs = [parse_reference(spec) for spec in args.reference]
    curves = [load_curve(spec, args.metric) for spec in args.runs]
    table = curve_table(curves, args.metric, at_minutes=args.at_minutes, references=refs)
    sys.stdout.write(table)
    if args.out:
        png = plot_curves(curves, args.metric, args.out, title=args.title, references=refs)
        print(f"wrote {png}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        _atomic_save(
            args.json,
            lambda fh: fh.write(
                json.dumps(curves_json(curves, args.metric, refs), indent=1).encode("utf-8")
            ),
        )
    return 0


def _add_compare_runs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "runs",
        nargs="+",
        metavar="[LABEL=]EXP_DIR[+EXP_DIR...]",
        help="experiment dirs; '+' chains the stages of one pipeline (pretraining, then "
        "distillation): on the time axis a stage starts where the ones before it ended",
    )
    p.add_argument("--metric", default="dev_recall@1", help="a dev metric of metrics.jsonl")
    p.add_argument("--out", type=Path, default=None, help="PNG: metric vs step and vs minutes")
    p.add_argument("--json", type=Path, default=None, help="the curves as JSON")
    p.add_argument(
        "--at-minutes",
        type=float,
        nargs="*",
        default=[],
        metavar="MIN",
        help="table columns: the best value reached within these training minutes",
    )
    p.add_argument("--title", default="", help="figure title")
    p.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="LABEL=VALUE",
        help="a level to compare against (e.g. the teacher's dev recall@1), drawn as a "
        "horizontal line and listed in the table; repeatable",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speechx",
        description="Speech and text in one multilingual sentence-embedding space.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="on an error, show the full traceback as well as the one-line message",
    )
    subparsers = parser.add_subparsers(dest="verb", metavar="<verb>", required=True)
    sub: dict[str, argparse.ArgumentParser] = {}
    for name, (_, help_) in _VERBS.items():
        sub[name] = subparsers.add_parser(name, help=help_, description=help_)
    _add_data_args(sub)
    _add_parallel_args(sub)
    _add_model_args(sub)
    _add_score_args(sub)
    _add_asr_args(sub)
    _add_training_args(sub["pretrain"], "YAML pretraining config", "max_steps=100 ccc.enabled=true")
    _add_codeswitch_args(sub)
    _add_audio_search_args(sub)
    _add_mining_args(sub)
    _add_compare_runs_args(sub["compare-runs"])
    _add_check_recipe_args(sub["check-recipe"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``speechx [-v] [--debug] <verb> ...`` and return its exit status.

    Every error that bad input causes (a :class:`SpeechxError`, or an ``OSError`` such as an
    unwritable output path) is printed as one line, ``speechx <verb>: error: <message>``, where
    the message names the file or utterance and the problem; the status is 2.  Any other
    exception is a bug in speechx: one line ``speechx <verb>: internal error: ...``, status 1.
    No traceback is shown unless ``--debug`` is given.  Warnings are printed as one line each,
    ``speechx <verb>: warning: <message>``.  Ctrl-C gives status 130.

    Returns:
        0 on success, 1 when a verb reports failure (or on an internal error), 2 on an error
        in the input, 130 when interrupted.
    """
    import traceback
    import warnings

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    n_global = 0  # leading global flags, so that `speechx --debug import-whisper` passes through
    while n_global < len(argv) and argv[n_global] in ("-v", "--verbose", "--debug"):
        n_global += 1
    if n_global < len(argv) and argv[n_global] in _PASSTHROUGH:
        # The verb's own module parses its options (and answers --help).
        args = parser.parse_args(argv[: n_global + 1])
        args.import_args = argv[n_global + 1 :] + (["--debug"] if args.debug else [])
    else:
        args = parser.parse_args(argv)
    args.argv = argv  # sharded verbs (--nj) rerun this command line as their jobs
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    verb = args.verb

    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"speechx {verb}: warning: {message}", file=sys.stderr)

    def fail(exc: BaseException, kind: str, status: int) -> int:
        if args.debug:
            traceback.print_exception(exc, file=sys.stderr)
        detail = str(exc).strip() or type(exc).__name__
        if kind == "internal error":
            detail = f"{type(exc).__name__}: {detail.splitlines()[0]}"
            if not args.debug:
                detail += " (a bug in speechx: rerun with --debug for the traceback)"
        print(f"speechx {verb}: {kind}: {detail}", file=sys.stderr)
        return status

    fn, _ = _VERBS[verb]
    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            rc = fn(args)
    except (SpeechxError, OSError) as exc:
        return fail(exc, "error", 2)
    except KeyboardInterrupt:
        print(f"speechx {verb}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        return fail(exc, "internal error", 1)
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
