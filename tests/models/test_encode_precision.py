"""SpeechEncoder.encode at bf16 and int8, thread settings, the CLI's --precision, FLOP counting."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from speechx.audio import save_audio
from speechx.errors import ModelError
from speechx.models import build_encoder
from speechx.models import precision as precision_mod
from speechx.models.precision import PRECISIONS, check_precision, quantize_int8

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def encoder() -> Any:
    torch.manual_seed(0)
    return build_encoder("tiny", embed_dim=32).eval()


@pytest.fixture(scope="module")
def clips() -> list[tuple[np.ndarray, int]]:
    rng = np.random.default_rng(7)
    out = []
    for seconds in (0.3, 1.0, 0.55, 0.8, 0.4, 0.7):
        t = np.arange(int(seconds * 16000)) / 16000
        wave = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 800) * t)
        out.append(((wave + 0.05 * rng.standard_normal(t.shape)).astype(np.float32), 16000))
    return out


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_low_precision_close_to_fp32(encoder: Any, clips: list, precision: str) -> None:
    ref = encoder.encode(clips, batch_size=4)
    got = encoder.encode(clips, batch_size=4, precision=precision)
    assert got.dtype == np.float32 and got.shape == ref.shape
    np.testing.assert_allclose(np.linalg.norm(got, axis=-1), 1.0, atol=1e-5)
    # bf16 keeps ~3 significant digits, int8 ~2; the embedding direction barely moves
    assert _cosines(got, ref).min() > 0.99
    # the same clip stays nearest to its own fp32 embedding (input order is kept)
    assert np.array_equal((got @ ref.T).argmax(1), np.arange(len(clips)))
    assert not np.array_equal(got, ref)  # the precision was really applied


def test_int8_leaves_the_model_alone(encoder: Any, clips: list) -> None:
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    types_before = [type(m) for m in encoder.modules()]
    encoder.encode(clips[:2], precision="int8")
    assert [type(m) for m in encoder.modules()] == types_before
    for k, v in encoder.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_quantize_int8_replaces_every_linear(encoder: Any) -> None:
    q = quantize_int8(encoder)
    assert q is not encoder
    assert not any(type(m) is nn.Linear for m in q.modules())
    n_linear = sum(type(m) is nn.Linear for m in encoder.modules())
    n_q = sum(
        type(m).__name__ == "Linear" and "quantized" in type(m).__module__ for m in q.modules()
    )
    assert n_q == n_linear > 0


def test_int8_unavailable_is_a_clear_error(
    encoder: Any, clips: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precision_mod, "int8_available", lambda: False)
    with pytest.raises(ModelError, match="int8.*quantisation"):
        encoder.encode(clips[:1], precision="int8")


def test_invalid_precision_and_threads(encoder: Any, clips: list) -> None:
    with pytest.raises(ModelError, match=r"encode: unknown precision 'fp16'.*fp32, bf16, int8"):
        encoder.encode(clips[:1], precision="fp16")
    with pytest.raises(ModelError, match="num_threads must be >= 1"):
        encoder.encode(clips[:1], num_threads=0)
    assert check_precision("bf16") == "bf16"
    assert PRECISIONS == ("fp32", "bf16", "int8")


def test_num_threads_is_applied_and_restored(
    encoder: Any, clips: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    forward = type(encoder).forward

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(type(encoder), "forward", spy)
    before = torch.get_num_threads()
    ref = encoder.encode(clips, batch_size=2)
    one = encoder.encode(clips, batch_size=2, num_threads=1)
    assert seen[-3:] == [1, 1, 1]
    assert torch.get_num_threads() == before
    np.testing.assert_allclose(one, ref, atol=1e-5)


def test_prefetched_batches_keep_input_order(encoder: Any, clips: list) -> None:
    """Several batches (loaded ahead in a thread) give the same rows as one clip at a time."""
    batched = encoder.encode(clips, batch_size=2)
    single = np.concatenate([encoder.encode([c], batch_size=1) for c in clips])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_a_failing_load_is_named_from_the_worker(encoder: Any, clips: list, tmp_path: Path) -> None:
    from speechx.errors import AudioError

    save_audio(tmp_path / "ok.wav", clips[0][0], 16000)
    save_audio(tmp_path / "short.wav", clips[0][0][:8], 16000)  # readable, too short to encode
    with pytest.raises(AudioError, match="short.wav.*shorter than"):
        # several batches, so every one is loaded by the prefetch thread
        encoder.encode([str(tmp_path / "ok.wav")] * 3 + [str(tmp_path / "short.wav")], batch_size=1)


def test_cli_precision_reaches_the_library(
    encoder: Any, clips: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from speechx import cli
    from speechx.models import SpeechEncoder

    model_dir = encoder.save_pretrained(tmp_path / "model")
    wav = tmp_path / "a.wav"
    save_audio(wav, clips[1][0], 16000)
    calls: list[dict] = []
    real = SpeechEncoder.encode

    def spy(self: Any, inputs: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        calls.append(kwargs)
        return real(self, inputs, *args, **kwargs)

    monkeypatch.setattr(SpeechEncoder, "encode", spy)
    out = tmp_path / "emb"
    argv = ["encode", str(wav), "--model", str(model_dir), "--out", str(out)]
    assert cli.main([*argv, "--precision", "int8", "--threads", "1"]) == 0
    assert calls[-1]["precision"] == "int8" and calls[-1]["num_threads"] == 1
    emb = np.load(out / "embeddings.npy")
    assert emb.shape == (1, 32)
    assert cli.main(argv) == 0
    assert calls[-1]["precision"] == "fp32" and calls[-1]["num_threads"] is None


@pytest.mark.parametrize("verb", ["encode", "search", "evaluate-retrieval"])
def test_cli_rejects_an_unknown_precision(verb: str, capsys: pytest.CaptureFixture) -> None:
    from speechx import cli

    with pytest.raises(SystemExit):
        cli.build_parser().parse_args([verb, "--precision", "fp16"])
    assert "invalid choice: 'fp16'" in capsys.readouterr().err


def _benchmark_module() -> Any:
    spec = importlib.util.spec_from_file_location("bench_encode", ROOT / "benchmarks/encode.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_encode"] = module
    spec.loader.exec_module(module)
    return module


def test_flop_count_is_exact_on_a_linear() -> None:
    bench = _benchmark_module()
    lin = nn.Linear(24, 10)
    x = torch.randn(3, 7, 24)
    # 2 FLOPs per multiply-add: 3*7 rows x 24 inputs x 10 outputs
    assert bench.count_flops(lin, x) == 2 * 3 * 7 * 24 * 10
    seq = nn.Sequential(nn.Linear(24, 10), nn.ReLU(), nn.Linear(10, 5))
    assert bench.count_flops(seq, x) == 2 * 21 * (24 * 10 + 10 * 5)


def test_precision_encoder_wraps_for_evaluators(encoder: Any, clips: list) -> None:
    from speechx.models.precision import PrecisionEncoder

    wrapped = PrecisionEncoder(encoder, "int8", num_threads=1)
    assert wrapped.sample_rate == encoder.sample_rate and wrapped.embed_dim == 32
    # same batches: dynamic int8 scales activations per batch, so neighbours matter a little
    np.testing.assert_allclose(
        wrapped.encode(clips, batch_size=3),
        encoder.encode(clips, batch_size=3, precision="int8"),
        atol=1e-6,
    )
    with pytest.raises(ModelError, match="unknown precision"):
        PrecisionEncoder(encoder, "half")


def test_length_batches_bound_the_padding_of_every_row() -> None:
    from speechx.models.encoder import length_batches

    durs = [1.0, 10.0, 9.0, 2.0, 8.0, 1.9, 9.5, 1.0]
    assert length_batches(durs, 8, max_padding=1.0) == [[1, 6, 2, 4, 3, 5, 0, 7]]
    # 8.0 is 20% shorter than 10.0 (allowed at 0.25); 2.0 is not: a new batch starts there
    assert length_batches(durs, 8, max_padding=0.25) == [[1, 6, 2, 4], [3, 5], [0, 7]]
    assert length_batches(durs, 2, max_padding=0.25) == [[1, 6], [2, 4], [3, 5], [0, 7]]
    assert length_batches(durs, 8, max_padding=0.0) == [[1], [6], [2], [4], [3], [5], [0, 7]]
    for batch in length_batches(durs, 3, max_padding=0.25):
        assert all(durs[i] >= 0.75 * durs[batch[0]] for i in batch)


def test_encode_checks_max_padding_and_keeps_input_order(encoder, clips) -> None:
    with pytest.raises(ModelError, match="max_padding must be in"):
        encoder.encode(clips, max_padding=1.5)
    one = encoder.encode(clips, batch_size=1)
    # every clip alone (max_padding 0: these lengths all differ) equals batch_size 1, in order
    np.testing.assert_allclose(encoder.encode(clips, max_padding=0.0), one, atol=1e-6)
    assert encoder.encode(clips, max_padding=0.25).shape == one.shape
