"""Greedy decoding with a KV cache, written out so chunk-sticky variants see their context.

Hugging Face `generate` would hide the ids before the newest token from the adapter; we pass
them as `context_ids` so a variant can route the current chunk from the previous one, and the
prompt's length (`prompt_lengths`, every call) so it can route the prompt's chunks from the
prompt at prefill. `routing` records the fed ids (`"ids"`) and the prompt length
(`"prompt_length"`); a variant adds what it decided and `"pregen_ms"`, the time of its
once-per-prompt routing at prefill (reported as the pre-generation phase).
"""

from __future__ import annotations

import torch
from torch import nn

from engine.models.tokenizer import TextTokenizer


@torch.no_grad()
def greedy_generate(
    model: nn.Module,
    tokenizer: TextTokenizer,
    prompt: str,
    max_new_tokens: int,
    device: torch.device,
    max_length: int,
    stop_early: bool = True,
    routing: dict | None = None,
) -> str:
    """Decode until EOS or a newline (the task's stop signal) or the token budget.

    `stop_early=False` always decodes `max_new_tokens` tokens: latency probes use it so that
    both arms do identical work whatever they happen to answer.
    """
    room = max(1, max_length - max_new_tokens)
    ids = torch.tensor([tokenizer.encode(prompt)[-room:]], device=device)
    if routing is None:
        routing = {}  # per-sequence routing decisions a variant may reuse across steps
    # the prefill is the prompt: variants route its chunks from it (a pre-generation phase)
    prompt_lengths = torch.tensor([ids.shape[1]], device=device)
    routing["prompt_length"] = ids.shape[1]
    out = model(input_ids=ids, use_cache=True, routing_cache=routing, prompt_lengths=prompt_lengths)
    past = out.cache
    context = ids
    generated: list[int] = []
    for _ in range(max_new_tokens):
        next_id = int(out.logits[0, -1].argmax())
        if stop_early and next_id == tokenizer.eos_token_id:
            break
        generated.append(next_id)
        if stop_early and "\n" in tokenizer.decode(generated[-4:]):
            break
        step = torch.tensor([[next_id]], device=device)
        out = model(
            input_ids=step,
            cache=past,
            context_ids=context,
            use_cache=True,
            routing_cache=routing,
            prompt_lengths=prompt_lengths,
        )
        past = out.cache
        context = torch.cat([context, step], dim=1)
    routing["ids"] = context  # every id that went through the model, for cache checks
    return tokenizer.decode(generated).split("\n", 1)[0].strip()
