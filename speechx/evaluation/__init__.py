"""Evaluators that score precomputed embeddings and write ``exp/<tag>/results/``."""

from speechx.evaluation.retrieval import (
    RetrievalEvaluator,
    View,
    evaluate_ceiling,
    evaluate_retrieval_pairs,
    write_retrieval_results,
)

__all__ = [
    "RetrievalEvaluator",
    "View",
    "evaluate_ceiling",
    "evaluate_retrieval_pairs",
    "write_retrieval_results",
]
