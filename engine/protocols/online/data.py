"""The examples one OL stream runs on: history, forgetting set, live batches, in one place.

Synthetic (the default): `stream.stream_batch` generates each batch from the seed; the
history is ceil(train_size / stream_batch_size) batches, the forgetting set `eval_size`
held-out examples of the history's world.

JSONL (`bem_config.stream_file`): the user's examples in file order (SQuAD-like lines, the
format and limits of `engine.tasks.jsonl`): the first `train_size` are the history, the next
`eval_size` the forgetting set, the rest the live part in batches of `stream_batch_size`
(at most the planned number of live batches). A file too short for that is refused.

Fault injection (`poison_batches`): in those live batches every answer is replaced by the
next example's (a rotation within the batch), so the references are wrong for the serving
model and what the shadow learns there is noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from engine.protocols.online.stream import forgetting_set, stream_batch
from engine.tasks.base import TaskExample
from engine.tasks.jsonl import load_qa_jsonl
from engine.tasks.qa import format_prompt
from engine.variants.online.config import OnlineShadowConfig
from store.errors import BemctlError


@dataclass(frozen=True)
class OnlineData:
    history: list[TaskExample]
    forgetting: list[TaskExample]
    live: list[list[TaskExample]]
    source: str  # "synthetic" or the stream file's path

    @property
    def live_examples(self) -> list[TaskExample]:
        return [ex for batch in self.live for ex in batch]


def poison(batch: list[TaskExample]) -> list[TaskExample]:
    """Scramble a batch's answers: each example gets the next one's references."""
    n = len(batch)
    return [
        replace(
            ex,
            references=batch[(i + 1) % n].references,
            features={**ex.features, "poisoned": True},
        )
        for i, ex in enumerate(batch)
    ]


def online_data(
    config: OnlineShadowConfig,
    *,
    seed: int,
    train_size: int,
    eval_size: int,
    quick: bool,
    resolve: Path,
) -> OnlineData:
    """`resolve`: the spec's folder, against which a relative `stream_file` is read."""
    n_live, size = config.live_batch_count(quick), config.stream_batch_size
    if config.stream_file is None:
        n_history = math.ceil(train_size / size)
        sizes = {"history_batches": n_history, "live_batches": n_live, "batch_size": size}
        history = [ex for i in range(n_history) for ex in stream_batch(seed, i, **sizes).examples][
            :train_size
        ]
        live = [list(stream_batch(seed, n_history + b, **sizes).examples) for b in range(n_live)]
        forgetting, source = forgetting_set(seed, eval_size), "synthetic"
    else:
        path = Path(config.stream_file)
        path = path if path.is_absolute() else resolve / path
        items = load_qa_jsonl(path)
        examples = [
            TaskExample(
                f"stream-{ex.id}",
                format_prompt(ex),
                ex.answers,
                {"context": ex.context, "question": ex.question, "phase": "file"},
            )
            for ex in items
        ]
        need = train_size + eval_size + 4 * size
        if len(examples) < need:
            raise BemctlError(
                f"{path}: {len(examples)} examples; the stream needs at least {need} "
                f"({train_size} history + {eval_size} forgetting + 4 live batches of {size})"
            )
        history = examples[:train_size]
        forgetting = examples[train_size : train_size + eval_size]
        rest = examples[train_size + eval_size :]
        live = [rest[i : i + size] for i in range(0, len(rest) - size + 1, size)][:n_live]
        source = str(path)
    live = [poison(batch) if b in config.poison_batches else batch for b, batch in enumerate(live)]
    return OnlineData(history, forgetting, live, source)
