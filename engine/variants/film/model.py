"""V4: the outputs of a few transformer blocks become γ ⊙ h + β, with γ, β set by the prompt.

Why a running mean of the prefix, not "the prompt": during training the model sees prompt and
answer as one sequence and cannot know where the prompt ends, and pooling the whole sequence
would leak the answer tokens into the modulation of the positions that predict them. So the
controller's input at position t is the mean input embedding of tokens 0..t (causal, the same
in training and generation). At generation time the prompt is pooled once at prefill and the
running sum is kept in `routing_cache`; each decode step adds one embedding to it, so cached
decoding is exact and O(1) per token.

Why this controller: pooled features are layer-normalised (no parameters: embedding scales
differ across base models), projected to `controller_rank`, squashed with tanh, and expanded to
(Δγ, β) per FiLM layer and channel. The expansion is zero-initialised, so γ = 1 and β = 0 at
init and the variant starts exactly at its static-LoRA baseline; its bias is a static per-channel
FiLM, the rank-k part the prompt-dependent one. Clamping happens in the fused op (`film`).
"""

from __future__ import annotations

import torch
from torch import nn

from engine.variants.base import AdapterModel
from engine.variants.film.config import ResidualFilmConfig
from store.errors import BemctlError
from triton_ops.film import film


def transformer_blocks(model: nn.Module) -> nn.ModuleList:
    """The model's stack of blocks: its longest ModuleList (GPT-2 `transformer.h`, Llama
    `model.layers`); a heuristic, but every decoder-only HF model we target has that shape."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) > 0]
    if not lists:
        raise BemctlError(f"residual_film: {type(model).__name__} has no stack of blocks")
    return max(lists, key=len)


def prefix_means(
    embed: nn.Module,
    input_ids: torch.Tensor,
    context_ids: torch.Tensor | None,
    routing_cache: dict | None,
) -> torch.Tensor:
    """(B, T, d): mean input embedding of tokens 0..t for every current position t.

    Reuses the running sum in `routing_cache` when it covers exactly the context, so decode
    steps embed only the new token; otherwise pools context + input from scratch.
    """
    length = input_ids.shape[1]
    start = 0 if context_ids is None else context_ids.shape[1]
    cached = routing_cache.get("film_sum") if routing_cache is not None else None
    with torch.no_grad():
        if (
            cached is not None
            and routing_cache.get("film_count") == start
            and cached.shape[0] == input_ids.shape[0]
        ):
            sums = cached[:, None] + embed(input_ids).cumsum(1)
        else:
            all_ids = input_ids if context_ids is None else torch.cat([context_ids, input_ids], 1)
            sums = embed(all_ids).cumsum(1)[:, start:]
        if routing_cache is not None:
            routing_cache.update(film_sum=sums[:, -1], film_count=start + length)
        counts = torch.arange(start + 1, start + length + 1, device=input_ids.device)
        return sums / counts[None, :, None].to(sums.dtype)


class FilmController(nn.Module):
    """Pooled features (…, d) -> raw (γ, β), each (…, n_layers, d); identity at init."""

    def __init__(self, dim: int, rank: int, n_layers: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.dim, self.n_layers = dim, n_layers
        self.down = nn.Linear(dim, rank, dtype=dtype)
        self.up = nn.Linear(rank, n_layers * 2 * dim, dtype=dtype)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        normed = nn.functional.layer_norm(features, (self.dim,))
        out = self.up(torch.tanh(self.down(normed)))
        out = out.view(*features.shape[:-1], self.n_layers, 2, self.dim)
        return 1.0 + out[..., 0, :], out[..., 1, :]


class ResidualFilmModel(AdapterModel):
    config: ResidualFilmConfig

    def __init__(self, base_model: nn.Module, config: ResidualFilmConfig) -> None:
        super().__init__(base_model, config)
        blocks = transformer_blocks(base_model)
        bad = [i for i in config.film_layers if i >= len(blocks)]
        if bad:
            raise BemctlError(
                f"bem_config.film_layers {bad} out of range: the model has {len(blocks)} blocks"
            )
        embeddings = base_model.get_input_embeddings()
        self.controller = FilmController(
            embeddings.embedding_dim,
            config.controller_rank,
            len(config.film_layers),
            embeddings.weight.dtype,
        )
        self.bounds = (tuple(config.gamma_range), tuple(config.beta_range))
        self._film: tuple[torch.Tensor, torch.Tensor] | None = None  # raw γ, β (B, T, L, d)
        self._hooks = [
            blocks[i].register_forward_hook(self._modulate_hook(k))
            for k, i in enumerate(config.film_layers)
        ]

    def _modulate_hook(self, slot: int):
        def hook(module: nn.Module, args: tuple, output):
            if self._film is None:  # base model called directly: no modulation
                return None
            gamma, beta = self._film[0][:, :, slot], self._film[1][:, :, slot]
            if isinstance(output, tuple):  # older transformers return (h, present, ...)
                return (film(output[0], gamma, beta, self.bounds), *output[1:])
            return film(output, gamma, beta, self.bounds)

        return hook

    def prepare(
        self,
        input_ids: torch.Tensor,
        context_ids: torch.Tensor | None,
        routing_cache: dict | None = None,
        prompt_lengths: torch.Tensor | None = None,  # not read: routing is causal throughout
    ) -> None:
        embed = self.base_model.get_input_embeddings()
        features = prefix_means(embed, input_ids, context_ids, routing_cache)
        self._film = self.controller(features)

    def release(self) -> None:
        super().release()
        self._film = None

    def after_optimizer_step(self) -> None:
        """Nothing to do: the clamp is applied in every forward, not to the parameters."""
