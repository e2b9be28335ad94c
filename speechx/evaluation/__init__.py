"""Evaluators that score precomputed embeddings and write ``exp/<tag>/results/``."""

from speechx.evaluation.asr import AsrReport, peer_rows, score_transcripts, write_asr_results
from speechx.evaluation.retrieval import (
    RetrievalEvaluator,
    View,
    evaluate_ceiling,
    evaluate_retrieval_pairs,
    write_retrieval_results,
)

__all__ = [
    "AsrReport",
    "RetrievalEvaluator",
    "View",
    "evaluate_ceiling",
    "evaluate_retrieval_pairs",
    "peer_rows",
    "score_transcripts",
    "write_asr_results",
    "write_retrieval_results",
]
