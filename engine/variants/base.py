"""The interface every adapter variant implements, and the LoRA plumbing they share.

A variant wraps a frozen causal LM, swaps target projections for adapter layers, and exposes
one forward that also takes the ids *before* the current input (`context_ids`), because
chunk-sticky variants decide a chunk's routing from the chunk before it, also during
cached generation where the model only sees the newest token, and where each row's prompt
ends (`prompt_lengths`), because chunks holding prompt tokens are routed at prefill from the
prompt itself (`engine.variants.prompt_routing`).
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from engine.variants.config_base import VariantConfig
from triton_ops import masked_lora


class LoraLayer(nn.Module):
    """A frozen projection plus a rank-r update; reads an optional per-token rank mask."""

    def __init__(self, base: nn.Module, rank: int, scaling: float, block_index: int) -> None:
        super().__init__()
        self.base = base
        self.is_conv1d = type(base).__name__ == "Conv1D"  # GPT-2 stores W as (in, out)
        if self.is_conv1d:
            in_features, out_features = base.weight.shape
        elif isinstance(base, nn.Linear):
            out_features, in_features = base.weight.shape
        else:
            raise TypeError(f"cannot adapt {type(base).__name__}: only Linear and GPT-2 Conv1D")
        self.in_features, self.out_features = in_features, out_features
        self.rank, self.scaling, self.block_index = rank, scaling, block_index
        weight = base.weight
        self.lora_v = nn.Parameter(torch.empty(in_features, rank, dtype=weight.dtype))
        self.lora_u = nn.Parameter(torch.zeros(out_features, rank, dtype=weight.dtype))
        nn.init.kaiming_uniform_(self.lora_v.t(), a=math.sqrt(5))  # as peft: B=0, A random
        self.mask: torch.Tensor | None = None  # (B, T, r), set by the owning model per forward
        # lora_v with a fixed mask already multiplied in (decode steps of one sequence):
        # x·(V diag m) = (x·V) ⊙ m, without a per-token elementwise op
        self.folded_v: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.base.weight if self.is_conv1d else self.base.weight.t()
        return masked_lora(
            x,
            weight,
            self.base.bias,
            self.lora_v if self.folded_v is None else self.folded_v,
            self.lora_u,
            self.mask,
            self.scaling,
        )

    def delta_weight(self) -> torch.Tensor:
        """ΔW in (in, out) layout, for inspection and merging (static part, mask all-on)."""
        return self.scaling * (self.lora_v @ self.lora_u.t())


_BLOCK_RE = re.compile(r"\.(\d+)\.")


def inject_lora(model: nn.Module, config: VariantConfig) -> dict[str, LoraLayer]:
    """Replace every module whose name ends with a target suffix; refuse a config matching none."""
    targets = tuple(config.target_modules)
    replaced: dict[str, LoraLayer] = {}
    for name, module in list(model.named_modules()):
        leaf = name.rsplit(".", 1)[-1]
        if leaf not in targets or isinstance(module, LoraLayer):
            continue
        match = _BLOCK_RE.search(name + ".")
        block = int(match.group(1)) if match else 0
        parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
        layer = LoraLayer(module, config.rank_dimension, config.scaling, block)
        setattr(parent, leaf, layer)
        replaced[name] = layer
    if not replaced:
        raise ValueError(
            f"bem_config.target_modules {list(targets)} matched no module of the model"
        )
    return replaced


class AdapterModel(nn.Module):
    """Frozen base LM + adapters. Subclasses set per-forward state in `prepare(...)`.

    The variant contract (in the manner of peft's `LoraVariant`): every hook the training
    loop, the evaluation and the runner call is declared here with a default, and callers
    call it unconditionally (no probing with getattr/hasattr). A variant overrides what it
    needs:

    - `set_batch_extras(extras)`: the batch's per-example extras before the training forward
      (default: ignored)
    - `auxiliary_loss()`: a term added to the training loss after the forward (default None)
    - `after_optimizer_step()`: runs after every optimiser step (default: nothing)
    - `routes` / `routing_decisions(all_ids, prompt_lengths)` / `routing_unit`: per-position
      routing, for the KV-cache check and the routing dynamics (default: does not route,
      `routing_decisions` returns None)
    - `curve_quantity`: what the step rows measure (default None: the language-model loss)
    - `training_steps(plan)`: the step rows the arm's training writes (default plan.steps)
    - `has_own_training` / `train_arm(...)`: staged training instead of the standard loop
      (default: the runner's standard loop; `train_arm` refuses)
    - `has_variant_statistics` / `variant_statistics(...)`: what the variant measures about
      itself after evaluation (default: nothing, None)

    The flags must agree with the overrides: a subclass overriding `routing_decisions`,
    `train_arm` or `variant_statistics` without setting the flag (or the reverse) is refused
    when the class is defined.
    """

    routes: bool = False  # True: `routing_decisions` returns each position's routing
    routing_unit: str = "routing"  # what the dynamics report counts (engine.evaluation.dynamics)
    has_own_training: bool = False  # True: the runner trains the arm with `train_arm`
    has_variant_statistics: bool = False  # True: `variant_statistics` measures something

    _FLAGGED_HOOKS = (
        ("routes", "routing_decisions"),
        ("has_own_training", "train_arm"),
        ("has_variant_statistics", "variant_statistics"),
    )

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for flag, hook in AdapterModel._FLAGGED_HOOKS:
            overridden = getattr(cls, hook) is not getattr(AdapterModel, hook)
            if overridden != bool(getattr(cls, flag)):
                raise TypeError(
                    f"{cls.__name__}: {flag} = {getattr(cls, flag)} but {hook} is "
                    f"{'overridden' if overridden else 'the default'}; set both or neither"
                )

    def __init__(self, base_model: nn.Module, config: VariantConfig) -> None:
        super().__init__()
        for p in base_model.parameters():
            p.requires_grad_(False)
        self.base_model = base_model
        self.config = config
        self.lora_layers = inject_lora(base_model, config)
        self.n_blocks = 1 + max(layer.block_index for layer in self.lora_layers.values())

    def prepare(
        self,
        input_ids: torch.Tensor,
        context_ids: torch.Tensor | None,
        routing_cache: dict | None = None,
        prompt_lengths: torch.Tensor | None = None,
    ) -> None:
        """Per-forward routing state; the static baseline has none.

        `routing_cache` is a dict the caller keeps across the decode steps of one sequence,
        so routing decided once per chunk (or once per prompt) is not recomputed per token.
        `prompt_lengths` (B,): where each row's prompt ends, counted from position 0 (the
        training batch's masked prompt labels; the prefill length in generation); None = no
        prompt (routing is causal throughout), or the lengths the routing cache kept.
        """

    def forward(  # `cache`: transformers' KV cache (its forward argument since 5.x)
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: object | None = None,
        context_ids: torch.Tensor | None = None,
        use_cache: bool = False,
        routing_cache: dict | None = None,
        prompt_lengths: torch.Tensor | None = None,
    ):
        self.prepare(input_ids, context_ids, routing_cache, prompt_lengths=prompt_lengths)
        try:
            return self.base_model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                cache=cache,
                use_cache=use_cache,
            )
        finally:
            self.release()

    def release(self) -> None:
        """Drop per-forward state after every forward (subclasses extend it with their own)."""
        for layer in self.lora_layers.values():
            layer.mask = None
            layer.folded_v = None

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Only what training changed: what gets saved as the run's adapter weights."""
        return {
            n: p.detach().cpu().contiguous() for n, p in self.named_parameters() if p.requires_grad
        }

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        params = dict(self.named_parameters())
        missing = [n for n, p in params.items() if p.requires_grad and n not in state]
        if missing:
            raise KeyError(f"adapter weights miss {missing[:3]}")
        with torch.no_grad():
            for name, tensor in state.items():
                params[name].copy_(tensor)

    def delta_weights(self) -> dict[str, torch.Tensor]:
        return {name: layer.delta_weight() for name, layer in self.lora_layers.items()}

    # -- the variant contract: hooks with their defaults (see the class docstring) ---------
    def set_batch_extras(self, extras: list[dict]) -> None:
        """The training batch's per-example extras (task features), before its forward;
        the default ignores them."""

    def auxiliary_loss(self) -> torch.Tensor | None:
        """A term added to the training loss after the forward; None (the default): none."""
        return None

    def after_optimizer_step(self) -> None:
        """Runs after every optimiser step of the training loop; the default does nothing."""

    def routing_decisions(
        self, all_ids: torch.Tensor, prompt_lengths: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """(B, T, ...) routing every position of `all_ids` gets when the whole sequence is
        routed at once; None (the default, `routes` False): no per-position routing."""
        return None

    @property
    def curve_quantity(self) -> str | None:
        """What the arm's step rows measure (run.curve_quantity); None (the default): the
        language-model loss."""
        return None

    def training_steps(self, plan) -> int:
        """Step rows this arm's training writes; the default: the plan's steps."""
        return plan.steps

    def train_arm(self, tokenizer, task, train, plan, device, on_step=None, log=None) -> float:
        """Staged training of this arm, called by the runner instead of the standard loop
        (`engine.training.train_adapter`) when `has_own_training` is True; returns the last
        loss. The default has none and refuses."""
        raise NotImplementedError(f"{type(self).__name__} has no staged training")

    def variant_statistics(
        self, tokenizer, task, examples, predictions, device, **settings
    ) -> dict | None:
        """What the variant measures about itself after evaluation (JSON-ready), called when
        `has_variant_statistics` is True; None (the default): nothing."""
        return None

    def parameter_counts(self) -> tuple[int, int]:
        """(total, trainable), counting the frozen base too."""
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return total, trainable
