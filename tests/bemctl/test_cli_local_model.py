"""`model.base_model` naming a local Hugging Face directory, end to end, offline."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from store import queries
from store.db import Store


def save_byte_level_gpt2(directory: Path) -> None:
    """A tiny GPT-2 with a byte-level BPE tokenizer (no merges) that round-trips any text."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    vocab["<|endoftext|>"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>").save_pretrained(
        directory
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(
        GPT2Config(
            n_layer=2,
            n_embd=32,
            n_head=2,
            vocab_size=len(vocab),
            n_positions=256,
            eos_token_id=len(vocab) - 1,
            bos_token_id=len(vocab) - 1,
        )
    ).save_pretrained(directory)


def test_run_on_a_local_hf_model(project: Path, cli) -> None:
    save_byte_level_gpt2(project / "local-gpt2")
    spec = yaml.safe_load((project / "experiments" / "v1_dynrank.yml").read_text())
    spec["experiment_name"] = "local_model_v1"
    spec["model"]["base_model"] = str(project / "local-gpt2")
    spec["data"]["max_new_tokens"] = 4
    spec_file = project / "experiments" / "local_model_v1.yml"
    spec_file.write_text(yaml.safe_dump(spec))

    # V1's default 4 head groups cannot split this model's 2 heads: refused before training
    refused = cli("run", "local_model_v1", "--quick")
    assert refused.code != 0
    assert "bem_config.head_groups: 4 does not divide the model's 2 attention heads" in refused.err
    assert "train baseline" not in refused.err and "Traceback" not in refused.err

    spec["bem_config"]["head_groups"] = 2
    spec_file.write_text(yaml.safe_dump(spec))
    result = cli("run", "local_model_v1", "--quick")
    assert result.code == 0, result.err
    assert "pre-train" not in result.err  # a local model is used as is
    with Store(project / ".bemctl" / "bemctl.db", readonly=True) as store:
        [(experiment, comp, stat_rows, _, base_run, var_run)] = queries.latest_comparisons(store)
        assert experiment.name == "local_model_v1"
        assert str(project / "local-gpt2") in experiment.spec_json
        # 2 layers x 32 wide: params come from the local model, not the embedded one
        assert base_run.params_total < 200_000
        assert {s.metric for s in stat_rows} == {"exact_match", "f1"}


def test_missing_local_model_dir_is_one_line(project: Path, cli) -> None:
    spec = yaml.safe_load((project / "experiments" / "v1_dynrank.yml").read_text())
    spec["experiment_name"] = "missing_model"
    spec["model"]["base_model"] = str(project / "nowhere")
    (project / "experiments" / "missing_model.yml").write_text(yaml.safe_dump(spec))
    result = cli("run", "missing_model", "--quick")
    assert result.code == 2
    assert "never downloads" in result.err and "Traceback" not in result.err
