"""VC's adapter: a task LoRA and a safety basis in one rank r+s LoRA, the basis scaled by α.

Columns [0, r) of every layer's factors are the task adapter, columns [r, r+s) the safety
basis; a forward multiplies the basis columns by α (`x·(V diag m)·Uᵀ`, m = (1…1, α…α)), so
one model gives the whole curve, α = 0 is exactly the task adapter (the basis columns add
0·finite = 0), and the GEMM shapes are the rank r+s static baseline's.

Training (`train_arm`), two stages sharing the plan's step budget:
1. the task adapter on the benign examples (α = 0, the basis held at its initialisation);
2. the safety basis on every example, must-refuse ones included, so it learns *when* to
   refuse (α = 1, the task columns held exactly as stage 1 left them).
The basis is kept orthogonal to the task subspace: at initialisation and, with
`orthogonality: projection`, after every step of stage 2 its V columns are projected off
the span of the task's V columns (and its U columns off the task's U span); with `penalty`
an overlap term joins the loss instead. `overlap()` measures what is left.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from engine.training import train_adapter
from engine.variants.base import AdapterModel, LoraLayer
from engine.variants.lora.config import LoraConfig
from engine.variants.safety.config import SafetyCurveConfig


def _project_off(columns: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """`columns` minus their component in span(`basis`) (both (d, k))."""
    q, _ = torch.linalg.qr(basis)
    return columns - q @ (q.t() @ columns)


def _inside_share(columns: torch.Tensor, basis: torch.Tensor) -> float:
    """‖P_basis · columns‖_F / ‖columns‖_F: 0 = orthogonal, 1 = inside the basis' span."""
    norm = float(columns.norm())
    if norm == 0.0:
        return 0.0
    q, _ = torch.linalg.qr(basis)
    return float((q.t() @ columns).norm()) / norm


