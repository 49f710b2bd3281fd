"""The report record: the JSON schema every output format renders.

One record per comparison, built here from the stored rows and read by every view: the JSON
report is the record itself; Markdown, HTML, CSV, the terminal verdict (`bemctl.verdicts`) and
the console's Results screen render it. Its shape is typed in `bemctl.reports.record_schema`.
What a protocol measures on its own arrives as `sections` (`engine.sections`), which every
view renders without knowing what they hold. An online variant run's stream timeline is read
beside the comparison's rows (like the reports' training curves, by run id) and kept as
`stream`, which the HTML report plots.

Field names follow the user guide's results example (`experiment_id`, `baseline_metrics`,
`variant_metrics`, `statistical_validation`, `acceptance_decision.overall_verdict`) so
researchers find what they expect; the README documents each field.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, cast

from bemctl.reports.record_schema import (
    ComparisonRecord,
    CurveRecord,
    GateRecord,
    SectionRecord,
    StreamEventRecord,
    StreamPointRecord,
    StreamRecord,
)
from engine.protocols.ab_sections import ab_sections
from engine.variants.registry import REGISTRY
from store import queries
from store.db import Store
from store.states import GateOutcome, Role
from store.stream import stream_events, stream_points

SCHEMA_VERSION = 8  # 4: router measurements, adapter provenance; 5: cost intervals, gate
# outcomes, identical metrics, routing dynamics and gate movement; 6: protocol, sections;
# 7: stream; 8: curve


def _stats(run) -> dict[str, Any] | None:
    stats = json.loads(run.variant_stats_json) if run.variant_stats_json else None
    return stats if isinstance(stats, dict) else None


def run_fields(variant_stats_json: str | None) -> dict[str, Any]:
    """The record's `dynamics` and `gate_movement` of one run (None when absent)."""
    stats = json.loads(variant_stats_json) if variant_stats_json else {}
    stats = stats if isinstance(stats, dict) else {}
    return {"dynamics": stats.get("dynamics"), "gate_movement": stats.get("gate_movement")}


def _sections(comp, base_run, var_run) -> list[SectionRecord]:
    """The stored sections; a comparison made before schema 0008 stored none, and gets the
    A/B protocol's (the only protocol then) rebuilt from its runs' own measurements."""
    if comp.sections_json is not None:
        return json.loads(comp.sections_json)
    rebuilt = ab_sections(_stats(base_run), _stats(var_run))
    return [cast(SectionRecord, s.to_dict()) for s in rebuilt]


def _protocol(spec: dict[str, Any]) -> str:
    if spec.get("protocol"):
        return spec["protocol"]
    entry = REGISTRY.get(spec["bem_config"]["variant"])
    return entry.protocol if entry is not None else "ab"


def _run_metrics(run, stat_rows, side: str) -> dict[str, Any]:
    metrics: dict[str, Any] = {s.metric: getattr(s, f"{side}_mean") for s in stat_rows}
    metrics.update(
        parameters=run.params_total,
        trainable_parameters=run.params_trainable,
        flops_per_token=run.flops_per_token,
        latency_p50_ms=run.latency_p50_ms,
        latency_p95_ms=run.latency_p95_ms,
        pre_generation_ms_p50=run.pregen_ms_p50,
        kv_hit_rate=run.kv_hit_rate,
        peak_memory_bytes=run.peak_memory_bytes,
        memory_kind=run.memory_kind,
        tensor_peak_train_bytes=run.tensor_peak_train_bytes,
        tensor_peak_generate_bytes=run.tensor_peak_generate_bytes,
        process_rss_peak_bytes=run.rss_peak_bytes,
        latency_rounds=len(json.loads(run.latency_samples_json))
        if run.latency_samples_json
        else None,
        load=json.loads(run.load_json) if run.load_json else None,
        gpu_memory_used_bytes=run.gpu_memory_used_bytes,
        gpu_utilization=run.gpu_utilization,
        router=_router(run),
        **run_fields(run.variant_stats_json),  # dynamics, gate_movement
        adapter_source_run_id=run.adapter_source_run_id,
        run_id=run.id,
        seed=run.seed,
        device=run.device,
        quick=run.quick,
    )
    return metrics


def _router(run) -> dict[str, Any] | None:
    stats = _stats(run)
    return stats if stats and stats.get("router") else None


def curve_record(var_run) -> CurveRecord | None:
    """A VC variant run's curve, stored with how its α was chosen; None for other runs."""
    stats = _stats(var_run)
    if not stats or not stats.get("curve"):
        return None
    selection = stats.get("selection") or {}
    return {
        "operating_alpha": selection.get("alpha", stats.get("alpha")),
        "rule": selection.get("reason", ""),
        "points": stats["curve"],
        "baseline": stats["baseline_point"],
        "validation": selection.get("validation", []),
    }


def stream_record(store: Store, run_id: int) -> StreamRecord | None:
    """The run's stream timeline; None for a run that streamed nothing (every A/B run).

    Events are read before points: a live batch's point and events are written together,
    so every event read has its point even while the stream is still being written."""
    events = stream_events(store, run_id)
    points = stream_points(store, run_id)
    if not points:
        return None
    return {
        "run_id": run_id,
        "points": [cast(StreamPointRecord, asdict(p)) for p in points],
        "events": [cast(StreamEventRecord, asdict(e)) for e in events],
    }


