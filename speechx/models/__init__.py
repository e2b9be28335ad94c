"""Speech encoders: a transformers audio backbone, pooling and a projection into a text space.

Start with :func:`build_encoder` (presets or a local checkpoint) or
:meth:`SpeechEncoder.from_pretrained` (a saved speechx model directory).
"""

from speechx.models.backbones import BACKBONES, Backbone, BackboneOutput, HFAudioBackbone
from speechx.models.config import PreprocessingConfig, SpeechEncoderConfig
from speechx.models.encoder import SpeechEncoder, read_config
from speechx.models.presets import PRESETS, build_encoder

__all__ = [
    "BACKBONES",
    "PRESETS",
    "Backbone",
    "BackboneOutput",
    "HFAudioBackbone",
    "PreprocessingConfig",
    "SpeechEncoder",
    "SpeechEncoderConfig",
    "build_encoder",
    "read_config",
]
