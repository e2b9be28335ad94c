"""The distillation training loop: ``train_distill(config, exp_dir, resume=...)``.

One process or many (``torchrun --nproc_per_node=N``) run the same code: DDP over NCCL with one
GPU per rank (``cuda:<LOCAL_RANK>``) when CUDA is there, over gloo on the CPU otherwise
(``SPEECHX_DEVICE=cpu`` forces the CPU; see :func:`speechx.distill.runtime.select_device`).
With ``N`` ranks each optimizer step averages the gradients of ``N x optim.grad_accum`` batches,
exactly as one process with ``grad_accum`` multiplied by ``N`` would (the same batches too).
``exp_dir`` receives::

    config.yaml            the resolved config
    env.json               git sha, package versions, threads, world size, devices, backend
    log/train.log          the log (also printed)
    log/metrics.jsonl      one line per train log interval ("split": "train") and dev eval ("dev")
    log/curves.png         train loss and the dev primary metric against the step
    checkpoints/ckpt-N.pt  full training state, the newest ``keep_last_n`` kept
    model/                 the best model by the dev primary metric (SpeechEncoder.save_pretrained);
                           the final model when there is no dev data

Only rank 0 writes.  ``resume=True`` continues from the newest checkpoint exactly: the same
batches, RNG draws and optimizer state as an uninterrupted run.

Rank 0 holds ``exp_dir/.lock`` (:class:`speechx.runlock.RunLock`) for the whole run, so a second
run on the same directory stops at once with a :class:`~speechx.runlock.RunLockError`; the
kernel drops the lock when a run dies, so a killed run never blocks its resume.  Holding it,
the run removes what a killed one left half-done (checkpoint temp files, model temp dirs), and
a resumed run drops the metrics lines logged after its checkpoint (they are logged again).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from speechx.distill.checkpoint import (
    clean_stale,
    latest_checkpoint,
    list_checkpoints,
    load_latest_checkpoint,
    save_checkpoint,
    save_model_dir,
)
from speechx.distill.config import SPEECH_FIELD, DistillConfig, save_config
from speechx.distill.data import (
    DistillData,
    SourceSpec,
    build_distill_data,
    collate_distill,
    resolve_sources,
)
from speechx.distill.errors import TrainingError
from speechx.distill.evaluate import evaluate_dev, is_better
from speechx.distill.features import (
    FeatureData,
    FeatureStore,
    build_feature_store,
    collate_features,
)
from speechx.distill.losses import DistillLoss
from speechx.distill.runtime import (
    OnDevice,
    all_min,
    any_rank,
    append_jsonl,
    barrier,
    close_logging,
    describe_devices,
    environment_info,
    gather_objects,
    init_distributed,
    plot_curves,
    rng_state,
    seed_everything,
    set_rng_state,
    setup_logging,
    shutdown_distributed,
    to_device,
    write_json,
)
from speechx.distill.sampling import LanguageBalancedBatchSampler, language_probabilities
from speechx.distill.speech_teacher import SpeechTeacher
from speechx.distill.targets import load_targets
from speechx.errors import ModelError, TeacherError
from speechx.models import SpeechEncoder, build_encoder
from speechx.models.encoder import FORMAT_NAME, RECOGNIZER_FORMAT_NAME
from speechx.runlock import RunLock
from speechx.teachers.embed import load_teacher_embeddings, teacher_dir

log = logging.getLogger("speechx.distill")

#: Mean pairwise cosine of dev speech embeddings above which a collapse is reported.
COLLAPSE_COS = 0.999


@dataclass
class TrainResult:
    """What a finished :func:`train_distill` run left behind.

    Attributes:
        exp_dir: the experiment directory.
        model_dir: ``exp_dir/model`` (best model, or the final one without dev data).
        step: optimizer steps done.
        epoch: epochs started (0-based index of the last one).
        best_metric: name of the dev metric that selected the model (e.g. ``dev_recall@1``).
        best_value: its best value (None without dev data).
        best_step: step of the best model.
        last_checkpoint: the newest checkpoint file.
        dev_metrics: the last dev evaluation (empty without dev data).
        train_loss: mean training loss over the last log interval.
    """

    exp_dir: Path
    model_dir: Path
    step: int
    epoch: int
    best_metric: str
    best_value: float | None
    best_step: int | None
    last_checkpoint: Path | None
    dev_metrics: dict[str, float] = field(default_factory=dict)
    train_loss: float | None = None


@dataclass
class _Position:
    """Where the loop is: optimizer steps done, epoch, and chunks of that epoch done."""

    step: int = 0
    epoch: int = 0
    chunk: int = 0


# --------------------------------------------------------------------------- building blocks
def build_model(cfg: DistillConfig, embed_dim: int) -> SpeechEncoder:
    """The student: a speechx model dir (loaded) or a preset / backbone dir (built).

    ``model.overrides`` are applied in both cases; for a loaded model they may only change
    settings that leave the weights' shapes alone (freezing, dropout, ...).

    Raises:
        TrainingError: a loaded model's ``embed_dim`` differs from the teacher's.
        speechx.errors.ModelError: an unknown preset or an unloadable directory.
    """
    src = cfg.model.source
    dim = cfg.model.embed_dim or embed_dim
    if dim != embed_dim:
        raise TrainingError(
            f"model.embed_dim={dim} but the teacher embeddings are {embed_dim}-dimensional"
        )
    cfg_file = Path(src) / "config.json"
    if cfg_file.is_file() and _is_speechx_dir(cfg_file):
        model = SpeechEncoder.from_pretrained(src)
        if model.config.embed_dim != embed_dim:
            raise TrainingError(
                f"{src}: model embed_dim {model.config.embed_dim} differs from the teacher "
                f"dimension {embed_dim}"
            )
        if cfg.model.overrides:
            model = _with_overrides(model, cfg.model.overrides, src)
        return model.train()
    return build_encoder(src, embed_dim, **cfg.model.overrides).train()


def _with_overrides(model: SpeechEncoder, overrides: dict[str, Any], src: str) -> SpeechEncoder:
    """``model`` rebuilt with config ``overrides``, keeping every weight that still fits.

    The backbone must keep its shapes.  The embedding head (layer weights, pooling, projection)
    may change: a head whose shape changes (``pooling: attention`` on an ASR model's encoder,
    whose head was never trained, say) starts from random weights, with a log line naming it.

    Raises:
        TrainingError: an override that changes a backbone weight's shape, or an invalid one.
    """
    try:
        new = SpeechEncoder(model.config.replace(**overrides))
    except (ModelError, TypeError) as exc:
        raise TrainingError(f"model.overrides on {src}: {exc}") from None
    old_state = model.state_dict()
    new_state = new.state_dict()
    fresh = sorted(
        k for k, v in new_state.items() if k not in old_state or old_state[k].shape != v.shape
    )
    bad = [k for k in fresh if k.startswith("backbone.")]
    if bad:
        raise TrainingError(
            f"model.overrides {overrides} on {src} change the backbone's weights "
            f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); only the embedding head "
            "(pooling, projection, layer weighting) may change shape"
        )
    new.load_state_dict({k: v for k, v in old_state.items() if k not in fresh}, strict=False)
    if fresh:
        parts = sorted({k.split(".", 1)[0] for k in fresh})
        log.info("%s: model.overrides re-initialise the %s (new shapes)", src, ", ".join(parts))
    return new


def _is_speechx_dir(cfg_file: Path) -> bool:
    try:
        fmt = json.loads(cfg_file.read_text("utf-8")).get("speechx_format")
    except (OSError, ValueError, AttributeError):
        return False
    # an ASR dir (speechx train-asr) too: its encoder warm-starts the student
    return fmt in (FORMAT_NAME, RECOGNIZER_FORMAT_NAME)


def build_optimizer(model: SpeechEncoder, cfg: DistillConfig) -> torch.optim.AdamW:
    """AdamW with the backbone and head at their own learning rates.

    Weight decay applies to matrices only (not to biases, norms or 1-d parameters).
    Param group names: ``backbone``, ``backbone_no_decay``, ``head``, ``head_no_decay``.

    Raises:
        TrainingError: the model has no trainable parameter.
    """
    o = cfg.optim
    groups = []
    for name, params in model.parameter_groups().items():
        lr = o.lr_backbone if name == "backbone" else o.lr_head
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        if decay:
            groups.append({"name": name, "params": decay, "lr": lr, "weight_decay": o.weight_decay})
        if no_decay:
            groups.append(
                {"name": f"{name}_no_decay", "params": no_decay, "lr": lr, "weight_decay": 0.0}
            )
    if not groups:
        raise TrainingError("the model has no trainable parameters (everything is frozen)")
    return torch.optim.AdamW(groups, betas=tuple(o.betas), eps=o.eps)


def lr_factor(step: int, *, warmup_steps: int, total_steps: int, schedule: str) -> float:
    """Learning-rate multiplier for the optimizer step numbered ``step`` (0-based).

    Linear warmup over ``warmup_steps`` (the first step already gets ``1/warmup_steps``), then
    ``linear`` or ``cosine`` decay to 0 at ``total_steps``, or ``constant``.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / span))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0 - progress


