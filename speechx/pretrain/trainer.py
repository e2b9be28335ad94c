"""wav2vec 2.0 pretraining on the shared loop: ``train_pretrain(config, exp_dir, resume=...)``.

The loop is :class:`speechx.distill.trainer.TrainingLoop` (resume, DDP, progress bar, logs,
metrics.jsonl, curves, checkpoints under the run lock, best model by a dev metric); this module
fills in the task: the model (:class:`~speechx.pretrain.model.PretrainingModel`), unlabelled
data (:class:`~speechx.pretrain.data.PretrainData`), the loss of
:mod:`speechx.pretrain.objective` and its dev evaluation.

Each training batch draws its mask spans and distractors with numpy's global RNG, and its Gumbel
noise and (with ``ccc.enabled``) its augmentation with torch's; the checkpoints hold both RNG
states of every rank, so a resumed run repeats the draws of an uninterrupted one.  The Gumbel
temperature is a function of the step.  Logged per step: ``loss``, ``contrastive`` (per masked
frame), ``diversity``, ``accuracy`` (positive strictly above every distractor),
``code_perplexity`` (of the chosen codewords), ``prob_perplexity`` (of the soft distribution,
the diversity loss's), ``gumbel_temperature``, and with ccc ``cross`` and ``cross_aug``.

The dev evaluation runs the plain wav2vec 2.0 task in eval mode (hard codeword choice, no
dropout, no augmentation) with masks and distractors drawn from a generator seeded with
``seed``, so successive evaluations see the same task: ``dev_contrastive_loss`` (per masked
frame), ``dev_accuracy``, ``dev_code_perplexity``, ``dev_diversity_loss`` and ``dev_loss``.
The best model has the lowest ``dev_contrastive_loss`` (``eval.primary_metric``, or the highest
``dev_accuracy``): the loss keeps improving after the accuracy saturates, and a collapsing
codebook shows in the code perplexity rather than hiding behind it.

``exp_dir/model`` is a transformers backbone dir (see :mod:`speechx.pretrain.model`) that
``model.source`` of a distillation or CTC config accepts as a warm start.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechx.distill.errors import TrainingError
from speechx.distill.evaluate import duration_batches
from speechx.distill.trainer import TrainingLoop, TrainResult, run_training
from speechx.pretrain.config import PretrainConfig
from speechx.pretrain.data import PretrainData, collate_pretrain
from speechx.pretrain.model import PretrainingModel, build_pretraining_model, describe
from speechx.pretrain.objective import sample_mask_and_negatives

log = logging.getLogger("speechx.distill")

#: a codebook using fewer than this fraction of its G*V codewords on dev is reported
COLLAPSE_FRACTION = 0.05


@contextlib.contextmanager
def _numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global RNG for the block (transformers' mask sampling draws from it), and
    restore its state afterwards."""
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)


