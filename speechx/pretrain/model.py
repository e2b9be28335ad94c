"""The model being pretrained: a speechx backbone plus wav2vec 2.0's quantiser and projections.

:class:`PretrainingModel` holds the backbone of a speechx encoder (its transformers
``Wav2Vec2Model``, or a subclass with another front end, at ``backbone.model``) and the parts
that only pretraining needs, taken from transformers' ``Wav2Vec2ForPreTraining``: the
Gumbel-softmax quantiser (``Wav2Vec2GumbelVectorQuantizer``), ``project_hid`` (context ->
``proj_dim``) and ``project_q`` (codeword -> ``proj_dim``), initialised as transformers does.
Frame counts come from the backbone model's own ``_get_feat_extract_output_lengths`` (through
:meth:`speechx.models.backbones.Backbone.output_lengths`), never from a config's conv lists, so
a front end that subsamples differently works unchanged.

Saved model directory (:meth:`PretrainingModel.save_pretrained`), a transformers backbone dir
that ``model.source`` of a distillation or CTC config, :func:`speechx.models.build_encoder`
and ``Wav2Vec2Model.from_pretrained`` load as it is::

    config.json                     the backbone's transformers config as the run started
                                    (fine-tuning SpecAugment settings untouched) with the
                                    quantiser sizes of this run
    model.safetensors               the backbone weights (Wav2Vec2Model keys)
    preprocessor_config.json        sampling_rate and do_normalize, read by build_encoder
    pretraining_heads.safetensors   quantizer.*, project_hid.*, project_q.* (continued
                                    pretraining from this dir picks them up)
    pretraining.json                how it was pretrained (source, masking, quantiser, ccc)
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from torch import nn
from transformers import Wav2Vec2Config
from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2GumbelVectorQuantizer

from speechx.errors import ModelError
from speechx.models import SpeechEncoder, build_encoder
from speechx.models.backbones import Backbone
from speechx.models.config import SpeechEncoderConfig
from speechx.models.encoder import FORMAT_NAME, save_safetensors
from speechx.pretrain.augment import augment_batch
from speechx.pretrain.config import CccConfig, PretrainConfig, QuantizerConfig
from speechx.pretrain.objective import (
    cluster_views,
    contrastive_logits,
    contrastive_stats,
    quantize,
    same_cluster,
)

log = logging.getLogger("speechx.distill.pretrain")  # into the run's train.log

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PREPROCESSOR_NAME = "preprocessor_config.json"
HEADS_NAME = "pretraining_heads.safetensors"
INFO_NAME = "pretraining.json"
#: Prefixes of the pretraining-only parameters (in the model and in HEADS_NAME).
HEAD_PREFIXES = ("quantizer.", "project_hid.", "project_q.")


class _ScaleGrad(torch.autograd.Function):
    """Identity in the forward pass; the gradient is multiplied by ``scale``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.scale, None


