"""Any transformers text encoder in a local directory as a text teacher (``hf:<dir>``).

LaBSE (pooler output, then L2 norm), multilingual MiniLM / mpnet sentence-transformers models
(mean pooling), and E5-style models (mean pooling) all fit.  The directory must hold what
``save_pretrained`` writes: ``config.json``, the weights and the tokenizer files.  Nothing is
ever downloaded (``local_files_only=True``).

Example:
    >>> t = load_teacher("hf:/models/LaBSE", pooling="pooler")    # doctest: +SKIP
    >>> t.encode(["Hallo", "Hello"]).shape                         # doctest: +SKIP
    (2, 768)
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from speechx.errors import TeacherError, TeacherWarning
from speechx.teachers.base import (
    check_batch_size,
    check_texts,
    empty_embeddings,
    l2_normalise,
    safe_id,
    want_progress,
    warn_blank_texts,
)

Pooling = Literal["cls", "mean", "pooler"]
POOLINGS: tuple[str, ...] = ("cls", "mean", "pooler")

#: Any one of these marks a directory as holding a tokenizer.
TOKENIZER_FILES: tuple[str, ...] = (
    "tokenizer.json",
    "vocab.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
    "tokenizer.model",
    "vocab.json",
)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_FINGERPRINT_BYTES = 1 << 20
#: Model types whose position ids start after the padding index (RoBERTa style): they can
#: take ``max_position_embeddings - pad_token_id - 1`` tokens.
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "mpnet")


@dataclass(frozen=True)
class HFTeacherConfig:
    """Settings of :class:`HFTextTeacher`.

    Attributes:
        pooling: ``"cls"`` (first token), ``"mean"`` (mean over non-padding tokens) or
            ``"pooler"`` (the model's pooler output, as LaBSE is used).
        normalize: L2-normalise the pooled vectors.  Leave it on: the speechx contract is
            unit rows; ``False`` exists for inspecting raw outputs.
        max_length: texts are truncated to this many tokens (special tokens included), or
            to the model's ``max_position_embeddings`` when that is smaller; a text that is
            cut gets a :class:`~speechx.errors.TeacherWarning` naming it.
        languages: language codes to report as ``.languages`` (``None``: unknown).
        device: torch device string.
        dtype: ``"float32"`` or ``"bfloat16"`` for the forward pass (outputs are float32).
    """

    pooling: Pooling = "cls"
    normalize: bool = True
    max_length: int = 256
    languages: tuple[str, ...] | None = None
    device: str = "cpu"
    dtype: str = "float32"


def check_model_dir(model_dir: str | os.PathLike) -> Path:
    """Return ``model_dir`` as a path after checking it looks like a saved text model.

    Raises:
        TeacherError: the directory is missing, has no ``config.json``, or has no tokenizer file
            (any of :data:`TOKENIZER_FILES`).
    """
    d = Path(model_dir).expanduser()
    if not d.is_dir():
        raise TeacherError(f"hf teacher: model directory {d} does not exist (only local dirs work)")
    if not (d / "config.json").is_file():
        raise TeacherError(f"hf teacher: {d} has no config.json; is it a save_pretrained dir?")
    if not any((d / f).is_file() for f in TOKENIZER_FILES):
        raise TeacherError(
            f"hf teacher: {d} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); "
            "save the tokenizer next to the model with tokenizer.save_pretrained(dir)"
        )
    return d


def model_fingerprint(model_dir: Path) -> str:
    """A short hex digest of a model dir's content that is cheap to compute on big checkpoints.

    It covers ``config.json``, the tokenizer files, and for each weight file its name, its size
    and its first and last MiB, so two random initialisations of one config differ.  The path
    of the directory is not part of it: the same model copied elsewhere keeps its id.
    """
    h = hashlib.sha256()
    for f in sorted(model_dir.iterdir()):
        if not f.is_file():
            continue
        if f.name == "config.json" or f.name in TOKENIZER_FILES:
            h.update(f.name.encode() + b"\0" + f.read_bytes())
        elif f.suffix in _WEIGHT_SUFFIXES:
            size = f.stat().st_size
            h.update(f"{f.name}\0{size}\0".encode())
            with open(f, "rb") as fh:
                h.update(fh.read(_FINGERPRINT_BYTES))
                if size > _FINGERPRINT_BYTES:
                    fh.seek(max(_FINGERPRINT_BYTES, size - _FINGERPRINT_BYTES))
                    h.update(fh.read())
    return h.hexdigest()[:10]


class HFTextTeacher:
    """A transformers encoder (AutoTokenizer + AutoModel from a local dir) as a text teacher.

    The config is read at construction (for ``dim`` and the teacher id); tokenizer and weights
    are loaded on the first :meth:`encode` or an explicit :meth:`load`.  Texts are sorted by
    length before batching, so padding is minimal, and results come back in input order.
    """

    def __init__(
        self, model_dir: str | os.PathLike, config: HFTeacherConfig | None = None, **overrides: Any
    ) -> None:
        """Check ``model_dir`` and read its config.

        Raises:
            TeacherError: the directory is unusable (see :func:`check_model_dir`), an option is
                unknown or invalid, or ``config.json`` has no ``hidden_size``.
        """
        self.model_dir = check_model_dir(model_dir)
        base = config or HFTeacherConfig()
        unknown = set(overrides) - set(HFTeacherConfig.__dataclass_fields__)
        if unknown:
            raise TeacherError(
                f"hf teacher {self.model_dir}: unknown option(s) {sorted(unknown)}; "
                f"known: {sorted(HFTeacherConfig.__dataclass_fields__)}"
            )
        values = {**base.__dict__, **overrides}
        if values["languages"] is not None:
            values["languages"] = tuple(values["languages"])
        self.config = HFTeacherConfig(**values)
        cfg = self.config
        if cfg.pooling not in POOLINGS:
            raise TeacherError(
                f"hf teacher {self.model_dir}: pooling must be one of {POOLINGS}, "
                f"got {cfg.pooling!r}"
            )
        if not isinstance(cfg.max_length, int) or cfg.max_length < 2:
            raise TeacherError(
                f"hf teacher {self.model_dir}: max_length must be an int >= 2, "
                f"got {cfg.max_length!r}"
            )
        if cfg.dtype not in ("float32", "bfloat16"):
            raise TeacherError(
                f"hf teacher {self.model_dir}: dtype must be float32 or bfloat16, got {cfg.dtype!r}"
            )
        try:
            model_cfg = json.loads((self.model_dir / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TeacherError(
                f"hf teacher: cannot read {self.model_dir / 'config.json'}: {exc}"
            ) from exc
        dim = model_cfg.get("hidden_size", model_cfg.get("d_model"))
        if not isinstance(dim, int):
            raise TeacherError(
                f"hf teacher: {self.model_dir / 'config.json'} has no integer hidden_size"
            )
        self.dim: int = dim
        #: Tokens per text actually used: ``max_length``, capped by the model's positions
        #: (a longer input would not run at all).
        self.max_tokens: int = min(cfg.max_length, _position_limit(model_cfg) or cfg.max_length)
        self.name = f"hf:{self.model_dir}"
        self.languages: tuple[str, ...] | None = cfg.languages
        parts = [
            "hf",
            safe_id(self.model_dir.resolve().name),
            model_fingerprint(self.model_dir),
            cfg.pooling,
            f"len{cfg.max_length}",
        ]
        if not cfg.normalize:
            parts.append("raw")
        if cfg.dtype != "float32":
            parts.append(cfg.dtype)
        self.teacher_id = "-".join(parts)
        self._tokenizer: Any = None
        self._model: Any = None

    def __repr__(self) -> str:
        return f"HFTextTeacher(teacher_id={self.teacher_id!r}, config={self.config})"

    def load(self) -> HFTextTeacher:
        """Load tokenizer and weights now (otherwise the first encode does); returns ``self``.

        Raises:
            TeacherError: transformers cannot load the tokenizer or the model from the dir, or
                ``pooling="pooler"`` and the model has no pooler.
        """
        if self._model is not None:
            return self
        import torch
        from transformers import AutoModel, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        except Exception as exc:
            raise TeacherError(
                f"hf teacher: cannot load a tokenizer from {self.model_dir}: {_first_line(exc)}"
            ) from exc
        dtype = torch.float32 if self.config.dtype == "float32" else torch.bfloat16
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        if bar and not sys.stderr.isatty():
            hf_logging.disable_progress_bar()  # no "Loading weights" bar in logs
        try:
            model, info = AutoModel.from_pretrained(
                self.model_dir, local_files_only=True, dtype=dtype, output_loading_info=True
            )
        except Exception as exc:
            raise TeacherError(
                f"hf teacher: cannot load a model from {self.model_dir}: {_first_line(exc)}"
            ) from exc
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        uses_pooler = self.config.pooling == "pooler"
        if uses_pooler and getattr(model, "pooler", None) is None:
            raise TeacherError(
                f"hf teacher {self.model_dir}: pooling='pooler' but {type(model).__name__} has "
                "no pooler layer; use pooling='cls' or 'mean'"
            )
        # A teacher with randomly initialised weights is silently wrong: refuse it.  A missing
        # pooler only matters when its output is used.
        missing = sorted(
            k for k in info.get("missing_keys", ()) if uses_pooler or "pooler" not in k.split(".")
        )
        missing += sorted(str(k) for k in info.get("mismatched_keys", ()))
        if missing:
            raise TeacherError(
                f"hf teacher {self.model_dir}: weights missing or mismatched in the checkpoint "
                f"(they would be random): {', '.join(missing[:5])}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            )
        if tokenizer.pad_token is None:
            raise TeacherError(
                f"hf teacher {self.model_dir}: the tokenizer has no pad token, so texts cannot "
                "be batched"
            )
        model.eval().to(self.config.device)
        self._tokenizer, self._model = tokenizer, model
        return self

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None
    ) -> np.ndarray:
        """Embed ``texts`` with the configured pooling.

        Returns:
            float32 ``[len(texts), dim]`` (rows L2-normalised unless ``normalize=False``;
            ``[0, dim]`` for no texts).

        Raises:
            TeacherError: bad ``texts`` or ``batch_size``, or the model cannot be loaded.
        """
        import torch

        items = check_texts(texts, self.teacher_id)
        check_batch_size(batch_size, self.teacher_id)
        if not items:
            return empty_embeddings(self.dim)
        warn_blank_texts(items, self.teacher_id)
        self.load()
        # Longest first, so the first batch shows the peak memory and padding stays small.
        order = sorted(range(len(items)), key=lambda i: -len(items[i]))
        out = np.empty((len(items), self.dim), dtype=np.float32)
        starts: Any = range(0, len(items), batch_size)
        if want_progress(show_progress, len(starts)):
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=f"teacher {self.teacher_id}", unit="batch")
        with torch.inference_mode():
            for start in starts:
                idx = order[start : start + batch_size]
                out[idx] = self._embed_batch([items[i] for i in idx], idx)
        return l2_normalise(out) if self.config.normalize else out

    def _embed_batch(self, texts: list[str], index: list[int]) -> np.ndarray:
        import torch

        enc = self._tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        )
        if enc["input_ids"].shape[1] >= self.max_tokens:
            self._warn_truncated(texts, index, enc["attention_mask"].sum(dim=1).tolist())
        enc = {k: v.to(self.config.device) for k, v in enc.items()}
        outputs = self._model(**enc)
        pooling = self.config.pooling
        if pooling == "pooler":
            pooled = outputs.pooler_output
        elif pooling == "cls":
            pooled = outputs.last_hidden_state[:, 0]
        else:
            hidden = outputs.last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return pooled.to(torch.float32).cpu().numpy()

    def _warn_truncated(self, texts: list[str], index: list[int], lengths: list[int]) -> None:
        """Warn (naming the text) when texts of a batch were cut at :attr:`max_tokens`."""
        limit = (
            "max_length"
            if self.max_tokens == self.config.max_length
            else "the model's position limit"
        )
        for text, i, n in zip(texts, index, lengths, strict=True):
            if n < self.max_tokens:
                continue
            full = len(self._tokenizer(text, truncation=False, verbose=False)["input_ids"])
            if full > self.max_tokens:
                quoted = repr(text if len(text) <= 40 else text[:40] + "...")
                warnings.warn(
                    f"{self.teacher_id}: text #{i} {quoted} is {full:,} tokens long; only its "
                    f"first {self.max_tokens} are embedded ({limit})",
                    TeacherWarning,
                    stacklevel=4,
                )


def _position_limit(model_cfg: dict[str, Any]) -> int | None:
    """How many tokens the model's position embeddings allow, from its ``config.json``."""
    n = model_cfg.get("max_position_embeddings")
    if not isinstance(n, int) or n <= 0:
        return None
    if model_cfg.get("model_type") in _OFFSET_POSITIONS:
        pad = model_cfg.get("pad_token_id")
        n -= (pad if isinstance(pad, int) else 1) + 1
    return n if n >= 2 else None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
