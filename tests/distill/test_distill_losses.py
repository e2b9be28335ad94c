"""Tests of the distillation losses."""

from __future__ import annotations

import math

import pytest
import torch

from speechx.distill.errors import ConfigError
from speechx.distill.losses import DistillLoss, cosine_loss, infonce_loss, mse_loss


def test_cosine_loss_zero_for_identical_and_scale_invariant() -> None:
    x = torch.randn(4, 8)
    assert cosine_loss(x, x).loss.item() == pytest.approx(0.0, abs=1e-6)
    assert cosine_loss(3.0 * x, x).loss.item() == pytest.approx(0.0, abs=1e-6)


def test_cosine_loss_known_values() -> None:
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])  # orthogonal (1) and opposite (2)
    out = cosine_loss(a, b)
    assert out.loss.item() == pytest.approx(1.5)
    assert out.components == {"cosine": pytest.approx(1.5)}


def test_mse_loss_on_normalised_vectors() -> None:
    a = torch.tensor([[2.0, 0.0]])
    b = torch.tensor([[0.0, 5.0]])
    # normalised: (1,0) vs (0,1): squared diffs 1 + 1 over 2 coordinates
    assert mse_loss(a, b).loss.item() == pytest.approx(1.0)
    assert mse_loss(a, 7 * a).loss.item() == pytest.approx(0.0, abs=1e-7)


def test_infonce_aligned_orthogonal_batch_is_near_zero() -> None:
    eye = torch.eye(6)
    assert infonce_loss(eye, eye, temperature=0.01).loss.item() < 1e-6
    # at temperature 1 it is clearly positive: log(1 + 5 e^-1 / e^1 ... ) > 0
    assert infonce_loss(eye, eye, temperature=1.0).loss.item() > 0.5


def test_infonce_value_matches_hand_computation() -> None:
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    tau = 0.5
    tn = t / t.norm(dim=1, keepdim=True)
    logits = s @ tn.T / tau
    row = -torch.log_softmax(logits, 1).diag().mean()
    col = -torch.log_softmax(logits.T, 1).diag().mean()
    got = infonce_loss(s, t, temperature=tau).loss
    assert got.item() == pytest.approx(float(0.5 * (row + col)), rel=1e-6)


def test_infonce_masks_same_group_duplicates() -> None:
    # rows 0 and 1 are two renditions of one sentence: identical targets
    t = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    s = t.clone()
    unmasked = infonce_loss(s, t, temperature=0.05).loss.item()
    masked = infonce_loss(s, t, torch.tensor([7, 7, 3]), temperature=0.05).loss.item()
    # without a mask the duplicate is an equally good "negative": log 2 per affected row
    assert unmasked == pytest.approx(math.log(2) * 2 / 3, rel=1e-3)
    assert masked < 1e-6


def test_infonce_gradient_flows() -> None:
    s = torch.randn(5, 4, requires_grad=True)
    infonce_loss(s, torch.randn(5, 4)).loss.backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_distill_loss_weighted_sum_and_components() -> None:
    s, t = torch.randn(4, 8), torch.randn(4, 8)
    groups = torch.arange(4)
    out = DistillLoss({"cosine": 1.0, "infonce": 0.5, "mse": 0.0})(s, t, groups)
    cos = cosine_loss(s, t).loss.item()
    nce = infonce_loss(s, t, groups).loss.item()
    assert out.loss.item() == pytest.approx(cos + 0.5 * nce, rel=1e-6)
    assert set(out.components) == {"cosine", "infonce", "loss"}
    assert out.components["loss"] == pytest.approx(out.loss.item())


@pytest.mark.parametrize(
    ("weights", "needle"),
    [({"cosin": 1.0}, "cosin"), ({"cosine": -1.0}, "cosine"), ({"cosine": 0.0}, "positive")],
)
def test_distill_loss_bad_config(weights: dict[str, float], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        DistillLoss(weights)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="must both be"):
        cosine_loss(torch.zeros(2, 3), torch.zeros(3, 3))