class SafetyBasisModel(AdapterModel):
    has_own_training = True
    has_variant_statistics = True

    def __init__(self, base_model: nn.Module, config: SafetyCurveConfig) -> None:
        r, s = config.rank_dimension, config.safety_rank
        joint = LoraConfig(
            rank_dimension=r + s,
            lora_alpha=config.lora_alpha * (r + s) / r,  # the task adapter's alpha / r
            target_modules=config.target_modules,
        )
        super().__init__(base_model, joint)
        self.config = config
        self.task_rank, self.safety_rank = r, s
        self.alpha = 1.0
        self.selection: dict | None = None  # how the protocol chose the operating α
        self._folded: dict[str, torch.Tensor] = {}
        self._folded_alpha: float | None = None
        self._frozen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._frozen_part: slice | None = None
        with torch.no_grad():  # orthogonal initialisation of the basis' input directions
            for layer in self.lora_layers.values():
                layer.lora_v[:, r:] = _project_off(layer.lora_v[:, r:], layer.lora_v[:, :r])

    # -- the forward: one α for every layer ------------------------------------------------
    def set_alpha(self, alpha: float) -> None:
        if not 0.0 <= alpha <= 4.0:
            raise ValueError(f"α must lie in [0, 4] (got {alpha})")
        self.alpha = float(alpha)

    def prepare(self, input_ids, context_ids, routing_cache=None, prompt_lengths=None) -> None:
        # out of training the folded factors are kept per α: a decode step then costs what
        # the static LoRA's does (refolding every layer per token cost ~10% latency)
        cached = not self.training and self._folded_alpha == self.alpha
        for name, layer in self.lora_layers.items():
            if cached:
                layer.folded_v = self._folded[name]
                continue
            scale = torch.ones(layer.rank, dtype=layer.lora_v.dtype, device=layer.lora_v.device)
            scale[self.task_rank :] = self.alpha
            layer.folded_v = layer.lora_v * scale
            if not self.training:
                self._folded[name] = layer.folded_v.detach()
        self._folded_alpha = None if self.training else self.alpha

    def train(self, mode: bool = True):
        self._folded_alpha, self._folded = None, {}  # weights may change: refold
        return super().train(mode)

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self._folded_alpha, self._folded = None, {}
        super().load_trainable_state_dict(state)

    # -- training --------------------------------------------------------------------------
    def _hold(self, part: slice) -> None:
        """Keep columns `part` of every layer exactly as they are now (restored each step)."""
        self._frozen_part = part
        self._frozen = {
            name: (layer.lora_v[:, part].detach().clone(), layer.lora_u[:, part].detach().clone())
            for name, layer in self.lora_layers.items()
        }

    def after_optimizer_step(self) -> None:
        if self._frozen_part is None:
            return
        part, r = self._frozen_part, self.task_rank
        with torch.no_grad():
            for name, layer in self.lora_layers.items():
                v, u = self._frozen[name]
                layer.lora_v[:, part] = v
                layer.lora_u[:, part] = u
                if part.start == 0 and self.config.orthogonality == "projection":
                    layer.lora_v[:, r:] = _project_off(layer.lora_v[:, r:], layer.lora_v[:, :r])
                    if float(layer.lora_u[:, :r].norm()) > 0:
                        layer.lora_u[:, r:] = _project_off(layer.lora_u[:, r:], layer.lora_u[:, :r])

    def auxiliary_loss(self) -> torch.Tensor | None:
        if self.config.orthogonality != "penalty" or self._frozen_part != slice(0, self.task_rank):
            return None
        r, total = self.task_rank, None
        for layer in self.lora_layers.values():
            for factor in (layer.lora_v, layer.lora_u):
                task, basis = factor[:, :r].detach(), factor[:, r:]
                cross = (task.t() @ basis).pow(2).sum() / (task.pow(2).sum() + 1e-12)
                total = cross if total is None else total + cross
        assert total is not None
        return self.config.orthogonality_weight * total

    def stage_steps(self, steps: int) -> tuple[int, int]:
        """(task steps, safety steps) of a budget of `steps` (each at least 1)."""
        safety = min(steps - 1, max(1, round(steps * self.config.safety_share)))
        return steps - safety, safety

    def train_arm(self, tokenizer, task, train, plan, device, on_step=None, log=None) -> float:
        benign = [ex for ex in train if not ex.features.get("must_refuse")]
        if not benign:
            raise ValueError("the safety basis needs benign training examples for its task stage")
        n_task, n_safety = self.stage_steps(plan.steps)
        r = self.task_rank

        def pairs(examples):
            return [(ex.prompt, task.target(ex), ex.features) for ex in examples]

        self.set_alpha(0.0)
        self._hold(slice(r, r + self.safety_rank))
        train_adapter(
            self, tokenizer, pairs(benign), dataclasses.replace(plan, steps=n_task), device, on_step
        )
        if log is not None:
            log(f"safety basis: task stage done ({n_task} steps on {len(benign)} benign examples)")

        def shifted(step, loss, lr, elapsed):
            if on_step is not None:
                on_step(n_task + step, loss, lr, elapsed)

        self.set_alpha(1.0)
        self._hold(slice(0, r))
        loss = train_adapter(
            self,
            tokenizer,
            pairs(train),
            dataclasses.replace(plan, steps=n_safety, seed=plan.seed + 1),
            device,
            shifted,
        )
        self._frozen_part, self._frozen = None, {}
        return loss

    # -- what it measures about itself -----------------------------------------------------
    def variant_statistics(self, tokenizer, task, examples, predictions, device, **settings):
        """The α it was scored at, how that α was chosen, and the measured overlap."""
        return {"alpha": self.alpha, "selection": self.selection, "overlap": self.overlap()}

    def overlap(self) -> dict[str, float]:
        """Largest share, over layers, of the safety columns inside the task subspace."""
        r = self.task_rank
        worst = {"v": 0.0, "u": 0.0}
        for layer in self.lora_layers.values():
            layer: LoraLayer
            worst["v"] = max(
                worst["v"],
                _inside_share(layer.lora_v[:, r:].detach(), layer.lora_v[:, :r].detach()),
            )
            if float(layer.lora_u[:, :r].detach().norm()) > 0:
                worst["u"] = max(
                    worst["u"],
                    _inside_share(layer.lora_u[:, r:].detach(), layer.lora_u[:, :r].detach()),
                )
        return worst
