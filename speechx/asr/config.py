"""The CTC training config: plain YAML mapped onto dataclasses, ``key=value`` overrides.

A minimal ``conf/asr.yaml``::

    data:
      train: [data/fillets_nl_train, data/synth_nl_train]
      dev: [data/fillets_nl_dev]
    model: {source: whisper-base}
    max_steps: 500

``model.source`` is a preset (:func:`speechx.models.build_encoder`), a transformers backbone
dir, a speechx encoder dir (a distilled model: its backbone and embedding head are kept) or a
speechx recognizer dir (training continues from it, vocabulary included).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from speechx.asr.model import CtcConfig
from speechx.asr.vocab import TextConfig
from speechx.distill.config import (
    LoopConfig,
    OptimConfig,
    check_data_dirs,
    check_loop_settings,
    load_config,
)
from speechx.distill.errors import ConfigError
from speechx.errors import ModelError


@dataclass
class AsrDataConfig:
    """Training and dev data dirs (transcripts in ``text``) and batching."""

    train: list[str] = field(default_factory=list)
    dev: list[str] = field(default_factory=list)
    #: p_l ∝ (n_l/N)^alpha over utt2lang (1 = natural frequencies).
    lang_alpha: float = 1.0
    max_batch_seconds: float = 60.0
    num_buckets: int = 10
    #: Longer training utterances (seconds) are skipped; None keeps all.
    max_duration: float | None = 20.0
    num_workers: int = 0
    #: "auto": train on cached features of a frozen bottom; "off": always run the whole model.
    feature_cache: Literal["auto", "off"] = "auto"
    feature_cache_dir: str | None = None


@dataclass
class AsrModelConfig:
    """Where the acoustic model comes from, and the CTC head."""

    source: str = "tiny"
    #: Embedding head size when the encoder is built from a preset (kept, unused by CTC).
    embed_dim: int = 512
    overrides: dict[str, Any] = field(default_factory=dict)
    ctc: CtcConfig = field(default_factory=CtcConfig)


@dataclass
class AsrEvalConfig:
    """Dev evaluation: greedy decoding, WER and CER; the best model has the lowest primary."""

    primary_metric: Literal["wer", "cer"] = "wer"
    max_batch_seconds: float = 120.0


@dataclass
class AsrConfig(LoopConfig):
    """Everything a CTC training run needs (the loop settings are :class:`LoopConfig`'s); the
    resolved copy is written to ``config.yaml``."""

    data: AsrDataConfig = field(default_factory=AsrDataConfig)
    model: AsrModelConfig = field(default_factory=AsrModelConfig)
    text: TextConfig = field(default_factory=TextConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr_head=1e-3))
    eval: AsrEvalConfig = field(default_factory=AsrEvalConfig)

    def validate(self) -> AsrConfig:
        """Check what types alone cannot; returns ``self``.

        Raises:
            ConfigError: naming the key and the problem.
        """
        check_data_dirs(self.data.train, self.data.dev)
        check_loop_settings(self)
        try:
            self.model.ctc.validate()
            TextConfig.from_dict(self.text.to_dict())
        except ModelError as exc:
            raise ConfigError(f"model.ctc / text: {exc}") from None
        return self


def load_asr_config(
    yaml_path: str | os.PathLike | None = None,
    overrides: list[str] | None = None,
    *,
    ignore_sections: tuple[str, ...] = ("recipe",),
) -> AsrConfig:
    """Read a YAML config, apply ``dotted.key=value`` overrides and validate.

    Returns:
        The validated :class:`AsrConfig`.

    Raises:
        ConfigError: a missing file, invalid YAML, an unknown key (named) or a bad value.
    """
    return load_config(yaml_path, overrides, ignore_sections=ignore_sections, cls=AsrConfig)
