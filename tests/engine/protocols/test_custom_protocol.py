"""A protocol written only here, in tests/, runs through `bemctl run` and shows in every view.

It compares two fixed score vectors (no model, no training): the proof that a new kind of
experiment (a stream, a curve, a second modality) plugs in as one module plus one registry
entry, with the statistics, the BH family, the gates, the verdict, the store, the reports and
the console shared.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml

from engine.arms import ArmRecord, ScoredArm, ids_fingerprint
from engine.gates import Gate
from engine.outcome import ExperimentOutcome
from engine.protocols import registry
from engine.protocols.base import ExperimentProtocol
from engine.protocols.evidence import compare_paired
from engine.sections import Section

N = 200


def _fixed_columns() -> tuple[list[float], list[float]]:
    """The variant answers 40 more of 200 right than the baseline, 10 fewer elsewhere."""
    baseline = [1.0 if i % 4 == 0 else 0.0 for i in range(N)]
    variant = list(baseline)
    flipped_up = [i for i in range(N) if baseline[i] == 0.0][:40]
    flipped_down = [i for i in range(N) if baseline[i] == 1.0][:10]
    for i in flipped_up:
        variant[i] = 1.0
    for i in flipped_down:
        variant[i] = 0.0
    return baseline, variant


class FixedScoresProtocol(ExperimentProtocol):
    name = "fixed_scores"
    description = "two fixed score vectors, compared"

    def run(self, runner, loaded, frozen) -> ExperimentOutcome:
        spec, plan, recorder = loaded.spec, frozen.experiment, runner.recorder
        experiment_id = recorder.open_experiment(
            spec.experiment_name, spec.canonical_json(), spec.spec_hash(), str(loaded.path)
        )
        ids = [f"fixed-{i:03d}" for i in range(N)]
        columns = dict(zip(("baseline", "variant"), _fixed_columns(), strict=True))
        run_ids, arms = {}, []
        for role, column in columns.items():
            # what every protocol records of its arms: the decision refuses a comparison
            # whose arms differ in anything but the variant, from these records
            record = ArmRecord(
                frozen.experiment_dict(),
                frozen.pretrain,
                f"fixed-{role}",
                ids_fingerprint(ids),
                N,
                "cpu",
            )
            run_id = recorder.open_run(
                experiment_id=experiment_id,
                invocation_id=runner.invocation_id,
                role=role,
                seed=plan.seed,
                quick=runner.options.quick,
                device="cpu",
                total_steps=0,
                job_id=runner.job.job_id if runner.job else None,
                attempt=runner.job.attempt if runner.job else 1,
                plan_json=record.to_json(),
            )
            recorder.run_started(run_id)
            pairs = list(zip(ids, column, strict=True))
            scores = {i: {m: v for m in spec.metric_names} for i, v in pairs}
            predictions = [(i, str(v), [str(v)], None) for i, v in pairs]
            recorder.evaluated(run_id, scores, predictions, ids)
            recorder.measured(run_id, params_total=1, params_trainable=1)
            recorder.finished(run_id, "succeeded")
            run_ids[role] = run_id
            arms.append(ScoredArm(run_id, role, plan.seed, record, ids_fingerprint(ids), N))
        metrics = [
            compare_paired(m, [columns["baseline"]], [columns["variant"]], plan)
            for m in spec.metric_names[:1]
        ]
        return ExperimentOutcome(
            name=spec.experiment_name,
            spec=loaded,
            plan=plan,
            experiment_id=experiment_id,
            baseline_run_id=run_ids["baseline"],
            variant_run_id=run_ids["variant"],
            param_ratio=1.0,
            flop_ratio=1.0,
            latency_ratio=None,
            memory_ratio=None,
            metrics=metrics,
            seed_runs=[{"seed": plan.seed, **{f"{r}_run_id": run_ids[r] for r in run_ids}}],
            arms=[arm.to_dict() for arm in arms],
            sections=[flips_section(columns["baseline"], columns["variant"])],
            protocol_gates=[flips_gate(columns["baseline"], columns["variant"])],
        )


def _flips(baseline: list[float], variant: list[float]) -> tuple[int, int]:
    up = sum(b < v for b, v in zip(baseline, variant, strict=True))
    down = sum(b > v for b, v in zip(baseline, variant, strict=True))
    return up, down


def flips_section(baseline: list[float], variant: list[float]) -> Section:
    """The protocol's own measurement, for every view: how many answers each way."""
    up, down = _flips(baseline, variant)
    return Section(
        key="fixed_flips",
        title="Fixed scores",
        columns=("fixed scores", "count"),
        rows=(("flipped up", str(up)), ("flipped down", str(down))),
        notes=(f"Fixed-score note: {down} answers got worse.",),
        brief=(f"fixed scores: {up} up, {down} down",),
    )