def comparison_record(
    bundle: queries.ComparisonBundle, stream: StreamRecord | None
) -> ComparisonRecord:
    """`stream` is the variant run's (`stream_record`): passed, not defaulted, so a caller
    cannot drop an online comparison's timeline by forgetting it."""
    experiment, comp, stat_rows, gate_rows, base_run, var_run = bundle
    spec = json.loads(experiment.spec_json)
    gates: list[GateRecord] = [
        {
            "gate": g.gate,
            "metric": g.metric,
            "passed": g.passed,
            "outcome": g.outcome or (GateOutcome.PASS if g.passed else GateOutcome.FAIL),
            "observed": g.observed,
            "threshold": g.threshold,
            "comparator": g.comparator,
            "detail": g.detail,
        }
        for g in gate_rows
    ]

    def all_passed(prefix: str) -> bool:
        chosen = [g for g in gate_rows if g.gate.startswith(prefix)]
        return all(g.passed for g in chosen) if chosen else True

    return {
        "schema_version": SCHEMA_VERSION,
        "experiment_id": experiment.name,
        "variant_name": spec.get("description") or spec["bem_config"]["variant"],
        "variant": spec["bem_config"]["variant"],
        "protocol": _protocol(spec),
        "comparison_id": comp.id,
        "invocation_id": comp.invocation_id,
        "created_at": comp.created_at.isoformat(),
        "spec_hash": experiment.spec_hash,
        "baseline_metrics": _run_metrics(base_run, stat_rows, Role.BASELINE),
        "variant_metrics": _run_metrics(var_run, stat_rows, Role.VARIANT),
        "budget": {
            "param_ratio": comp.param_ratio,
            "flop_ratio": comp.flop_ratio,
            "latency_ratio": comp.latency_ratio,
            "latency_ratio_low": comp.latency_ratio_low,
            "latency_ratio_high": comp.latency_ratio_high,
            "memory_ratio": comp.memory_ratio,
        },
        "costs": json.loads(comp.costs_json) if comp.costs_json else None,
        "statistical_validation": {
            "paired_differences": {s.metric: s.mean_diff for s in stat_rows},
            "bca_bootstrap": {
                s.metric: {
                    "lower": s.ci_low,
                    "upper": s.ci_high,
                    "estimate": s.mean_diff,
                    "confidence_level": s.confidence_level,
                    "method": s.ci_method,
                    "resamples": s.bootstrap_samples,
                    "seed": comp.seed,
                    "bias_correction": s.z0,
                    "acceleration": s.acceleration,
                    "degenerate": s.degenerate,
                }
                for s in stat_rows
            },
            "ci_note": "confidence intervals are per metric, not adjusted for multiplicity",
            "identical_metrics": {s.metric: s.identical_to for s in stat_rows if s.identical_to},
            "paired_tests": {
                s.metric: {
                    "test": s.test_name,
                    "p_value": s.p_value,
                    "n": s.n,
                    "binary": s.binary,
                    "discordant_b": s.discordant_b,
                    "discordant_c": s.discordant_c,
                    "n_permutations": s.n_permutations,
                }
                for s in stat_rows
            },
            "fdr_correction": {
                "method": "Benjamini-Hochberg",
                "counted_once": "a metric in identical_metrics repeats its twin's test: the "
                "family counts it once and it carries the twin's adjusted p-value",
                "family_size": comp.family_size,
                "metrics": [s.metric for s in stat_rows],
                "original_p_values": [s.p_value for s in stat_rows],
                "adjusted_p_values": [s.p_adjusted for s in stat_rows],
            },
            "effect_sizes": {
                s.metric: {
                    "cohens_dz": s.effect_dz,
                    "hedges_g": s.hedges_g,
                    "formula": s.effect_formula,
                }
                for s in stat_rows
            },
            "power_analysis": {
                s.metric: {
                    "power": s.power,
                    "minimum_detectable_effect": s.mde,
                    "n_needed": s.n_needed,
                    "target_power": s.target_power,
                    "underpowered": s.underpowered,
                    "underpowered_reason": s.underpowered_reason,
                }
                for s in stat_rows
            },
            "seeds": {
                "runs": json.loads(comp.seeds_json) if comp.seeds_json else [],
                "difference_across_seeds": {
                    s.metric: {"n_seeds": s.n_seeds, "mean": s.seed_diff_mean, "sd": s.seed_diff_sd}
                    for s in stat_rows
                },
            },
        },
        "gates": gates,
        "sections": _sections(comp, base_run, var_run),
        "stream": stream,
        "curve": curve_record(var_run),
        "acceptance_decision": {
            "budget_parity": all_passed("budget_parity"),
            "statistical_significance": all_passed("statistical_significance"),
            "ci_bounds_positive": all_passed("ci_lower_bound_positive"),
            "min_improvement": all_passed("min_improvement"),
            "performance_gates": all_passed("latency") and all_passed("memory"),
            "overall_verdict": comp.verdict,
            "reasons": json.loads(comp.reasons_json),
            "underpowered": json.loads(comp.underpowered_json) if comp.underpowered_json else [],
        },
    }


def build_records(
    store: Store, names: list[str] | None = None, *, invocation_id: str | None = None
) -> list[ComparisonRecord]:
    """Each experiment's newest comparison (optionally only those of one batch)."""
    bundles = queries.latest_comparisons(store, names or None, invocation_id=invocation_id)
    records = []
    for bundle in bundles:
        variant = bundle[5]
        assert variant.id is not None  # a stored run
        records.append(comparison_record(bundle, stream_record(store, variant.id)))
    return records
