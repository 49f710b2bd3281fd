"""Adapter fine-tuning, nanoGPT-short: one loop, AdamW, warmup + cosine, clipped gradients.

Baseline and variant call this with the same examples, seed and order, so the only
difference between them is the adapter. Loss is on the answer tokens only (the prompt is
context, not something to learn to produce). Each step reports to `on_step`, which the
runner uses to write step metrics to the store as they happen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from engine.models.tokenizer import TextTokenizer

IGNORE = -100


@dataclass(frozen=True)
class TrainPlan:
    steps: int
    batch_size: int
    learning_rate: float
    warmup_steps: int
    gradient_clip: float
    weight_decay: float
    seed: int
    max_length: int
    max_new_tokens: int = 0  # generation budget, for training that generates (AR1 rollouts)
    quick: bool = False  # a --quick smoke run: staged training may shorten its own stages


class TrainingDiverged(RuntimeError):
    """Raised on a non-finite loss; the run is failed with this message as its reason."""


StepCallback = Callable[[int, float, float, float], None]  # step, loss, lr, elapsed_s


def encode_example(
    tokenizer: TextTokenizer, prompt: str, target: str, max_length: int
) -> tuple[list[int], list[int]]:
    """(input ids, labels) with the prompt masked out and an EOS after the target."""
    prompt_ids = tokenizer.encode(prompt)
    target_ids = tokenizer.encode(target) + [tokenizer.eos_token_id]
    ids = (prompt_ids + target_ids)[-max_length:]  # keep the target if the prompt is too long
    labels = ([IGNORE] * len(prompt_ids) + target_ids)[-max_length:]
    return ids, labels


def prompt_length(labels: Sequence[int]) -> int:
    """Prompt tokens of an encoded example: the masked labels before its first target token
    (after `encode_example`'s truncation; the target always holds at least the EOS)."""
    return next((i for i, label in enumerate(labels) if label != IGNORE), len(labels))


def collate(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad: absolute positions of real tokens stay the same as in unbatched use.

    `prompt_lengths` (B,) says where each row's prompt ends, so a variant that routes prompt
    chunks from the prompt at prefill routes a training row the same way (the forward's
    `prompt_lengths`).
    """
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, lab) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(lab)] = torch.tensor(lab)
        attention[i, : len(ids)] = 1
    prompts = torch.tensor([prompt_length(lab) for _, lab in rows], dtype=torch.long)
    return {
        "input_ids": input_ids,
        "labels": labels,
        "attention_mask": attention,
        "prompt_lengths": prompts,
    }


def batch_order(n_examples: int, steps: int, batch_size: int, seed: int) -> list[list[int]]:
    """Example indices per step, epoch-wise shuffles from one seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    order: list[int] = []
    while len(order) < steps * batch_size:
        order.extend(torch.randperm(n_examples, generator=generator).tolist())
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(steps)]


def lr_at(step: int, plan: TrainPlan) -> float:
    if step < plan.warmup_steps:
        return plan.learning_rate * (step + 1) / plan.warmup_steps
    span = max(1, plan.steps - plan.warmup_steps)
    progress = (step - plan.warmup_steps) / span
    return plan.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def training_loss(
    model: nn.Module, batch: dict[str, torch.Tensor], extras: Sequence[dict]
) -> torch.Tensor:
    """One batch's training objective: answer-token cross-entropy plus the variant's
    auxiliary loss. Shared by training and by the tensor-memory probe of a training step.

    The model's hooks (`engine.variants.base.AdapterModel`, defaults there):
    `set_batch_extras(list[dict])` receives the batch's per-example extras (e.g. V2's relevant
    passage) before the forward; `auxiliary_loss()` after the forward returns a tensor added
    to the loss (or None).
    """
    model.set_batch_extras(list(extras))
    logits = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        prompt_lengths=batch["prompt_lengths"],
    ).logits
    loss = nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
        batch["labels"][:, 1:].reshape(-1),
        ignore_index=IGNORE,
    )
    aux = model.auxiliary_loss()
    return loss if aux is None else loss + aux


def train_adapter(
    model: nn.Module,
    tokenizer: TextTokenizer,
    examples: Sequence[tuple[str, str]] | Sequence[tuple[str, str, dict]],
    plan: TrainPlan,
    device: torch.device,
    on_step: StepCallback | None = None,
) -> float:
    """Train the trainable parameters on (prompt, target[, extras]) items; returns the last loss.

    The loss is `training_loss` (with its hooks); the model's `after_optimizer_step()` runs
    after every step (e.g. V3's clamp; a no-op by default).
    The forward gets each row's `prompt_lengths` (where its prompt ends), as generation's
    prefill does, so prompt-routed variants train on the routing they run with.
    """
    torch.manual_seed(plan.seed)
    encoded = [encode_example(tokenizer, item[0], item[1], plan.max_length) for item in examples]
    extras = [item[2] if len(item) > 2 else {} for item in examples]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=plan.learning_rate, weight_decay=plan.weight_decay)
    model.train()
    started = time.perf_counter()
    loss_value = float("nan")
    for step, indices in enumerate(
        batch_order(len(encoded), plan.steps, plan.batch_size, plan.seed)
    ):
        lr = lr_at(step, plan)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = {
            k: v.to(device)
            for k, v in collate([encoded[i] for i in indices], tokenizer.pad_token_id).items()
        }
        loss = training_loss(model, batch, [extras[i] for i in indices])
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise TrainingDiverged(f"non-finite loss ({loss_value}) at step {step + 1}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, plan.gradient_clip)
        optimizer.step()
        model.after_optimizer_step()
        if on_step is not None:
            on_step(step + 1, loss_value, lr, time.perf_counter() - started)
    model.eval()
    return loss_value
