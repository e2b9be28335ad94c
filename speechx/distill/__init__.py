"""Distillation: train a speech encoder to land on a frozen text teacher's embeddings.

Start with :func:`load_config` and :func:`train_distill`::

    from speechx.distill import load_config, train_distill
    cfg = load_config("conf/distill.yaml", ["max_steps=100"])
    result = train_distill(cfg, "exp/distill", resume=False)
    result.model_dir   # exp/distill/model, loadable with SpeechEncoder.from_pretrained

Speech-to-speech distillation (a small student learning a trained encoder's embeddings of
unlabeled speech): :func:`embed_speech_data_dir` writes the targets, and a config with
``data.speech_teacher`` and ``fields: [speech]`` trains on them
(:mod:`speechx.distill.speech_teacher`).
"""

from speechx.distill.config import (
    DataConfig,
    DataSource,
    DistillConfig,
    EvalConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    config_from_dict,
    load_config,
    save_config,
)
from speechx.distill.data import DistillData, SourceSpec, build_distill_data, collate_distill
from speechx.distill.errors import ConfigError, TrainingError
from speechx.distill.evaluate import evaluate_dev
from speechx.distill.losses import (
    LOSSES,
    DistillLoss,
    LossOutput,
    cosine_loss,
    infonce_loss,
    mse_loss,
)
from speechx.distill.sampling import (
    LanguageBalancedBatchSampler,
    language_probabilities,
    language_weights,
)
from speechx.distill.speech_teacher import (
    SpeechTargets,
    SpeechTeacher,
    embed_speech_data_dir,
    speech_teacher_id,
)
from speechx.distill.targets import TargetTable, load_targets
from speechx.distill.trainer import TrainResult, build_model, train_distill

__all__ = [
    "LOSSES",
    "ConfigError",
    "DataConfig",
    "DataSource",
    "DistillConfig",
    "DistillData",
    "DistillLoss",
    "LanguageBalancedBatchSampler",
    "SourceSpec",
    "SpeechTargets",
    "SpeechTeacher",
    "TargetTable",
    "TrainResult",
    "build_distill_data",
    "build_model",
    "collate_distill",
    "embed_speech_data_dir",
    "evaluate_dev",
    "language_probabilities",
    "language_weights",
    "load_targets",
    "train_distill",
    "EvalConfig",
    "LossConfig",
    "LossOutput",
    "ModelConfig",
    "OptimConfig",
    "TrainingError",
    "config_from_dict",
    "cosine_loss",
    "infonce_loss",
    "load_config",
    "mse_loss",
    "save_config",
    "speech_teacher_id",
]
