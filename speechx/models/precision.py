"""Inference precision for speech encoders: fp32, bf16 autocast, int8 dynamic quantisation.

>>> E = enc.encode(paths, precision="bf16")                        # doctest: +SKIP
>>> q = quantize_int8(enc)          # a quantised copy; ``enc`` is untouched   # doctest: +SKIP

``"bf16"`` runs the forward pass under ``torch.autocast(<device>, dtype=torch.bfloat16)``: matrix
products and convolutions run in bfloat16 while normalisations, softmax and the returned
embeddings stay float32.  (Casting the weights to bfloat16 instead was no faster on this
machine's kernels, and loses the float32 normalisations.)  It pays off only on CPUs with native
bfloat16 matrix units (AVX512-BF16 or AMX); :func:`bf16_is_native` says whether this one has
them.  On an AVX2-only CPU oneDNN emulates bfloat16 and a bf16 matmul is several times *slower*
than fp32.

``"int8"`` replaces every ``nn.Linear`` of a deep copy of the model by
``torch.ao.nn.quantized.dynamic.Linear`` (int8 weights, activations quantised per batch on the
fly, float32 output).  Convolutions, normalisations and attention products stay float32.
``torch.ao.quantization.quantize_dynamic`` still works in torch 2.13 but is marked deprecated
(in favour of the separate ``torchao`` package); its deprecation warnings are silenced here.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from speechx.errors import ModelError

#: the precisions :meth:`SpeechEncoder.encode` accepts
PRECISIONS = ("fp32", "bf16", "int8")


def check_precision(precision: str) -> str:
    """Validate an inference precision name.

    Returns:
        ``precision`` itself, one of :data:`PRECISIONS`.

    Raises:
        ModelError: any other value.
    """
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


def bf16_is_native() -> bool:
    """Whether this CPU has native bfloat16 matrix kernels (oneDNN's AVX512-BF16/AMX check).

    Returns:
        False when torch cannot tell (the check is a private oneDNN op).
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def int8_available() -> bool:
    """Whether torch's dynamic int8 quantisation of ``nn.Linear`` can run here.

    Returns:
        True when ``torch.ao.quantization.quantize_dynamic`` exists and a quantised engine
        (fbgemm/x86/qnnpack) is compiled in.
    """
    try:
        from torch.ao.quantization import quantize_dynamic  # noqa: F401
    except ImportError:
        return False
    return bool(torch.backends.quantized.supported_engines)


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose ``nn.Linear`` layers are dynamically quantised to int8.

    The copy is in eval mode and on the CPU (torch's quantised kernels are CPU-only); ``model``
    itself is not changed.

    Returns:
        The quantised copy (same class as ``model``).

    Raises:
        ModelError: dynamic quantisation is not available in this torch build, or the model has
            parameters off the CPU.
    """
    if not int8_available():
        raise ModelError(
            f"precision 'int8': torch {torch.__version__} has no dynamic quantisation "
            "(torch.ao.quantization.quantize_dynamic) or no quantised engine"
        )
    devices = {p.device.type for p in model.parameters()}
    if devices - {"cpu"}:
        raise ModelError(
            f"precision 'int8': the model is on {sorted(devices)}, but torch's dynamic int8 "
            "kernels run on the CPU only; move it with .cpu() first"
        )
    from torch.ao.quantization import quantize_dynamic

    clone = copy.deepcopy(model).eval()
    with warnings.catch_warnings():
        # "torch.ao.quantization is deprecated" and the quantize_per_tensor notice
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
        return quantize_dynamic(clone, {nn.Linear}, dtype=torch.qint8, inplace=True)


@contextlib.contextmanager
def autocast_for(precision: str, device: torch.device | str = "cpu") -> Iterator[None]:
    """Context in which a forward pass runs at ``precision``.

    ``"bf16"`` enables ``torch.autocast(device_type, dtype=torch.bfloat16)``; ``"fp32"`` and
    ``"int8"`` (whose quantised layers decide their own arithmetic) change nothing.

    Raises:
        ModelError: an unknown precision.
    """
    check_precision(precision)
    if precision != "bf16":
        yield
        return
    device_type = torch.device(device).type
    with torch.autocast(device_type, dtype=torch.bfloat16):
        yield


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``, restoring the previous count after.

    ``None`` leaves the thread count alone.

    Raises:
        ModelError: ``n < 1``.
    """
    if n is None:
        yield
        return
    if n < 1:
        raise ModelError(f"num_threads must be >= 1, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class PrecisionEncoder:
    """An encoder whose ``encode`` always runs at a fixed precision and thread count.

    Hand it to code that only calls ``encoder.encode(inputs, batch_size=...)`` (evaluators,
    long-form encoding) to change how it encodes; every other attribute is the wrapped
    encoder's.  For ``"int8"`` the quantised copy is made once, here, and reused.

    Args:
        encoder: a :class:`speechx.models.SpeechEncoder`.
        precision: one of :data:`PRECISIONS`.
        num_threads: torch threads while encoding; ``None`` keeps the current setting.

    Raises:
        ModelError: an unknown precision or ``num_threads < 1``; int8 that cannot run here.
    """

    def __init__(self, encoder: nn.Module, precision: str, num_threads: int | None = None) -> None:
        check_precision(precision)
        if num_threads is not None and num_threads < 1:
            raise ModelError(f"num_threads must be >= 1, got {num_threads}")
        self.encoder = encoder
        self.precision = precision
        self.num_threads = num_threads
        # an int8 copy runs its quantised layers at "fp32" (no autocast)
        self._model = quantize_int8(encoder) if precision == "int8" else encoder
        self._run_as = "fp32" if precision == "int8" else precision

    def encode(self, inputs: Any, batch_size: int = 16, show_progress: bool | None = None) -> Any:
        """``SpeechEncoder.encode`` at this precision and thread count.

        Returns:
            float32 ``[N, D]`` L2-normalised embeddings.
        """
        return self._model.encode(
            inputs,
            batch_size=batch_size,
            show_progress=show_progress,
            precision=self._run_as,
            num_threads=self.num_threads,
        )

    def __getattr__(self, name: str) -> Any:
        if name in ("encoder", "_model"):  # not set yet (copy, unpickle): no recursion
            raise AttributeError(name)
        return getattr(self.encoder, name)

    def __repr__(self) -> str:
        return (
            f"PrecisionEncoder({type(self.encoder).__name__}, precision={self.precision!r}, "
            f"num_threads={self.num_threads})"
        )
