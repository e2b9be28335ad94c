"""The wav2vec 2.0 objective: masks and distractors with padding, equality with transformers'
``Wav2Vec2ForPreTraining`` loss, the ccc pieces (clusters, scaled logits, augmentation), and a
tiny model learning a repeated batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pretrain_helpers import speechlike
from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining

from speechx.distill.errors import TrainingError
from speechx.pretrain import PretrainConfig, build_pretraining_model, load_pretrain_config
from speechx.pretrain.augment import augment_batch
from speechx.pretrain.objective import (
    contrastive_logits,
    contrastive_stats,
    cosine_kmeans,
    perplexity,
    same_cluster,
    sample_mask_and_negatives,
)

TINY = [
    "data.train=[unused]",
    "max_steps=1",
    "model.source=tiny",
    "model.quantizer.vars=8",
    "model.quantizer.codevector_dim=8",
    "model.quantizer.proj_dim=8",
    "loss.num_negatives=5",
    "masking.prob=0.2",
    "masking.length=4",
]


def _config(*extra: str) -> PretrainConfig:
    return load_pretrain_config(None, [*TINY, *extra])


def _batch(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    lens = torch.tensor(lengths)
    x = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        x[i, :n] = torch.from_numpy(speechlike(n / 16000, i))
    return x, lens


def _task(model, lengths: torch.Tensor, total: int, seed: int = 0, k: int = 5):  # noqa: ANN001, ANN202
    np.random.seed(seed)
    return sample_mask_and_negatives(
        model.frame_lengths(lengths),
        model.num_frames(total),
        prob=0.2,
        length=4,
        min_masks=2,
        num_negatives=k,
    )


def test_masks_and_negatives_stay_inside_each_utterance() -> None:
    frame_lengths = torch.tensor([60, 35, 12])
    np.random.seed(1)
    mask, negs = sample_mask_and_negatives(
        frame_lengths, 60, prob=0.2, length=4, min_masks=2, num_negatives=7, extra_negatives=1
    )
    assert mask.shape == (3, 60) and mask.dtype == torch.bool
    assert len(negs) == 2 and all(n.shape == (3, 60, 7) for n in negs)
    assert not torch.equal(negs[0], negs[1])  # the second set is an independent draw
    for b, n in enumerate(frame_lengths.tolist()):
        assert not mask[b, n:].any(), "padding frames are never masked"
        assert int(mask[b].sum()) >= 4  # at least one span
        for t in mask[b].nonzero().flatten().tolist():
            idx = negs[0][b, t]
            assert ((idx // 60) == b).all(), "distractors come from the same utterance"
            frames = idx % 60
            assert mask[b, frames].all(), "distractors are masked frames"
            assert (frames != t).all(), "a frame is never its own distractor"


def test_an_utterance_too_short_to_mask_is_named() -> None:
    with pytest.raises(TrainingError, match=r"batch row 1: 3 frames .*masking.length=4"):
        sample_mask_and_negatives(
            torch.tensor([40, 3]), 40, prob=0.2, length=4, min_masks=2, num_negatives=3
        )


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_loss_is_transformers_pretraining_loss_per_masked_frame(mode: str) -> None:
    torch.manual_seed(0)
    model = build_pretraining_model(_config())
    q = model.quantizer_config
    hf_config = Wav2Vec2Config(
        **{
            **model.config.backbone_config,
            "mask_time_prob": 0.05,  # so that the reference model has the mask vector
            "num_codevector_groups": q.groups,
            "num_codevectors_per_group": q.vars,
            "codevector_dim": q.codevector_dim,
            "proj_codevector_dim": q.proj_dim,
            "num_negatives": 5,
            "diversity_loss_weight": model.diversity_weight,
            "contrastive_logits_temperature": model.temperature,
            "feat_quantizer_dropout": 0.0,
        }
    )
    ref = Wav2Vec2ForPreTraining(hf_config)
    prefix = "backbone.model."
    state = {
        (f"wav2vec2.{k[len(prefix) :]}" if k.startswith(prefix) else k): v
        for k, v in model.state_dict().items()
    }
    ref.load_state_dict(state, strict=True)
    x, lengths = _batch([16000, 12000, 9000])
    mask, (negs,) = _task(model, lengths, 16000)
    model.train(mode == "train")
    ref.train(mode == "train")
    torch.manual_seed(5)  # the same Gumbel noise for both in training mode
    out = model(x, lengths, mask, negs)
    sample_mask = (torch.arange(16000)[None, :] < lengths[:, None]).long()
    torch.manual_seed(5)
    expected = ref(
        model.preprocess(x, lengths),
        attention_mask=sample_mask,
        mask_time_indices=mask,
        sampled_negative_indices=negs,
    )
    n = int(mask.sum())
    assert float(out["masked"]) == n
    torch.testing.assert_close(
        out["loss"].detach() * n, expected.loss.detach(), rtol=1e-5, atol=1e-3
    )
    torch.testing.assert_close(
        out["contrastive_sum"], expected.contrastive_loss.detach(), rtol=1e-5, atol=1e-3
    )
    torch.testing.assert_close(out["prob_perplexity"], expected.codevector_perplexity.detach())
    assert torch.isfinite(out["loss"]) and 0 <= float(out["accuracy"]) <= 1


def test_contrastive_logits_drop_copies_of_the_positive_and_scale_clusters() -> None:
    torch.manual_seed(0)
    targets = torch.randn(1, 4, 3)
    targets[0, 2] = targets[0, 0]  # frame 2 is a copy of frame 0
    context = targets.clone()
    mask = torch.tensor([[True, True, True, False]])
    negs = torch.tensor([[[1, 2], [0, 2], [0, 1], [0, 0]]])
    logits = contrastive_logits(context, targets, mask, negs, 0.1)
    assert logits.shape == (3, 3)
    assert torch.isinf(logits[0, 2]) and torch.isinf(logits[2, 1])  # copies -> -inf
    assert torch.isfinite(logits[1]).all()
    torch.testing.assert_close(logits[:, 0], torch.full((3,), 10.0))  # cos(c, c) / 0.1
    scale = torch.zeros(3, 2, dtype=torch.bool)
    scale[1, 0] = True
    scaled = contrastive_logits(context, targets, mask, negs, 0.1, scale=scale, cluster_scale=0.3)
    torch.testing.assert_close(scaled[1, 1], 0.3 * logits[1, 1])
    torch.testing.assert_close(scaled[1, 2], logits[1, 2])
    stats = contrastive_stats(logits)
    assert stats.count == 3 and stats.correct == 3 and float(stats.mean) < 1.0


def test_cosine_kmeans_separates_clusters_and_flags_same_cluster_negatives() -> None:
    torch.manual_seed(0)
    a = torch.nn.functional.normalize(torch.tensor([1.0, 0.0]) + 0.05 * torch.randn(10, 2), dim=1)
    b = torch.nn.functional.normalize(torch.tensor([0.0, 1.0]) + 0.05 * torch.randn(10, 2), dim=1)
    labels = cosine_kmeans(torch.cat([a, b]), 2, 10)
    assert len(set(labels[:10].tolist())) == 1 and len(set(labels[10:].tolist())) == 1
    assert labels[0] != labels[10]
    frame_labels = torch.tensor([[0, 0, 1, -1]])
    mask = frame_labels >= 0
    negs = torch.tensor([[[1, 2], [0, 2], [0, 1], [0, 0]]])
    same = same_cluster(frame_labels, mask, negs)
    assert same.tolist() == [[True, False], [True, False], [False, False]]


def test_augmented_copy_keeps_time_alignment_and_padding() -> None:
    torch.manual_seed(0)
    x, lengths = _batch([16000, 8000])
    common = {
        "sample_rate": 16000,
        "noise_snr_db": [10.0, 10.0],
        "rt60": [0.3, 0.3],
        "babble_snr_db": [10.0, 10.0],
    }
    noisy = augment_batch(x, lengths, noise_prob=1.0, reverb_prob=0.0, babble_prob=0.0, **common)
    assert noisy.shape == x.shape and torch.all(noisy[1, 8000:] == 0)
    noise = noisy - x
    snr = 10 * torch.log10(x[0].pow(2).mean() / noise[0].pow(2).mean())
    assert abs(float(snr) - 10.0) < 0.1
    wet = augment_batch(x, lengths, noise_prob=0.0, reverb_prob=1.0, babble_prob=0.0, **common)
    assert torch.all(wet[1, 8000:] == 0) and not torch.allclose(wet, x)
    # same power, and still aligned: the direct sound dominates the correlation at lag 0
    torch.testing.assert_close(wet[0].pow(2).mean(), x[0].pow(2).mean(), rtol=1e-3, atol=0)
    corr = [float((wet[0, s:] * x[0, : 16000 - s]).sum()) for s in range(0, 400, 40)]
    assert max(range(len(corr)), key=lambda i: corr[i]) == 0
    untouched = augment_batch(
        x, lengths, noise_prob=0.0, reverb_prob=0.0, babble_prob=0.0, **common
    )
    assert torch.equal(untouched, x)


def test_a_repeated_batch_is_learned() -> None:
    torch.manual_seed(0)
    model = build_pretraining_model(_config("model.feature_grad_mult=1.0"))
    model.set_gumbel_temperature(1.0)
    x, lengths = _batch([8000, 7000, 6000])
    mask, (negs,) = _task(model, lengths, 8000)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        out = model(x, lengths, mask, negs)
        assert torch.isfinite(out["loss"])
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["contrastive"]))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses


def test_perplexity_gradient_stays_finite_when_a_codeword_is_never_used() -> None:
    # logits so peaked that softmax gives exactly 0 to the unused codewords, as a collapsing
    # codebook does: transformers' xlogy-based perplexity then has a NaN gradient, ours not
    logits = torch.tensor([[[200.0, 0.0, 0.0, 0.0]], [[0.0, 200.0, 0.0, 0.0]]], requires_grad=True)
    mask = torch.tensor([[True, True]])
    from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2GumbelVectorQuantizer

    ref = Wav2Vec2GumbelVectorQuantizer._compute_perplexity(torch.softmax(logits, -1), mask)
    ref.backward()
    assert torch.isnan(logits.grad).any()
    logits.grad = None
    ours = perplexity(torch.softmax(logits, -1), mask)
    ours.backward()
    assert torch.isfinite(logits.grad).all()
    torch.testing.assert_close(ours.detach(), ref.detach())  # 2 codewords in use: 2.0
