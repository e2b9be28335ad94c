"""Data layer: Kaldi data dirs, JSONL manifests, validation, splits, torch datasets and samplers.

The torch-side names (:class:`SpeechDataset`, :func:`collate_audio`,
:class:`DynamicBucketSampler`) are imported lazily, so that ``import speechx.data`` (used by
``data_prep/``) does not pull in torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from speechx.data.kaldi import (
    KaldiDir,
    Segment,
    atomic_write_text,
    c_sort_key,
    read_mapping,
    write_mapping,
)
from speechx.data.manifest import (
    kaldi_to_manifest,
    manifest_to_kaldi,
    read_manifest,
    write_manifest,
)
from speechx.data.splits import (
    SentenceLeakError,
    SplitError,
    check_no_leak,
    first_n,
    read_assignment,
    sentence_ids,
    split_sentences,
    subset_by_language,
    subset_by_split,
)
from speechx.data.validate import (
    FixReport,
    InvalidDataDirError,
    Problem,
    ValidationReport,
    fix_data_dir,
    validate_data_dir,
)

if TYPE_CHECKING:
    from speechx.data.dataset import SpeechDataset, collate_audio
    from speechx.data.sampler import DynamicBucketSampler, SamplerError

_LAZY = {
    "SpeechDataset": "speechx.data.dataset",
    "collate_audio": "speechx.data.dataset",
    "DynamicBucketSampler": "speechx.data.sampler",
    "SamplerError": "speechx.data.sampler",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'speechx.data' has no attribute {name!r}")


__all__ = [
    "DynamicBucketSampler",
    "FixReport",
    "InvalidDataDirError",
    "KaldiDir",
    "Problem",
    "SamplerError",
    "Segment",
    "SentenceLeakError",
    "SpeechDataset",
    "SplitError",
    "ValidationReport",
    "atomic_write_text",
    "c_sort_key",
    "check_no_leak",
    "collate_audio",
    "first_n",
    "fix_data_dir",
    "kaldi_to_manifest",
    "manifest_to_kaldi",
    "read_assignment",
    "read_manifest",
    "read_mapping",
    "sentence_ids",
    "split_sentences",
    "subset_by_language",
    "subset_by_split",
    "validate_data_dir",
    "write_manifest",
    "write_mapping",
]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
