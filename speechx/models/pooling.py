"""Pooling: frame-level hidden states ``[B, F, H]`` to one vector per utterance.

Every pooling takes ``frame_lengths [B]`` and ignores frames at or past them, so the pooled
vector of an utterance does not depend on what it was padded with.
"""

from __future__ import annotations

import torch
from torch import nn

from speechx.errors import ModelError


def frame_mask(frame_lengths: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Boolean ``[B, F]`` mask, True on real frames."""
    positions = torch.arange(num_frames, device=frame_lengths.device)
    return positions[None, :] < frame_lengths[:, None]


class Pooling(nn.Module):
    """Base class: ``forward(hidden [B, F, H], frame_lengths [B]) -> [B, output_dim]``."""

    output_dim: int

    def forward(self, hidden: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class MeanPooling(Pooling):
    """The average of the real frames."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.output_dim = hidden_size

    def forward(self, hidden: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
        mask = frame_mask(frame_lengths, hidden.shape[1])
        total = hidden.masked_fill(~mask[:, :, None], 0.0).sum(dim=1)
        return total / frame_lengths.clamp(min=1).to(hidden.dtype)[:, None]


class AttentionPooling(Pooling):
    """SAMU-XLSR self-attention pooling: ``sum_t softmax_t(w . h_t + b) h_t`` over real frames."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.output_dim = hidden_size
        self.score = nn.Linear(hidden_size, 1)

    def forward(self, hidden: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
        scores = self.score(hidden).squeeze(-1)  # [B, F]
        mask = frame_mask(frame_lengths, hidden.shape[1])
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        # zero the padding so that a non-finite padded frame cannot leak in through 0 * inf
        return torch.einsum("bf,bfh->bh", weights, hidden.masked_fill(~mask[:, :, None], 0.0))


class MultiHeadAttentionPooling(Pooling):
    """SONAR-like pooling: ``num_queries`` learned queries attend over the real frames.

    The query outputs are concatenated, so ``output_dim = num_queries * hidden_size``.
    """

    def __init__(self, hidden_size: int, num_heads: int = 4, num_queries: int = 1) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise ModelError(
                f"mha pooling: pooling_heads={num_heads} does not divide the backbone hidden "
                f"size {hidden_size}"
            )
        self.output_dim = num_queries * hidden_size
        self.queries = nn.Parameter(torch.randn(num_queries, hidden_size) * hidden_size**-0.5)
        self.attention = nn.MultiheadAttention(hidden_size, num_heads, batch_first=True)

    def forward(self, hidden: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
        batch = hidden.shape[0]
        queries = self.queries.unsqueeze(0).expand(batch, -1, -1)
        padding = ~frame_mask(frame_lengths, hidden.shape[1])
        pooled, _ = self.attention(
            queries, hidden, hidden, key_padding_mask=padding, need_weights=False
        )
        return pooled.reshape(batch, -1)


def build_pooling(kind: str, hidden_size: int, *, num_heads: int, num_queries: int) -> Pooling:
    """The pooling module named ``kind`` ("mean", "attention" or "mha").

    Raises:
        ModelError: unknown ``kind`` or heads that do not divide ``hidden_size``.
    """
    if kind == "mean":
        return MeanPooling(hidden_size)
    if kind == "attention":
        return AttentionPooling(hidden_size)
    if kind == "mha":
        return MultiHeadAttentionPooling(hidden_size, num_heads, num_queries)
    raise ModelError(f"unknown pooling {kind!r}; choose one of mean, attention, mha")


class Projection(nn.Module):
    """Pooled vector to the teacher's dimension: "linear", or "mlp" (Linear-GELU-Dropout-Linear)."""

    def __init__(
        self,
        kind: str,
        in_dim: int,
        out_dim: int,
        *,
        hidden_dim: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        if kind == "linear":
            self.net: nn.Module = nn.Linear(in_dim, out_dim)
        elif kind == "mlp":
            hidden_dim = hidden_dim or in_dim
            self.net = nn.Sequential(
                nn.Linear(in_dim, hidden_dim),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(hidden_dim, out_dim),
            )
        else:
            raise ModelError(f"unknown projection {kind!r}; choose linear or mlp")

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """``[B, in_dim] -> [B, out_dim]``, not normalised."""
        return self.net(self.dropout(pooled))


class LayerWeighting(nn.Module):
    """A learned softmax-weighted sum of layer-normalised hidden states (SUPERB featurizer)."""

    def __init__(self, num_states: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_states))

    def forward(self, states: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """``num_states`` tensors ``[B, F, H]`` -> ``[B, F, H]``."""
        if len(states) != self.weights.numel():
            raise ModelError(
                f"layer weighting expects {self.weights.numel()} hidden states, got {len(states)}"
            )
        stacked = torch.stack(
            [nn.functional.layer_norm(s, s.shape[-1:]) for s in states], dim=0
        )  # [L, B, F, H]
        w = torch.softmax(self.weights, dim=0).to(stacked.dtype)
        return torch.einsum("l,lbfh->bfh", w, stacked)
