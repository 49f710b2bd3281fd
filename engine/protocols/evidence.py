"""Paired per-example evidence -> statistics, the same for every protocol.

A protocol hands over, per metric, each arm's scores in evaluation-position order, once per
training seed (position i must be the same example in every column: the protocol checks
that). Scores are averaged over seeds before pairing; each seed's own mean difference is kept
to show the spread across seeds. Corpus-level metrics (chrF, BLEU) pair per-example
sufficient statistics instead (`compare_corpus`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from engine import stats
from engine.outcome import MetricOutcome
from engine.plan import ExperimentPlan

if TYPE_CHECKING:
    from engine.arms import RoleResult
    from engine.tasks.base import Task, TaskExample


def compare_paired(
    metric: str,
    baseline: Sequence[Sequence[float]],
    variant: Sequence[Sequence[float]],
    plan: ExperimentPlan,
) -> MetricOutcome:
    """`baseline[s][i]`, `variant[s][i]`: seed s's score of the example at position i."""
    a = np.mean(baseline, axis=0)
    b = np.mean(variant, axis=0)
    seed_diffs = [
        float(np.mean(np.subtract(v, bl))) for bl, v in zip(baseline, variant, strict=True)
    ]
    return MetricOutcome(_compare(metric, a, b, plan, None), seed_diffs)


def compare_corpus(
    metric: str,
    baseline: Sequence[np.ndarray],
    variant: Sequence[np.ndarray],
    score: Callable[[np.ndarray], np.ndarray],
    plan: ExperimentPlan,
) -> MetricOutcome:
    """`baseline[s]`: seed s's (n, k) sufficient statistics by position; `score` turns summed
    statistics (rows of k) into the corpus score."""
    corpus = stats.CorpusStatistic(np.mean(baseline, axis=0), np.mean(variant, axis=0), score)
    seed_diffs = [
        float(score(v.sum(0, keepdims=True))[0] - score(b.sum(0, keepdims=True))[0])
        for b, v in zip(baseline, variant, strict=True)
    ]
    return MetricOutcome(_compare(metric, None, None, plan, corpus), seed_diffs)


def _compare(metric, a, b, plan: ExperimentPlan, corpus) -> stats.MetricComparison:
    return stats.compare(
        metric,
        a,
        b,
        n_resamples=plan.bootstrap_samples,
        alpha=1 - plan.confidence_level,
        seed=plan.seed,
        target_power=plan.target_power,
        corpus=corpus,
    )


def mark_identical(
    metrics: list[MetricOutcome], differences: dict[str, list[np.ndarray]]
) -> list[MetricOutcome]:
    """Set `identical_to` on each metric whose paired differences (`differences[metric]`:
    every seed's, per position; corpus metrics absent) equal an earlier metric's exactly:
    the same test must not count twice in the BH family."""
    columns: dict[str, list[np.ndarray]] = {}
    for m in metrics:
        diffs = differences.get(m.metric)
        if diffs is None:
            continue
        for earlier, other in columns.items():
            if all(np.array_equal(x, y) for x, y in zip(diffs, other, strict=True)):
                m.identical_to = earlier
                break
        else:
            columns[m.metric] = diffs
    return metrics


def arm_metric_stats(
    metric: str,
    task: Task,
    evals: list[TaskExample],
    per_seed: list[tuple[RoleResult, RoleResult]],
    plan: ExperimentPlan,
) -> MetricOutcome:
    """Pair by evaluation position after averaging each arm over seeds; keep each seed's
    difference. Every arm was checked (`check_arms`) to be scored on this eval set in
    order, so position i is the same example in every arm and in the corpus statistics."""
    if task.metric(metric).corpus_level:
        return compare_corpus(
            metric,
            [b.corpus_stats[metric] for b, _ in per_seed],
            [v.corpus_stats[metric] for _, v in per_seed],
            lambda summed, m=metric: task.corpus_score(m, summed),
            plan,
        )
    return compare_paired(
        metric,
        [b.column(metric) for b, _ in per_seed],
        [v.column(metric) for _, v in per_seed],
        plan,
    )