def _chunks(batches: list[list[int]], size: int) -> list[list[list[int]]]:
    return [batches[i : i + size] for i in range(0, len(batches), size)]


def _teacher_dim(src: SourceSpec) -> int:
    """The teacher dimension of a source's first target field.

    Raises:
        TrainingError: the data dir has no embeddings of this teacher id (the ids it has are
            listed: a teacher *name* such as "use-multilingual" is not its id).
    """
    tdir = Path(src.dir) / "teacher"
    if not (tdir / src.teacher_id).is_dir():
        have = sorted(p.name for p in tdir.iterdir() if p.is_dir()) if tdir.is_dir() else []
        raise TrainingError(
            f"{src.dir}: no teacher embeddings for teacher id {src.teacher_id!r} "
            f"(present: {have or 'none'}; run the teacher stage, and set data.teacher_id to "
            "the teacher's teacher_id)"
        )
    _, arr = load_teacher_embeddings(src.dir, src.teacher_id, src.fields[0], mmap=True)
    return int(arr.shape[1])


def _check_speech_targets(sources: list[SourceSpec], teacher: SpeechTeacher) -> None:
    """Every source trained on the speech teacher has its targets.

    Raises:
        TrainingError: naming the data dir and the command that computes them.
    """
    for src in sources:
        if src.fields == [SPEECH_FIELD] and src.teacher_id == teacher.teacher_id:
            arr = teacher_dir(src.dir, src.teacher_id) / f"{SPEECH_FIELD}.npy"
            if not arr.is_file():
                raise TrainingError(
                    f"{src.dir}: no speech-teacher targets of {teacher.model_dir} ({arr} is "
                    f"missing); run `speechx teacher-embed {src.dir} --speech-teacher "
                    f"{teacher.model_dir}`"
                )


