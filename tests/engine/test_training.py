"""Adapter training loop: example encoding, batch order, learning, divergence detection."""

import math

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from engine.models.tokenizer import ByteTokenizer
from engine.tasks.qa import QAExample, format_prompt, format_target, make_qa_splits
from engine.training import (
    IGNORE,
    TrainingDiverged,
    TrainPlan,
    batch_order,
    collate,
    encode_example,
    lr_at,
    train_adapter,
)
from engine.variants.lora.config import LoraConfig
from engine.variants.lora.model import StaticLoraModel

TOK = ByteTokenizer()
EXAMPLE = QAExample("t-0", "abc: red; xyz: fox", "what is xyz?", ("fox", "a fox"))


def tiny_adapter(seed: int = 0) -> StaticLoraModel:
    torch.manual_seed(seed)
    # initializer_range 0.2 (not GPT-2's 0.02): with tied 0.02-scale embeddings the logits of a
    # random base are too small for any adapter to move the loss far from ln(vocab)
    config = GPT2Config(
        n_layer=2,
        n_embd=32,
        n_head=2,
        vocab_size=259,
        n_positions=128,
        initializer_range=0.2,
        bos_token_id=257,
        eos_token_id=258,
        pad_token_id=256,
    )
    return StaticLoraModel(GPT2LMHeadModel(config), LoraConfig(rank_dimension=8))


def plan(**overrides) -> TrainPlan:
    values = dict(
        steps=30,
        batch_size=8,
        learning_rate=1e-2,
        warmup_steps=3,
        gradient_clip=1.0,
        weight_decay=0.0,
        seed=0,
        max_length=128,
    )
    values.update(overrides)
    return TrainPlan(**values)


# ---------------------------------------------------------------- encoding and batching


def _pair(ex: QAExample) -> tuple[str, str]:
    """The (prompt, target) pair the runner builds from a QA example."""
    return format_prompt(ex), format_target(ex.answers[0])


def _pairs(examples: list[QAExample]) -> list[tuple[str, str]]:
    return [_pair(ex) for ex in examples]


def test_encode_example_masks_prompt_and_ends_with_eos() -> None:
    ids, labels = encode_example(TOK, *_pair(EXAMPLE), max_length=256)
    prompt = TOK.encode(format_prompt(EXAMPLE))
    target = TOK.encode(format_target("fox"))  # first reference answer only
    assert ids == prompt + target + [TOK.eos_token_id]
    assert labels == [IGNORE] * len(prompt) + target + [TOK.eos_token_id]
    assert len(ids) == len(labels)
    assert ids[-1] == labels[-1] == TOK.eos_token_id
    assert TOK.decode(ids[len(prompt) :]) == " fox\n"


def test_encode_example_truncates_from_the_left() -> None:
    full_ids, full_labels = encode_example(TOK, *_pair(EXAMPLE), max_length=256)
    ids, labels = encode_example(TOK, *_pair(EXAMPLE), max_length=10)
    assert len(ids) == len(labels) == 10
    assert ids == full_ids[-10:]
    assert labels == full_labels[-10:]
    assert labels[-6:] == TOK.encode(" fox\n") + [TOK.eos_token_id]  # the answer survives


def test_collate_right_pads() -> None:
    rows = [([1, 2, 3], [IGNORE, 2, 3]), ([4], [4])]
    batch = collate(rows, pad_id=TOK.pad_token_id)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 256, 256]]
    assert batch["labels"].tolist() == [[IGNORE, 2, 3], [4, IGNORE, IGNORE]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_batch_order_deterministic_per_seed() -> None:
    a = batch_order(10, steps=7, batch_size=4, seed=3)
    assert a == batch_order(10, steps=7, batch_size=4, seed=3)
    assert a != batch_order(10, steps=7, batch_size=4, seed=4)
    assert len(a) == 7 and all(len(b) == 4 for b in a)
    flat = [i for b in a for i in b]
    assert sorted(flat[:10]) == list(range(10))  # first epoch is a permutation
    assert sorted(flat[10:20]) == list(range(10))  # and so is the second


def test_lr_schedule_warmup_then_cosine_to_ten_percent() -> None:
    p = plan(steps=100, warmup_steps=10, learning_rate=1.0)
    assert lr_at(0, p) == pytest.approx(0.1)
    assert lr_at(9, p) == pytest.approx(1.0)
    assert lr_at(10, p) == pytest.approx(1.0)
    assert lr_at(100, p) == pytest.approx(0.1)
    values = [lr_at(s, p) for s in range(10, 100)]
    assert all(x >= y for x, y in zip(values, values[1:], strict=False))


# ---------------------------------------------------------------- training


def test_train_adapter_reduces_loss() -> None:
    model = tiny_adapter()
    base_before = {n: p.clone() for n, p in model.base_model.named_parameters() if "lora" not in n}
    train, _ = make_qa_splits(64, 2, seed=0)
    log: list[tuple[int, float, float, float]] = []
    last = train_adapter(
        model,
        TOK,
        _pairs(train),
        plan(),
        torch.device("cpu"),
        on_step=lambda *row: log.append(row),
    )
    assert [row[0] for row in log] == list(range(1, 31))
    losses = [row[1] for row in log]
    assert all(math.isfinite(x) for x in losses)
    assert last == losses[-1]
    first, final = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert final < 0.8 * first, (first, final)
    assert not model.training  # left in eval mode
    # only the adapter moved
    for name, p in model.base_model.named_parameters():
        if name in base_before:
            assert torch.equal(p, base_before[name]), name
    assert any(torch.count_nonzero(layer.lora_u) > 0 for layer in model.lora_layers.values())


def test_train_adapter_is_deterministic() -> None:
    train, _ = make_qa_splits(16, 2, seed=1)
    runs: list[list[float]] = [[], []]
    for log in runs:
        train_adapter(
            tiny_adapter(seed=5),
            TOK,
            _pairs(train),
            plan(steps=3, batch_size=4),
            torch.device("cpu"),
            on_step=lambda s, loss, lr, t, log=log: log.append(loss),
        )
    assert len(runs[0]) == 3
    assert runs[0] == runs[1]


def test_nan_parameter_raises_training_diverged() -> None:
    model = tiny_adapter()
    layer = next(iter(model.lora_layers.values()))
    with torch.no_grad():
        layer.lora_u.fill_(float("nan"))
    train, _ = make_qa_splits(8, 2, seed=0)
    steps: list[int] = []
    with pytest.raises(TrainingDiverged, match="non-finite loss .* at step 1"):
        train_adapter(
            model,
            TOK,
            _pairs(train),
            plan(steps=5, batch_size=4),
            torch.device("cpu"),
            on_step=lambda s, *rest: steps.append(s),
        )
    assert steps == []  # the failing step is never reported as a completed step


def test_after_optimizer_step_hook_runs_every_step() -> None:
    model = tiny_adapter()
    calls: list[int] = []
    model.after_optimizer_step = lambda: calls.append(1)  # type: ignore[attr-defined]
    train, _ = make_qa_splits(8, 2, seed=0)
    train_adapter(model, TOK, _pairs(train), plan(steps=4, batch_size=4), torch.device("cpu"))
    assert len(calls) == 4
