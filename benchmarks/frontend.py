"""What the front end costs: raw-waveform convolutions against log-mel + conv2d subsampling.

    .venv/bin/python benchmarks/frontend.py              # 16 clips x 3 s, 2 threads, 2-8 min
    .venv/bin/python benchmarks/frontend.py --threads 1  # steadier on a loaded machine
    .venv/bin/python benchmarks/frontend.py --quick      # 2 clips x 2 s, < 60 s

For a batch of ``--batch`` clips of ``--seconds`` (random audio, all full length, training
mode), it times forward and forward+backward (loss: the mean square of the part's output, or
the distillation cosine loss for whole models) of

* ``raw front end``: the waveform conv feature encoder (``feature_extractor``) of
  ``w2v2-scratch-small`` (7 layers, 256 channels) and ``w2v2-scratch-fast`` (4 layers);
* ``transformer``: the feature projection, positional convolution and transformer layers of the
  same models (and of ``w2v2-fbank-small``), on the front end's output;
* ``fbank front end``: ``w2v2-fbank-small``'s log-mel + conv2d subsampling
  (:mod:`speechx.models.fbank`), and its log-mel alone (no parameters, so forward only);
* ``whole model``: each preset as a ``SpeechEncoder`` (attention pooling, linear head to 512-d),
  one distillation step without the optimizer.

Times are the median of ``--repeats`` runs after a warm-up (wall; ``CPU s`` is the process CPU time
of forward+backward, which a loaded machine inflates less); ``GFLOP/clip`` is the forward
pass counted with ``torch.utils.flop_counter`` (1 multiply-add = 2 FLOPs; the FFT of the log-mel
is not counted).  The last lines are ``ratio <name>=<value>``: the front end's share of a
training step, the front-end and whole-step speed-ups of the filterbank model over the raw
waveform ones, and the same ratios in counted FLOPs (which do not swing with the load of a
shared machine).

Measured on 2026-12-04 (2 cores shared with other jobs; 16 x 3 s, 2 threads, load average 3):
the raw front end is 77% of ``w2v2-scratch-small``'s forward FLOPs and 87% of its
forward+backward time (``-fast``: 44% and 61%); ``w2v2-fbank-small``'s front end is 18% and 21%.
A whole ``w2v2-fbank-small`` step (0.27 s) has 7.2x fewer FLOPs than ``w2v2-scratch-small``
(3.5 s) and 3.0x fewer than ``-fast`` (1.5 s), and took 12.8x and 5.5x less time: the waveform
convolutions run far below the matmul rate of the transformer layers.  At 1 thread the step
ratios were 25x and 8.8x; at 2 threads under load average 8-9, 5.1x and 1.5x (small operations
wait on each other's threads there).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from speechx.models import SpeechEncoder, build_encoder

SR = 16000
RAW_PRESETS = ("w2v2-scratch-small", "w2v2-scratch-fast")
FBANK_PRESET = "w2v2-fbank-small"


@dataclass
class Timing:
    """One row: seconds per batch and forward GFLOP per clip."""

    name: str
    fwd: float
    fwd_bwd: float | None
    cpu_fwd_bwd: float | None
    gflop_per_clip: float


def _median_seconds(fn: Callable[[], None], repeats: int) -> tuple[float, float]:
    """Median wall and process-CPU seconds of ``fn`` over ``repeats`` runs after a warm-up."""
    fn()  # warm-up: allocator, kernels
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def _gflop(fn: Callable[[], torch.Tensor]) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn()
    return counter.get_total_flops() / 1e9


def time_part(
    name: str,
    forward: Callable[[], torch.Tensor],
    loss: Callable[[torch.Tensor], torch.Tensor] | None,
    module: torch.nn.Module | None,
    batch: int,
    repeats: int,
) -> Timing:
    """Forward (under no_grad) and forward+backward time of ``forward``; GFLOP per clip."""

    def fwd() -> None:
        with torch.no_grad():
            forward()

    def fwd_bwd() -> None:
        assert module is not None and loss is not None
        module.zero_grad(set_to_none=True)
        loss(forward()).backward()

    t_fwd, _ = _median_seconds(fwd, repeats)
    t_bwd, c_bwd = _median_seconds(fwd_bwd, repeats) if loss is not None else (None, None)
    return Timing(name, t_fwd, t_bwd, c_bwd, _gflop(forward) / batch)


def _square(out: torch.Tensor) -> torch.Tensor:
    return out.float().square().mean()


def measure_preset(
    preset: str,
    wave: torch.Tensor,
    target: torch.Tensor,
    repeats: int,
) -> dict[str, Timing]:
    """The rows of one preset, keyed ``<preset>/<part>``."""
    batch, samples = wave.shape
    lengths = torch.full((batch,), samples, dtype=torch.long)
    enc: SpeechEncoder = build_encoder(preset, embed_dim=512, pooling="attention").train()
    model = enc.backbone.model
    front = model.feature_extractor
    x = enc.preprocess(wave, lengths)
    rows = {
        f"{preset}/front end": time_part(
            f"{preset}: front end", lambda: front(x), _square, front, batch, repeats
        )
    }
    if preset == FBANK_PRESET:
        rows[f"{preset}/log-mel"] = time_part(
            f"{preset}: log-mel only", lambda: front.log_mel(x), None, None, batch, repeats
        )
    with torch.no_grad():
        feats = front(x).transpose(1, 2).contiguous()

    def layers() -> torch.Tensor:
        hidden, _ = model.feature_projection(feats)
        return model.encoder(hidden).last_hidden_state

    rows[f"{preset}/transformer"] = time_part(
        f"{preset}: transformer", layers, _square, model, batch, repeats
    )
    rows[f"{preset}/model"] = time_part(
        f"{preset}: whole model",
        lambda: enc(wave, lengths)["embeddings"],
        lambda emb: (1 - (emb * target).sum(-1)).mean(),
        enc,
        batch,
        repeats,
    )
    return rows


def measure(args: argparse.Namespace) -> dict[str, Timing]:
    """Every row of the table, keyed ``<preset>/<part>``."""
    torch.manual_seed(0)
    wave = 0.1 * torch.randn(args.batch, int(args.seconds * SR))
    target = torch.nn.functional.normalize(torch.randn(args.batch, 512), dim=-1)
    rows: dict[str, Timing] = {}
    for preset in (*RAW_PRESETS, FBANK_PRESET):
        rows.update(measure_preset(preset, wave, target, args.repeats))
        print(f"  measured {preset}", flush=True)
    return rows


def ratios(rows: dict[str, Timing]) -> dict[str, float]:
    """The headline figures (see the module docstring)."""
    out: dict[str, float] = {}
    small, fast, fb = RAW_PRESETS[0], RAW_PRESETS[1], FBANK_PRESET

    def t(key: str) -> float:
        value = rows[key].fwd_bwd
        assert value is not None
        return value

    for name, preset in (("small", small), ("fast", fast), ("fbank", fb)):
        out[f"{name}_frontend_share_fwd_bwd"] = t(f"{preset}/front end") / t(f"{preset}/model")
        out[f"{name}_frontend_share_gflop"] = (
            rows[f"{preset}/front end"].gflop_per_clip / rows[f"{preset}/model"].gflop_per_clip
        )
    out["raw_frontend_share_fwd_bwd"] = out["small_frontend_share_fwd_bwd"]
    for name, preset in (("", small), ("fast_", fast)):
        out[f"fbank_vs_raw_{name}frontend_speedup"] = t(f"{preset}/front end") / t(
            f"{fb}/front end"
        )
        out[f"fbank_vs_raw_{name}step_speedup"] = t(f"{preset}/model") / t(f"{fb}/model")
        out[f"fbank_vs_raw_{name}step_gflop_ratio"] = (
            rows[f"{preset}/model"].gflop_per_clip / rows[f"{fb}/model"].gflop_per_clip
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 clips x 2 s, 2 repeats (< 60 s)")
    parser.add_argument("--batch", type=int, default=None, help="clips per batch (16)")
    parser.add_argument("--seconds", type=float, default=None, help="clip length (3 s)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per row (3)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    args.batch = args.batch or (2 if args.quick else 16)
    args.seconds = args.seconds or (2.0 if args.quick else 3.0)
    args.repeats = args.repeats or (2 if args.quick else 3)
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch "
        f"{args.batch} x {args.seconds:g} s, median of {args.repeats}, load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    rows = measure(args)
    print(f"\n{'part':36s} {'fwd s':>7s} {'fwd+bwd s':>10s} {'CPU s':>7s} {'GFLOP/clip':>11s}")
    for r in rows.values():
        bwd = f"{r.fwd_bwd:10.3f}" if r.fwd_bwd is not None else f"{'-':>10s}"
        cpu = f"{r.cpu_fwd_bwd:7.3f}" if r.cpu_fwd_bwd is not None else f"{'-':>7s}"
        print(f"{r.name:36s} {r.fwd:7.3f} {bwd} {cpu} {r.gflop_per_clip:11.3f}")
    print()
    for name, value in ratios(rows).items():
        print(f"ratio {name}={value:.4g}")


if __name__ == "__main__":
    main()
