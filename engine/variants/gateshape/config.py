"""V2 knobs: head-group gating, the passage layout the re-ranker expects, and its loss weight.

`ranker_dim` is the re-ranker's projection width; its default (8) keeps the variant at +3.2%
trainable parameters over the static LoRA on the embedded GPT-2 (2·d·8 = 2,048 re-ranker
parameters plus 4 per gate: 4 layers · 4 head groups · 4 = 64); 12 would still fit (+4.8%).

`newline_token_id` is how the model finds line boundaries without a tokenizer: passages and the
question are lines of the prompt. The default 10 is "\\n" in the embedded byte tokenizer; a
Hugging Face model needs its own id (GPT-2 BPE: 198), and its prompts must not put two newlines
in a row (BPE merges them into one different token).
"""

from typing import Literal

from pydantic import Field

from engine.variants.config_base import VariantConfig


class GateShapingConfig(VariantConfig):
    """PT1 + gate shaping (re-ranked passages drive head-group attention gates)."""

    variant: Literal["pt1_gate_shaping"] = "pt1_gate_shaping"
    head_groups: int = Field(
        4, ge=1, description="attention heads of each layer split into this many gated groups"
    )
    n_passages: int = Field(
        4,
        ge=2,
        description="the prompt's first n_passages lines are passages, the next the question",
    )
    margin_loss_weight: float = Field(
        0.1, ge=0, description="weight of the re-ranking + margin-alignment auxiliary loss"
    )
    ranker_dim: int = Field(8, ge=1, le=256, description="projection width of the re-ranker")
    newline_token_id: int = Field(10, ge=0, description="token id that ends a line (byte 10)")
    focus_gain: float = Field(
        10.0,
        gt=0,
        description="evidence focus s = focus_gain · focus: the focus's effective step size",
    )
    min_temperature: float = Field(
        0.1, gt=0, lt=1, description="floor of the head-group gates' learned temperature"
    )

    def model_problems(self, heads: int | None) -> list[str]:
        if heads is not None and self.head_groups > heads:
            return [
                f"bem_config.head_groups: {self.head_groups} exceeds the model's {heads} "
                "attention heads"
            ]
        return []
