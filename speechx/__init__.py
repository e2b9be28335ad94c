"""speechx: speech and text in one multilingual sentence-embedding space.

>>> from speechx import SpeechEncoder, load_teacher, EmbeddingIndex      # doctest: +SKIP
>>> enc = SpeechEncoder.from_pretrained("egs/fillets/exp/demo/model")   # doctest: +SKIP
>>> E = enc.encode(["a.wav", (wave, 16000)])        # float32 [N, D], L2-normalised
>>> T = load_teacher("use-multilingual").encode(["Waar is de vis?"])
>>> hits = EmbeddingIndex.build(T).search(E, top_k=1)

The names below are imported on first use, so ``import speechx`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from speechx.errors import AudioError, DataDirError, ModelError, SpeechxError

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "SpeechEncoder": "speechx.models",
    "build_encoder": "speechx.models",
    "load_teacher": "speechx.teachers",
    "CachedTeacher": "speechx.teachers",
    "EmbeddingIndex": "speechx.retrieval",
    "SearchResult": "speechx.retrieval",
    "AudioIndex": "speechx.audio_search",
    "AudioHit": "speechx.audio_search",
    "KaldiDir": "speechx.data",
    "load_audio": "speechx.audio",
}

__all__ = [
    "AudioError",
    "DataDirError",
    "ModelError",
    "SpeechxError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'speechx' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
