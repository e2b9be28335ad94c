"""``python -m speechx.distill --config c.yaml --exp-dir exp/x [--resume] [key=value ...]``.

A minimal launcher of :func:`speechx.distill.train_distill`, usable under torchrun::

    torchrun --standalone --nproc_per_node=2 -m speechx.distill --config c.yaml --exp-dir exp/x

The ``speechx distill`` CLI verb is the main entry point; this one exists so that training can be
launched (and tested under DDP) without it.
"""

from __future__ import annotations

import argparse
import sys

from speechx.distill.config import load_config
from speechx.distill.trainer import train_distill
from speechx.errors import SpeechxError


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, train, print the model dir; returns the exit status (2 on bad input)."""
    ap = argparse.ArgumentParser(prog="python -m speechx.distill", description=__doc__)
    ap.add_argument("--config", required=True, help="YAML DistillConfig")
    ap.add_argument("--exp-dir", required=True, help="experiment directory")
    ap.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    ap.add_argument("overrides", nargs="*", help="dotted.key=value overrides")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        result = train_distill(cfg, args.exp_dir, resume=args.resume)
    except SpeechxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.model_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