class PretrainingModel(nn.Module):
    """Backbone + quantiser + projections, computing the wav2vec 2.0 (or ccc) loss in forward.

    Args:
        backbone: a speechx backbone whose ``model`` is a transformers ``Wav2Vec2Model``
            (or a subclass); its parameters are all made trainable.
        encoder_config: the speechx encoder config it came with (sample rate, preprocessing;
            its ``backbone_config`` is what :meth:`save_pretrained` writes).
        quantizer: sizes of the quantiser and projections.
        temperature, diversity_weight: kappa and the weight of the diversity loss.
        feature_grad_mult: gradient scale of the front end (1 = unscaled).
        ccc: the ccc-wav2vec 2.0 settings (used by ``forward`` when augmented input is given).
        info: what :meth:`save_pretrained` records in ``pretraining.json``.

    Raises:
        ModelError: the backbone is not a wav2vec2-family model with ``extract_features``.
    """

    #: the waveform preprocessing of SpeechEncoder (zeroed padding, per-utterance normalisation)
    preprocess = SpeechEncoder.preprocess

    def __init__(
        self,
        backbone: Backbone,
        encoder_config: SpeechEncoderConfig,
        quantizer: QuantizerConfig,
        *,
        temperature: float = 0.1,
        diversity_weight: float = 0.1,
        feature_grad_mult: float = 1.0,
        ccc: CccConfig | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        hf = getattr(backbone, "model", None)
        if hf is None or not hasattr(hf, "feature_extractor") or not hasattr(hf, "config"):
            raise ModelError(
                f"backbone {backbone.name!r} cannot be pretrained with wav2vec 2.0's objective "
                "(it needs a transformers wav2vec2-style model with a feature extractor)"
            )
        self.backbone = backbone
        self.config = encoder_config.replace(backbone_config=backbone.config_dict())
        self.quantizer_config = quantizer
        self.temperature = float(temperature)
        self.diversity_weight = float(diversity_weight)
        self.ccc = ccc or CccConfig()
        self.info = dict(info or {})
        for p in backbone.parameters():
            p.requires_grad_(True)
        hf.config.apply_spec_augment = True  # the mask is ours; apply it
        if getattr(hf, "masked_spec_embed", None) is None:
            # built with mask_time_prob 0: add the learned mask vector (not saved in that case)
            hf.masked_spec_embed = nn.Parameter(torch.empty(self.hidden_size).uniform_())
        conv_out = self._feature_width()
        qcfg = Wav2Vec2Config(
            conv_dim=[conv_out],
            conv_kernel=[1],
            conv_stride=[1],
            num_codevector_groups=quantizer.groups,
            num_codevectors_per_group=quantizer.vars,
            codevector_dim=quantizer.codevector_dim,
        )
        self.quantizer = Wav2Vec2GumbelVectorQuantizer(qcfg)
        self.project_hid = nn.Linear(self.hidden_size, quantizer.proj_dim)
        self.project_q = nn.Linear(quantizer.codevector_dim, quantizer.proj_dim)
        self.dropout_features = nn.Dropout(quantizer.feature_dropout)
        # the initialisation of transformers' Wav2Vec2PreTrainedModel._init_weights
        nn.init.normal_(self.quantizer.weight_proj.weight, mean=0.0, std=1.0)
        nn.init.zeros_(self.quantizer.weight_proj.bias)
        nn.init.uniform_(self.quantizer.codevectors)
        self.feature_grad_mult = float(feature_grad_mult)
        if self.feature_grad_mult != 1.0:
            hf.feature_extractor.register_forward_hook(self._scale_front_end_grad)

    # -- facts ----------------------------------------------------------------------------------

    @property
    def hf_model(self) -> nn.Module:
        """The transformers model inside the backbone."""
        return self.backbone.model  # type: ignore[return-value]

    @property
    def hidden_size(self) -> int:
        """Width of the context network's output."""
        return int(self.backbone.hidden_size)

    @property
    def sample_rate(self) -> int:
        """Sample rate, in Hz, of the input."""
        return self.config.sample_rate

    @property
    def embed_dim(self) -> int:
        """Width of the space where context and targets are compared (``proj_dim``)."""
        return self.quantizer_config.proj_dim

    @property
    def cache_point(self) -> None:
        """Nothing is frozen, so nothing can be cached (the shared loop asks)."""
        return None

    @property
    def min_input_samples(self) -> int:
        """The shortest input, in samples, that yields one frame."""
        return self.backbone.min_input_samples

    def _feature_width(self) -> int:
        """Channels of the front end's output (the quantiser's input), from a dummy forward."""
        n = max(self.min_input_samples, 2)
        with torch.no_grad():
            was = self.hf_model.training
            self.hf_model.eval()
            try:
                out = self.hf_model.feature_extractor(torch.zeros(1, n))
            finally:
                self.hf_model.train(was)
        return int(out.shape[1])

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Real latent frames ``[B]`` for sample counts ``lengths`` ``[B]``."""
        return self.backbone.output_lengths(lengths)

    def num_frames(self, num_samples: int) -> int:
        """Latent frames of a (padded) input of ``num_samples`` samples."""
        return int(self.backbone.output_lengths(torch.tensor([num_samples]))[0])

    def min_samples_for_frames(self, frames: int) -> int:
        """The fewest samples that give at least ``frames`` latent frames."""
        lo, hi = self.min_input_samples, self.min_input_samples
        while self.num_frames(hi) < frames:
            lo, hi = hi, hi * 2
        while lo < hi:
            mid = (lo + hi) // 2
            if self.num_frames(mid) >= frames:
                hi = mid
            else:
                lo = mid + 1
        return hi

    def set_gumbel_temperature(self, temperature: float) -> None:
        """Set the quantiser's Gumbel-softmax temperature."""
        self.quantizer.temperature = float(temperature)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``{"backbone": [...], "head": [...]}``; "head" is the quantiser and projections."""
        backbone_ids = {id(p) for p in self.backbone.parameters()}
        groups: dict[str, list[nn.Parameter]] = {"backbone": [], "head": []}
        for p in self.parameters():
            if p.requires_grad:
                groups["backbone" if id(p) in backbone_ids else "head"].append(p)
        return groups

    def _scale_front_end_grad(
        self, module: nn.Module, args: Any, output: torch.Tensor
    ) -> torch.Tensor:
        if not torch.is_grad_enabled() or not output.requires_grad:
            return output
        return _ScaleGrad.apply(output, self.feature_grad_mult)

    # -- forward --------------------------------------------------------------------------------

    def encode_view(
        self, input_values: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Run the backbone with ``mask`` applied and quantise its latent frames.

        Args:
            input_values: ``[B, T]`` zero-padded waveforms (not yet preprocessed).
            lengths: ``[B]`` sample counts.
            mask: bool ``[B, F]`` frames replaced by the learned mask vector.

        Returns:
            ``context`` and ``targets`` (``[B, F, proj_dim]``), ``prob_perplexity`` (of the
            soft codeword distribution over the masked frames: the diversity loss's) and
            ``code_perplexity`` (of the chosen codewords), scalars.

        Raises:
            ModelError: the backbone gives another number of frames than ``mask`` has.
        """
        x = self.preprocess(input_values, lengths)
        attention_mask = None
        if getattr(self.backbone, "uses_attention_mask", True):
            positions = torch.arange(x.shape[1], device=x.device)
            attention_mask = (positions[None, :] < lengths[:, None]).long()
        out = self.hf_model(
            x, attention_mask=attention_mask, mask_time_indices=mask, return_dict=True
        )
        hidden, latent = out.last_hidden_state, out.extract_features
        if hidden.shape[1] != mask.shape[1]:
            raise ModelError(
                f"the backbone gave {hidden.shape[1]} frames for {x.shape[1]} samples, its "
                f"output_lengths says {mask.shape[1]}"
            )
        latent = self.dropout_features(latent)
        quantized, prob_ppl, code_ppl = quantize(self.quantizer, latent, mask)
        targets = self.project_q(quantized.to(self.project_q.weight.dtype))
        return {
            "context": self.project_hid(hidden),
            "targets": targets,
            "prob_perplexity": prob_ppl,
            "code_perplexity": code_ppl,
        }

    def diversity_loss(self, perplexity: torch.Tensor) -> torch.Tensor:
        """``(G*V - perplexity) / (G*V)``."""
        n = self.quantizer.num_groups * self.quantizer.num_vars
        return (n - perplexity) / n

    def forward(
        self,
        input_values: torch.Tensor,
        lengths: torch.Tensor,
        mask: torch.Tensor,
        negatives: torch.Tensor,
        aug_values: torch.Tensor | None = None,
        aug_negatives: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The pretraining loss of a batch.

        Args:
            input_values: ``[B, T]`` zero-padded waveforms; ``lengths``: ``[B]`` sample counts.
            mask: bool ``[B, F]``; negatives: long ``[B, F, K]`` (see
                :func:`speechx.pretrain.objective.sample_mask_and_negatives`).
            aug_values: the augmented copy ``[B, T]`` (ccc-wav2vec 2.0), masked identically;
                ``aug_negatives`` are the distractor indices of its targets.

        Returns:
            ``loss`` (to backpropagate: per masked frame, see :mod:`speechx.pretrain.objective`)
            and detached scalars ``contrastive``, ``diversity``, ``accuracy``,
            ``prob_perplexity``, ``code_perplexity``, ``masked`` (frames), ``contrastive_sum``,
            ``correct``; with the copy also ``cross`` and ``cross_aug``.
        """
        view = self.encode_view(input_values, lengths, mask)
        scale = scale_aug = None
        ccc = aug_values is not None
        if ccc:
            if aug_negatives is None:
                raise ModelError("PretrainingModel.forward: aug_values needs aug_negatives")
            aug = self.encode_view(aug_values, lengths, mask)
            if self.ccc.cluster_scale != 1.0:
                labels, labels_aug = cluster_views(
                    view["targets"],
                    aug["targets"],
                    mask,
                    num_clusters=self.ccc.num_clusters,
                    iters=self.ccc.kmeans_iters,
                )
                scale = same_cluster(labels, mask, negatives)
                scale_aug = same_cluster(labels_aug, mask, aug_negatives)
        cs = self.ccc.cluster_scale
        t = self.temperature
        main = contrastive_stats(
            contrastive_logits(
                view["context"], view["targets"], mask, negatives, t, scale=scale, cluster_scale=cs
            )
        )
        diversity = self.diversity_loss(view["prob_perplexity"])
        loss = main.mean + self.diversity_weight * diversity
        out = {
            "contrastive": main.mean.detach(),
            "diversity": diversity.detach(),
            "accuracy": torch.tensor(main.correct / max(main.count, 1)),
            "prob_perplexity": view["prob_perplexity"].detach(),
            "code_perplexity": view["code_perplexity"].detach(),
            "masked": torch.tensor(float(main.count)),
            "contrastive_sum": main.loss_sum.detach(),
            "correct": torch.tensor(float(main.correct)),
        }
        if ccc:
            assert aug_negatives is not None
            cross = contrastive_stats(
                contrastive_logits(
                    view["context"],
                    aug["targets"],
                    mask,
                    aug_negatives,
                    t,
                    scale=scale_aug,
                    cluster_scale=cs,
                )
            )
            cross_aug = contrastive_stats(
                contrastive_logits(
                    aug["context"],
                    view["targets"],
                    mask,
                    negatives,
                    t,
                    scale=scale,
                    cluster_scale=cs,
                )
            )
            loss = loss + self.ccc.alpha * cross.mean + self.ccc.beta * cross_aug.mean
            out["cross"] = cross.mean.detach()
            out["cross_aug"] = cross_aug.mean.detach()
        out["loss"] = loss
        return out

    def augment(self, input_values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The augmented copy of a batch (:func:`speechx.pretrain.augment.augment_batch`)."""
        c = self.ccc
        return augment_batch(
            input_values,
            lengths,
            sample_rate=self.sample_rate,
            noise_prob=c.noise_prob,
            noise_snr_db=c.noise_snr_db,
            reverb_prob=c.reverb_prob,
            rt60=c.rt60,
            babble_prob=c.babble_prob,
            babble_snr_db=c.babble_snr_db,
        )

    # -- persistence ----------------------------------------------------------------------------

    def backbone_state(self) -> dict[str, torch.Tensor]:
        """The backbone weights under ``Wav2Vec2Model`` keys, as saved in ``model.safetensors``.

        The mask vector added for a backbone whose config has no SpecAugment is left out (a
        model built from the saved config has no such parameter).
        """
        cfg = self.config.backbone_config
        keep_mask = float(cfg.get("mask_time_prob", 0) or 0) > 0 or (
            float(cfg.get("mask_feature_prob", 0) or 0) > 0
        )
        state = {}
        for k, v in self.hf_model.state_dict().items():
            if k == "masked_spec_embed" and not keep_mask:
                continue
            state[k] = v
        return state

    def head_state(self) -> dict[str, torch.Tensor]:
        """The quantiser and projection weights (``quantizer.*``, ``project_hid.*``,
        ``project_q.*``)."""
        return {k: v for k, v in self.state_dict().items() if k.startswith(HEAD_PREFIXES)}

    def save_pretrained(self, model_dir: str | os.PathLike) -> Path:
        """Write the transformers backbone dir described in the module docstring.

        Returns:
            The directory.
        """
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        q = self.quantizer_config
        hf_config = {
            **self.config.backbone_config,
            "num_codevector_groups": q.groups,
            "num_codevectors_per_group": q.vars,
            "codevector_dim": q.codevector_dim,
            "proj_codevector_dim": q.proj_dim,
            "contrastive_logits_temperature": self.temperature,
            "diversity_loss_weight": self.diversity_weight,
            "feat_quantizer_dropout": q.feature_dropout,
        }
        _write_json(model_dir / CONFIG_NAME, hf_config)
        # the metadata transformers' from_pretrained looks for
        save_safetensors(self.backbone_state(), model_dir / WEIGHTS_NAME, {"format": "pt"})
        save_safetensors(self.head_state(), model_dir / HEADS_NAME, {"format": "pt"})
        _write_json(
            model_dir / PREPROCESSOR_NAME,
            {
                "feature_extractor_type": "Wav2Vec2FeatureExtractor",
                "feature_size": 1,
                "sampling_rate": self.sample_rate,
                "padding_value": 0.0,
                "do_normalize": bool(self.config.preprocessing.do_normalize),
                "return_attention_mask": bool(getattr(self.backbone, "uses_attention_mask", True)),
            },
        )
        _write_json(model_dir / INFO_NAME, {"speechx_pretraining": 1, **self.info})
        return model_dir


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def _is_speechx_dir(path: Path) -> bool:
    try:
        data = json.loads((path / CONFIG_NAME).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("speechx_format") == FORMAT_NAME


def build_pretraining_model(cfg: PretrainConfig) -> PretrainingModel:
    """The model a pretraining run starts from (see
    :class:`~speechx.pretrain.config.PretrainModelConfig`).

    A preset is built with random weights; a transformers backbone dir is loaded (and, when it
    holds ``pretraining_heads.safetensors`` from an earlier run, the quantiser and projections
    too); a speechx encoder dir gives its backbone.

    Raises:
        speechx.errors.ModelError: an unknown preset, an unloadable directory, a backbone
            without a wav2vec2-style front end, or heads whose shapes differ from
            ``model.quantizer``.
    """
    m = cfg.model
    src = Path(m.source)
    if src.is_dir() and _is_speechx_dir(src):
        encoder = SpeechEncoder.from_pretrained(src)
    else:
        # the embedding head is built and dropped: only the backbone is pretrained
        encoder = build_encoder(m.source, 8, **m.overrides)
    info = {
        "source": m.source,
        "backbone": encoder.config.backbone,
        "quantizer": vars(m.quantizer).copy(),
        "masking": vars(cfg.masking).copy(),
        "loss": vars(cfg.loss).copy(),
        "ccc": cfg.ccc.enabled,
    }
    model = PretrainingModel(
        encoder.backbone,
        encoder.config,
        m.quantizer,
        temperature=cfg.loss.temperature,
        diversity_weight=cfg.loss.diversity_weight,
        feature_grad_mult=m.feature_grad_mult,
        ccc=cfg.ccc,
        info=info,
    )
    heads = src / HEADS_NAME
    if src.is_dir() and heads.is_file():
        load_heads(model, heads)
        log.info("%s: quantiser and projections loaded (continued pretraining)", heads)
    return model.train()


def load_heads(model: PretrainingModel, path: str | os.PathLike) -> None:
    """Load ``pretraining_heads.safetensors`` into ``model``.

    Raises:
        speechx.errors.ModelError: unreadable, or keys/shapes that differ from the model's
            quantiser and projections (``model.quantizer`` of the config must match).
    """
    try:
        state = safetensors.torch.load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises several types for damaged files
        raise ModelError(f"{path}: cannot read the pretraining heads ({exc})") from None
    mine = model.head_state()
    bad = sorted(set(mine) ^ set(state)) + [
        k for k in mine if k in state and tuple(mine[k].shape) != tuple(state[k].shape)
    ]
    if bad:
        raise ModelError(
            f"{path}: quantiser/projection weights do not match model.quantizer of the config "
            f"({', '.join(bad[:3])}); set model.quantizer as in the run that wrote it"
        )
    model.load_state_dict(state, strict=False)


def describe(model: PretrainingModel) -> str:
    """One line on the quantiser, for the log."""
    q = model.quantizer
    return (
        f"quantiser {q.num_groups}x{q.num_vars} codewords ({int(np.prod(q.codevectors.shape))} "
        f"values), projections {model.hidden_size}->{model.embed_dim}, feature_grad_mult "
        f"{model.feature_grad_mult}"
    )
