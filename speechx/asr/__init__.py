"""CTC speech recognition on the speechx speech encoder.

* :class:`SpeechRecognizer`: encoder backbone + CTC head (and the embedding head), with
  ``from_pretrained(dir)`` and ``transcribe(inputs, beam_size=...)``;
* :class:`Vocabulary` / :class:`TextConfig`: characters + ``|`` and the text normalisation;
* :func:`train_asr` / :func:`load_asr_config`: training on the shared loop;
* :mod:`speechx.asr.decode`: greedy, prefix beam search, pyctcdecode (+ KenLM).
"""

from speechx.asr.config import AsrConfig, load_asr_config
from speechx.asr.decode import DecodeError, beam_decode, decode_batch, greedy_decode
from speechx.asr.model import CtcConfig, SpeechRecognizer
from speechx.asr.trainer import train_asr
from speechx.asr.vocab import TextConfig, Vocabulary

__all__ = [
    "AsrConfig",
    "CtcConfig",
    "DecodeError",
    "SpeechRecognizer",
    "TextConfig",
    "Vocabulary",
    "beam_decode",
    "decode_batch",
    "greedy_decode",
    "load_asr_config",
    "train_asr",
]