def _check_dims(train: list[SourceSpec], dev: list[SourceSpec], dim: int) -> None:
    """The dev evaluation's teacher has the training targets' dimension.

    Raises:
        TrainingError: naming both teachers (e.g. a speech teacher of another space than the
            text teacher the dev retrieval uses).
    """
    for src in dev:
        dev_dim = _teacher_dim(src)
        if dev_dim != dim:
            first = train[0]
            raise TrainingError(
                f"{src.dir}: dev evaluation uses teacher {src.teacher_id!r} (field "
                f"{src.fields[0]}, {dev_dim}-d), but the training targets of {first.dir} "
                f"(teacher {first.teacher_id!r}, field {first.fields[0]}) are {dim}-d: the "
                "student cannot be scored in another space than the one it is trained into"
            )


def _speech_teacher_rows(dev: DistillData, teacher: SpeechTeacher) -> np.ndarray | None:
    """The speech teacher's embedding of every dev item (NaN rows where it has none), or None
    when no dev dir has its targets (logged)."""
    out = np.full((len(dev), teacher.dim), np.nan, dtype=np.float32)
    found = False
    for s, src in enumerate(dev.sources):
        try:
            table = load_targets(src.dir, teacher.teacher_id, SPEECH_FIELD)
        except TeacherError:
            log.warning(
                "dev %s: no targets of the speech teacher %s, so no dev cosine to it for this "
                "dir (`speechx teacher-embed %s --speech-teacher %s` computes them)",
                src.dir,
                teacher.model_dir,
                src.dir,
                teacher.model_dir,
            )
            continue
        if table.dim != teacher.dim:
            continue
        for i, (si, _) in enumerate(dev.index):
            if si == s and dev.utt_ids[i] in table:
                out[i] = table.vectors[table.row(dev.utt_ids[i])]
                found = True
    return out if found else None


