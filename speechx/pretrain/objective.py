"""The wav2vec 2.0 objective, and the ccc-wav2vec 2.0 additions, as functions of tensors.

wav2vec 2.0 (Baevski et al., 2020).  Spans of the latent frames are masked
(:func:`sample_mask_and_negatives`, with transformers' ``_compute_mask_indices`` on each
utterance's real frames and ``_sample_negative_indices``, which draws the K distractors of a
masked frame uniformly from the *other masked frames of the same utterance*).  For a masked
frame t with context vector c_t and quantised target q_t::

    L_m = -log( exp(cos(c_t, q_t)/kappa) / sum_{q in {q_t} + negatives} exp(cos(c_t, q)/kappa) )

(:func:`contrastive_logits`, the logits of ``Wav2Vec2ForPreTraining.compute_contrastive_logits``
for the masked frames only; a distractor equal to the positive, as happens when few codewords
are in use, is left out).
The diversity loss is ``L_d = (G*V - perplexity) / (G*V)``, the perplexity of the codebook
distribution averaged over the batch's masked frames.  speechx reports both per masked frame:
``L = sum(L_m) / n_masked + diversity_weight * L_d``, which is transformers'
``Wav2Vec2ForPreTraining`` loss (``sum(L_m) + diversity_weight * L_d * n_masked``) divided by
the number of masked frames, so the step size does not grow with the batch.

ccc-wav2vec 2.0 (Lodagala, Ghosh and Umesh, SLT 2022).  Every utterance also passes through the
model as an augmented copy (:mod:`speechx.pretrain.augment`) with the *same* mask.  Two
cross-contrastive terms join ``L_m``: ``L_cross``, the original's context predicting the
augmented copy's quantised targets among the augmented copy's distractors, and ``L_cross'``,
the augmented copy's context predicting the original's targets among the original's
distractors.  The quantised targets of the masked frames of both copies are clustered together
with cosine k-means (:func:`cosine_kmeans`, k = max(2, masked frames per utterance // 16) unless
set), and the logit of a distractor in its positive's cluster is multiplied by ``cluster_scale``
(0.3): a distractor that probably is the same sound pushes less (:func:`same_cluster`).
This scaling applies to all three terms.  Unlike the paper's fairseq code, it applies in every
batch (that code scales only in batches where some distractor equals its positive), and no L2
penalty on the front-end features is added (transformers' objective has none either).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers.models.wav2vec2.modeling_wav2vec2 import (
    _compute_mask_indices,
    _sample_negative_indices,
)

from speechx.distill.errors import TrainingError

#: ccc-wav2vec 2.0's rule for k: masked frames per utterance divided by this.
CLUSTER_FACTOR = 16


@dataclass
class ContrastiveStats:
    """The contrastive task over the masked frames of a batch.

    Attributes:
        loss_sum: summed cross-entropy (a scalar tensor that carries gradients).
        correct: masked frames whose positive scores strictly above every distractor.
        count: masked frames.
    """

    loss_sum: torch.Tensor
    correct: int
    count: int

    @property
    def mean(self) -> torch.Tensor:
        """The loss per masked frame."""
        return self.loss_sum / max(self.count, 1)


#: marginal codeword probabilities are clamped at this inside the log (fairseq adds 1e-7)
PROB_FLOOR = 1e-7


def perplexity(probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``sum over groups of exp(entropy)`` of the codeword distribution averaged over the masked
    frames (``Wav2Vec2GumbelVectorQuantizer._compute_perplexity``), with the probabilities
    clamped at :data:`PROB_FLOOR` inside the log.

    transformers' ``xlogy(p, p)`` has an infinite derivative where a codeword's average
    probability underflows to 0, which a collapsing codebook reaches within a few dozen steps at
    wav2vec 2.0's learning rates: the gradient turns NaN and the next step fails.  The clamp
    changes the value by less than ``num_codewords * 1e-7`` nats.

    Args:
        probs: ``[N, G, V]`` (``N = B * F``); mask: bool ``[B, F]``.
    """
    keep = mask.reshape(-1)[:, None, None].to(probs.dtype)
    marginal = (probs * keep).sum(dim=0) / keep.sum().clamp(min=1)
    entropy = -(marginal * torch.log(marginal.clamp(min=PROB_FLOOR))).sum(dim=-1)
    return torch.exp(entropy).sum()


