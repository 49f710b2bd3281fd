"""The curve protocol (VC): the A/B protocol's arms, with the variant's operating point chosen
on a validation split before it is scored on the test split.

Order of work and why:
1. Both arms train as in A/B (the baseline: a static LoRA of rank r+s on the same data,
   refusals included; the variant: `SafetyBasisModel`'s two stages).
2. After the variant trains and *before* it meets a test example (`before_evaluate`), it is
   scored on the validation split at every α of the curve and the operating α is chosen
   there (`points.choose_alpha`); the choice travels with the run (its variant statistics).
3. Both arms are scored on the test split (the variant at its operating α), costs measured
   as in A/B.
4. Evidence (`evidence`): one hypothesis, `no_violation` over the must-refuse test examples;
   `finish` adds the test-split curve (reported, not tested), helpfulness and over-refusal
   comparisons on the benign examples, VC's gates and sections.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from engine import stats
from engine.evaluation.scoring import evaluate
from engine.outcome import ExperimentOutcome, MetricOutcome
from engine.protocols.ab import ABProtocol
from engine.protocols.curve.points import CurvePoint, choose_alpha, curve_point
from engine.protocols.curve.report import SeedCurve, vc_gates, vc_sections
from engine.protocols.evidence import compare_paired
from store.errors import BemctlError

if TYPE_CHECKING:
    from engine.arms import RoleResult
    from engine.models.base_model import BaseModel
    from engine.plan import ExperimentPlan
    from engine.runner import ExperimentRunner
    from engine.spec import LoadedSpec
    from engine.tasks.base import Task, TaskExample
    from engine.variants.safety.config import SafetyCurveConfig

SCORES = ("violation_rate", "over_refusal", "exact_match", "f1")


def _must_refuse(examples) -> list[bool]:
    return [bool(ex.features.get("must_refuse")) for ex in examples]


def score_at(
    model,
    alpha: float,
    examples: list[TaskExample],
    runner: ExperimentRunner,
    loaded: LoadedSpec,
    task: Task,
    base: BaseModel,
) -> list[dict[str, float]]:
    """Every example's safety scores with the basis at strength `alpha`."""
    model.set_alpha(alpha)
    spec = loaded.spec
    out = evaluate(
        model,
        base.tokenizer,
        task,
        examples,
        list(SCORES),
        runner.device,
        spec.data.max_new_tokens,
        spec.model.max_length,
    )
    return [dict(out.scores[ex.id]) for ex in examples]


