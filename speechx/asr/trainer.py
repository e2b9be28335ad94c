"""CTC fine-tuning on the shared training loop: ``train_asr(config, exp_dir, resume=...)``.

The loop is :class:`speechx.distill.trainer.TrainingLoop` (resume, DDP, progress bar, logs,
metrics.jsonl, curves, checkpoints, feature caching of a frozen bottom, best model by a dev
metric); this module fills in the CTC task: the model (:class:`SpeechRecognizer`), the data
(:class:`AsrData`), the loss and the dev evaluation (greedy decoding, WER and CER; the best
model has the lowest ``dev_<eval.primary_metric>``).

The loss is ``torch.nn.functional.ctc_loss`` with ``zero_infinity=True`` (an utterance with
more labels than frames contributes 0 instead of inf) and ``reduction="sum"``, divided by the
number of target tokens in the batch: a per-token loss that weighs every character of the
batch equally.  PyTorch's ``"mean"`` divides each utterance by its own length first and then
averages utterances, which gives the characters of short utterances more weight; a plain sum
would scale the gradient with the batch size.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechx.asr.config import AsrConfig
from speechx.asr.data import (
    AsrData,
    AsrFeatureData,
    collate_asr,
    collate_asr_features,
    read_transcripts,
)
from speechx.asr.decode import collapse_ids
from speechx.asr.model import SpeechRecognizer, is_recognizer_dir
from speechx.asr.vocab import Vocabulary
from speechx.distill.evaluate import duration_batches
from speechx.distill.runtime import to_device
from speechx.distill.trainer import TrainingLoop, TrainResult, _is_speechx_dir, run_training
from speechx.errors import ModelError
from speechx.metrics.asr import cer, wer
from speechx.models import SpeechEncoder, build_encoder

log = logging.getLogger("speechx.distill")


def build_recognizer(cfg: AsrConfig) -> SpeechRecognizer:
    """The model a run starts from (see :class:`~speechx.asr.config.AsrModelConfig`).

    A recognizer dir keeps its vocabulary; otherwise the vocabulary is built from the
    training transcripts with ``cfg.text``.  ``model.overrides`` apply to the encoder config
    (for a loaded model only settings that keep the weights' shapes: freezing, dropout...).

    Raises:
        speechx.errors.ModelError: an unknown preset, an unloadable directory, or a recognizer
            dir whose CTC head (adapter) has another shape than ``cfg.model.ctc``.
    """
    src = cfg.model.source
    overrides = dict(cfg.model.overrides)
    if is_recognizer_dir(src):
        loaded = SpeechRecognizer.from_pretrained(src)
        encoder, vocab = loaded.encoder, loaded.vocab
        head = {k: v for k, v in loaded.state_dict().items() if k.startswith(_CTC_PREFIXES)}
    else:
        vocab = Vocabulary.build(read_transcripts(cfg.data.train), cfg.text)
        head = None
        cfg_file = Path(src) / "config.json"
        if cfg_file.is_file() and _is_speechx_dir(cfg_file):
            encoder = SpeechEncoder.from_pretrained(src)  # a distilled encoder
        else:
            encoder = build_encoder(src, cfg.model.embed_dim, **overrides)
            overrides = {}
    if overrides:
        state = encoder.state_dict()
        encoder = SpeechEncoder(encoder.config.replace(**overrides))
        encoder.load_state_dict(state, strict=True)
    model = SpeechRecognizer(encoder, vocab, cfg.model.ctc)
    if head is not None:
        mine = {k: v for k, v in model.state_dict().items() if k.startswith(_CTC_PREFIXES)}
        if set(mine) != set(head) or any(mine[k].shape != head[k].shape for k in mine):
            raise ModelError(
                f"{src}: its CTC head (adapter_layers={loaded.ctc.adapter_layers}, "
                f"adapter_dim={loaded.ctc.adapter_dim}) does not match model.ctc in the config "
                f"(adapter_layers={cfg.model.ctc.adapter_layers}, "
                f"adapter_dim={cfg.model.ctc.adapter_dim})"
            )
        model.load_state_dict(head, strict=False)
    return model.train()


_CTC_PREFIXES = ("ctc_head.", "ctc_adapter.")


def ctc_loss(
    logits: torch.Tensor,
    frame_lengths: torch.Tensor,
    labels: torch.Tensor,
    label_lengths: torch.Tensor,
) -> torch.Tensor:
    """CTC loss per target token of the batch (see the module docstring for the reduction).

    Args:
        logits: ``[B, F, V]``; blank is id 0.
        frame_lengths: ``[B]`` real frames; labels: ``[B, L]`` 0-padded; label_lengths: ``[B]``.

    Returns:
        A scalar: the summed CTC loss divided by ``label_lengths.sum()``.
    """
    lp = torch.log_softmax(logits.float(), dim=-1).transpose(0, 1)
    total = torch.nn.functional.ctc_loss(
        lp,
        labels,
        frame_lengths,
        label_lengths,
        blank=0,
        reduction="sum",
        zero_infinity=True,
    )
    return total / label_lengths.sum().clamp(min=1)


@torch.no_grad()
def transcribe_data(
    model: SpeechRecognizer,
    data: AsrData,
    *,
    max_batch_seconds: float = 120.0,
    features: Any = None,
) -> list[str]:
    """Greedy transcripts of every item of ``data`` (cached features when given).

    The batches go to the device the model's parameters are on (a GPU model needs no
    wrapping).

    Returns:
        One normalised hypothesis per item, in data order.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    source: Any = AsrFeatureData(data, features) if features is not None else data
    collate = collate_asr_features if features is not None else collate_asr
    hyps = [""] * len(data)
    try:
        for idx in duration_batches(data.durations, max_batch_seconds):
            batch = to_device(collate([source[i] for i in idx]), device)
            if features is not None:
                out = model(features=batch["features"], frame_lengths=batch["frame_lengths"])
            else:
                out = model(batch["input_values"], batch["lengths"])
            best = out["logits"].argmax(-1).cpu()
            frames = out["frame_lengths"].cpu()
            for row, i in enumerate(idx):
                n = int(frames[row])
                hyps[i] = model.vocab.decode(collapse_ids(best[row, :n].tolist()))
    finally:
        model.train(was_training)
    return hyps


