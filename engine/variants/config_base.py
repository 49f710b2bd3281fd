"""Config fields every adapter variant shares: the LoRA geometry its baseline is built from.

Each variant's config subclasses this, so the static-LoRA baseline of a comparison always has
exactly the variant's rank, scaling and target modules (same GEMM shapes, same data, same seed).

Every variant's number fields refuse booleans and strings (`rank_dimension: true` is not 1)
and non-finite floats: the rule lives in the base class (`engine.numbers.StrictNumbers`), so
a field a variant adds gets it without saying so.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from engine.numbers import StrictNumbers

GPT2_TARGETS = ["c_attn", "c_proj", "c_fc"]


class VariantConfig(StrictNumbers):
    model_config = ConfigDict(extra="forbid")

    variant: str
    rank_dimension: int = Field(8, ge=1, le=4096, description="LoRA rank r of every adapted layer")
    lora_alpha: float = Field(16.0, gt=0, description="scaling = lora_alpha / rank_dimension")
    target_modules: list[str] = Field(
        default_factory=lambda: list(GPT2_TARGETS),
        min_length=1,
        description="module-name suffixes to adapt (GPT-2: c_attn, c_proj, c_fc)",
    )

    @property
    def scaling(self) -> float:
        return self.lora_alpha / self.rank_dimension

    @property
    def baseline_rank_dimension(self) -> int:
        """Rank of the static-LoRA baseline: the variant's own, unless it holds several
        adapters (the router's experts), whose total it must then match."""
        return self.rank_dimension

    def baseline_variant_config(self) -> VariantConfig | None:
        """The baseline arm when it is another variant rather than a static LoRA (AR1's
        baseline is AR0); None = the static LoRA of `baseline_rank_dimension`."""
        return None

    @property
    def warm_starts_from_baseline(self) -> bool:
        """True when the variant arm continues training from the trained baseline arm (AR1
        refines AR0's policy), so the runner loads the baseline's adapter into it first."""
        return False

    def model_problems(self, heads: int | None) -> list[str]:
        """What this config asks of the base model that its `heads` attention heads per
        layer cannot give, as `bem_config.<field>: ...` lines; checked from the model's
        config.json when the spec is validated, before anything trains."""
        return []
