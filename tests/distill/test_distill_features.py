"""Feature caching for frozen backbones: exactness, reuse, resumable builds, training on it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from distill_helpers import TEACHER, MakeData, crash_after_checkpoint, tiny_config

import speechx.distill.features as features_mod
from speechx.distill.config import DataSource
from speechx.distill.data import DistillData, build_distill_data, resolve_sources
from speechx.distill.features import FeatureData, build_feature_store, collate_features
from speechx.distill.trainer import train_distill
from speechx.errors import ModelError
from speechx.models import SpeechEncoder, build_encoder
from speechx.models.encoder import POOLING_INPUT


def _data(d: Path, model: SpeechEncoder) -> DistillData:
    src = resolve_sources([DataSource(dir=str(d))], TEACHER, ["text"])
    return build_distill_data(src, sample_rate=model.sample_rate)


@pytest.mark.parametrize(
    ("overrides", "point"),
    [
        ({"freeze_backbone": True}, POOLING_INPUT),
        ({"freeze_feature_encoder": True, "freeze_layers": 1}, 1),
    ],
)
def test_cached_features_give_the_audio_embeddings(
    make_data: MakeData, tmp_path: Path, overrides: dict, point: int
) -> None:
    torch.manual_seed(0)
    model = build_encoder("whisper-tiny-scratch", 8, **overrides).eval()
    assert model.cache_point == point
    d = make_data("a", 5, seconds=[0.3, 0.5, 0.7, 0.4, 1.1])
    data = _data(d, model)
    store = build_feature_store(model, data, tmp_path / "feats", show_progress=False)
    assert store.ids == data.ids and len(store) == 5
    meta = json.loads((store.path / "meta.json").read_text())
    assert meta["cache_point"] == point and meta["dtype"] == "float16"
    # 50 frames per second of audio, per item, in data order
    assert store.num_frames.tolist() == [
        int(model.backbone.output_lengths(torch.tensor([round(s * 16000)])))
        for s in [0.3, 0.5, 0.7, 0.4, 1.1]
    ]
    from speechx.distill.data import collate_distill

    items = [data[i] for i in range(len(data))]
    audio = collate_distill(items)
    ref = model(audio["input_values"], audio["lengths"])["embeddings"]
    batch = collate_features([FeatureData(data, store)[i] for i in range(len(data))])
    got = model(features=batch["features"], frame_lengths=batch["frame_lengths"])["embeddings"]
    assert torch.allclose(ref, got, atol=2e-3), (ref - got).abs().max()


def test_uncacheable_models_refuse_features() -> None:
    model = build_encoder("whisper-tiny-scratch", 8)  # everything trainable
    assert model.cache_point is None
    assert build_encoder("whisper-tiny-scratch", 8, freeze_layers=1).cache_point is None
    assert (
        build_encoder(
            "whisper-tiny-scratch", 8, freeze_backbone=True, weighted_layer_sum=True
        ).cache_point
        is None
    )
    with pytest.raises(ModelError, match="cache_point"):
        model(features=torch.zeros(1, 3, 16))
    frozen = build_encoder("whisper-tiny-scratch", 8, freeze_backbone=True)
    with pytest.raises(ModelError, match=r"\[B, F, 16\]"):
        frozen(features=torch.zeros(1, 3, 5))


def test_store_is_reused_and_keyed_by_weights(
    make_data: MakeData, tmp_path: Path, monkeypatch
) -> None:
    torch.manual_seed(0)
    model = build_encoder("whisper-tiny-scratch", 8, freeze_backbone=True)
    data = _data(make_data("a", 3), model)
    first = build_feature_store(model, data, tmp_path, show_progress=False)

    def boom(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("re-encoded a cached data set")

    monkeypatch.setattr(type(model), "frozen_features", boom)
    again = build_feature_store(model, data, tmp_path, show_progress=False)
    assert again.path == first.path
    monkeypatch.undo()
    with torch.no_grad():
        model.backbone.encoder.conv1.weight.add_(0.1)
    changed = build_feature_store(model, data, tmp_path, show_progress=False)
    assert changed.path != first.path
    assert not np.array_equal(changed.item(0), first.item(0))


def test_interrupted_build_resumes_block_by_block(
    make_data: MakeData, tmp_path: Path, monkeypatch
) -> None:
    torch.manual_seed(0)
    model = build_encoder("whisper-tiny-scratch", 8, freeze_backbone=True)
    data = _data(make_data("a", 5), model)
    monkeypatch.setattr(features_mod, "BLOCK_ITEMS", 2)
    real_save = features_mod._save_block
    saved: list[Path] = []

    def save_two_then_crash(path, *a):  # noqa: ANN001, ANN002, ANN202
        real_save(path, *a)
        saved.append(path)
        if len(saved) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(features_mod, "_save_block", save_two_then_crash)
    with pytest.raises(KeyboardInterrupt):
        build_feature_store(model, data, tmp_path / "feats", show_progress=False)
    (store_dir,) = (tmp_path / "feats").iterdir()
    assert not (store_dir / ".done").exists()
    assert len(list((store_dir / "blocks").glob("block-*.npz"))) == 2

    encoded: list[int] = []
    real_frozen = type(model).frozen_features

    def counting(self, x, lengths):  # noqa: ANN001, ANN202
        encoded.append(x.shape[0])
        return real_frozen(self, x, lengths)

    monkeypatch.setattr(features_mod, "_save_block", real_save)
    monkeypatch.setattr(type(model), "frozen_features", counting)
    store = build_feature_store(model, data, tmp_path / "feats", show_progress=False)
    assert sum(encoded) == 1, "only the last block (one item) is encoded again"
    assert (store.path / ".done").is_file() and not (store.path / "blocks").exists()
    full = build_feature_store(model, data, tmp_path / "fresh", show_progress=False)
    for i in range(5):
        assert np.array_equal(store.item(i), full.item(i))


def test_training_on_cached_features_matches_training_on_audio(
    make_data: MakeData, tmp_path: Path
) -> None:
    a = make_data("a", 4)
    overrides = {"freeze_backbone": True}
    common = {"model.overrides": overrides, "max_steps": 4, "num_threads": 1}
    cached = train_distill(tiny_config([a], [a], **common), tmp_path / "cached")
    plain = train_distill(
        tiny_config([a], [a], **common, **{"data.feature_cache": "off"}), tmp_path / "plain"
    )
    log = (tmp_path / "cached" / "log" / "train.log").read_text()
    assert "feature cache: on" in log
    assert list((tmp_path / "cached" / "features").glob("train-*/.done"))
    assert list((tmp_path / "cached" / "features").glob("dev-*/.done"))
    assert not (tmp_path / "plain" / "features").exists()
    assert cached.step == plain.step == 4
    for k in ("dev_recall@1", "dev_cosine_distance"):
        assert cached.dev_metrics[k] == pytest.approx(plain.dev_metrics[k], abs=2e-3)
    from speechx.distill.checkpoint import load_checkpoint

    s1 = load_checkpoint(tmp_path / "cached" / "checkpoints" / "ckpt-4.pt")["model"]
    s2 = load_checkpoint(tmp_path / "plain" / "checkpoints" / "ckpt-4.pt")["model"]
    moved = False
    for k in s1:
        assert torch.allclose(s1[k], s2[k], atol=2e-3), k
        moved |= k.startswith("projection")
    assert moved


def test_time_masking_zeroes_spans_and_resumes_exactly(
    make_data: MakeData, tmp_path: Path, monkeypatch
) -> None:
    from speechx.distill.checkpoint import load_checkpoint

    a = make_data("a", 4, seconds=1.0)
    torch.manual_seed(0)
    model = build_encoder("whisper-tiny-scratch", 8, freeze_backbone=True)
    data = _data(a, model)
    store = build_feature_store(model, data, tmp_path / "f", show_progress=False)
    masked = FeatureData(data, store, time_mask=0.3, mask_span=5)[0]["features"]
    zero_rows = int((np.abs(masked).sum(axis=1) == 0).sum())
    assert 3 <= zero_rows <= 25, zero_rows  # about 30 % of 50 frames, in spans
    assert np.array_equal(
        masked[np.abs(masked).sum(axis=1) > 0], store.item(0)[np.abs(masked).sum(axis=1) > 0]
    )

    cfg = tiny_config(
        [a],
        [a],
        max_steps=4,
        save_every=2,
        num_threads=1,
        **{
            "model.overrides": {"freeze_backbone": True},
            "data.feature_time_mask": 0.3,
            "data.feature_mask_span": 3,
            "data.max_batch_seconds": 2.0,
        },
    )
    straight = train_distill(cfg, tmp_path / "straight")
    resumed_exp = tmp_path / "resumed"
    crash_after_checkpoint(
        monkeypatch, 2, lambda: train_distill(cfg, resumed_exp), exc=KeyboardInterrupt
    )
    resumed = train_distill(cfg, tmp_path / "resumed", resume=True)
    assert straight.step == resumed.step == 4
    s1 = load_checkpoint(tmp_path / "straight" / "checkpoints" / "ckpt-4.pt")["model"]
    s2 = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "ckpt-4.pt")["model"]
    for k in s1:
        assert torch.equal(s1[k], s2[k]), k