def quantize(
    quantizer: torch.nn.Module, latent: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """transformers' ``Wav2Vec2GumbelVectorQuantizer.forward``, without its big intermediate.

    The quantiser's own forward multiplies the ``[N, G * V]`` codeword choice with the whole
    codebook (an ``[N, G * V, D / G]`` tensor, 650 MB for 40 s of audio at 50 frames/s with the
    paper's 2 x 320 codewords) before summing; here the same sum is one batched matrix product.
    The Gumbel noise is drawn exactly as there (same shape, same order), so the outputs agree.

    Args:
        quantizer: a ``Wav2Vec2GumbelVectorQuantizer`` (its parameters and ``temperature``).
        latent: ``[B, F, C]`` front-end features.
        mask: bool ``[B, F]``: the frames the perplexities are computed over.

    Returns:
        ``(codevectors [B, F, D], prob_perplexity, code_perplexity)``: in training the
        straight-through hard Gumbel-softmax choice, in eval mode the argmax; the perplexity of
        the soft distribution in training (of the hard choice in eval mode), which the
        diversity loss uses; and the perplexity of the argmax codewords (see
        :func:`perplexity`).
    """
    q = quantizer
    batch, frames, _ = latent.shape
    groups, num_vars = q.num_groups, q.num_vars
    logits = q.weight_proj(latent).view(batch * frames, groups, num_vars)
    hard = torch.nn.functional.one_hot(logits.argmax(-1), num_vars).to(logits.dtype)
    if q.training:
        probs = torch.nn.functional.gumbel_softmax(
            logits.float(), tau=q.temperature, hard=True
        ).type_as(logits)
        prob_ppl = perplexity(torch.softmax(logits.float(), dim=-1), mask)
    else:
        probs = hard
        prob_ppl = perplexity(hard, mask)
    with torch.no_grad():
        code_ppl = perplexity(hard.float(), mask)
    book = q.codevectors.view(groups, num_vars, -1)
    vectors = torch.einsum("ngv,gvd->ngd", probs, book.to(probs.dtype))
    return vectors.reshape(batch, frames, -1), prob_ppl, code_ppl


def sample_mask_and_negatives(
    frame_lengths: torch.Tensor,
    num_frames: int,
    *,
    prob: float,
    length: int,
    min_masks: int,
    num_negatives: int,
    extra_negatives: int = 0,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Masked spans and distractor indices for a batch (numpy's global RNG draws them).

    Args:
        frame_lengths: ``[B]`` real latent frames per utterance (padding is never masked).
        num_frames: F, the padded batch's frame count.
        prob, length, min_masks: span start probability, span length, fewest spans.
        num_negatives: K distractors per masked frame.
        extra_negatives: further independent draws of distractor indices (the augmented view
            of ccc-wav2vec 2.0 draws its own).

    Returns:
        ``(mask, negatives)``: ``mask`` bool ``[B, F]`` (CPU) and ``1 + extra_negatives`` long
        ``[B, F, K]`` tensors of flat indices into ``[B * F]`` (rows of unmasked frames hold
        meaningless indices).

    Raises:
        TrainingError: an utterance with fewer than two masked frames (too short for
            ``length``); the message gives its batch row.
    """
    lengths = frame_lengths.detach().cpu().long()
    batch = lengths.shape[0]
    real = torch.arange(num_frames)[None, :] < lengths[:, None]
    mask = _compute_mask_indices(
        (batch, num_frames), prob, length, attention_mask=real.long(), min_masks=min_masks
    )
    mask &= real.numpy()
    counts = mask.sum(axis=1)
    if (counts < 2).any():
        row = int(np.argmax(counts < 2))
        raise TrainingError(
            f"batch row {row}: {int(lengths[row])} frames give {int(counts[row])} masked "
            f"frame(s), fewer than the 2 that distractor sampling needs (masking.length={length})"
        )
    negatives = [
        torch.from_numpy(
            _sample_negative_indices((batch, num_frames), num_negatives, mask).astype(np.int64)
        )
        for _ in range(1 + extra_negatives)
    ]
    return torch.from_numpy(mask), negatives


def contrastive_logits(
    context: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    negatives: torch.Tensor,
    temperature: float,
    *,
    scale: torch.Tensor | None = None,
    cluster_scale: float = 1.0,
) -> torch.Tensor:
    """Logits of the positive and the K distractors of every masked frame.

    The values are those of ``Wav2Vec2ForPreTraining.compute_contrastive_logits`` (cosine
    similarity over ``temperature``), computed for the masked frames only and without
    materialising the ``[K, B, F, P]`` distractor tensor: the cosines of the masked frames'
    context vectors with every target of the batch are one matrix product, from which the
    distractors' entries are gathered.

    Args:
        context: ``[B, F, P]`` projected context vectors c_t.
        targets: ``[B, F, P]`` projected quantised vectors q_t (the positives, and the pool the
            distractors come from).
        mask: bool ``[B, F]``, the masked frames (M of them).
        negatives: long ``[B, F, K]`` flat indices into ``targets.view(B * F, P)``.
        temperature: kappa.
        scale: optional bool ``[M, K]``: distractors whose logit is multiplied by
            ``cluster_scale`` (ccc-wav2vec 2.0's same-cluster negatives, :func:`same_cluster`).

    Returns:
        float32 ``[M, K + 1]`` in the order of ``mask.nonzero()``: column 0 the positive,
        columns 1..K the distractors; a distractor identical to its positive gets ``-inf``.
    """
    batch, frames, dim = targets.shape
    flat = targets.reshape(batch * frames, dim)
    rows = mask.reshape(-1).nonzero().squeeze(1)  # flat index of each masked frame
    neg_idx = negatives.reshape(batch * frames, -1)[rows]  # [M, K]
    c = torch.nn.functional.normalize(context.reshape(batch * frames, dim)[rows].float(), dim=-1)
    t = torch.nn.functional.normalize(flat.float(), dim=-1)
    pos = (c * t[rows]).sum(-1, keepdim=True)
    neg = (c @ t.T).gather(1, neg_idx)
    if scale is not None and cluster_scale != 1.0:
        neg = torch.where(scale, neg * cluster_scale, neg)
    with torch.no_grad():
        neg_is_pos = (flat[neg_idx] == flat[rows][:, None, :]).all(-1)
    neg = neg.masked_fill(neg_is_pos, float("-inf"))
    return torch.cat([pos, neg], dim=1) / temperature


def contrastive_stats(logits: torch.Tensor) -> ContrastiveStats:
    """Cross-entropy of the positive (column 0) and its accuracy.

    Args:
        logits: ``[M, K + 1]`` from :func:`contrastive_logits`.
    """
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    loss = torch.nn.functional.cross_entropy(logits.float(), target, reduction="sum")
    with torch.no_grad():
        correct = int((logits[:, 0] > logits[:, 1:].max(dim=-1).values).sum())
    return ContrastiveStats(loss, correct, int(logits.shape[0]))


@torch.no_grad()
def cosine_kmeans(points: torch.Tensor, k: int, iters: int) -> torch.Tensor:
    """Spherical k-means: cluster labels ``[N]`` of unit vectors ``points [N, D]``.

    The ``k`` starting centroids are distinct points drawn with torch's global RNG; an empty
    cluster keeps its centroid.  ``k`` is capped at N.
    """
    n = points.shape[0]
    k = max(1, min(k, n))
    start = torch.randperm(n)[:k].to(points.device)
    centroids = points[start].clone()
    for _ in range(iters):
        labels = (points @ centroids.T).argmax(dim=1)
        sums = torch.zeros_like(centroids).index_add_(0, labels, points)
        filled = torch.bincount(labels, minlength=k) > 0
        centroids = torch.where(
            filled[:, None], torch.nn.functional.normalize(sums, dim=-1), centroids
        )
    return (points @ centroids.T).argmax(dim=1)


def same_cluster(labels: torch.Tensor, mask: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """Which distractors of the masked frames share their positive's cluster.

    Args:
        labels: long ``[B, F]`` cluster of every frame (-1 where unmasked).
        mask: bool ``[B, F]``.
        negatives: long ``[B, F, K]`` flat indices into ``[B * F]``.

    Returns:
        bool ``[M, K]`` in the order of ``mask.nonzero()``.
    """
    flat = labels.reshape(-1)
    rows = mask.reshape(-1).nonzero().squeeze(1)
    neg_idx = negatives.reshape(flat.shape[0], -1)[rows]
    return flat[neg_idx] == flat[rows][:, None]


def cluster_views(
    targets: torch.Tensor,
    targets_aug: torch.Tensor,
    mask: torch.Tensor,
    *,
    num_clusters: int,
    iters: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster the masked frames' quantised targets of both views together.

    Args:
        targets, targets_aug: ``[B, F, P]`` projected quantised vectors of the two views.
        mask: bool ``[B, F]``.
        num_clusters: k; 0 = ``max(2, masked frames per utterance // 16)``.

    Returns:
        Two long ``[B, F]`` label maps (-1 at unmasked frames).
    """
    with torch.no_grad():
        flat = torch.cat([targets[mask], targets_aug[mask]]).float()
        points = torch.nn.functional.normalize(flat, dim=-1)
        m = int(mask.sum())
        k = num_clusters or max(2, (m // max(mask.shape[0], 1)) // CLUSTER_FACTOR)
        labels = cosine_kmeans(points, k, iters)
        out = []
        for part in (labels[:m], labels[m:]):
            full = torch.full(mask.shape, -1, dtype=torch.long, device=targets.device)
            full[mask] = part
            out.append(full)
    return out[0], out[1]
