"""The distillation config: plain YAML mapped onto dataclasses, with ``key=value`` overrides.

A minimal ``conf/distill.yaml``::

    data:
      train: [data/fillets_nl_train, {dir: data/synth_de_train, fields: [text, text.en]}]
      dev: [data/fillets_nl_dev]
      teacher_id: use-multilingual
      target_fields: [text]
    model: {source: tiny}
    loss: {weights: {cosine: 1.0, infonce: 0.5}}
    max_steps: 200

>>> cfg = load_config("conf/distill.yaml", ["optim.lr_head=1e-3", "max_steps=100"])  # doctest: +SKIP

Override values are parsed as YAML (``data.train=[a,b]``, ``loss.weights={cosine: 1}``) and then
coerced to the field's type.  An unknown key raises :class:`ConfigError` naming it.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from speechx.distill.errors import ConfigError

#: The target field of a speech teacher (:mod:`speechx.distill.speech_teacher`).
SPEECH_FIELD = "speech"


@dataclass
class DataSource:
    """One data dir and the teacher fields its targets are built from.

    ``fields`` None means :attr:`DataConfig.target_fields`; ``teacher_id`` None means
    :attr:`DataConfig.teacher_id`, or for ``fields: [speech]`` the id of
    :attr:`DataConfig.speech_teacher`.  A plain string in YAML is read as ``DataSource(dir=...)``.
    """

    dir: str = ""
    fields: list[str] | None = None
    teacher_id: str | None = None


@dataclass
class DataConfig:
    """Training and dev data, targets and batching."""

    train: list[DataSource] = field(default_factory=list)
    dev: list[DataSource] = field(default_factory=list)
    #: Subdirectory of ``<data_dir>/teacher/`` that holds the teacher embeddings.
    teacher_id: str = "use-multilingual-v3"
    #: "text" (transcript), "text.<lang>" (translation); several = normalised mean of them;
    #: or "speech" alone: the speech teacher's embedding of the utterance (no transcript needed).
    target_fields: list[str] = field(default_factory=lambda: ["text"])
    #: A trained speechx encoder dir whose embeddings are the targets of the ``speech`` sources
    #: (:mod:`speechx.distill.speech_teacher`; their teacher id, ``speech-<hash>``, is derived
    #: from the model).  Dev retrieval stays speech -> text; the mean cosine to this teacher on
    #: dev is logged too.
    speech_teacher: str | None = None
    #: SAMU-XLSR language smoothing: p_l ∝ (n_l/N)^alpha over utt2lang (1 = natural).
    lang_alpha: float = 1.0
    max_batch_seconds: float = 60.0
    num_buckets: int = 10
    #: Utterances longer than this (seconds) are skipped by the dataset; None keeps all.
    max_duration: float | None = 20.0
    num_workers: int = 0
    #: "auto": when the bottom of the model is frozen (SpeechEncoder.cache_point), encode the
    #: audio once and train on the cached features; "off": always run the whole model.
    feature_cache: Literal["auto", "off"] = "auto"
    #: Where feature stores live (keyed by model and data); None = <exp_dir>/features.
    feature_cache_dir: str | None = None
    #: Fraction of cached frames zeroed per training utterance (time masking; 0 = off).
    feature_time_mask: float = 0.0
    #: Longest masked span, in frames.
    feature_mask_span: int = 10


@dataclass
class ModelConfig:
    """Where the student comes from.

    ``source`` is a preset name of :func:`speechx.models.build_encoder` (e.g. ``"tiny"``), a local
    hub-style backbone dir, or an existing speechx model dir (``config.json`` +
    ``model.safetensors``), which is loaded with ``SpeechEncoder.from_pretrained``: an encoder
    dir, or an ASR dir (``speechx train-asr``), whose encoder is taken without its CTC head.
    ``embed_dim`` None takes the teacher dimension.  ``overrides`` are passed to
    ``build_encoder`` (head options: pooling, dropout, freezing, ...).
    """

    source: str = "tiny"
    embed_dim: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    """AdamW with two learning rates, warmup and decay, clipping and accumulation."""

    lr_backbone: float = 5e-5
    lr_head: float = 1e-3
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    eps: float = 1e-8
    warmup_steps: int = 100
    #: Decay after warmup, to 0 at the last step ("constant" keeps the peak).
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    #: Max global gradient norm; 0 or None disables clipping.
    grad_clip: float | None = 1.0
    grad_accum: int = 1


@dataclass
class LossConfig:
    """Loss name -> weight (see :mod:`speechx.distill.losses`) and the InfoNCE temperature."""

    weights: dict[str, float] = field(default_factory=lambda: {"cosine": 1.0})
    temperature: float = 0.05


@dataclass
class EvalConfig:
    """Dev evaluation: speech -> text retrieval against the teacher embeddings of ``field``."""

    #: Teacher field of the text candidates; None = the first of ``data.target_fields``.
    field: str | None = None
    #: Selects the best model: recall@1, recall@5, recall@10, mrr@10, xsim_error,
    #: cosine_distance (mean 1 - cos to the own target).
    primary_metric: str = "recall@1"
    max_batch_seconds: float = 120.0


@dataclass
class LoopConfig:
    """The settings of the shared training loop (:mod:`speechx.distill.trainer`), common to
    every training config (distillation, CTC, pretraining), which adds its own sections.

    In the YAML and in :meth:`to_dict` these top-level keys come after the sections.
    """

    #: Optimizer steps to run; with ``epochs`` too, whichever ends first.
    max_steps: int | None = None
    epochs: int | None = None
    seed: int = 0
    #: torch.set_num_threads; None leaves torch's default (torchrun sets OMP_NUM_THREADS=1).
    num_threads: int | None = None
    #: ``auto`` (CUDA when there is a GPU, else CPU; ``$SPEECHX_DEVICE`` can say), ``cpu`` or
    #: ``cuda``; under torchrun each rank takes ``cuda:<LOCAL_RANK>`` and NCCL, or gloo on CPU.
    device: str = "auto"
    eval_every: int = 100
    save_every: int = 100
    keep_last_n: int = 3
    log_every: int = 10

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict (YAML/JSON-safe): the sections, then the loop settings."""
        d = dataclasses.asdict(self)
        loop = [f.name for f in dataclasses.fields(LoopConfig)]
        return {**{k: v for k, v in d.items() if k not in loop}, **{k: d[k] for k in loop}}


