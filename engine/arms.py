"""What an arm was trained and evaluated under, and whether two arms may be compared.

A verdict says something about the variant only if its two arms differ in nothing else: same
plan (sizes, steps, batch, seeds, budgets), same base model, same evaluation examples in the
same positions, same kind of device. Each run stores its `ArmRecord` (run.plan_json), and the
one comparison below (`differences`) serves three checks, so they can never disagree:

- reuse: a finished arm of an earlier attempt of a job is reused only if its stored record
  equals the one this attempt would write (otherwise it is trained again, and the job's log
  says why) - so a reuse can never lead to a refused comparison;
- the runner refuses to compute statistics over arms whose stored records or scored example
  ids differ;
- the batch decision refuses, from the stored outcome, any comparison whose arms differ.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.plan import FrozenPlan, complete_plan_dict, field_differences
from engine.tasks.base import TaskExample

if TYPE_CHECKING:
    import torch

RECORD_FORMAT = 1


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def eval_fingerprint(examples: Sequence[TaskExample]) -> str:
    """Hash of the evaluation set as generated: every example's id, prompt, references and
    features, in order. Two arms with the same fingerprint were scored on the same examples."""
    return _digest([[ex.id, ex.prompt, list(ex.references), ex.features] for ex in examples])


def ids_fingerprint(example_ids: Sequence[str]) -> str:
    """Hash of the example ids an arm was scored on, in position order (what pairing uses)."""
    return _digest(list(example_ids))


@dataclass(frozen=True)
class ArmRecord:
    """The conditions of one arm, stored as run.plan_json.

    `plan` is the `ExperimentPlan` as JSON values; `pretrain` the embedded base model's
    pre-training plan (None for a local model); `device` the device type ("cpu", "cuda"):
    device and kernels are chosen by each worker, but two arms trained on different kinds of
    device are not the same procedure, so a comparison needs both on one kind.
    """

    plan: dict[str, Any]
    pretrain: dict[str, Any] | None
    adapter_key: str
    eval_fingerprint: str
    eval_size: int
    device: str

    @classmethod
    def of(
        cls,
        frozen: FrozenPlan,
        adapter_key: str,
        evals: Sequence[TaskExample],
        device: str,
    ) -> ArmRecord:
        return cls(
            frozen.experiment_dict(),  # JSON values, so it equals a record read back
            frozen.pretrain,
            adapter_key,
            eval_fingerprint(evals),
            len(evals),
            device,
        )

    def to_dict(self) -> dict[str, Any]:
        return {"format": RECORD_FORMAT, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArmRecord:
        """Raises ValueError when the record is from another format or incomplete."""
        if data.get("format") != RECORD_FORMAT:
            raise ValueError(f"arm record format {data.get('format')!r}, expected {RECORD_FORMAT}")
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"arm record lacks {', '.join(missing)}")
        fields = {n: data[n] for n in names}
        if isinstance(fields["plan"], dict):
            fields["plan"] = complete_plan_dict(fields["plan"])
        return cls(**fields)

    @classmethod
    def from_json(cls, text: str) -> ArmRecord:
        return cls.from_dict(json.loads(text))


def _short(value: Any) -> Any:
    return value[:8] if isinstance(value, str) and len(value) >= 32 else value


def differences(a: ArmRecord, b: ArmRecord) -> list[tuple[str, Any, Any]]:
    """(what, a's value, b's value) for everything but the variant in which two arms differ:
    each plan field, each pre-training field, the eval set, the device type."""
    found = field_differences(a.plan, b.plan) + field_differences(
        a.pretrain, b.pretrain, "pretrain"
    )
    if a.eval_fingerprint != b.eval_fingerprint or a.eval_size != b.eval_size:
        found.append(
            (
                "eval set",
                f"{a.eval_size} examples {_short(a.eval_fingerprint)}",
                f"{b.eval_size} examples {_short(b.eval_fingerprint)}",
            )
        )
    if a.device != b.device:
        found.append(("device", a.device, b.device))
    return found


def reuse_problem(
    stored_json: str | None, stored_key: str | None, expected: ArmRecord
) -> str | None:
    """Why a finished arm (its run.plan_json and adapter_key) may not stand in for the arm
    `expected` describes, or None when it may. Worded for the job's log:
    "steps 8, plan says 100"."""
    if stored_json is None:
        return "it records no plan (made by an older bemctl)"
    try:
        stored = ArmRecord.from_json(stored_json)
    except (ValueError, TypeError) as exc:
        return f"its recorded plan is unreadable ({exc})"
    problems = [
        f"{what} {_fmt(have)}, plan says {_fmt(want)}"
        for what, have, want in differences(stored, expected)
    ]
    if stored_key != expected.adapter_key or stored.adapter_key != expected.adapter_key:
        problems.append(
            f"adapter key {_short(stored_key or '-')}, plan says {_short(expected.adapter_key)}"
        )
    return "; ".join(problems) or None


def _fmt(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


@dataclass(frozen=True)
class ScoredArm:
    """One run of a comparison: its stored record and the example ids it was scored on."""

    run_id: int
    role: str
    seed: int
    record: ArmRecord | None  # None: the run stored no (readable) record
    scored: str  # ids_fingerprint of the scored example ids, in position order
    n_scored: int
    example_ids: tuple[str, ...] | None = None  # kept in-process only, for a precise message

    @property
    def label(self) -> str:
        return f"{self.role} run {self.run_id} (seed {self.seed})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "role": self.role,
            "seed": self.seed,
            "record": self.record.to_dict() if self.record else None,
            "scored": self.scored,
            "n_scored": self.n_scored,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoredArm:
        record = data.get("record")
        try:
            parsed = ArmRecord.from_dict(record) if record is not None else None
        except (ValueError, TypeError):
            parsed = None
        return cls(
            int(data["run_id"]),
            str(data["role"]),
            int(data["seed"]),
            parsed,
            str(data["scored"]),
            int(data["n_scored"]),
        )


def _first_difference(a: Sequence[str], b: Sequence[str]) -> str:
    for position, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f" (position {position}: {x} vs {y})"
    if len(a) != len(b):
        return f" ({len(a)} vs {len(b)} examples)"
    return ""


def comparison_refusal(
    arms: Sequence[ScoredArm], *, expected_ids: Sequence[str] | None = None
) -> str | None:
    """One line naming everything but the variant in which a comparison's arms differ (plan,
    base, eval set, device, the scored examples and their positions), or None if nothing does.

    Every arm is compared with the first one (all seeds share one plan and eval set), and
    with `expected_ids` (the eval set's ids in order) when given."""
    if not arms:
        return "refused: the comparison has no arms"
    problems = [f"{arm.label} records no plan" for arm in arms if arm.record is None]
    ref = arms[0]
    if expected_ids is not None and ref.example_ids is not None:
        if tuple(ref.example_ids) != tuple(expected_ids):
            problems.append(
                f"{ref.label} was not scored on this job's eval set in order"
                + _first_difference(ref.example_ids, expected_ids)
            )
    for arm in arms[1:]:
        if ref.record is not None and arm.record is not None:
            diffs = differences(ref.record, arm.record)
            if diffs:
                what = ", ".join(f"{k} ({_fmt(x)} vs {_fmt(y)})" for k, x, y in diffs)
                problems.append(f"{ref.label} and {arm.label} differ in {what}")
        if arm.scored != ref.scored or arm.n_scored != ref.n_scored:
            detail = (
                _first_difference(ref.example_ids, arm.example_ids)
                if ref.example_ids is not None and arm.example_ids is not None
                else f" ({ref.n_scored} vs {arm.n_scored} examples)"
            )
            problems.append(
                f"{ref.label} and {arm.label} were scored on different examples or positions"
                + detail
            )
    if not problems:
        return None
    return "refused, the arms differ in more than the variant: " + "; ".join(problems)


@dataclass
class RoleResult:
    """An arm as the runner hands it to its protocol: the run, the trained model (None once
    it is no longer needed), per-example scores and its measurements."""

    run_id: int
    model: torch.nn.Module | None
    scores: dict[str, dict[str, float]]
    params_total: int
    params_trainable: int
    flops: float
    adapter_path: Path
    corpus_stats: dict = field(default_factory=dict)  # metric -> (n, k) sufficient stats
    variant_stats: dict | None = None  # what the adapter measured about itself (router)
    example_ids: list[str] = field(default_factory=list)  # scored examples, by position

    def column(self, metric: str) -> list[float]:
        """This arm's `metric` scores in position order (what pairing uses)."""
        return [self.scores[example_id][metric] for example_id in self.example_ids]
