"""What V2's report reads about its gate shaping: how far the gates moved from identity, the
focus strengths, how often the re-ranker ranked the relevant passage first, and whether
switching the shaping off changes any answer (none: the mechanism is a no-op on this run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from engine.evaluation.dynamics import gate_movement
from engine.evaluation.generation import greedy_generate

if TYPE_CHECKING:
    from engine.variants.gateshape.model import GateShapingModel


@torch.no_grad()
def shaping_statistics(
    model: GateShapingModel,
    tokenizer,
    task,
    examples,
    predictions,
    device,
    *,
    max_new_tokens: int,
    max_length: int,
) -> dict:
    """How far the gates moved from identity over the eval prompts (mean |g - 1| per layer
    and head group), the focus strengths, how often the re-ranker put the relevant passage
    first, and how many greedy answers change when the shaping is switched off (gates 1,
    focus 0: the static LoRA part alone). Answers changed = 0: the mechanism is a no-op on
    this run, whatever else the run shows."""
    model.eval()
    room = max(1, max_length - max_new_tokens)
    gates, ranked_right, ranked = [], 0, 0
    changed = score_changed = 0
    metric = next((m.name for m in task.metrics if m.name == "exact_match"), None)
    for example in examples:
        ids = torch.tensor([tokenizer.encode(example.prompt)[-room:]], device=device)
        found = model.prompt_gates(ids)
        if found is not None:
            gates.append(found[0].cpu())
            relevant = example.features.get("relevant_passage")
            if relevant is not None:
                ranked += 1
                ranked_right += int(found[1] == int(relevant))
        with model.gates_at_identity():
            plain = greedy_generate(
                model, tokenizer, example.prompt, max_new_tokens, device, max_length
            )
        gated = predictions.get(example.id, "")
        changed += plain != gated
        if metric is not None:
            score_changed += task.score_example(metric, plain, example) != (
                task.score_example(metric, gated, example)
            )
    n = len(examples)
    movement = gate_movement(
        torch.stack(gates) if gates else torch.empty(0, *model.gates.bias.shape)
    )
    return {
        "gate_movement": {
            **movement,
            "unit": "prompts",
            "prompts": n,
            "prompts_gated": len(gates),
            "answers_changed": changed,
            "share_changed": changed / n if n else None,
            "exact_match_changed": score_changed if metric is not None else None,
            "reranker_top1": ranked_right / ranked if ranked else None,
            "focus_strength": model.focus_strength().detach().cpu().tolist(),
            "no_op": changed == 0,
        }
    }