@dataclass
class DistillConfig(LoopConfig):
    """Everything a distillation run needs; the resolved copy is written to ``config.yaml``."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> DistillConfig:
        """Check values that types alone cannot; returns ``self``.

        Raises:
            ConfigError: naming the key and the problem.
        """
        if not self.data.train:
            raise ConfigError("data.train: no training data dir given")
        for i, src in enumerate([*self.data.train, *self.data.dev]):
            if not src.dir:
                raise ConfigError(f"data source #{i}: 'dir' is empty")
        check_loop_settings(self)
        if not self.data.target_fields:
            raise ConfigError("data.target_fields: empty")
        for src in [*self.data.train, *self.data.dev]:
            for f in [*(src.fields or []), *self.data.target_fields]:
                if f != "text" and not f.startswith("text.") and f != SPEECH_FIELD:
                    raise ConfigError(
                        f"target field {f!r} (data dir {src.dir}): use 'text', 'text.<lang>' "
                        f"or '{SPEECH_FIELD}'"
                    )
        self._check_speech_fields()
        if self.optim.warmup_steps < 0:
            raise ConfigError(f"optim.warmup_steps must be >= 0, got {self.optim.warmup_steps}")
        if len(self.optim.betas) != 2:
            raise ConfigError(f"optim.betas needs two values, got {self.optim.betas}")
        if not 0.0 <= self.data.feature_time_mask < 1.0:
            raise ConfigError(
                f"data.feature_time_mask must be in [0, 1), got {self.data.feature_time_mask}"
            )
        if self.data.feature_mask_span < 1:
            raise ConfigError("data.feature_mask_span must be >= 1")
        known = {"recall@1", "recall@5", "recall@10", "mrr@10", "xsim_error", "cosine_distance"}
        if self.eval.primary_metric not in known:
            raise ConfigError(
                f"eval.primary_metric: unknown metric {self.eval.primary_metric!r} "
                f"(known: {', '.join(sorted(known))})"
            )
        from speechx.distill.losses import DistillLoss

        DistillLoss(self.loss.weights, temperature=self.loss.temperature)
        return self

    def _check_speech_fields(self) -> None:
        """``speech`` stands alone in a source's fields, needs a speech teacher (or an explicit
        ``teacher_id``), and is never the dev evaluation field."""
        d = self.data
        lists = [("data.target_fields", d.target_fields)]
        lists += [(f"fields of {s.dir}", s.fields) for s in [*d.train, *d.dev] if s.fields]
        for where, fields in lists:
            if SPEECH_FIELD in fields and len(fields) > 1:
                raise ConfigError(
                    f"{where}: {fields}: '{SPEECH_FIELD}' (a speech teacher's target) cannot be "
                    "averaged with text fields in one source"
                )
        if self.eval_field == SPEECH_FIELD:
            raise ConfigError(
                "eval.field: dev evaluation is speech -> text retrieval, so it needs a text field "
                "('text' or 'text.<lang>'), not 'speech'"
            )
        for s in d.dev:
            if s.fields and SPEECH_FIELD in s.fields:
                raise ConfigError(
                    f"data.dev {s.dir}: fields [{SPEECH_FIELD}]: dev sources are scored against "
                    "text (eval.field); the speech teacher's dev cosine is logged anyway"
                )
        for s in d.train:
            fields = s.fields or d.target_fields
            if fields == [SPEECH_FIELD] and not d.speech_teacher and not s.teacher_id:
                raise ConfigError(
                    f"data.train {s.dir}: fields [{SPEECH_FIELD}] need data.speech_teacher "
                    "(a trained speechx model dir)"
                )

    @property
    def eval_field(self) -> str:
        """The teacher field dev retrieval compares against."""
        return self.eval.field or self.data.target_fields[0]


def check_data_dirs(train: Sequence[str], dev: Sequence[str]) -> None:
    """Checks of the data dirs of a config that lists them as plain paths (ASR, pretraining).

    Raises:
        ConfigError: no training dir, or an empty path.
    """
    if not train:
        raise ConfigError("data.train: no training data dir given")
    if any(not d for d in [*train, *dev]):
        raise ConfigError("data.train/data.dev: an empty data dir path")


def check_loop_settings(cfg: Any) -> None:
    """Checks shared by every training config (distillation, ASR, pretraining): steps/epochs,
    intervals, accumulation, batching and language smoothing.

    Raises:
        ConfigError: naming the key and the problem.
    """
    if cfg.max_steps is None and cfg.epochs is None:
        raise ConfigError("set max_steps or epochs (or both)")
    for key in ("max_steps", "epochs"):
        v = getattr(cfg, key)
        if v is not None and v <= 0:
            raise ConfigError(f"{key} must be > 0, got {v}")
    for key in ("eval_every", "save_every", "log_every", "keep_last_n"):
        if getattr(cfg, key) <= 0:
            raise ConfigError(f"{key} must be > 0, got {getattr(cfg, key)}")
    if getattr(cfg, "device", "auto") not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {cfg.device!r}")
    if cfg.optim.grad_accum < 1:
        raise ConfigError(f"optim.grad_accum must be >= 1, got {cfg.optim.grad_accum}")
    if cfg.data.max_batch_seconds <= 0:
        raise ConfigError("data.max_batch_seconds must be > 0")
    if not 0.0 <= cfg.data.lang_alpha <= 1.0:
        raise ConfigError(f"data.lang_alpha must be in [0, 1], got {cfg.data.lang_alpha}")


# --------------------------------------------------------------------------- loading
def config_from_dict(data: dict[str, Any] | None, cls: type = DistillConfig) -> Any:
    """Build a config dataclass from a nested mapping, coercing types.

    Raises:
        ConfigError: an unknown key (named with its full dotted path) or a value of the wrong type.
    """
    return _build(cls, data or {}, "")


def load_config(
    yaml_path: str | os.PathLike | None = None,
    overrides: list[str] | None = None,
    *,
    ignore_sections: tuple[str, ...] = ("recipe",),
    cls: type = DistillConfig,
) -> Any:
    """Read a YAML config, apply ``dotted.key=value`` overrides and validate.

    Args:
        yaml_path: the YAML file (None starts from the defaults).
        overrides: e.g. ``["optim.lr_head=1e-3", "max_steps=100", "data.train=[a,b]"]``;
            values are parsed as YAML.
        ignore_sections: top-level sections that belong to someone else and are skipped
            (the ``recipe:`` section read by ``recipes/distill.sh``).
        cls: the config dataclass (with a ``validate()`` method) the data is read into.

    Returns:
        The validated config, a :class:`DistillConfig` by default.

    Raises:
        ConfigError: the file is missing, not UTF-8 or not a YAML mapping, an override is not
            ``key=value``, a key is unknown (named), a value has the wrong type, or a required
            setting is missing; the message starts with the file (and the overrides).
    """
    data: dict[str, Any] = {}
    if yaml_path is not None:
        p = Path(yaml_path)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML ({_yaml_problem(exc)})") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{p}: top level must be a mapping, got {type(loaded).__name__}")
        data = {k: v for k, v in (loaded or {}).items() if k not in ignore_sections}
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected 'dotted.key=value'")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        _set_dotted(data, key.split("."), value, item)
    try:
        return config_from_dict(data, cls).validate()
    except ConfigError as exc:
        # Name the input: the file, and the overrides when there are any.
        where = [str(yaml_path)] if yaml_path is not None else []
        if overrides:
            where.append("overrides " + " ".join(overrides))
        raise ConfigError(f"{' + '.join(where) or 'default config'}: {exc}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A one-line description of a YAML parse error: what and where (line, column)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return problem


def save_config(cfg: Any, path: str | os.PathLike) -> Path:
    """Write the resolved config as YAML (keys in dataclass order); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
    return p


