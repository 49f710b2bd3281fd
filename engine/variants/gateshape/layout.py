"""Where the passages and the question sit in a prompt, found from token ids alone.

Why from ids: the model never sees the tokenizer or the task, only ids (in training, in
generation and in the FLOP probe alike). A retrieval prompt is lines: the first `n_passages`
lines are passages and the next line is the question; everything after the newline that ends
the question (the "A:" cue, the answer, padding) is not looked at. Line boundaries are the
config's newline id (10 for the embedded byte tokenizer).

A row is *decided* once its question line is complete (it holds n_passages + 1 newlines), and
*valid* if it is decided and no passage or question line is empty. Rows that are not valid are
simply not gated (identity), so the variant degrades to its static-LoRA baseline on prompts of
another shape instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

UNDECIDED = torch.iinfo(torch.long).max  # question_end of a row whose question is incomplete


@dataclass(frozen=True)
class PromptLayout:
    line: torch.Tensor  # (B, T) long: line index of each token, -1 on newline tokens
    question_end: torch.Tensor  # (B,) long: position of the question's newline, or UNDECIDED
    decided: torch.Tensor  # (B,) bool: the question line is complete
    valid: torch.Tensor  # (B,) bool: decided, and no passage or question line is empty
    n_passages: int

    def passage_mask(self) -> torch.Tensor:
        """(B, K, T) bool: token t belongs to passage k (newline tokens excluded)."""
        lines = torch.arange(self.n_passages, device=self.line.device)
        return self.line[:, None, :] == lines[None, :, None]

    def question_mask(self) -> torch.Tensor:
        """(B, T) bool: token t belongs to the question line (newline excluded)."""
        return self.line == self.n_passages


def find_layout(ids: torch.Tensor, newline_id: int, n_passages: int) -> PromptLayout:
    """Layout of every row of `ids` (B, T >= 1); integer ops only, O(T) per row."""
    is_newline = ids == newline_id
    seen = is_newline.long().cumsum(1)  # newlines up to and including t
    line = (seen - is_newline.long()).masked_fill(is_newline, -1)
    decided = seen[:, -1] > n_passages
    closing = is_newline & (seen == n_passages + 1)
    question_end = torch.where(
        decided, closing.long().argmax(1), torch.full_like(seen[:, 0], UNDECIDED)
    )
    counts = (line[:, None, :] == torch.arange(n_passages + 1, device=ids.device)[:, None]).sum(2)
    valid = decided & (counts > 0).all(1)
    return PromptLayout(line, question_end, decided, valid, n_passages)
