"""What a valid spec points at, checked when it is validated or queued, not minutes later.

- `model.base_model`: the embedded model, or a local directory that can load without
  running its own code (`engine.models.hf_dir`); `model.max_length` within its positions
  (read from its config, never by loading weights); the variant's demands on its attention
  heads (`VariantConfig.model_problems`: V1's head groups must divide them).
- `data.train_file` / `data.eval_file` (tasks `jsonl_qa`, `jsonl_safety`): each exists, is
  a regular file within the size limit, is readable, and its first lines parse in the task's
  row format (`preview_qa_jsonl`, `preview_safety_jsonl`); the
  eval file holds at least 2 examples; a `train_size`/`eval_size` the spec sets is at most
  the number of examples in its file.
- `bem_config.stream_file` (OL): the same checks of its first lines; whether it is long
  enough for the plan's history, forgetting set and live batches is known once the plan is.

Every line names the spec file and the field, then what is wrong (with the data file, line
and field where it is in a data file).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from engine.models.hf_dir import check_base_model
from engine.tasks.jsonl import Preview, count_examples, preview_qa_jsonl
from engine.tasks.safety_jsonl import preview_safety_jsonl
from store.errors import BemctlError, shorten

if TYPE_CHECKING:
    from engine.spec import LoadedSpec

# task -> how its data files' first lines are checked (engine.tasks.registry.FILE_TASKS)
_PREVIEWS: dict[str, Callable[[Path], Preview]] = {
    "jsonl_qa": preview_qa_jsonl,
    "jsonl_safety": preview_safety_jsonl,
}


def environment_problems(loaded: LoadedSpec) -> list[str]:
    spec, path = loaded.spec, loaded.path
    problems: list[str] = []
    try:
        facts = check_base_model(spec.model.base_model)
    except BemctlError as exc:
        problems.append(f"{path}: {exc}")
    else:
        if facts.positions is not None and spec.model.max_length > facts.positions:
            problems.append(
                f"{path}: model.max_length: {spec.model.max_length} exceeds the "
                f"{facts.positions} positions of {shorten(facts.name)} ({facts.positions_key} "
                f"in its config); at most {facts.positions}"
            )
        problems.extend(f"{path}: {line}" for line in spec.bem_config.model_problems(facts.heads))
    if spec.data.task in _PREVIEWS:
        problems.extend(_data_file_problems(loaded, _PREVIEWS[spec.data.task]))
    stream_file = getattr(spec.bem_config, "stream_file", None)
    if stream_file is not None:  # OL's JSONL stream; its length is checked against the plan
        try:
            preview_qa_jsonl(loaded.resolve(Path(stream_file)))
        except BemctlError as exc:
            problems.append(f"{path}: bem_config.stream_file: {exc}")
    return problems


def _data_file_problems(loaded: LoadedSpec, preview_file: Callable[[Path], Preview]) -> list[str]:
    path, data = loaded.path, loaded.spec.data
    problems = []
    explicit = data.model_fields_set
    for field, size_field, minimum in (
        ("train_file", "train_size", 1),
        ("eval_file", "eval_size", 2),
    ):
        value = getattr(data, field)
        if value is None:  # ExperimentSpec refused this already
            continue
        file = loaded.resolve(value)
        try:
            preview = preview_file(file)
            total = preview.total
            if total is not None and total < minimum:
                raise BemctlError(f"{file}: need at least {minimum} examples (got {total})")
            if size_field in explicit:
                wanted = getattr(data, size_field)
                total = total if total is not None else count_examples(file)
                if wanted > total:
                    problems.append(
                        f"{path}: data.{size_field}: {wanted:,} is more than the {total:,} "
                        f"examples in {file}"
                    )
        except BemctlError as exc:
            problems.append(f"{path}: data.{field}: {exc}")
    return problems
