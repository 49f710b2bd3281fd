"""Tasks: synthetic and user-supplied QA data, prompt formatting and SQuAD metrics."""

from engine.tasks.jsonl import load_qa_jsonl
from engine.tasks.metrics import METRICS, exact_match, normalize_answer, token_f1
from engine.tasks.qa import (
    QAExample,
    format_prompt,
    format_target,
    generate_qa,
    make_qa_splits,
    pretraining_corpus,
)

__all__ = [
    "METRICS",
    "QAExample",
    "exact_match",
    "format_prompt",
    "format_target",
    "generate_qa",
    "load_qa_jsonl",
    "make_qa_splits",
    "normalize_answer",
    "pretraining_corpus",
    "token_f1",
]
