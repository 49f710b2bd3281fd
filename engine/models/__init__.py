"""Model-side pieces of the engine (tokenizers, and the embedded tiny base model)."""

from engine.models.tokenizer import ByteTokenizer, HFTokenizerAdapter, TextTokenizer

__all__ = ["ByteTokenizer", "HFTokenizerAdapter", "TextTokenizer"]
