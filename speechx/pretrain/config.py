"""The self-supervised pretraining config: plain YAML mapped onto dataclasses, ``key=value``
overrides (the loader of :mod:`speechx.distill.config`).

A minimal ``conf/pretrain.yaml``::

    data:
      train: [data/fillets_nl_train, data/synth_nl_train]   # any Kaldi dirs; no text needed
      dev: [data/fillets_nl_dev]
    model: {source: w2v2-scratch-fast}
    max_steps: 2000

The objective is wav2vec 2.0's (Baevski et al., 2020): spans of the latent frames are masked
(``masking.prob`` of the frames start a span of ``masking.length``), the context network predicts
the quantised latent of each masked frame among ``loss.num_negatives`` distractors drawn from the
other masked frames of the same utterance (cosine similarity over ``loss.temperature``), plus
``loss.diversity_weight`` times the codebook diversity loss.  ``ccc.enabled`` adds the
cross-contrastive terms and negative clustering of ccc-wav2vec 2.0 (see
:mod:`speechx.pretrain.objective`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from speechx.distill.config import (
    LoopConfig,
    OptimConfig,
    check_data_dirs,
    check_loop_settings,
    load_config,
)
from speechx.distill.errors import ConfigError


@dataclass
class PretrainDataConfig:
    """Unlabelled audio: Kaldi data dirs (``wav.scp``, optionally ``segments``, ``utt2dur``,
    ``utt2lang``; transcripts are not read), and batching."""

    train: list[str] = field(default_factory=list)
    dev: list[str] = field(default_factory=list)
    #: p_l ∝ (n_l/N)^alpha over utt2lang (1 = natural frequencies).
    lang_alpha: float = 1.0
    max_batch_seconds: float = 40.0
    num_buckets: int = 10
    #: Longer utterances (seconds) are skipped; None keeps all.
    max_duration: float | None = 15.0
    num_workers: int = 0

    # The shared loop reads these: pretraining always runs the whole model on the audio.
    @property
    def feature_cache(self) -> str:
        """Always ``"off"``: nothing of a pretrained model is frozen."""
        return "off"

    @property
    def feature_cache_dir(self) -> None:
        """Unused (no feature cache)."""
        return None


@dataclass
class QuantizerConfig:
    """The Gumbel-softmax product quantiser and the projections of the contrastive task.

    ``groups`` codebooks of ``vars`` entries each (G=2, V=320 in the paper); the codewords are
    ``codevector_dim / groups`` wide and concatenated; context and quantised vectors are both
    projected to ``proj_dim`` before the cosine similarity.
    """

    groups: int = 2
    vars: int = 320
    codevector_dim: int = 256
    proj_dim: int = 256
    #: Dropout on the latent features entering the quantiser (fairseq's dropout_features).
    feature_dropout: float = 0.0


@dataclass
class PretrainModelConfig:
    """The backbone being pretrained, and the quantiser added for pretraining.

    ``source`` is a preset (``w2v2-scratch-fast``, ``w2v2-scratch-small``, ``tiny``, ... see
    :mod:`speechx.models.presets`), a transformers backbone dir (an earlier pretraining output
    continues, quantiser included), or a speechx encoder dir (its backbone is used).
    ``overrides`` go to :func:`speechx.models.build_encoder` (e.g.
    ``{backbone_config: {hidden_dropout: 0.1}}``); freezing options among them are overridden,
    since pretraining trains the whole backbone.
    """

    source: str = "w2v2-scratch-fast"
    overrides: dict[str, Any] = field(default_factory=dict)
    #: Gradient scale of the convolutional front end (fairseq's feature_grad_mult, 0.1 for
    #: wav2vec 2.0 BASE); 1 = unscaled.
    feature_grad_mult: float = 0.1
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)


@dataclass
class MaskingConfig:
    """Time masking of the latent frames (the paper's p = 0.065, M = 10)."""

    #: Probability of a frame starting a masked span (about half the frames end up masked).
    prob: float = 0.065
    #: Span length in frames.
    length: int = 10
    #: Fewest spans per utterance.
    min_masks: int = 2


@dataclass
class PretrainLossConfig:
    """The contrastive task and the diversity loss."""

    #: Distractors per masked frame, drawn from the other masked frames of the utterance.
    num_negatives: int = 100
    #: kappa: cosine similarities are divided by it.
    temperature: float = 0.1
    #: alpha of L = L_m + alpha * L_d.
    diversity_weight: float = 0.1


@dataclass
class GumbelConfig:
    """Gumbel-softmax temperature: ``max(max_temperature * decay**step, min_temperature)``."""

    max_temperature: float = 2.0
    min_temperature: float = 0.5
    decay: float = 0.999995


@dataclass
class CccConfig:
    """ccc-wav2vec 2.0 (Lodagala et al., 2022): an augmented view of every utterance,
    cross-contrastive terms and clustering of the negatives.

    ``L = L_m + alpha * L_cross + beta * L_cross' + diversity_weight * L_d``, where ``L_cross``
    has the original's context predict the augmented view's quantised targets and ``L_cross'``
    the augmented view's context predict the original's.  The paper weights ``L_m`` by 1 and
    both cross terms by 0.5 (the defaults here).
    """

    enabled: bool = False
    alpha: float = 0.5
    beta: float = 0.5
    #: k of the k-means over the batch's quantised targets; 0 = the paper's
    #: max(2, masked frames per utterance // 16).
    num_clusters: int = 0
    kmeans_iters: int = 10
    #: Logits of negatives in the positive's cluster are multiplied by this (paper: 0.3);
    #: 1 turns the clustering off.
    cluster_scale: float = 0.3
    #: Augmentation of the second view (see speechx.pretrain.augment): each is applied to an
    #: utterance with its probability.
    noise_prob: float = 0.6
    noise_snr_db: list[float] = field(default_factory=lambda: [5.0, 20.0])
    reverb_prob: float = 0.7
    rt60: list[float] = field(default_factory=lambda: [0.2, 0.8])
    babble_prob: float = 0.8
    babble_snr_db: list[float] = field(default_factory=lambda: [5.0, 20.0])


@dataclass
class PretrainEvalConfig:
    """Dev evaluation: the contrastive task with fixed masks and negatives (seeded), no ccc.

    The best model has the lowest dev contrastive loss (``contrastive_loss``), or the highest
    accuracy of the positive among the candidates (``accuracy``).
    """

    primary_metric: Literal["contrastive_loss", "accuracy"] = "contrastive_loss"
    max_batch_seconds: float = 120.0


@dataclass
class PretrainConfig(LoopConfig):
    """Everything a pretraining run needs (the loop settings are :class:`LoopConfig`'s, with
    evaluation and checkpoints every 200 steps); the resolved copy is written to ``config.yaml``.
    """

    data: PretrainDataConfig = field(default_factory=PretrainDataConfig)
    model: PretrainModelConfig = field(default_factory=PretrainModelConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    loss: PretrainLossConfig = field(default_factory=PretrainLossConfig)
    gumbel: GumbelConfig = field(default_factory=GumbelConfig)
    ccc: CccConfig = field(default_factory=CccConfig)
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            lr_backbone=5e-4, lr_head=5e-4, eps=1e-6, warmup_steps=500, schedule="linear"
        )
    )
    eval: PretrainEvalConfig = field(default_factory=PretrainEvalConfig)
    eval_every: int = 200
    save_every: int = 200

    def validate(self) -> PretrainConfig:
        """Check what types alone cannot; returns ``self``.

        Raises:
            ConfigError: naming the key and the problem.
        """
        check_data_dirs(self.data.train, self.data.dev)
        check_loop_settings(self)
        m, q, lo, g, c = self.masking, self.model.quantizer, self.loss, self.gumbel, self.ccc
        if not 0.0 < m.prob <= 1.0:
            raise ConfigError(f"masking.prob must be in (0, 1], got {m.prob}")
        if m.length < 1:
            raise ConfigError(f"masking.length must be >= 1, got {m.length}")
        if m.min_masks < 1:
            raise ConfigError(f"masking.min_masks must be >= 1, got {m.min_masks}")
        for key in ("groups", "vars", "codevector_dim", "proj_dim"):
            if getattr(q, key) < 1:
                raise ConfigError(f"model.quantizer.{key} must be >= 1, got {getattr(q, key)}")
        if q.codevector_dim % q.groups:
            raise ConfigError(
                f"model.quantizer.codevector_dim ({q.codevector_dim}) must be divisible by "
                f"model.quantizer.groups ({q.groups})"
            )
        if q.vars < 2:
            raise ConfigError(f"model.quantizer.vars must be >= 2, got {q.vars}")
        if not 0.0 <= q.feature_dropout < 1.0:
            raise ConfigError(
                f"model.quantizer.feature_dropout must be in [0, 1), got {q.feature_dropout}"
            )
        if self.model.feature_grad_mult < 0:
            raise ConfigError(
                f"model.feature_grad_mult must be >= 0, got {self.model.feature_grad_mult}"
            )
        if lo.num_negatives < 1:
            raise ConfigError(f"loss.num_negatives must be >= 1, got {lo.num_negatives}")
        if lo.temperature <= 0:
            raise ConfigError(f"loss.temperature must be > 0, got {lo.temperature}")
        if lo.diversity_weight < 0:
            raise ConfigError(f"loss.diversity_weight must be >= 0, got {lo.diversity_weight}")
        if not 0 < g.min_temperature <= g.max_temperature:
            raise ConfigError(
                "gumbel: need 0 < min_temperature <= max_temperature, got "
                f"{g.min_temperature} and {g.max_temperature}"
            )
        if not 0 < g.decay <= 1:
            raise ConfigError(f"gumbel.decay must be in (0, 1], got {g.decay}")
        self._validate_ccc(c)
        if len(self.optim.betas) != 2:
            raise ConfigError(f"optim.betas needs two values, got {self.optim.betas}")
        if self.optim.warmup_steps < 0:
            raise ConfigError(f"optim.warmup_steps must be >= 0, got {self.optim.warmup_steps}")
        return self

    @staticmethod
    def _validate_ccc(c: CccConfig) -> None:
        for key in ("alpha", "beta"):
            if getattr(c, key) < 0:
                raise ConfigError(f"ccc.{key} must be >= 0, got {getattr(c, key)}")
        if c.num_clusters < 0 or c.num_clusters == 1:
            raise ConfigError(f"ccc.num_clusters must be 0 (auto) or >= 2, got {c.num_clusters}")
        if c.kmeans_iters < 1:
            raise ConfigError(f"ccc.kmeans_iters must be >= 1, got {c.kmeans_iters}")
        if not 0 <= c.cluster_scale <= 1:
            raise ConfigError(f"ccc.cluster_scale must be in [0, 1], got {c.cluster_scale}")
        for key in ("noise_prob", "reverb_prob", "babble_prob"):
            if not 0 <= getattr(c, key) <= 1:
                raise ConfigError(f"ccc.{key} must be in [0, 1], got {getattr(c, key)}")
        for key in ("noise_snr_db", "rt60", "babble_snr_db"):
            lo_hi = getattr(c, key)
            if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1]:
                raise ConfigError(f"ccc.{key} must be [low, high] with low <= high, got {lo_hi}")
        if c.rt60[0] <= 0:
            raise ConfigError(f"ccc.rt60 must be > 0 s, got {c.rt60}")

    def gumbel_temperature(self, step: int) -> float:
        """The Gumbel-softmax temperature at optimizer step ``step`` (0-based)."""
        g = self.gumbel
        return max(g.max_temperature * g.decay**step, g.min_temperature)


def load_pretrain_config(
    yaml_path: str | os.PathLike | None = None,
    overrides: list[str] | None = None,
    *,
    ignore_sections: tuple[str, ...] = ("recipe",),
) -> PretrainConfig:
    """Read a YAML config, apply ``dotted.key=value`` overrides and validate.

    Returns:
        The validated :class:`PretrainConfig`.

    Raises:
        ConfigError: a missing file, invalid YAML, an unknown key (named) or a bad value; the
            message starts with the file (and the overrides).
    """
    return load_config(yaml_path, overrides, ignore_sections=ignore_sections, cls=PretrainConfig)
