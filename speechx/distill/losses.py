"""Distillation losses: pull a speech embedding onto the teacher embedding of its text.

==========  =====================================================================
``cosine``  ``1 - cos(student, teacher)`` averaged over the batch (SAMU-XLSR)
``mse``     squared error between the L2-normalised vectors, averaged over every
            coordinate (SONAR; sentence-transformers ``MSELoss``)
``infonce`` symmetric InfoNCE with in-batch negatives at temperature ``tau``;
            rows that share a sentence group are not negatives of each other
==========  =====================================================================

Every loss returns a :class:`LossOutput`: the scalar tensor to back-propagate plus a dict of
plain floats for logging.  :class:`DistillLoss` builds a weighted sum from a mapping such as
``{"cosine": 1.0, "infonce": 0.5}``.

>>> out = DistillLoss({"cosine": 1.0, "infonce": 0.5})(student, teacher, groups)  # doctest: +SKIP
>>> out.loss.backward(); out.components                                           # doctest: +SKIP
{'cosine': 0.41, 'infonce': 2.03, 'loss': 1.43}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from speechx.distill.errors import ConfigError


@dataclass
class LossOutput:
    """A scalar loss to back-propagate and its parts as floats (for logging only)."""

    loss: torch.Tensor
    components: dict[str, float] = field(default_factory=dict)


def _check_pair(student: torch.Tensor, teacher: torch.Tensor) -> None:
    if student.ndim != 2 or student.shape != teacher.shape:
        raise ValueError(
            f"student {tuple(student.shape)} and teacher {tuple(teacher.shape)} must both be [B, D]"
        )


def cosine_loss(student: torch.Tensor, teacher: torch.Tensor) -> LossOutput:
    """Mean of ``1 - cos(student_i, teacher_i)``; 0 when every pair points the same way.

    Args:
        student: ``[B, D]`` speech embeddings (normalised or not).
        teacher: ``[B, D]`` target embeddings.

    Returns:
        LossOutput with component ``"cosine"``.

    Raises:
        ValueError: the shapes differ or are not two-dimensional.
    """
    _check_pair(student, teacher)
    loss = (1.0 - F.cosine_similarity(student, teacher.to(student.dtype), dim=-1)).mean()
    return LossOutput(loss, {"cosine": float(loss.detach())})


def mse_loss(student: torch.Tensor, teacher: torch.Tensor) -> LossOutput:
    """Mean squared error between the L2-normalised vectors (mean over batch and dimensions).

    Returns:
        LossOutput with component ``"mse"``.

    Raises:
        ValueError: the shapes differ or are not two-dimensional.
    """
    _check_pair(student, teacher)
    s = F.normalize(student, dim=-1)
    t = F.normalize(teacher.to(student.dtype), dim=-1)
    loss = F.mse_loss(s, t)
    return LossOutput(loss, {"mse": float(loss.detach())})


def infonce_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    groups: torch.Tensor | None = None,
    *,
    temperature: float = 0.05,
) -> LossOutput:
    """Symmetric InfoNCE (speech->text and text->speech) with in-batch negatives.

    Logits are cosine similarities divided by ``temperature``.  For row ``i`` the positive is
    column ``i``; a column ``j != i`` whose ``groups[j] == groups[i]`` (another rendition of the
    same sentence, or the same text) is removed from the softmax instead of being pushed away.

    Args:
        student: ``[B, D]`` speech embeddings.
        teacher: ``[B, D]`` target embeddings, row-aligned with ``student``.
        groups: ``[B]`` integer sentence-group ids, or None when every row is its own group.
        temperature: softmax temperature, > 0.

    Returns:
        LossOutput with component ``"infonce"`` (mean of both directions).

    Raises:
        ValueError: bad shapes or a non-positive temperature.
    """
    _check_pair(student, teacher)
    if temperature <= 0:
        raise ValueError(f"InfoNCE temperature must be > 0, got {temperature}")
    s = F.normalize(student, dim=-1)
    t = F.normalize(teacher.to(student.dtype), dim=-1)
    logits = s @ t.T / temperature
    n = logits.shape[0]
    target = torch.arange(n, device=logits.device)
    if groups is not None:
        if groups.shape != (n,):
            raise ValueError(f"groups must have shape [{n}], got {tuple(groups.shape)}")
        same = groups.view(-1, 1) == groups.view(1, -1)
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same.to(logits.device), float("-inf"))
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    return LossOutput(loss, {"infonce": float(loss.detach())})


LossFn = Callable[..., LossOutput]

#: Registry of loss names usable in a :class:`DistillLoss` weight mapping.
LOSSES: dict[str, LossFn] = {
    "cosine": cosine_loss,
    "mse": mse_loss,
    "infonce": infonce_loss,
}


class DistillLoss:
    """A weighted sum of registered losses.

    Args:
        weights: loss name -> weight, e.g. ``{"cosine": 1.0, "infonce": 0.5}``.  Names are
            keys of :data:`LOSSES`; zero weights are skipped.
        temperature: InfoNCE temperature.

    Raises:
        ConfigError: an unknown loss name, a negative weight, or no positive weight.
    """

    def __init__(self, weights: Mapping[str, float], *, temperature: float = 0.05) -> None:
        unknown = sorted(set(weights) - set(LOSSES))
        if unknown:
            raise ConfigError(
                f"loss.weights: unknown loss {unknown[0]!r} (known: {', '.join(sorted(LOSSES))})"
            )
        for name, w in weights.items():
            if w < 0:
                raise ConfigError(f"loss.weights.{name}: weight must be >= 0, got {w}")
        self.weights = {k: float(v) for k, v in weights.items() if v > 0}
        if not self.weights:
            raise ConfigError("loss.weights: at least one loss needs a positive weight")
        if temperature <= 0:
            raise ConfigError(f"loss.temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def __call__(
        self,
        student: torch.Tensor,
        teacher: torch.Tensor,
        groups: torch.Tensor | None = None,
    ) -> LossOutput:
        """Weighted sum; components hold every part plus the total under ``"loss"``."""
        total: torch.Tensor | None = None
        parts: dict[str, float] = {}
        for name, w in self.weights.items():
            if name == "infonce":
                out = infonce_loss(student, teacher, groups, temperature=self.temperature)
            else:
                out = LOSSES[name](student, teacher)
            parts.update(out.components)
            total = w * out.loss if total is None else total + w * out.loss
        assert total is not None
        parts["loss"] = float(total.detach())
        return LossOutput(total, parts)

    def __repr__(self) -> str:
        return f"DistillLoss({self.weights}, temperature={self.temperature})"
