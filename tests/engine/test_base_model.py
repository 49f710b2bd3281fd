"""Base models: local HF directories (offline) and the cached embedded tiny GPT-2."""

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from engine.models import base_model as bm
from engine.models.base_model import (
    PretrainPlan,
    cache_key,
    corpus_blocks,
    embedded_config_dict,
    load_base_model,
    load_local_hf,
)
from engine.models.tokenizer import ByteTokenizer, HFTokenizerAdapter
from store.errors import BemctlError

PLAN = PretrainPlan(steps=3, batch_size=2, learning_rate=1e-3, corpus_docs=20)
VOCAB = {"[UNK]": 0, "[EOS]": 1, "hello": 2, "world": 3, "what": 4, "is": 5, "?": 6}


def _save_tiny_hf(directory: Path) -> GPT2LMHeadModel:
    tok = Tokenizer(models.WordLevel(vocab=VOCAB, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", eos_token="[EOS]"
    ).save_pretrained(directory)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(
            n_layer=2,
            n_embd=32,
            n_head=2,
            vocab_size=len(VOCAB),
            n_positions=128,
            bos_token_id=1,
            eos_token_id=1,
        )
    )
    model.save_pretrained(directory)
    return model.eval()


# ---------------------------------------------------------------- local HF directories


def test_load_local_hf_round_trip(tmp_path: Path) -> None:
    original = _save_tiny_hf(tmp_path)
    loaded = load_local_hf(tmp_path)
    assert loaded.name == loaded.source == str(tmp_path)
    assert isinstance(loaded.tokenizer, HFTokenizerAdapter)
    assert loaded.tokenizer.eos_token_id == 1
    assert loaded.tokenizer.pad_token_id == 1  # falls back to eos
    ids = loaded.tokenizer.encode("what is hello ?")
    assert ids == [4, 5, 2, 6]
    assert not loaded.model.training
    batch = torch.tensor([ids])
    with torch.no_grad():
        logits = loaded.model(input_ids=batch).logits
        expected = original(input_ids=batch).logits
    assert logits.shape == (1, 4, len(VOCAB))
    torch.testing.assert_close(logits, expected)


def test_load_base_model_dispatches_local_dirs(tmp_path: Path) -> None:
    _save_tiny_hf(tmp_path / "hf")
    loaded = load_base_model(str(tmp_path / "hf"), tmp_path / "cache", PLAN)
    assert loaded.source == str(tmp_path / "hf")
    assert not (tmp_path / "cache").exists()  # nothing pre-trained for a local model


def test_missing_dir_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(BemctlError) as info:
        load_local_hf(missing)
    message = str(info.value)
    assert str(missing) in message
    assert "never downloads" in message
    assert "embedded:tiny-gpt2" in message


def test_dir_without_config_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(BemctlError, match="no config.json"):
        load_local_hf(tmp_path)


def test_unloadable_dir_is_a_bemctl_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')  # no weights, no tokenizer
    with pytest.raises(BemctlError, match="cannot load"):
        load_local_hf(tmp_path)


# ---------------------------------------------------------------- embedded model cache


def test_embedded_model_is_cached_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps: list[tuple[int, int]] = []
    first = load_base_model(
        "embedded:tiny-gpt2",
        tmp_path,
        PLAN,
        progress=lambda s, total, loss: steps.append((s, total)),
    )
    assert steps == [(1, 3), (2, 3), (3, 3)]
    key = cache_key(embedded_config_dict(), PLAN)
    entry = tmp_path / f"tiny-gpt2-{key}"
    assert (entry / "model.safetensors").is_file()
    assert first.source == str(entry)
    assert first.name == "embedded:tiny-gpt2"
    assert isinstance(first.tokenizer, ByteTokenizer)
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())

    def refuse(*args, **kwargs):
        raise AssertionError("pre-training must not run again for a cached entry")

    monkeypatch.setattr(bm, "pretrain", refuse)
    second = load_base_model("embedded:tiny-gpt2", tmp_path, PLAN)
    assert second.source == first.source
    first_state, second_state = first.model.state_dict(), second.model.state_dict()
    assert first_state.keys() == second_state.keys()
    for name, tensor in first_state.items():
        assert torch.equal(tensor, second_state[name]), name
    # it really was pre-trained (not a fresh init): a fresh model with the same seed differs
    torch.manual_seed(PLAN.seed)
    fresh = GPT2LMHeadModel(GPT2Config(**embedded_config_dict())).state_dict()
    assert not torch.equal(fresh["transformer.wte.weight"], first_state["transformer.wte.weight"])


def test_cache_key_depends_on_plan_and_config() -> None:
    config = embedded_config_dict()
    key = cache_key(config, PLAN)
    assert key == cache_key(embedded_config_dict(), PretrainPlan(3, 2, 1e-3, 20))
    assert key != cache_key(
        config, PretrainPlan(steps=4, batch_size=2, learning_rate=1e-3, corpus_docs=20)
    )
    assert key != cache_key(
        config, PretrainPlan(steps=3, batch_size=2, learning_rate=1e-3, corpus_docs=20, seed=1)
    )
    assert key != cache_key(embedded_config_dict({"n_layer": 2}), PLAN)


def test_different_plan_gives_a_different_cache_entry(tmp_path: Path) -> None:
    load_base_model("embedded:tiny-gpt2", tmp_path, PLAN)
    other = PretrainPlan(steps=2, batch_size=2, learning_rate=1e-3, corpus_docs=20)
    load_base_model("embedded:tiny-gpt2", tmp_path, other)
    entries = sorted(p.name for p in tmp_path.iterdir())
    assert entries == sorted(
        {
            f"tiny-gpt2-{cache_key(embedded_config_dict(), PLAN)}",
            f"tiny-gpt2-{cache_key(embedded_config_dict(), other)}",
        }
    )
    assert len(entries) == 2


def test_unknown_embedded_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BemctlError, match="unknown embedded model 'embedded:other'"):
        load_base_model("embedded:other", tmp_path, PLAN)
    assert not any(tmp_path.iterdir())


def test_corpus_blocks_shape() -> None:
    blocks = corpus_blocks(ByteTokenizer(), PLAN)
    assert blocks.ndim == 2 and blocks.shape[1] == PLAN.block_size
    assert blocks.shape[0] >= 1
    assert int(blocks.max()) <= ByteTokenizer.eos_token_id
    assert (blocks == ByteTokenizer.eos_token_id).any()  # documents are EOS-separated
