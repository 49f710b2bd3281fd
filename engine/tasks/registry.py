"""`data.task` -> Task. New tasks register here; the spec validates names against this list."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.tasks.base import Task
from store.errors import BemctlError

# Task name -> its metric names (kept here, import-light, so specs validate without torch).
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "synthetic_qa": ("exact_match", "f1"),
    "jsonl_qa": ("exact_match", "f1"),
    "retrieval_qa": ("exact_match", "f1"),
    "synthetic_translation": ("chrf", "bleu"),
    "synthetic_json": ("validity", "field_exact_match"),
    "synthetic_mixed": ("exact_match", "f1", "format_validity"),
    # engine.evaluation.violations.SAFETY_METRICS; each applies to part of the examples
    "synthetic_safety": ("violation_rate", "over_refusal", "exact_match", "f1"),
    "jsonl_safety": ("violation_rate", "over_refusal", "exact_match", "f1"),
}
TASK_NAMES = tuple(TASK_METRICS)
# tasks that read data.train_file and data.eval_file (both required), and only they
FILE_TASKS: tuple[str, ...] = ("jsonl_qa", "jsonl_safety")


def build_task(data, resolve: Callable[[Path], Path], where: Path) -> Task:
    """The Task a spec's `data` section asks for; file paths resolve against the spec."""
    from engine.tasks.qa_task import JsonlQATask, SyntheticQATask

    if data.task == "synthetic_qa":
        return SyntheticQATask(data.n_facts)
    if data.task in FILE_TASKS and (data.train_file is None or data.eval_file is None):
        raise BemctlError(f"{where}: data: task {data.task!r} needs train_file and eval_file")
    if data.task == "jsonl_qa":
        return JsonlQATask(resolve(data.train_file), resolve(data.eval_file))
    if data.task == "retrieval_qa":
        from engine.tasks.retrieval_qa import RetrievalQATask

        return RetrievalQATask()
    if data.task == "synthetic_translation":
        from engine.tasks.translation import TranslationTask

        return TranslationTask()
    if data.task == "synthetic_json":
        from engine.tasks.structured import StructuredOutputTask

        return StructuredOutputTask()
    if data.task == "synthetic_mixed":
        from engine.tasks.mixed import MixedDomainTask

        return MixedDomainTask(data.n_facts)
    if data.task == "synthetic_safety":
        from engine.tasks.safety_task import SyntheticSafetyTask

        return SyntheticSafetyTask(data.n_facts)
    if data.task == "jsonl_safety":
        from engine.tasks.safety_task import JsonlSafetyTask

        return JsonlSafetyTask(resolve(data.train_file), resolve(data.eval_file))
    raise BemctlError(f"{where}: data.task: unknown task {data.task!r} (known: {TASK_NAMES})")