def sample_batch_task(
    model: PretrainingModel, lengths: torch.Tensor, num_samples: int, cfg: PretrainConfig
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The mask and distractor indices of a batch (and a second set of distractors with ccc).

    Returns:
        ``(mask [B, F], [negatives [B, F, K], ...])`` on the CPU.

    Raises:
        TrainingError: an utterance too short to mask.
    """
    m = cfg.masking
    return sample_mask_and_negatives(
        model.frame_lengths(lengths.cpu()),
        model.num_frames(num_samples),
        prob=m.prob,
        length=m.length,
        min_masks=m.min_masks,
        num_negatives=cfg.loss.num_negatives,
        extra_negatives=1 if cfg.ccc.enabled else 0,
    )


@torch.no_grad()
def evaluate_pretrain(
    model: PretrainingModel,
    data: PretrainData,
    cfg: PretrainConfig,
    *,
    max_batch_seconds: float = 120.0,
) -> dict[str, float]:
    """The plain wav2vec 2.0 task on ``data`` in eval mode, with seeded masks and distractors.

    The batches go to the device of the model's parameters; the model's mode and numpy's RNG
    state are restored afterwards.

    Returns:
        ``dev_contrastive_loss`` (per masked frame), ``dev_accuracy``, ``dev_code_perplexity``
        (mean over batches), ``dev_diversity_loss`` (mean over batches, of the hard codeword
        distribution) and ``dev_loss`` (contrastive + diversity_weight * diversity).
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = correct = masked = 0.0
    ppl: list[float] = []
    div: list[float] = []
    try:
        with _numpy_seed(cfg.seed):
            for idx in duration_batches(data.durations, max_batch_seconds):
                batch = collate_pretrain([data[i] for i in idx])
                mask, (negatives,) = sample_mask_and_negatives(
                    model.frame_lengths(batch["lengths"]),
                    model.num_frames(batch["input_values"].shape[1]),
                    prob=cfg.masking.prob,
                    length=cfg.masking.length,
                    min_masks=cfg.masking.min_masks,
                    num_negatives=cfg.loss.num_negatives,
                )
                out = model(
                    batch["input_values"].to(device),
                    batch["lengths"].to(device),
                    mask.to(device),
                    negatives.to(device),
                )
                total += float(out["contrastive_sum"])
                correct += float(out["correct"])
                masked += float(out["masked"])
                ppl.append(float(out["code_perplexity"]))
                div.append(float(model.diversity_loss(out["code_perplexity"])))
    finally:
        model.train(was_training)
    contrastive = total / max(masked, 1.0)
    diversity = float(np.mean(div))
    return {
        "dev_contrastive_loss": contrastive,
        "dev_accuracy": correct / max(masked, 1.0),
        "dev_code_perplexity": float(np.mean(ppl)),
        "dev_diversity_loss": diversity,
        "dev_loss": contrastive + model.diversity_weight * diversity,
    }


class _PretrainRun(TrainingLoop):
    """wav2vec 2.0 (optionally ccc-wav2vec 2.0) pretraining on the shared loop."""

    task = "pretrain"
    audio_collate = staticmethod(collate_pretrain)

    def build(self) -> None:
        cfg = self.cfg
        self.model: PretrainingModel = build_pretraining_model(cfg)
        sr = self.model.sample_rate
        d = cfg.data
        # an utterance needs masking.length real frames, and 2 for distractors
        need = self.model.min_samples_for_frames(max(cfg.masking.length, 2))
        self.train_data = PretrainData(
            d.train, sample_rate=sr, max_duration=d.max_duration, min_samples=need, role="train"
        )
        self.dev_data: PretrainData | None = None
        if d.dev and self.env.is_main:
            self.dev_data = PretrainData(d.dev, sample_rate=sr, min_samples=need, role="dev")

    def describe_model(self) -> None:
        cfg = self.cfg
        log.info("%s", describe(self.model))
        log.info(
            "masking p=%g length=%d; %d distractors, kappa=%g; diversity weight %g; gumbel "
            "temperature %g -> %g (decay %g per step)",
            cfg.masking.prob,
            cfg.masking.length,
            cfg.loss.num_negatives,
            cfg.loss.temperature,
            cfg.loss.diversity_weight,
            cfg.gumbel.max_temperature,
            cfg.gumbel.min_temperature,
            cfg.gumbel.decay,
        )
        if cfg.ccc.enabled:
            c = cfg.ccc
            log.info(
                "ccc-wav2vec 2.0: alpha=%g beta=%g, clusters %s, cluster scale %g; augmentation "
                "reverb p=%g, babble p=%g, noise p=%g",
                c.alpha,
                c.beta,
                c.num_clusters or "auto",
                c.cluster_scale,
                c.reverb_prob,
                c.babble_prob,
                c.noise_prob,
            )

    def build_loss(self) -> None:
        log.info(
            "loss: contrastive (per masked frame) + %g x diversity%s; %d optimizer steps planned",
            self.cfg.loss.diversity_weight,
            " + ccc cross-contrastive terms" if self.cfg.ccc.enabled else "",
            self.total_steps,
        )

    def cached_train_set(self, store: Any) -> tuple[Any, Any]:
        raise TrainingError("pretraining never trains on cached features")

    def compute_loss(
        self, net: torch.nn.Module, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.cfg
        temperature = cfg.gumbel_temperature(self.pos.step)
        self.model.set_gumbel_temperature(temperature)
        x, lengths = batch["input_values"], batch["lengths"]
        try:
            mask, negatives = sample_batch_task(self.model, lengths, x.shape[1], cfg)
        except TrainingError as exc:
            raise TrainingError(f"{exc} (batch: {self.describe_batch(batch)})") from None
        dev = x.device
        args = [x, lengths, mask.to(dev), negatives[0].to(dev)]
        if cfg.ccc.enabled:
            args += [self.model.augment(x, lengths), negatives[1].to(dev)]
        out = net(*args)
        parts = {name: float(out[name]) for name in self.loss_parts() if name in out}
        parts["loss"] = float(out["loss"].detach())
        parts["gumbel_temperature"] = temperature
        return out["loss"], parts

    def loss_parts(self) -> list[str]:
        parts = ["contrastive", "diversity", "accuracy", "code_perplexity", "prob_perplexity"]
        if self.cfg.ccc.enabled:
            parts += ["cross", "cross_aug"]
        return [*parts, "gumbel_temperature"]

    def dev_metrics(self) -> dict[str, float]:
        assert self.dev_data is not None
        return evaluate_pretrain(
            self.model, self.dev_data, self.cfg, max_batch_seconds=self.cfg.eval.max_batch_seconds
        )

    def describe_dev(self, metrics: dict[str, float]) -> str:
        keys = ("contrastive_loss", "accuracy", "code_perplexity", "diversity_loss", "loss")
        return " ".join(f"{k}={metrics[f'dev_{k}']:.4f}" for k in keys if f"dev_{k}" in metrics)

    def after_dev(self, metrics: dict[str, float]) -> None:
        q = self.model.quantizer
        size = q.num_groups * q.num_vars
        ppl = metrics.get("dev_code_perplexity", float(size))
        if ppl < COLLAPSE_FRACTION * size:
            log.warning(
                "step %d: the codebook is collapsing (dev code perplexity %.1f of %d codewords); "
                "raise loss.diversity_weight or the gumbel temperature",
                self.pos.step,
                ppl,
                size,
            )

    def is_better(self, value: float, best: float | None) -> bool:
        if not np.isfinite(value):
            return False
        if best is None or not np.isfinite(best):
            return True
        if self.cfg.eval.primary_metric == "accuracy":
            return value > best
        return value < best


def train_pretrain(
    config: PretrainConfig, exp_dir: str | os.PathLike, *, resume: bool = False
) -> TrainResult:
    """Pretrain a speech backbone with wav2vec 2.0's objective (ccc-wav2vec 2.0 with
    ``ccc.enabled``); ``exp_dir/model`` gets the best one by the dev metric.

    Works in one process and under ``torchrun --nproc_per_node=N`` (DDP over NCCL with one GPU
    per rank when CUDA is there, else over gloo on the CPU; only rank 0 writes).  Each rank
    draws its own masks, distractors and Gumbel noise.

    Args:
        config: a :class:`PretrainConfig` (see :func:`speechx.pretrain.load_pretrain_config`).
        exp_dir: the experiment directory (created).
        resume: continue from the newest readable checkpoint.

    Returns:
        A :class:`~speechx.distill.trainer.TrainResult`; ``model_dir`` is a transformers
        backbone dir for ``model.source`` of a distillation or CTC config.

    Raises:
        speechx.runlock.RunLockError: another run is using ``exp_dir``.
        speechx.distill.errors.TrainingError: checkpoints exist without ``resume``, no usable
            data, an utterance too short to mask, or a non-finite loss (naming the step and
            the batch; no checkpoint is written after it).
        speechx.distill.errors.ConfigError: an invalid config.
        speechx.errors.SpeechxError: unreadable data dirs, audio or model directories.
    """
    config.validate()
    return run_training(_PretrainRun(config, Path(exp_dir), resume))