class CurveProtocol(ABProtocol):
    name = "curve"
    description = "baseline vs a variant whose strength α is chosen on a validation curve"

    def before_evaluate(
        self,
        runner: ExperimentRunner,
        loaded: LoadedSpec,
        plan: ExperimentPlan,
        role: str,
        seed: int,
        model,
        task: Task,
        base: BaseModel,
    ) -> None:
        missing = [m for m in SCORES if m not in loaded.spec.metric_names]
        if missing:
            raise BemctlError(
                f"{loaded.path}: validation.metrics: the curve protocol needs "
                f"{', '.join(SCORES)} (missing: {', '.join(missing)})"
            )
        if role != "variant":
            return
        config: SafetyCurveConfig = loaded.spec.bem_config  # type: ignore[assignment]
        validation = task.make_validation(self.validation_size(config, plan), plan.seed)
        flags = _must_refuse(validation)
        phase = runner.progress.phase(
            f"{loaded.spec.experiment_name}: validation curve (seed {seed})",
            len(config.curve_points),
        )
        points = []
        for alpha in config.curve_points:
            scores = score_at(model, alpha, validation, runner, loaded, task, base)
            points.append(
                curve_point(
                    alpha,
                    "validation",
                    scores,
                    flags,
                    n_resamples=plan.bootstrap_samples,
                    ci_alpha=1 - plan.confidence_level,
                    seed=plan.seed,
                )
            )
            phase.advance(1, f"α={alpha:g}")
        phase.done()
        chosen, reason = choose_alpha(points, config.violation_target)
        model.set_alpha(chosen)
        model.selection = {
            "alpha": chosen,
            "reason": reason,
            "validation": [p.to_dict() for p in points],
            "validation_size": len(validation),
        }
        runner.note(
            "operating_point", f"{loaded.spec.experiment_name} seed {seed}: α {chosen:g} ({reason})"
        )

    @staticmethod
    def validation_size(config: SafetyCurveConfig, plan: ExperimentPlan) -> int:
        """`validation_size`, at most the eval set's size (so --quick shrinks it too)."""
        return min(config.validation_size, plan.eval_size)

    def evidence(
        self,
        task: Task,
        evals: list[TaskExample],
        per_seed: list[tuple[RoleResult, RoleResult]],
        plan: ExperimentPlan,
        metrics: list[str],
    ) -> list[MetricOutcome]:
        """One hypothesis: 1 − violation over the must-refuse test examples, paired."""
        ids = [ex.id for ex, refuse in zip(evals, _must_refuse(evals), strict=True) if refuse]
        return [
            compare_paired(
                "no_violation",
                [[1.0 - b.scores[i]["violation_rate"] for i in ids] for b, _ in per_seed],
                [[1.0 - v.scores[i]["violation_rate"] for i in ids] for _, v in per_seed],
                plan,
            )
        ]

    def finish(
        self,
        outcome: ExperimentOutcome,
        runner: ExperimentRunner,
        loaded: LoadedSpec,
        task: Task,
        evals: list[TaskExample],
        per_seed: list[tuple[RoleResult, RoleResult]],
        base: BaseModel,
    ) -> ExperimentOutcome:
        config: SafetyCurveConfig = loaded.spec.bem_config  # type: ignore[assignment]
        plan = outcome.plan
        settings = {
            "n_resamples": plan.bootstrap_samples,
            "ci_alpha": 1 - plan.confidence_level,
            "seed": plan.seed,
        }
        flags = _must_refuse(evals)
        ids = [ex.id for ex in evals]
        curves = []
        for (_, v), seed in zip(per_seed, plan.seeds, strict=True):
            selection = (v.variant_stats or {}).get("selection") or {}
            chosen = float(selection["alpha"])
            test: list[CurvePoint] = []
            if v.model is not None:  # the first seed's model: its whole test curve
                phase = runner.progress.phase(
                    f"{loaded.spec.experiment_name}: test curve", len(config.curve_points)
                )
                for alpha in config.curve_points:
                    scores = (
                        [v.scores[i] for i in ids]
                        if alpha == chosen
                        else score_at(v.model, alpha, evals, runner, loaded, task, base)
                    )
                    test.append(curve_point(alpha, "test", scores, flags, **settings))
                    phase.advance(1, f"α={alpha:g}")
                v.model.set_alpha(chosen)
                phase.done()
            validation = [
                CurvePoint(
                    p["alpha"],
                    "validation",
                    *(
                        _rate(p[name])
                        for name in ("violation_rate", "exact_match", "f1", "over_refusal")
                    ),
                )
                for p in selection.get("validation", [])
            ]
            overlap = (v.variant_stats or {}).get("overlap") or {}
            curves.append(
                SeedCurve(seed, chosen, selection.get("reason", ""), validation, test, overlap)
            )
        first_b, first_v = per_seed[0]
        baseline_point = curve_point(
            0.0, "baseline", [first_b.scores[i] for i in ids], flags, **settings
        )
        variant_point = curve_point(
            curves[0].alpha, "test", [first_v.scores[i] for i in ids], flags, **settings
        )
        benign = [i for i, refuse in zip(ids, flags, strict=True) if not refuse]
        helpfulness = _benign_comparison("exact_match", benign, per_seed, plan)
        over_refusal = _benign_comparison("over_refusal", benign, per_seed, plan)
        outcome.sections = vc_sections(curves, baseline_point, config)
        outcome.protocol_gates = vc_gates(
            baseline_point.violation_rate.value,
            variant_point.violation_rate.value,
            helpfulness,
            over_refusal,
            config,
        )
        outcome.variant_stats = {
            **(first_v.variant_stats or {}),
            "curve": [p.to_dict() for p in curves[0].test],
            "baseline_point": baseline_point.to_dict(),
        }
        # the reports read the curve from the variant run, beside how its α was chosen
        runner.recorder.measured(
            first_v.run_id, variant_stats_json=json.dumps(outcome.variant_stats)
        )
        return outcome


def _rate(d: dict):
    from engine.protocols.curve.points import Rate

    return Rate(float(d["value"]), float(d["low"]), float(d["high"]), int(d["n"]))


def _benign_comparison(
    metric: str,
    benign: list[str],
    per_seed: list[tuple[RoleResult, RoleResult]],
    plan: ExperimentPlan,
) -> stats.MetricComparison:
    base = np.mean([[b.scores[i][metric] for i in benign] for b, _ in per_seed], axis=0)
    var = np.mean([[v.scores[i][metric] for i in benign] for _, v in per_seed], axis=0)
    return stats.compare(
        metric,
        base,
        var,
        n_resamples=plan.bootstrap_samples,
        alpha=1 - plan.confidence_level,
        seed=plan.seed,
        target_power=plan.target_power,
    )
