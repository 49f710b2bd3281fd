"""An experiment's outcome as JSON, so the batch decision can run in another process.

A job's statistics are finished when its worker stops, but its verdict is not: the BH
adjustment needs every experiment of the batch, and the last one may finish on another
worker, hours later. The outcome therefore waits in the job row as JSON (readable, and
free of pickle's code-execution and version hazards).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any

import numpy as np

from engine.gates import Gate
from engine.plan import ExperimentPlan
from engine.sections import sections_from_json
from engine.spec import ExperimentSpec, LoadedSpec
from engine.stats import MetricComparison

FORMAT = 1


def encode_outcome(outcome: Any) -> str:
    """JSON of an `engine.runner.ExperimentOutcome` (everything the decision needs)."""
    data = {
        "format": FORMAT,
        "name": outcome.name,
        "spec_json": outcome.spec.spec.model_dump_json(),
        "spec_path": str(outcome.spec.path),
        "plan": dataclasses.asdict(outcome.plan),
        "metrics": [
            {
                "stats": dataclasses.asdict(m.stats),
                "seed_diffs": list(m.seed_diffs),
                "identical_to": m.identical_to,
            }
            for m in outcome.metrics
        ],
        "sections": [section.to_dict() for section in outcome.sections],
        "protocol_gates": [dataclasses.asdict(g) for g in outcome.protocol_gates],
        **{
            name: getattr(outcome, name)
            for name in (
                "experiment_id",
                "baseline_run_id",
                "variant_run_id",
                "param_ratio",
                "flop_ratio",
                "latency_ratio",
                "memory_ratio",
                "kv_hit_rate",
                "kv_hit_rate_baseline",
                "pregen_ms",
                "variant_stats",
                "baseline_stats",
                "seed_runs",
                "arms",
                "costs",
            )
        },
    }
    return json.dumps(data, default=_numpy_scalar)


def decode_outcome(text: str) -> Any:
    """The `ExperimentOutcome` that `encode_outcome` wrote (models and tensors excluded)."""
    from engine.outcome import ExperimentOutcome, MetricOutcome

    data = json.loads(text)
    if data.get("format") != FORMAT:
        raise ValueError(f"outcome format {data.get('format')!r}, expected {FORMAT}")
    spec = LoadedSpec(
        spec=ExperimentSpec.model_validate_json(data.pop("spec_json")),
        path=Path(data.pop("spec_path")),
    )
    plan = _build(ExperimentPlan, data.pop("plan"))
    metrics = [
        MetricOutcome(
            _build(MetricComparison, m["stats"]),
            list(m["seed_diffs"]),
            identical_to=m.get("identical_to"),
        )
        for m in data.pop("metrics")
    ]
    data.pop("format")
    sections = sections_from_json(data.pop("sections", None))
    protocol_gates = [Gate(**g) for g in data.pop("protocol_gates", None) or []]
    return ExperimentOutcome(
        spec=spec,
        plan=plan,
        metrics=metrics,
        sections=sections,
        protocol_gates=protocol_gates,
        **data,
    )


def _numpy_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot encode {type(value).__name__}")


def _build(cls: type, data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {
        f.name: _coerce(hints[f.name], data[f.name])
        for f in dataclasses.fields(cls)
        if f.name in data
    }
    return cls(**kwargs)


def _coerce(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(options[0], value) if len(options) == 1 else value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value)  # type: ignore[arg-type]
    if origin is tuple or tp is tuple:
        return tuple(value)
    return value
