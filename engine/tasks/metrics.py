"""Exact match and token F1 as defined by the official SQuAD v1.1 evaluation script.

Reimplemented verbatim (normalisation included) so scores are comparable with published numbers;
the one deliberate difference is that an empty prediction against an empty reference scores F1 1.0
(as in the SQuAD v2.0 script) instead of v1.1's 0.0, so F1 agrees with EM on that case.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """Lowercase, drop punctuation, drop articles, collapse whitespace (SQuAD v1.1 order)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _check_refs(references: Sequence[str]) -> None:
    # A bare string is a Sequence[str] too; scoring it per character would be silently wrong.
    if isinstance(references, str):
        raise TypeError("references must be a sequence of strings, not a str")
    if not references:
        raise ValueError("references must be non-empty")


def _f1_single(prediction: str, reference: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    ref_tokens = normalize_answer(reference).split()
    if not pred_tokens or not ref_tokens:
        return float(pred_tokens == ref_tokens)
    num_same = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised reference, else 0.0."""
    _check_refs(references)
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(ref) for ref in references))


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """Best bag-of-tokens F1 over the references (partial credit for near misses)."""
    _check_refs(references)
    return max(_f1_single(prediction, ref) for ref in references)


METRICS: dict[str, Callable[[str, Sequence[str]], float]] = {
    "exact_match": exact_match,
    "f1": token_f1,
}
