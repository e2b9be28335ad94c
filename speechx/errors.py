"""Exception and warning types raised by speechx.

Every error that bad input can cause is a :class:`SpeechxError` whose message names the
offending file or utterance and says what is wrong with it.
"""

from __future__ import annotations


class SpeechxError(Exception):
    """Base class of every error speechx raises on purpose."""


class AudioError(SpeechxError, ValueError):
    """Audio that cannot be used: missing, unreadable, empty, non-finite or too long."""


class DataDirError(SpeechxError, ValueError):
    """A Kaldi data directory or manifest that cannot be read or is inconsistent."""


class TeacherError(SpeechxError, ValueError):
    """A text teacher that cannot be loaded or used, or teacher embeddings that are missing or stale."""


class AudioWarning(UserWarning):
    """Audio that loads but is suspicious (for example all zeros)."""


class RetrievalError(SpeechxError, ValueError):
    """Embeddings or queries that cannot be indexed or searched (shape, NaN, empty, bad file)."""


class MetricError(SpeechxError, ValueError):
    """Inputs to a metric that do not fit together (lengths, gold indices, empty references)."""


class MiningError(SpeechxError, ValueError):
    """Collections that cannot be mined together: empty, of different dimensions, or smaller
    than the margin's k; an unknown mining mode or scoring; a collection spec that cannot be
    read."""


class EvaluationError(SpeechxError, ValueError):
    """An evaluation whose views, pairs or results are inconsistent."""


class ModelError(SpeechxError, ValueError):
    """A model config, checkpoint or directory that cannot be used, or input a model cannot take."""


class LongformError(SpeechxError, ValueError):
    """Long-recording windowing settings that cannot work (window, hop, batch size)."""


class AudioIndexError(SpeechxError, ValueError):
    """An audio search index (speechx.audio_search) that cannot be built, read or searched, or
    speech-region settings that cannot work."""


class TeacherWarning(UserWarning):
    """Text a teacher embeds but probably badly: empty, too long (truncated), or in a language
    the teacher was not trained on.  The message names the text or the language."""
