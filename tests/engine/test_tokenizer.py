import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from engine.models.tokenizer import ByteTokenizer, HFTokenizerAdapter, TextTokenizer
from store.errors import BemctlError


def _tiny_hf(**special: str) -> PreTrainedTokenizerFast:
    """A word-level tokenizer built in memory, so the test never touches the network."""
    vocab = {"[UNK]": 0, "[EOS]": 1, "[PAD]": 2, "[BOS]": 3, "hello": 4, "world": 5, "?": 6}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", **special)


def test_byte_constants() -> None:
    t = ByteTokenizer()
    assert (t.pad_token_id, t.bos_token_id, t.eos_token_id, t.vocab_size) == (256, 257, 258, 259)
    assert isinstance(t, TextTokenizer)


@pytest.mark.parametrize("text", ["", "abc: red; Q: what is abc?\nA:", "héllo wörld ✓ 日本 🦦"])
def test_byte_round_trip(text: str) -> None:
    t = ByteTokenizer()
    ids = t.encode(text)
    assert ids == list(text.encode("utf-8"))
    assert all(0 <= i < 256 for i in ids)
    assert t.decode(ids) == text


def test_byte_non_ascii_is_multibyte() -> None:
    assert ByteTokenizer().encode("é") == [0xC3, 0xA9]


def test_byte_decode_drops_specials() -> None:
    t = ByteTokenizer()
    ids = [t.bos_token_id, *t.encode("hi ü"), t.eos_token_id, t.pad_token_id, t.pad_token_id]
    assert t.decode(ids) == "hi ü"


def test_byte_decode_tolerates_truncated_utf8_and_int_likes() -> None:
    t = ByteTokenizer()
    assert t.decode([0x61, 0xC3]) == "a\ufffd"
    torch = pytest.importorskip("torch")
    assert t.decode(torch.tensor([104, 105, 258])) == "hi"


@pytest.mark.parametrize("bad", [-1, 259, 1000])
def test_byte_decode_rejects_out_of_vocab(bad: int) -> None:
    with pytest.raises(ValueError):
        ByteTokenizer().decode([104, bad])


def test_hf_adapter_interface_and_pad_fallback() -> None:
    a = HFTokenizerAdapter(_tiny_hf(eos_token="[EOS]"))
    assert isinstance(a, TextTokenizer)
    assert a.eos_token_id == 1
    assert a.pad_token_id == 1  # no pad token: falls back to eos
    assert a.bos_token_id is None
    assert a.vocab_size == 7


def test_hf_adapter_uses_own_pad_and_bos() -> None:
    a = HFTokenizerAdapter(_tiny_hf(eos_token="[EOS]", pad_token="[PAD]", bos_token="[BOS]"))
    assert (a.pad_token_id, a.bos_token_id, a.eos_token_id) == (2, 3, 1)


def test_hf_adapter_encode_decode() -> None:
    a = HFTokenizerAdapter(_tiny_hf(eos_token="[EOS]", bos_token="[BOS]"))
    ids = a.encode("hello world ?")
    assert ids == [4, 5, 6]  # no specials added
    assert a.decode([3, *ids, 1, 1]) == "hello world ?"  # specials skipped
    assert a.decode(ids) == "hello world ?"


def test_hf_adapter_requires_eos() -> None:
    with pytest.raises(BemctlError, match="eos_token"):
        HFTokenizerAdapter(_tiny_hf())
