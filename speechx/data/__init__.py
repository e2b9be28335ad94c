"""Data layer: Kaldi data dirs, JSONL manifests, splits, torch datasets and samplers."""

from speechx.data.kaldi import KaldiDir, Segment

__all__ = ["KaldiDir", "Segment"]
