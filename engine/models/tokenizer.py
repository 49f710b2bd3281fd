"""Tokenizers behind one small interface, so training and evaluation never care which is in use.

The embedded tiny GPT-2 model is byte-level (no vocabulary file to ship or download), while a
user-supplied Hugging Face model brings its own tokenizer; both are used through `TextTokenizer`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from store.errors import BemctlError


@runtime_checkable
class TextTokenizer(Protocol):
    """What the engine needs from a tokenizer: plain-text encode/decode plus the special ids."""

    @property
    def pad_token_id(self) -> int: ...

    @property
    def bos_token_id(self) -> int | None: ...

    @property
    def eos_token_id(self) -> int: ...

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Iterable[int]) -> str: ...


class ByteTokenizer:
    """UTF-8 bytes as ids 0..255 plus three specials, so any text round-trips with no vocab file."""

    pad_token_id: int = 256
    bos_token_id: int = 257
    eos_token_id: int = 258
    vocab_size: int = 259

    def encode(self, text: str) -> list[int]:
        """Return the UTF-8 bytes of `text`; the caller adds specials where it wants them."""
        return list(text.encode("utf-8"))

    def decode(self, ids: Iterable[int]) -> str:
        """Drop special ids and decode leniently, because a model may emit a cut-off UTF-8 sequence.

        Accepts any iterable of int-likes (e.g. a 1-D tensor); an id outside the vocabulary is a
        bug in the caller, not bad model output, so it raises ValueError.
        """
        data = bytearray()
        for raw in ids:
            i = int(raw)
            if 0 <= i < 256:
                data.append(i)
            elif not 256 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is outside the byte vocabulary (0..258)")
        return data.decode("utf-8", errors="replace")


class HFTokenizerAdapter:
    """Give a transformers tokenizer the `TextTokenizer` interface.

    Prompts and targets are encoded separately and concatenated by the engine, so special tokens
    must never be inserted implicitly; GPT-2-style tokenizers have no pad token, so padding
    reuses eos (padded positions are masked out of the loss anyway).
    """

    def __init__(self, tokenizer: Any) -> None:
        if tokenizer.eos_token_id is None:
            name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
            raise BemctlError(f"tokenizer {name!r}: eos_token: required but not set")
        self.tokenizer = tokenizer

    @property
    def eos_token_id(self) -> int:
        return int(self.tokenizer.eos_token_id)

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return self.eos_token_id if pad is None else int(pad)

    @property
    def bos_token_id(self) -> int | None:
        bos = self.tokenizer.bos_token_id
        return None if bos is None else int(bos)

    @property
    def vocab_size(self) -> int:
        """len(tokenizer), not `.vocab_size`, because the latter omits added tokens."""
        return len(self.tokenizer)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Iterable[int]) -> str:
        return str(self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True))
