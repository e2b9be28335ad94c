"""A torchrun rank that runs one ``speechx`` training verb and keeps its final weights.

::

    torchrun --standalone --nproc_per_node=2 tests/distill/ddp_worker.py OUT_DIR \\
        distill --config c.yaml --exp-dir exp/x

Each rank runs ``speechx.cli.main`` with the verb's arguments, exactly what
``torchrun -m speechx.cli distill ...`` in ``recipes/distill.sh`` (and ``train-asr`` in
``recipes/asr.sh``, ``pretrain`` in ``recipes/pretrain.sh``) does, and then writes the weights it
holds to ``OUT_DIR/rank<r>.pt`` (CPU tensors), so a test can check that every rank ends with the
same model.  The weights are reached by wrapping ``run_training`` (the one function every
trainer calls), so the product needs no debug option.  :func:`launch` starts this script from a
test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch


def launch(
    out_dir: Path, argv: list[str], *, nproc: int = 2, cwd: Path | None = None, timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    """Run this worker under ``torchrun --standalone --nproc_per_node=<nproc>``.

    Every rank gets ``OMP_NUM_THREADS=1`` (two ranks on two cores).

    Returns:
        The finished process (stdout and stderr captured as text).
    """
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SPEECHX_DEVICE": "cpu"}
    cmd = [
        str(torchrun),
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(Path(__file__).resolve()),
        str(out_dir),
        *argv,
    ]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd, check=False
    )


def synced_weights(
    out_dir: Path, checkpoint: Path | None = None, *, nproc: int = 2
) -> dict[str, torch.Tensor]:
    """The weights the ranks of a :func:`launch` run wrote to ``out_dir``, checked to be the same
    on every rank, bit for bit (DDP averaged the gradients), and, with ``checkpoint``, to be the
    ones that checkpoint holds, saved with ``nproc`` ranks and one RNG state per rank.

    Returns:
        Rank 0's weights.

    Raises:
        AssertionError: a rank or the checkpoint holds other keys or values.
    """
    from speechx.distill.checkpoint import load_checkpoint

    ranks = [torch.load(out_dir / f"rank{r}.pt") for r in range(nproc)]
    for other in ranks[1:]:
        assert other.keys() == ranks[0].keys()
        for k, v in ranks[0].items():
            assert torch.equal(v, other[k]), k
    if checkpoint is not None:
        state = load_checkpoint(checkpoint)
        assert state["world_size"] == nproc and len(state["rng"]) == nproc
        for k, v in ranks[0].items():
            assert torch.equal(state["model"][k], v), k
    return ranks[0]


def main(args: list[str]) -> int:
    """``OUT_DIR VERB [verb options]``: train, then save this rank's weights; the exit status."""
    import speechx.asr.trainer as asr_trainer
    import speechx.distill.trainer as distill_trainer
    import speechx.pretrain.trainer as pretrain_trainer
    from speechx.cli import main as cli_main

    out_dir, argv = Path(args[0]), args[1:]
    loops: list[Any] = []
    run_training = distill_trainer.run_training

    def keep_loop(loop: Any) -> Any:
        loops.append(loop)
        return run_training(loop)

    distill_trainer.run_training = keep_loop  # train_distill looks it up here
    asr_trainer.run_training = keep_loop  # and train_asr here
    pretrain_trainer.run_training = keep_loop  # and train_pretrain here
    rc = cli_main(argv)
    if rc == 0:
        (loop,) = loops
        out_dir.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in loop.model.state_dict().items()}
        torch.save(state, out_dir / f"rank{loop.env.rank}.pt")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
