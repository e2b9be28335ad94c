"""Pure metrics on strings and arrays: WER/CER/MER and recall@k, MRR@k, xsim error."""

from speechx.metrics.asr import ErrorRate, TextNormalizer, cer, mer, mixed_tokens, wer
from speechx.metrics.retrieval import (
    gold_ranks,
    margin_scores,
    mrr_at_k,
    rank_of_gold,
    recall_at_k,
    retrieval_metrics,
    xsim_error,
)

__all__ = [
    "ErrorRate",
    "TextNormalizer",
    "cer",
    "gold_ranks",
    "margin_scores",
    "mer",
    "mixed_tokens",
    "mrr_at_k",
    "rank_of_gold",
    "recall_at_k",
    "retrieval_metrics",
    "wer",
    "xsim_error",
]
