"""Self-supervised pretraining of a speech backbone: wav2vec 2.0, optionally ccc-wav2vec 2.0.

Start with :func:`load_pretrain_config` and :func:`train_pretrain`::

    from speechx.pretrain import load_pretrain_config, train_pretrain
    cfg = load_pretrain_config("conf/pretrain_w2v2.yaml", ["max_steps=100"])
    result = train_pretrain(cfg, "exp/pretrain_w2v2")
    result.model_dir   # a transformers backbone dir: model.source of a distill or CTC config

* :mod:`speechx.pretrain.config`: :class:`PretrainConfig` (data, masking, quantiser, loss,
  Gumbel annealing, ccc, optimiser, loop settings);
* :mod:`speechx.pretrain.model`: :class:`PretrainingModel` (backbone + quantiser +
  projections) and the saved model directory;
* :mod:`speechx.pretrain.objective`: masks, distractors, the contrastive and ccc terms;
* :mod:`speechx.pretrain.augment`: the augmented copy of ccc-wav2vec 2.0;
* :mod:`speechx.pretrain.trainer`: the run on the shared training loop.
"""

from speechx.pretrain.config import PretrainConfig, load_pretrain_config
from speechx.pretrain.data import PretrainData, collate_pretrain
from speechx.pretrain.model import PretrainingModel, build_pretraining_model
from speechx.pretrain.trainer import evaluate_pretrain, train_pretrain

__all__ = [
    "PretrainConfig",
    "PretrainData",
    "PretrainingModel",
    "build_pretraining_model",
    "collate_pretrain",
    "evaluate_pretrain",
    "load_pretrain_config",
    "train_pretrain",
]