# --------------------------------------------------------------------------- the loop
class TrainingLoop:
    """One training run of a speechx task: the machinery every task shares.

    The loop owns the experiment directory, logging, seeding, the language-balanced batch
    sampler, AdamW with warmup/decay, gradient accumulation and clipping, DDP, feature caching
    of a frozen bottom, checkpoints with exact resume, periodic dev evaluation with
    best-model selection, metrics.jsonl and curves.  A task subclasses it and fills in the
    hooks below (see :class:`_DistillRun`, and ``speechx.asr.trainer`` for CTC ASR).

    The config must offer the fields the loop reads: ``data`` (``max_batch_seconds``,
    ``lang_alpha``, ``num_buckets``, ``num_workers``, ``feature_cache``,
    ``feature_cache_dir``), ``optim`` (an :class:`~speechx.distill.config.OptimConfig`),
    ``eval`` (``primary_metric``, ``max_batch_seconds``), ``max_steps``, ``epochs``, ``seed``,
    ``num_threads``, ``eval_every``, ``save_every``, ``keep_last_n``, ``log_every``,
    ``to_dict()``, and ``save_config``-able; an optional ``device`` (``auto``/``cpu``/``cuda``).

    The model, every batch (audio or cached features, targets, labels) and the loss live on
    ``self.device``; evaluation and feature caching call the model through
    :class:`~speechx.distill.runtime.OnDevice`.  Checkpoints hold CPU tensors and load onto
    whatever device the resumed run has.  Hooks:

    * :meth:`build` sets ``self.model``, ``self.train_data`` and ``self.dev_data``;
    * :meth:`build_loss` prepares the loss (after the model and data exist);
    * :meth:`cached_train_set` wraps the training data around a feature store;
    * :meth:`compute_loss` runs a batch and returns the loss and its logged parts;
    * :meth:`dev_metrics` evaluates on the dev data (rank 0), :meth:`is_better` compares.
    """

    #: label of the progress bar
    task = "train"
    #: collate function of audio training items (the cached path uses ``cached_train_set``)
    audio_collate: Any = staticmethod(collate_distill)

    def __init__(self, cfg: Any, exp_dir: Path, resume: bool) -> None:
        self.cfg = cfg
        self.exp_dir = exp_dir
        self.env = init_distributed(cfg.device)
        self.device = self.env.torch_device
        self.ckpt_dir = exp_dir / "checkpoints"
        self.model_dir = exp_dir / "model"
        self.metrics_file = exp_dir / "log" / "metrics.jsonl"
        self.resume = resume
        self.primary = f"dev_{cfg.eval.primary_metric}"
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.last_dev: dict[str, float] = {}
        self.last_ckpt: Path | None = None
        self.pos = _Position()
        self.elapsed_before = 0.0
        self.lock = RunLock(exp_dir, option="--exp-dir")

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        cfg, env = self.cfg, self.env
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        stale: list[Path] = []
        if env.is_main:
            self.exp_dir.mkdir(parents=True, exist_ok=True)
            self.lock.acquire()  # before anything is written: a second run stops here
            stale = clean_stale(self.exp_dir, self.ckpt_dir, self.model_dir)
        barrier(env)
        setup_logging(self.exp_dir / "log" / "train.log", main=env.is_main)
        if env.is_main and stale:
            log.info(
                "removed what an interrupted run left half-written: %s",
                ", ".join(p.name for p in stale),
            )
        found = latest_checkpoint(self.ckpt_dir)
        if found is not None and not self.resume:
            raise TrainingError(
                f"{self.exp_dir}: holds checkpoints (newest {found.name}); pass resume=True "
                "(--resume) to continue, or use a new experiment directory"
            )
        if env.is_main:
            old = self.exp_dir / "config.yaml"
            if self.resume and old.is_file():
                prev = old.read_text("utf-8")
                save_config(cfg, old)
                if prev != old.read_text("utf-8"):
                    log.warning("config differs from the one this experiment started with")
            else:
                save_config(cfg, old)
        devices = gather_objects(env.device, env)
        if env.is_main:
            write_json(self.exp_dir / "env.json", environment_info(env, devices))
        log.info(
            "experiment %s (world size %d, %s)",
            self.exp_dir,
            env.world_size,
            describe_devices(devices),
        )

        seed_everything(cfg.seed)
        d = cfg.data
        self.build()
        self.model.to(self.device)
        if env.rank > 0:
            # Every rank draws its own dropout and masks; DDP gives all ranks rank 0's initial
            # weights, and a resumed run restores each rank's saved RNG state over this.
            seed_everything(cfg.seed + 7919 * env.rank)
        sr = self.model.sample_rate
        n_params = sum(p.numel() for p in self.model.parameters())
        n_train = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        log.info(
            "model %s: %.2fM parameters (%.2fM trainable), embed_dim %d, %d Hz",
            cfg.model.source,
            n_params / 1e6,
            n_train / 1e6,
            self.model.embed_dim,
            sr,
        )
        self.describe_model()
        self._log_languages()
        self._setup_feature_cache()

        self.sampler = LanguageBalancedBatchSampler(
            self.train_data.durations,
            self.train_data.langs,
            d.max_batch_seconds,
            alpha=d.lang_alpha,
            num_buckets=d.num_buckets,
            shuffle=True,
            seed=cfg.seed,
            num_replicas=env.world_size if env.distributed else None,
            rank=env.rank if env.distributed else None,
        )
        self.optimizer = build_optimizer(self.model, cfg)
        self.total_steps = self._total_steps()
        o = cfg.optim
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: lr_factor(
                s, warmup_steps=o.warmup_steps, total_steps=self.total_steps, schedule=o.schedule
            ),
        )
        self.build_loss()

        if self.resume:
            self._load_latest()
        if env.is_main:
            self._trim_metrics()
        self.ddp: DistributedDataParallel | None = None
        if env.distributed:
            unused = self._find_unused()
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(
                self.model,
                device_ids=ids,
                output_device=ids[0] if ids else None,
                find_unused_parameters=unused,
            )
            log.info(
                "DDP over %s, %d ranks, %s, find_unused_parameters=%s",
                env.backend,
                env.world_size,
                describe_devices(devices),
                unused,
            )

    def _setup_feature_cache(self) -> None:
        """Train on cached frozen-part features when the model allows it (data.feature_cache)."""
        cfg, env = self.cfg, self.env
        self.train_set: Any = self.train_data
        self.collate: Any = self.audio_collate
        self.dev_store: FeatureStore | None = None
        self.cached = cfg.data.feature_cache == "auto" and self.model.cache_point is not None
        if not self.cached:
            if cfg.data.feature_cache == "auto":
                log.info("feature cache: off (parts of the model that run on audio are trained)")
            return
        root = Path(cfg.data.feature_cache_dir or self.exp_dir / "features")
        point = self.model.cache_point
        log.info(
            "feature cache: on (%s frozen; stores under %s)",
            "the whole backbone" if point == -1 else f"the front end and {point} layers",
            root,
        )
        bs = cfg.eval.max_batch_seconds
        model = OnDevice(self.model, self.device)  # the store feeds it CPU batches
        if env.is_main:
            store = build_feature_store(model, self.train_data, root, max_batch_seconds=bs)
            if self.dev_data is not None:
                self.dev_store = build_feature_store(
                    model, self.dev_data, root, max_batch_seconds=bs, role="dev"
                )
        barrier(env)
        if not env.is_main:  # finished by rank 0: found and opened, not rebuilt
            store = build_feature_store(model, self.train_data, root, max_batch_seconds=bs)
        self.train_set, self.collate = self.cached_train_set(store)

    # ------------------------------------------------------------------ task hooks
    def build(self) -> None:
        """Set ``self.model``, ``self.train_data`` and ``self.dev_data`` (None off rank 0)."""
        raise NotImplementedError

    def describe_model(self) -> None:
        """Log anything task-specific about the built model (optional)."""

    def build_loss(self) -> None:
        """Prepare the loss; called once the model, data and step count exist."""
        raise NotImplementedError

    def cached_train_set(self, store: FeatureStore) -> tuple[Any, Any]:
        """``(dataset, collate_fn)`` of the training items read from a feature store."""
        raise NotImplementedError

    def compute_loss(
        self, net: torch.nn.Module, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Forward one batch: ``(loss to backpropagate, {"loss": ..., part: value})``."""
        raise NotImplementedError

    def loss_parts(self) -> list[str]:
        """Names of the logged loss parts besides ``loss`` (in log-line order)."""
        return []

    def dry_run_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """A scalar reaching every used parameter, for DDP's unused-parameter check."""
        loss, _ = self.compute_loss(self.model, batch)
        return loss

    def dev_metrics(self) -> dict[str, float]:
        """Evaluate ``self.model`` on ``self.dev_data``; keys are ``dev_<metric>``."""
        raise NotImplementedError

    def describe_dev(self, metrics: dict[str, float]) -> str:
        """The dev metrics as they appear in the log line."""
        return " ".join(f"{k[4:]}={v:.4f}" for k, v in metrics.items())

    def after_dev(self, metrics: dict[str, float]) -> None:
        """Warnings about a dev evaluation (optional)."""

    def is_better(self, value: float, best: float | None) -> bool:
        """Whether ``value`` of the primary metric improves on ``best``."""
        return is_better(self.cfg.eval.primary_metric, value, best)

    def describe_batch(self, batch: dict[str, Any]) -> str:
        """Name a batch's utterances for error messages."""
        if "indices" in batch:
            ids = [self.train_data.ids[int(i)] for i in batch["indices"]]
        else:
            ids = list(batch.get("ids", []))
        more = f" and {len(ids) - 3} more" if len(ids) > 3 else ""
        return ", ".join(ids[:3]) + more

    # ------------------------------------------------------------------ forward helpers
    def _forward(self, net: torch.nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        if self.cached:
            return net(features=batch["features"], frame_lengths=batch["frame_lengths"])
        return net(batch["input_values"], batch["lengths"])

    def _batch_seconds(self, batch: dict[str, Any]) -> float:
        if self.cached:
            return float(batch["seconds"].sum())
        return float(batch["lengths"].sum()) / self.model.sample_rate

    def _log_languages(self) -> None:
        langs = self.train_data.langs
        probs = language_probabilities(langs, self.cfg.data.lang_alpha)
        counts = {lang: langs.count(lang) for lang in probs}
        log.info(
            "train languages (alpha=%.2f): %s",
            self.cfg.data.lang_alpha,
            ", ".join(f"{k}: {counts[k]} utts -> p={v:.3f}" for k, v in probs.items()),
        )

    def _total_steps(self) -> int:
        cfg = self.cfg
        per_epoch = math.ceil(
            all_min(len(self.sampler.epoch_batches(0)), self.env) / cfg.optim.grad_accum
        )
        if per_epoch == 0:
            raise TrainingError(
                "no training batch: every utterance is longer than data.max_batch_seconds "
                f"({cfg.data.max_batch_seconds}) or there are fewer batches than ranks"
            )
        self.steps_per_epoch = per_epoch
        limits = []
        if cfg.max_steps is not None:
            limits.append(cfg.max_steps)
        if cfg.epochs is not None:
            limits.append(cfg.epochs * per_epoch)
        return min(limits)

    def _find_unused(self) -> bool:
        """Whether DDP must look for unused parameters: layer drop, or a dry run leaving some
        trainable parameter without a gradient.  RNG states are restored afterwards."""
        bcfg = self.model.config.backbone_config
        if float(bcfg.get("layerdrop", 0.0) or 0.0) > 0:
            return True
        state = rng_state(self.device)
        batches = self.sampler.epoch_batches(0)
        batch = self.collate([self.train_set[i] for i in batches[0]])
        self.dry_run_loss(to_device(batch, self.device)).backward()
        unused = any(p.grad is None for p in self.model.parameters() if p.requires_grad)
        self.model.zero_grad(set_to_none=True)
        set_rng_state(state, self.device)
        return any_rank(unused, self.env)

    def elapsed(self) -> float:
        """Wall-clock seconds of training so far, over this run and the runs it resumed.

        Counted from the start of the training loop (model building, data loading and a
        feature cache build are not counted; dev evaluations are).  Logged as ``elapsed_s`` in
        ``metrics.jsonl``, so learning curves can be drawn against time
        (``speechx compare-runs --x time``).
        """
        start = getattr(self, "clock_start", None)
        return self.elapsed_before + (time.time() - start if start is not None else 0.0)

    # ------------------------------------------------------------------ checkpoints
    def _load_latest(self) -> None:
        loaded = load_latest_checkpoint(self.ckpt_dir, set_aside=self.env.is_main)
        if loaded is None:
            log.warning("resume requested but %s has no checkpoint: starting fresh", self.ckpt_dir)
            return
        found, state = loaded
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.pos = _Position(**state["position"])
        self.elapsed_before = float(state.get("elapsed", 0.0))
        self.sampler.load_state_dict(state["sampler"])
        saved = state["sampler"]
        mine = self.sampler.state_dict()
        changed = [k for k in mine if k != "epoch" and saved.get(k) != mine[k]]
        if changed:
            log.warning("batching differs from the checkpoint's (%s): data order changes", changed)
        best = state.get("best") or {}
        self.best_value, self.best_step = best.get("value"), best.get("step")
        rngs = state["rng"]
        if len(rngs) == self.env.world_size:
            set_rng_state(rngs[self.env.rank], self.device)
        else:
            log.warning(
                "checkpoint has RNG states of %d ranks, now %d: reseeding",
                len(rngs),
                self.env.world_size,
            )
            seed_everything(self.cfg.seed + 1000 * self.pos.step + self.env.rank)
        self.last_ckpt = found
        log.info(
            "resumed from %s: step %d, epoch %d, chunk %d",
            found,
            self.pos.step,
            self.pos.epoch,
            self.pos.chunk,
        )

    def _trim_metrics(self) -> None:
        """Drop metrics lines after the step this run starts from (and any torn last line):
        an interrupted run logged them, and this one logs them again."""
        path = self.metrics_file
        if not path.is_file():
            return
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        keep = []
        for line in lines:
            try:
                rec = json.loads(line)
                ok = line.endswith("\n") and int(rec["step"]) <= self.pos.step
            except (ValueError, KeyError, TypeError):
                ok = False
            if ok:
                keep.append(line)
        if len(keep) != len(lines):
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text("".join(keep), encoding="utf-8")
            os.replace(tmp, path)
            log.info(
                "%s: dropped %d lines logged after step %d by an interrupted run",
                path,
                len(lines) - len(keep),
                self.pos.step,
            )

    def _save(self) -> None:
        rngs = gather_objects(rng_state(self.device), self.env)
        if self.env.is_main:
            cpu = torch.device("cpu")
            state = {
                "step": self.pos.step,
                "position": vars(self.pos).copy(),
                "model": to_device(self.model.state_dict(), cpu),
                "optimizer": to_device(self.optimizer.state_dict(), cpu),
                "scheduler": self.scheduler.state_dict(),
                "sampler": self.sampler.state_dict(),
                "rng": rngs,
                "best": {"metric": self.primary, "value": self.best_value, "step": self.best_step},
                "config": self.cfg.to_dict(),
                "world_size": self.env.world_size,
                # wall-clock seconds of training so far (all runs); kept out of "position" so
                # that a resumed run's position stays bitwise equal to an uninterrupted one's
                "elapsed": self.elapsed(),
            }
            self.last_ckpt = save_checkpoint(
                state, self.ckpt_dir, self.pos.step, self.cfg.keep_last_n
            )
            log.info("saved %s", self.last_ckpt)
        barrier(self.env)

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self) -> None:
        if self.env.is_main and self.dev_data is not None:
            t0 = time.time()
            metrics = self.dev_metrics()
            self.last_dev = metrics
            value = metrics.get(self.primary, float("nan"))
            append_jsonl(
                self.metrics_file,
                {"step": self.pos.step, "split": "dev", **metrics, "elapsed_s": self.elapsed()},
            )
            self.after_dev(metrics)
            improved = self.is_better(value, self.best_value)
            if improved:
                self.best_value, self.best_step = value, self.pos.step
                save_model_dir(self.model, self.model_dir)
            log.info(
                "step %d dev: %s (%.1fs)%s",
                self.pos.step,
                self.describe_dev(metrics),
                time.time() - t0,
                f" -> new best {self.primary}, saved {self.model_dir}" if improved else "",
            )
        barrier(self.env)

    # ------------------------------------------------------------------ the loop
    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        batches = self.sampler.epoch_batches(epoch)
        n = all_min(len(batches), self.env)  # every rank must take the same number of steps
        return batches[:n]

    def _loader(self, batches: list[list[int]]) -> Iterator[dict[str, Any]]:
        # a private generator: creating the iterator must not draw from the global torch RNG
        loader = DataLoader(
            self.train_set,
            batch_sampler=batches,
            collate_fn=self.collate,
            num_workers=self.cfg.data.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(self.cfg.seed),
        )
        return iter(loader)

    def _done(self) -> bool:
        cfg = self.cfg
        if self.pos.step >= self.total_steps:
            return True
        return cfg.epochs is not None and self.pos.epoch >= cfg.epochs

    def train(self) -> TrainResult:
        # rank 0's log lines go through tqdm.write, so they do not collide with the bar
        # (not on other ranks: the redirect drops their console handler's WARNING level)
        redirect = logging_redirect_tqdm(loggers=[log]) if self.env.is_main else None
        with redirect or contextlib.nullcontext():
            return self._train()

    def _train(self) -> TrainResult:
        cfg, env = self.cfg, self.env
        net: torch.nn.Module = self.ddp if self.ddp is not None else self.model
        net.train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        bar = tqdm(
            total=self.total_steps,
            initial=self.pos.step,
            # rank 0 only, and only on a terminal (None): a recipe's tee'd log gets log lines
            disable=None if env.is_main else True,
            unit="step",
            dynamic_ncols=True,
            desc=self.task,
        )
        window: dict[str, list[float]] = {}
        self.clock_start = time.time()
        audio_seconds, t_window = 0.0, time.time()
        last_eval = last_save = -1
        while not self._done():
            batches = self._epoch_batches(self.pos.epoch)
            chunks = _chunks(batches, cfg.optim.grad_accum)
            if self.pos.chunk >= len(chunks):
                self.pos.epoch += 1
                self.pos.chunk = 0
                continue
            it = self._loader([b for c in chunks[self.pos.chunk :] for b in c])
            for chunk in chunks[self.pos.chunk :]:
                self.optimizer.zero_grad(set_to_none=True)
                parts: dict[str, float] = {}
                for k in range(len(chunk)):
                    batch = next(it)
                    seconds = self._batch_seconds(batch)
                    batch = to_device(batch, self.device)
                    sync = self.ddp is None or k == len(chunk) - 1
                    ctx = contextlib.nullcontext() if sync else self.ddp.no_sync()  # type: ignore[union-attr]
                    with ctx:
                        loss, components = self.compute_loss(net, batch)
                        (loss / len(chunk)).backward()
                    for name, v in components.items():
                        parts[name] = parts.get(name, 0.0) + v / len(chunk)
                    audio_seconds += seconds
                    if not math.isfinite(components["loss"]):
                        # nothing of this step is applied, and no checkpoint is written after it
                        raise TrainingError(
                            f"step {self.pos.step + 1}: non-finite loss {components} (epoch "
                            f"{self.pos.epoch}, batch {self.pos.chunk * cfg.optim.grad_accum + k} of the "
                            f"epoch: {self.describe_batch(batch)}); lower the learning rates "
                            "or check the data"
                        )
                clip = cfg.optim.grad_clip
                gnorm = torch.nn.utils.clip_grad_norm_(params, clip if clip else float("inf"))
                self.optimizer.step()
                self.scheduler.step()
                self.pos.step += 1
                self.pos.chunk += 1
                for name, v in parts.items():
                    window.setdefault(name, []).append(v)
                window.setdefault("grad_norm", []).append(float(gnorm))
                bar.update(1)
                bar.set_postfix(loss=f"{parts['loss']:.4f}")

                if self.pos.step % cfg.log_every == 0 or self.pos.step == self.total_steps:
                    elapsed = max(time.time() - t_window, 1e-9)
                    rec = {k: float(np.mean(v)) for k, v in window.items()}
                    rec.update(
                        {
                            f"lr_{g['name']}": g["lr"]
                            for g in self.optimizer.param_groups
                            if not g["name"].endswith("_no_decay")
                        }
                    )
                    rec["epoch"] = self.pos.epoch
                    rec["audio_sec_per_sec"] = audio_seconds * env.world_size / elapsed
                    rec["elapsed_s"] = self.elapsed()
                    if env.is_main:
                        append_jsonl(
                            self.metrics_file, {"step": self.pos.step, "split": "train", **rec}
                        )
                        # A frozen backbone has no parameter group, hence no learning rate.
                        lrs = " ".join(
                            f"lr_{g} {rec[f'lr_{g}']:.2e}"
                            for g in ("backbone", "head")
                            if f"lr_{g}" in rec
                        )
                        log.info(
                            "step %d epoch %d loss %.4f %s grad_norm %.3f %s %.1f audio-s/s",
                            self.pos.step,
                            self.pos.epoch,
                            rec["loss"],
                            " ".join(f"{k} {rec[k]:.4f}" for k in self.loss_parts()),
                            rec["grad_norm"],
                            lrs,
                            rec["audio_sec_per_sec"],
                        )
                    self.last_train_loss = rec["loss"]
                    window, audio_seconds, t_window = {}, 0.0, time.time()
                if self.pos.step % cfg.eval_every == 0:
                    self._evaluate()
                    last_eval = self.pos.step
                if self.pos.step % cfg.save_every == 0:
                    self._save()
                    last_save = self.pos.step
                if self._done():
                    break
        bar.close()
        if last_eval != self.pos.step:
            self._evaluate()
        if last_save != self.pos.step:
            self._save()
        if env.is_main and (self.dev_data is None or not self.model_dir.exists()):
            save_model_dir(self.model, self.model_dir)
            log.info("saved final model to %s", self.model_dir)
        if env.is_main:
            png = plot_curves(self.metrics_file, self.exp_dir / "log" / "curves.png", self.primary)
            if png:
                log.info("curves: %s", png)
        barrier(env)
        log.info(
            "done: %d steps, best %s=%s at step %s",
            self.pos.step,
            self.primary,
            "n/a" if self.best_value is None else f"{self.best_value:.4f}",
            self.best_step,
        )
        return TrainResult(
            exp_dir=self.exp_dir,
            model_dir=self.model_dir,
            step=self.pos.step,
            epoch=self.pos.epoch,
            best_metric=self.primary,
            best_value=self.best_value,
            best_step=self.best_step,
            last_checkpoint=self.last_ckpt,
            dev_metrics=dict(self.last_dev),
            train_loss=getattr(self, "last_train_loss", None),
        )


class _DistillRun(TrainingLoop):
    """Distillation: speech embeddings regress onto teacher embeddings of the transcript."""

    task = "distill"

    def build(self) -> None:
        cfg = self.cfg
        d = cfg.data
        # a speech teacher (speech-to-speech distillation): its id names its targets' dir
        self.speech_teacher = SpeechTeacher(d.speech_teacher) if d.speech_teacher else None
        speech_id = self.speech_teacher.teacher_id if self.speech_teacher else None
        self.train_sources = resolve_sources(
            d.train, d.teacher_id, d.target_fields, speech_teacher_id=speech_id
        )
        dev_sources = resolve_sources(d.dev, d.teacher_id, [cfg.eval_field])
        if self.speech_teacher is not None:
            _check_speech_targets(self.train_sources, self.speech_teacher)
            n = sum(s.teacher_id == speech_id for s in self.train_sources)
            log.info(
                "speech teacher %s (%s): the targets of %d of %d training dirs",
                speech_id,
                self.speech_teacher.model_dir,
                n,
                len(self.train_sources),
            )
        dim = _teacher_dim(self.train_sources[0])
        _check_dims(self.train_sources, dev_sources, dim)
        # the model decides the sample rate: build it once the teacher dimension is known
        self.model = build_model(cfg, dim)
        sr = self.model.sample_rate
        self.train_data = build_distill_data(
            self.train_sources, sample_rate=sr, max_duration=d.max_duration, role="train"
        )
        self.dev_data: DistillData | None = None
        self.dev_references: dict[str, np.ndarray] = {}
        if dev_sources and self.env.is_main:
            self.dev_data = build_distill_data(
                dev_sources, sample_rate=sr, max_duration=None, role="dev"
            )
            if self.speech_teacher is not None:
                ref = _speech_teacher_rows(self.dev_data, self.speech_teacher)
                if ref is not None:
                    self.dev_references["speech_teacher"] = ref

    def build_loss(self) -> None:
        cfg = self.cfg
        self.loss_fn = DistillLoss(cfg.loss.weights, temperature=cfg.loss.temperature)
        log.info("loss %r; %d optimizer steps planned", self.loss_fn, self.total_steps)

    def cached_train_set(self, store: FeatureStore) -> tuple[Any, Any]:
        d = self.cfg.data
        data = FeatureData(
            self.train_data, store, time_mask=d.feature_time_mask, mask_span=d.feature_mask_span
        )
        return data, collate_features

    def compute_loss(
        self, net: torch.nn.Module, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        out = self._forward(net, batch)
        res = self.loss_fn(out["projected"], batch["targets"], batch["groups"])
        return res.loss, res.components

    def loss_parts(self) -> list[str]:
        return list(self.loss_fn.weights)

    def dry_run_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        out = self._forward(self.model, batch)
        return out["projected"].float().pow(2).sum()

    def dev_metrics(self) -> dict[str, float]:
        return evaluate_dev(
            OnDevice(self.model, self.device),
            self.dev_data,
            max_batch_seconds=self.cfg.eval.max_batch_seconds,
            features=self.dev_store,
            references=self.dev_references,
        )

    def describe_dev(self, metrics: dict[str, float]) -> str:
        keys = (
            "dev_recall@1",
            "dev_recall@5",
            "dev_mrr@10",
            "dev_xsim_error",
            "dev_cosine_distance",
            "dev_mean_pairwise_cos",
            "dev_speech_teacher_cos",
        )
        return " ".join(f"{k[4:]}={metrics[k]:.4f}" for k in keys if k in metrics)

    def after_dev(self, metrics: dict[str, float]) -> None:
        if metrics.get("dev_mean_pairwise_cos", 0.0) > COLLAPSE_COS:
            log.warning(
                "step %d: dev speech embeddings have collapsed (mean pairwise cosine %.5f): "
                "every utterance gets nearly the same vector; raise the infonce weight, "
                "train longer or start from a pretrained backbone",
                self.pos.step,
                metrics["dev_mean_pairwise_cos"],
            )


def run_training(loop: TrainingLoop) -> TrainResult:
    """Set up and run ``loop``; logging and the process group are closed afterwards.

    Returns:
        The :class:`TrainResult`.

    Raises:
        speechx.runlock.RunLockError: another run holds the experiment directory.
        TrainingError, speechx.errors.SpeechxError: whatever the loop's setup or steps raise.
    """
    try:
        loop.setup()
        return loop.train()
    finally:
        close_logging()
        shutdown_distributed(loop.env)
        loop.lock.release()


def train_distill(
    config: DistillConfig, exp_dir: str | os.PathLike, *, resume: bool = False
) -> TrainResult:
    """Distil a speech encoder into the teacher's space.

    Works in one process and under ``torchrun`` (DDP over NCCL on GPUs, gloo on CPUs; only
    rank 0 writes).

    Args:
        config: a validated :class:`DistillConfig` (see :func:`speechx.distill.load_config`).
        exp_dir: the experiment directory (created).
        resume: continue from the newest ``exp_dir/checkpoints/ckpt-*.pt``; without a
            checkpoint the run starts fresh (with a warning).

    Returns:
        A :class:`TrainResult`.

    Raises:
        speechx.runlock.RunLockError: another run is using ``exp_dir`` (it names the pid).
        TrainingError: ``exp_dir`` has checkpoints but ``resume`` is false, no usable
            training data, a non-finite loss, a model/teacher dimension mismatch, or no
            checkpoint can be read on ``resume``.
        ConfigError: an invalid config.
        speechx.errors.SpeechxError: unreadable data dirs, audio or teacher embeddings.
    """
    config.validate()
    return run_training(_DistillRun(config, Path(exp_dir), resume))


__all__ = [
    "TrainResult",
    "TrainingLoop",
    "build_model",
    "build_optimizer",
    "list_checkpoints",
    "lr_factor",
    "run_training",
    "train_distill",
]
