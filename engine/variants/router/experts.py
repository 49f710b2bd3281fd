"""Stage 1 of the router: train expert k on domain k by teacher forcing.

Why teacher forcing: before the policy knows anything, routing by the policy would hand each
expert a random mix of domains. Forcing every chunk of an example onto its domain's expert (at
full rank budget and bias 1.0, i.e. the expert as it will be applied) gives each expert only
its own domain, while the trust-region projection stays in the graph exactly as at inference.
The policy and value networks are frozen during this stage (the forced plan bypasses them, and
AdamW's weight decay would otherwise still shrink them).

The optional orthogonality penalty Σ_layers Σ_{i≠j} ‖U_iᵀ U_j‖_F² keeps the experts' output
subspaces apart while they train (the issue asks for experts kept apart; the orthogonal V
init alone does not constrain U, which starts at zero). It is unnormalised, so its weight is
in the units of U's squared entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from engine.models.tokenizer import TextTokenizer
from engine.tasks.base import Task, TaskExample
from engine.tasks.mixed import DOMAINS
from engine.training import StepCallback, TrainPlan, train_adapter
from engine.variants.router.data import batches, encode_batch, full_action, position_losses

if TYPE_CHECKING:
    from engine.variants.router.model import RouterModel


def domain_expert(example: TaskExample, domains: Sequence[str] = DOMAINS) -> int:
    """Expert id of an example: the index of its output domain (expert k = domains[k])."""
    return domains.index(example.features["domain"])


def orthogonality_penalty(model: RouterModel) -> torch.Tensor:
    """Σ over adapted layers of Σ_{i≠j} ‖U_iᵀ U_j‖_F² (U_k: expert k's columns of lora_u).

    Computed from one (K·r x K·r) Gram matrix per layer: its squared entries summed outside
    the K diagonal r x r blocks.
    """
    k, r = model.config.n_experts, model.config.rank_dimension
    block = torch.block_diag(*[torch.ones(r, r)] * k)
    total: torch.Tensor | None = None
    for layer in model.lora_layers.values():
        gram = layer.lora_u.t() @ layer.lora_u
        off = (gram.pow(2) * (1 - block.to(gram))).sum()
        total = off if total is None else total + off
    assert total is not None
    return total


class _TeacherForced(nn.Module):
    """`train_adapter`'s view of the router: each batch's extras carry its forced plans.

    It implements the training hooks of the variant contract (`AdapterModel`) itself."""

    def __init__(self, router: RouterModel, orthogonality_weight: float) -> None:
        super().__init__()
        self.router = router
        self.orthogonality_weight = orthogonality_weight

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        prompt_lengths: torch.Tensor | None = None,  # unused: the plans are forced
    ):
        return self.router(input_ids=input_ids, attention_mask=attention_mask)

    def set_batch_extras(self, extras: list[dict]) -> None:
        self.router.forced_plans = [e["plan"] for e in extras]

    def auxiliary_loss(self) -> torch.Tensor | None:
        if not self.orthogonality_weight:
            return None
        return self.orthogonality_weight * orthogonality_penalty(self.router)

    def after_optimizer_step(self) -> None:
        self.router.after_optimizer_step()


@dataclass(frozen=True)
class ExpertStageResult:
    final_loss: float  # last step's loss (LM loss + penalty)
    overlap: list[list[float]]  # RouterModel.expert_overlap() after training (K x K)

    @property
    def mean_off_diagonal_overlap(self) -> float:
        k = len(self.overlap)
        off = [self.overlap[i][j] for i in range(k) for j in range(k) if i != j]
        return sum(off) / len(off) if off else 0.0


def train_experts(
    model: RouterModel,
    tokenizer: TextTokenizer,
    task: Task,
    train_examples: Sequence[TaskExample],
    plan: TrainPlan,
    device: torch.device,
    on_step: StepCallback | None = None,
    *,
    orthogonality_weight: float = 0.0,
    domains: Sequence[str] = DOMAINS,
) -> ExpertStageResult:
    """Teacher-forced expert training (module doc); returns the last loss and the overlap.

    Every chunk of an example is routed to `full_action(domain_expert(example))`; a forced
    plan of one action covers the whole sequence (RouterModel repeats a plan's last action).
    """
    if len(domains) != model.config.n_experts:
        raise ValueError(f"{len(domains)} domains for {model.config.n_experts} experts")
    if orthogonality_weight < 0:
        raise ValueError(f"orthogonality_weight must be >= 0 (got {orthogonality_weight})")
    items = [
        (
            ex.prompt,
            task.target(ex),
            {"plan": [full_action(model.space, domain_expert(ex, domains))]},
        )
        for ex in train_examples
    ]
    frozen = [p for p in (*model.policy.parameters(), *model.value.parameters()) if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        loss = train_adapter(
            _TeacherForced(model, orthogonality_weight), tokenizer, items, plan, device, on_step
        )
    finally:
        model.forced_plans = None
        for p in frozen:
            p.requires_grad_(True)
    return ExpertStageResult(loss, model.expert_overlap().tolist())


@torch.no_grad()
def expert_losses(
    model: RouterModel,
    tokenizer: TextTokenizer,
    task: Task,
    examples: Sequence[TaskExample],
    device: torch.device,
    max_length: int,
    batch_size: int = 16,
) -> torch.Tensor:
    """(N, K) mean target-token loss of each example with expert k applied to every chunk.

    The report's per-domain expert table, and the check that expert training worked: an
    expert should have the lowest loss on its own domain.
    """
    model.eval()
    k = model.config.n_experts
    out = []
    try:
        for chunk in batches(examples, batch_size):
            batch = encode_batch(tokenizer, task, chunk, max_length, device)
            scored = batch.scored().float()
            columns = []
            for expert in range(k):
                model.forced_plans = [[full_action(model.space, expert)]] * len(chunk)
                losses = position_losses(model, batch.input_ids, batch.attention_mask, batch.labels)
                columns.append((losses * scored).sum(1) / scored.sum(1).clamp_min(1))
            out.append(torch.stack(columns, 1))
    finally:
        model.forced_plans = None
    return torch.cat(out).cpu()
