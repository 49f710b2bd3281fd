"""Hand-made report records (schema of bemctl/reports/records.py) for the pure renderers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

METRICS = ("exact_match", "f1")


def _record(
    experiment_id: str = "v1_dynrank",
    verdict: str = "PROMOTE",
    run_ids: tuple[int, int] = (1, 2),
    metrics: tuple[str, ...] = METRICS,
    reasons: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A record with distinct, recognisable numbers per metric (i = metric index)."""
    diffs = {m: 0.05 * (i + 1) for i, m in enumerate(metrics)}
    base = {m: 0.25 + 0.125 * i for i, m in enumerate(metrics)}
    run = {
        "parameters": 1000,
        "trainable_parameters": 64,
        "flops_per_token": 2048.0,
        "latency_p50_ms": 1.5,
        "latency_p95_ms": 2.5,
        "pre_generation_ms_p50": None,
        "kv_hit_rate": None,
        "peak_memory_bytes": 2**20,
        "memory_kind": "cpu_peak_rss",
        "gpu_memory_used_bytes": None,
        "gpu_utilization": None,
        "seed": 0,
        "device": "cpu",
        "quick": True,
    }
    return {
        "schema_version": 3,
        "experiment_id": experiment_id,
        "variant_name": f"{experiment_id} description",
        "variant": "dynamic_rank",
        "comparison_id": run_ids[1] * 10,
        "invocation_id": "inv-1",
        "created_at": "2024-05-01T12:00:00",
        "spec_hash": "abc",
        "baseline_metrics": {**base, **run, "run_id": run_ids[0]},
        "variant_metrics": {
            **{m: base[m] + diffs[m] for m in metrics},
            **run,
            "trainable_parameters": 63,
            "run_id": run_ids[1],
        },
        "budget": {
            "param_ratio": 63 / 64,
            "flop_ratio": 1.0,
            "latency_ratio": 1.01,
            "memory_ratio": None,
        },
        "statistical_validation": {
            "paired_differences": diffs,
            "bca_bootstrap": {
                m: {
                    "lower": diffs[m] - 0.04,
                    "upper": diffs[m] + 0.03,
                    "estimate": diffs[m],
                    "confidence_level": 0.95,
                    "method": "BCa",
                    "resamples": 500,
                    "seed": 0,
                    "bias_correction": 0.01,
                    "acceleration": 0.0,
                    "degenerate": False,
                }
                for m in metrics
            },
            "ci_note": "confidence intervals are per metric, not adjusted for multiplicity",
            "paired_tests": {
                m: {
                    "test": "paired permutation",
                    "p_value": 0.01 * (i + 1),
                    "n": 200 + i,
                    "binary": False,
                    "discordant_b": None,
                    "discordant_c": None,
                    "n_permutations": 10000,
                }
                for i, m in enumerate(metrics)
            },
            "fdr_correction": {
                "method": "Benjamini-Hochberg",
                "family_size": len(metrics),
                "metrics": list(metrics),
                "original_p_values": [0.01 * (i + 1) for i in range(len(metrics))],
                "adjusted_p_values": [0.02 * (i + 1) for i in range(len(metrics))],
            },
            "effect_sizes": {
                m: {"cohens_dz": 0.3 + i, "hedges_g": None, "formula": "d_z"}
                for i, m in enumerate(metrics)
            },
            "power_analysis": {
                m: {
                    "power": 0.9,
                    "minimum_detectable_effect": 0.02,
                    "n_needed": 150,
                    "target_power": 0.8,
                    "underpowered": False,
                    "underpowered_reason": None,
                }
                for m in metrics
            },
            "seeds": {
                "runs": [],
                "difference_across_seeds": {
                    m: {"n_seeds": 1, "mean": None, "sd": None} for m in metrics
                },
            },
        },
        "gates": [
            {
                "gate": "budget_parity_params",
                "metric": None,
                "passed": True,
                "observed": 63 / 64,
                "threshold": 1.05,
                "comparator": "<=",
                "detail": "trainable parameter ratio",
            },
            {
                "gate": "ci_lower_bound_positive",
                "metric": metrics[0],
                "passed": verdict == "PROMOTE",
                "observed": diffs[metrics[0]] - 0.04,
                "threshold": 0.0,
                "comparator": ">",
                "detail": "CI lower bound",
            },
        ],
        "acceptance_decision": {
            "budget_parity": True,
            "statistical_significance": True,
            "ci_bounds_positive": verdict == "PROMOTE",
            "min_improvement": True,
            "performance_gates": True,
            "overall_verdict": verdict,
            "reasons": list(reasons),
            "underpowered": [],
        },
    }


@pytest.fixture
def make_record() -> Callable[..., dict[str, Any]]:
    return _record