def _set_dotted(data: dict[str, Any], keys: list[str], value: Any, item: str) -> None:
    node = data
    for k in keys[:-1]:
        nxt = node.get(k)
        if nxt is None:
            nxt = node[k] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"override {item!r}: {k!r} is not a section")
        node = nxt
    node[keys[-1]] = value


def _build(cls: type, data: Any, path: str) -> Any:
    if dataclasses.is_dataclass(data) and isinstance(data, cls):
        return data
    if cls is DataSource and isinstance(data, str | os.PathLike):
        return DataSource(dir=str(data))
    if not isinstance(data, dict):
        raise ConfigError(f"{path or '<root>'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        key = f"{path}.{unknown[0]}" if path else str(unknown[0])
        raise ConfigError(f"unknown config key {key!r} (known in this section: {sorted(names)})")
    kwargs = {k: _coerce(hints[k], v, f"{path}.{k}" if path else k) for k, v in data.items()}
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{path}: bad value {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if origin is list:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            value = [value]  # a single value where a list is expected
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        (item,) = args or (Any,)
        return [_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        kt, vt = args or (Any, Any)
        return {_coerce(kt, k, path): _coerce(vt, v, f"{path}.{k}") for k, v in value.items()}
    if value is None:
        raise ConfigError(f"{path}: must not be null")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{path}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise ConfigError(f"{path}: expected an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, dict | list):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return str(value)
    return value