def flips_gate(baseline: list[float], variant: list[float]) -> Gate:
    """A gate only this protocol knows, failing on purpose: at most 5 answers may get worse."""
    _, down = _flips(baseline, variant)
    return Gate("at_most_5_flipped_down", None, down <= 5, float(down), 5.0, "<=", "answers worse")


@pytest.fixture
def fixed_protocol(project: Path):
    registry.register(
        "fixed_scores", f"{__name__}:FixedScoresProtocol", FixedScoresProtocol.description
    )
    spec = yaml.safe_load((project / "experiments" / "v1_dynrank.yml").read_text())
    spec["experiment_name"] = "fixed_demo"
    spec["protocol"] = "fixed_scores"
    spec["validation"] = {"metrics": ["exact_match"]}
    (project / "experiments" / "fixed_demo.yml").write_text(yaml.safe_dump(spec))
    yield project
    registry.unregister("fixed_scores")


def test_a_protocol_from_tests_runs_and_reaches_every_report(fixed_protocol: Path, cli) -> None:
    result = cli("run", "fixed_demo", "--quick")
    assert result.code == 0, result.err
    assert "fixed_demo" in result.out
    assert "train baseline" not in result.err  # nothing trained: the protocol's own flow

    # the protocol's section and gate in the terminal verdict; its failing gate rejects
    assert "fixed scores: 40 up, 10 down" in result.out
    assert "Fixed-score note: 10 answers got worse." in " ".join(result.out.split())
    assert "REJECT" in result.out and "at_most_5_flipped_down" in result.out

    [record] = json.loads(cli("report", "fixed_demo", "--format", "json").out)
    interval = record["statistical_validation"]["bca_bootstrap"]["exact_match"]
    assert interval["estimate"] == pytest.approx(30 / N)  # 40 up, 10 down
    assert record["protocol"] == "fixed_scores"
    assert record["acceptance_decision"]["overall_verdict"] == "REJECT"
    [section] = record["sections"]
    assert section["rows"] == [["flipped up", "40"], ["flipped down", "10"]]
    [gate] = [g for g in record["gates"] if g["gate"] == "at_most_5_flipped_down"]
    assert (gate["passed"], gate["observed"], gate["outcome"]) == (False, 10.0, "fail")
    needles = {
        "md": ("| fixed scores | count |", "| flipped down | 10 |", "at_most_5_flipped_down"),
        "html": ("<h3>Fixed scores</h3>", "<td>flipped up</td><td>40</td>", "Fixed-score note"),
        "csv": ("fixed_flips/flipped up/count",),
    }
    for fmt, expected in needles.items():
        out = cli("report", "fixed_demo", "--format", fmt)
        assert out.code == 0, out.err
        assert "fixed_demo" in out.out
        assert "+0.15" in out.out or "0.15" in out.out  # the mean difference, 30 / 200
        for needle in expected:
            assert needle in out.out, (fmt, needle)
    csv_rows = list(csv.DictReader(io.StringIO(cli("report", "fixed_demo", "--format", "csv").out)))
    assert [r["fixed_flips/flipped down/count"] for r in csv_rows] == ["10"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Textual runs on asyncio


@pytest.fixture
def fixed_ran(fixed_protocol: Path, cli) -> Path:
    assert cli("run", "fixed_demo", "--quick").code == 0
    return fixed_protocol


@pytest.mark.anyio
async def test_the_console_shows_the_protocols_verdict(fixed_ran: Path) -> None:
    from textual.widgets import DataTable

    from bemctl.tui.app import BemctlApp
    from bemctl.tui.widgets.section_table import SectionTable
    from bemctl.tui.widgets.verdict_badge import VerdictBadge
    from engine.settings import load_settings
    from tests.bemctl.tui.helpers import wait_for

    app = BemctlApp(load_settings())
    async with app.run_test(size=(150, 40)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: app.screen.query(VerdictBadge), "a verdict badge")
        [badge] = app.screen.query(VerdictBadge)
        assert badge.verdict == "REJECT"
        # the protocol's own section, rendered by the console from the same record
        [section] = app.screen.query(SectionTable)
        assert section.id == "section-fixed_demo-fixed_flips"
        table = section.query_one(DataTable)
        assert [table.get_row_at(i) for i in range(table.row_count)] == [
            ["flipped up", "40"],
            ["flipped down", "10"],
        ]
