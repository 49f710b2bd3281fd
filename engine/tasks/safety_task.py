"""The safety tasks as Tasks: `synthetic_safety` (engine.tasks.safety) and `jsonl_safety`.

Both give three disjoint splits: `make_splits` (train, eval = the test split) and
`make_validation`, the split a caller tunes an operating point on (a threshold, a curve
point) so that the test split is read once, for the final numbers. Scores come from the
violation detector (`engine.evaluation.violations`); a metric that does not apply to an
example scores 0.0 there, and `metric_applies` / features["applies"] say where it applies.

`jsonl_safety` validation split: a deterministic carve-out of the train file, the rows whose
prompt's SHA-256 falls in the first `VALIDATION_SHARE` (one fifth) of the hash range. It
depends on the prompt text alone, so it is the same for every seed and run, rows with the
same prompt land on the same side, and no spec field is needed; `make_splits` trains on the
other rows. The eval file is refused if a prompt of it occurs anywhere in the train file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from engine.evaluation.violations import SAFETY_METRICS, applicability, classify, metric_applies
from engine.tasks.base import MetricSpec, Task, TaskExample, disjoint_splits
from engine.tasks.safety import DEFAULT_REFUSE_SHARE, generate, make_example
from engine.tasks.safety_jsonl import SafetyRow, load_safety_jsonl
from store.errors import BemctlError

VALIDATION_SHARE = 0.2
MIN_EVAL = 2  # as jsonl_qa: a paired test needs two examples


class SafetyTask(Task):
    """Scoring shared by both safety tasks; subclasses provide the splits."""

    metrics = tuple(MetricSpec(m) for m in SAFETY_METRICS)

    def score_example(self, metric: str, prediction: str, example: TaskExample) -> float:
        self.metric(metric)  # unknown metric: the base class's KeyError, naming the task
        return classify(prediction, example).score(metric)

    def metric_applies(self, metric: str, example: TaskExample) -> bool:
        """Whether `metric`'s score on `example` counts toward its rate."""
        return metric_applies(metric, example)

    def make_validation(self, n: int, seed: int) -> list[TaskExample]:
        """`n` examples disjoint from every train and eval example of `make_splits`."""
        raise NotImplementedError


class SyntheticSafetyTask(SafetyTask):
    name = "synthetic_safety"

    def __init__(self, n_facts: int = 4, refuse_share: float = DEFAULT_REFUSE_SHARE) -> None:
        if n_facts < 2:
            raise BemctlError(f"synthetic_safety: n_facts must be >= 2 (got {n_facts})")
        if not 0.0 <= refuse_share <= 1.0:
            raise BemctlError(
                f"synthetic_safety: refuse_share must be within 0..1 ({refuse_share})"
            )
        self.n_facts, self.refuse_share = n_facts, refuse_share

    def make_splits(
        self, n_train: int, n_eval: int, seed: int
    ) -> tuple[list[TaskExample], list[TaskExample]]:
        return disjoint_splits(
            lambda split, i: make_example(seed, split, i, self.n_facts, self.refuse_share),
            n_train,
            n_eval,
            key=lambda ex: ex.prompt,
        )

    def make_validation(self, n: int, seed: int) -> list[TaskExample]:
        return generate(n, seed, "validation", self.n_facts, self.refuse_share)


def to_task_example(row: SafetyRow) -> TaskExample:
    features = {
        "must_refuse": row.must_refuse,
        "protected": list(row.protected),
        "applies": applicability(row.must_refuse),
    }
    return TaskExample(row.id, row.prompt, row.answers, features)


def in_validation(prompt: str) -> bool:
    """Whether a train-file row with this prompt belongs to the validation carve-out."""
    digest = hashlib.sha256(prompt.encode()).digest()
    return int.from_bytes(digest[:8], "big") < VALIDATION_SHARE * 2**64


class JsonlSafetyTask(SafetyTask):
    """The user's own safety data; sizes cap how many rows of each split are used."""

    name = "jsonl_safety"

    def __init__(self, train_file: Path, eval_file: Path) -> None:
        self.train_file, self.eval_file = train_file, eval_file

    def _train_rows(self) -> list[SafetyRow]:
        return load_safety_jsonl(self.train_file)

    def make_splits(
        self, n_train: int, n_eval: int, seed: int
    ) -> tuple[list[TaskExample], list[TaskExample]]:
        rows = self._train_rows()
        evals = load_safety_jsonl(self.eval_file)[:n_eval]
        if len(evals) < MIN_EVAL:
            raise BemctlError(
                f"{self.eval_file}: need at least {MIN_EVAL} eval examples (got {len(evals)})"
            )
        _refuse_overlap(rows, evals, self.eval_file)
        train = [r for r in rows if not in_validation(r.prompt)][:n_train]
        return [to_task_example(r) for r in train], [to_task_example(r) for r in evals]

    def make_validation(self, n: int, seed: int) -> list[TaskExample]:
        rows = self._train_rows()
        carved = [r for r in rows if in_validation(r.prompt)]
        if len(carved) < min(n, MIN_EVAL):
            raise BemctlError(
                f"{self.train_file}: {len(carved)} of its {len(rows)} rows fall in the "
                f"validation carve-out (about {VALIDATION_SHARE:.0%}); need at least "
                f"{min(n, MIN_EVAL)}"
            )
        return [to_task_example(r) for r in carved[:n]]


def _refuse_overlap(train: Sequence[SafetyRow], evals: Sequence[SafetyRow], where: Path) -> None:
    overlap = {r.prompt for r in train} & {r.prompt for r in evals}
    if overlap:
        raise BemctlError(f"{where}: {len(overlap)} eval examples also occur in train_file")
