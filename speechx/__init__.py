"""speechx: speech and text in one multilingual sentence-embedding space."""

from speechx.errors import AudioError, DataDirError, SpeechxError

__version__ = "0.1.0"

__all__ = ["AudioError", "DataDirError", "SpeechxError", "__version__"]