class _AsrRun(TrainingLoop):
    """CTC fine-tuning on the shared loop."""

    task = "asr"
    audio_collate = staticmethod(collate_asr)

    def build(self) -> None:
        cfg = self.cfg
        self.model = build_recognizer(cfg)
        sr = self.model.sample_rate
        d = cfg.data
        self.train_data = AsrData(
            d.train, self.model.vocab, sample_rate=sr, max_duration=d.max_duration, role="train"
        )
        self.dev_data: AsrData | None = None
        if d.dev and self.env.is_main:
            self.dev_data = AsrData(d.dev, self.model.vocab, sample_rate=sr, role="dev")

    def describe_model(self) -> None:
        log.info("CTC head: %r; masking %s", self.model.vocab, self.model.ctc)

    def build_loss(self) -> None:
        log.info(
            "loss: CTC (sum over the batch / target tokens, zero_infinity); "
            "%d optimizer steps planned",
            self.total_steps,
        )

    def cached_train_set(self, store: Any) -> tuple[Any, Any]:
        return AsrFeatureData(self.train_data, store), collate_asr_features

    def compute_loss(
        self, net: torch.nn.Module, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        out = self._forward(net, batch)
        loss = ctc_loss(
            out["logits"], out["frame_lengths"], batch["labels"], batch["label_lengths"]
        )
        return loss, {"loss": float(loss.detach())}

    def dev_metrics(self) -> dict[str, float]:
        assert self.dev_data is not None
        hyps = transcribe_data(
            self.model,
            self.dev_data,
            max_batch_seconds=self.cfg.eval.max_batch_seconds,
            features=self.dev_store,
        )
        norm = self.model.vocab.text.normalizer()
        refs = self.dev_data.texts
        return {
            "dev_wer": wer(refs, hyps, norm).rate,
            "dev_cer": cer(refs, hyps, norm).rate,
            "dev_empty_hyps": float(sum(not h for h in hyps)) / len(hyps),
        }

    def is_better(self, value: float, best: float | None) -> bool:
        if best is None or not np.isfinite(best):
            return bool(np.isfinite(value))
        return value < best


def train_asr(
    config: AsrConfig, exp_dir: str | os.PathLike, *, resume: bool = False
) -> TrainResult:
    """Fine-tune a CTC recognizer; ``exp_dir/model`` gets the best one by dev WER (or CER).

    Works in one process and under ``torchrun --nproc_per_node=N`` (DDP over NCCL with one GPU
    per rank when CUDA is there, else over gloo on the CPU; only rank 0 writes).  ``N`` ranks
    with ``optim.grad_accum=k`` take the same optimizer steps as one process with ``N x k``.

    Args:
        config: an :class:`AsrConfig` (see :func:`speechx.asr.config.load_asr_config`).
        exp_dir: the experiment directory (created).
        resume: continue from the newest readable checkpoint (stale temp files of a killed
            run are removed; an unreadable newest checkpoint falls back to the previous).

    Returns:
        A :class:`~speechx.distill.trainer.TrainResult`.

    Raises:
        speechx.runlock.RunLockError: another run is using ``exp_dir`` (the shared loop holds
            ``exp_dir/.lock`` for the run; a killed run's lock is gone with it).
        speechx.distill.errors.TrainingError: checkpoints exist without ``resume``, no usable
            data, or a non-finite loss (naming the step and the batch; no checkpoint is
            written after it).
        speechx.distill.errors.ConfigError: an invalid config.
        speechx.errors.SpeechxError: unreadable data dirs, audio or model directories.
    """
    config.validate()
    return run_training(_AsrRun(config, Path(exp_dir), resume))
