"""End to end through the real CLI entry point, on the tiny project of conftest.py."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import yaml

from engine.gates import COST_GATES
from store import queries
from store.db import Store


def _store(project: Path) -> Store:
    return Store(project / ".bemctl" / "bemctl.db", readonly=True)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _custom_jsonl_spec(project: Path) -> None:
    """A user's own experiment, copied from v1_dynrank, on their own JSONL data."""
    from engine.tasks.qa import make_qa_splits

    train, evals = make_qa_splits(40, 20, seed=7)
    as_rows = [
        {
            "id": ex.id,
            "context": ex.context,
            "question": ex.question,
            "answers": {"text": list(ex.answers), "answer_start": [0]},
        }
        for ex in train
    ]
    _write_jsonl(project / "train.jsonl", as_rows)
    _write_jsonl(
        project / "eval.jsonl",
        [
            {
                "id": ex.id,
                "context": ex.context,
                "question": ex.question,
                "answers": list(ex.answers),
            }
            for ex in evals
        ],
    )
    spec = yaml.safe_load((project / "experiments" / "v1_dynrank.yml").read_text())
    spec["experiment_name"] = "my_custom_variant"
    spec["bem_config"]["rank_dimension"] = 4
    spec["bem_config"]["active_ratio"] = 0.25
    spec["data"] = {
        "task": "jsonl_qa",
        "train_file": "../train.jsonl",
        "eval_file": "../eval.jsonl",
        "max_new_tokens": 6,
    }
    (project / "experiments" / "my_custom_variant.yml").write_text(yaml.safe_dump(spec))


def test_run_two_experiments_end_to_end(project: Path, cli) -> None:
    _custom_jsonl_spec(project)
    result = cli("run", "v1_dynrank", "my_custom_variant", "--quick")
    assert result.code == 0, result.err
    assert "v1_dynrank" in result.out and "my_custom_variant" in result.out
    # 24 and 20 eval examples are far below the guard's 100: no PROMOTE/REJECT on evidence
    assert "INCONCLUSIVE (underpowered)" in result.out or "REJECT" in result.out

    with _store(project) as store:
        bundles = queries.latest_comparisons(store)
        assert {b[0].name for b in bundles} == {"v1_dynrank", "my_custom_variant"}
        # a metric repeating another's paired differences is one test: counted once
        distinct = [s for b in bundles for s in b[2] if s.identical_to is None]
        assert 2 <= len(distinct) <= 4
        printed = " ".join(result.out.split())  # the console wraps long lines
        assert f"family of {len(distinct)} hypotheses" in printed
        for experiment, comp, stat_rows, gate_rows, base_run, var_run in bundles:
            assert comp.verdict in ("INCONCLUSIVE (underpowered)", "REJECT")
            assert all(s.underpowered and "< 100" in s.underpowered_reason for s in stat_rows)
            assert {s.metric for s in stat_rows} == {"exact_match", "f1"}
            assert all(s.family_size == len(distinct) for s in stat_rows)
            by_metric = {s.metric: s for s in stat_rows}
            if by_metric["f1"].identical_to is not None:
                assert by_metric["f1"].identical_to == "exact_match"
                assert by_metric["f1"].p_adjusted == by_metric["exact_match"].p_adjusted
                diffs = {
                    m: [
                        v - b
                        for b, v in zip(
                            queries.example_scores(store, base_run.id)[m].values(),
                            queries.example_scores(store, var_run.id)[m].values(),
                            strict=True,
                        )
                    ]
                    for m in ("exact_match", "f1")
                }
                assert diffs["f1"] == diffs["exact_match"]
            assert {g.gate for g in gate_rows} >= {
                "budget_parity_params",
                "budget_parity_flops",
                "latency",
                "memory",
                "ci_lower_bound_positive",
                "statistical_significance",
                "min_improvement",
            }
            failed = [g for g in gate_rows if g.outcome == "fail"]
            cost_failed = [g for g in failed if g.gate in COST_GATES]
            assert (comp.verdict == "REJECT") == bool(cost_failed)
            reasons = json.loads(comp.reasons_json)
            undecided = [g for g in gate_rows if g.outcome == "inconclusive"]
            assert len([r for r in reasons if not r.startswith("underpowered")]) == len(
                failed
            ) + len(undecided)
            for run in (base_run, var_run):
                assert run.status == "succeeded"
                assert run.current_step == run.total_steps == 6
                assert len(queries.step_metrics(store, run.id)) == 6
                assert run.params_trainable and run.flops_per_token and run.latency_p50_ms
                assert run.memory_kind == "cpu_profiler"
                assert run.peak_memory_bytes == max(
                    run.tensor_peak_train_bytes, run.tensor_peak_generate_bytes
                )
                assert run.tensor_peak_generate_bytes > 0 and run.rss_peak_bytes > 0
                assert len(json.loads(run.latency_samples_json)) >= 4  # the planned rounds
                assert json.loads(run.load_json)["cpu_count"] >= 1
                assert Path(run.adapter_path).is_file()
                scores = queries.example_scores(store, run.id)
                n_eval = 24 if experiment.name == "v1_dynrank" else 20
                assert {m: len(v) for m, v in scores.items()} == {
                    "exact_match": n_eval,
                    "f1": n_eval,
                }
            # the verdict's statistics are recomputable from the stored per-example scores
            base = queries.example_scores(store, base_run.id)["f1"]
            var = queries.example_scores(store, var_run.id)["f1"]
            f1 = next(s for s in stat_rows if s.metric == "f1")
            diff = sum(var[k] - base[k] for k in base) / len(base)
            assert abs(f1.mean_diff - diff) < 1e-12

    report = cli("report", "--format", "json")
    assert report.code == 0
    records = json.loads(report.out)
    assert {r["experiment_id"] for r in records} == {"v1_dynrank", "my_custom_variant"}
    rec = next(r for r in records if r["experiment_id"] == "v1_dynrank")
    assert rec["acceptance_decision"]["overall_verdict"] in (
        "INCONCLUSIVE (underpowered)",
        "REJECT",
    )
    assert rec["statistical_validation"]["power_analysis"]["exact_match"]["underpowered"]
    assert "not adjusted for multiplicity" in rec["statistical_validation"]["ci_note"]
    assert set(rec["statistical_validation"]["bca_bootstrap"]) == {"exact_match", "f1"}
    assert rec["statistical_validation"]["fdr_correction"]["family_size"] == len(distinct)
    twins = rec["statistical_validation"]["identical_metrics"]
    assert set(twins) <= {"f1"} and set(twins.values()) <= {"exact_match"}
    assert rec["baseline_metrics"]["trainable_parameters"] > 0
    # how dynamic V1's routing was, over every token the evaluation fed it (schema 5)
    assert rec["schema_version"] == 8
    dynamics = rec["variant_metrics"]["dynamics"]
    assert dynamics["unit"] == "mask" and dynamics["sequences"] == 24
    assert (
        dynamics["all"]["tokens"]
        == dynamics["prompt"]["tokens"] + (dynamics["generated"]["tokens"])
    )
    assert 1 <= dynamics["all"]["distinct"] and 0 < dynamics["all"]["top_share"] <= 1
    assert rec["variant_metrics"]["gate_movement"]["unit"] == "tokens"
    assert rec["baseline_metrics"]["dynamics"] is None  # the static LoRA routes nothing

    md_path = project / "out" / "report.md"
    md_path.parent.mkdir()  # -o does not create directories
    md = cli("report", "v1_dynrank", "--format", "md", "--output", str(md_path))
    assert md.code == 0
    text = md_path.read_text()
    assert "# bemctl report" in text and "v1_dynrank" in text and "BCa" in text
    assert "my_custom_variant" not in text
    assert "| routing dynamics | baseline | variant |" in text

    listing = cli("list")
    assert listing.code == 0 and "v1_dynrank" in listing.out and "succeeded" in listing.out
    shown = cli("show", str(rec["baseline_metrics"]["run_id"]))
    assert shown.code == 0 and "loss curve" in shown.out


def test_unimplemented_variant_exits_2(project: Path, cli) -> None:
    result = cli("run", "mm_mini", "--quick")
    assert result.code == 2
    assert "not implemented yet: multimodal_mini" in result.err
    assert "Traceback" not in result.err


def test_unknown_experiment_lists_valid_ids(project: Path, cli) -> None:
    result = cli("run", "v9_nope")
    assert result.code == 2
    assert "unknown experiment 'v9_nope'" in result.err and "v1_dynrank" in result.err


def test_bad_flag_value_is_one_line(project: Path, cli) -> None:
    result = cli("run", "v1_dynrank", "--fdr-alpha", "2")
    assert result.code == 2
    assert result.err.strip().count("\n") == 0 and "--fdr-alpha" in result.err


def test_locked_store_is_reported(project: Path, cli) -> None:
    db = project / ".bemctl" / "bemctl.db"
    Store(db).close()  # create it
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = cli("run", "v1_dynrank", "--quick")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.code == 2
    assert "locked" in result.err and "Traceback" not in result.err


def test_unreadable_store_is_reported(project: Path, cli) -> None:
    db = project / ".bemctl" / "bemctl.db"
    db.parent.mkdir(parents=True)
    db.write_text("this is not sqlite\n" * 100)
    result = cli("run", "v1_dynrank", "--quick")
    assert result.code == 2
    assert "not a database" in result.err


def test_report_on_empty_store(project: Path, cli) -> None:
    result = cli("report")
    assert result.code == 0
    assert "nothing to report" in result.err


def test_seeds_train_each_arm_per_seed_and_report_the_spread(project: Path, cli) -> None:
    spec = yaml.safe_load((project / "experiments" / "v1_dynrank.yml").read_text())
    spec["experiment_name"] = "seeded"
    spec["seeds"] = [0, 1]
    spec["data"].update(train_size=32, eval_size=12, max_new_tokens=4)
    spec["training"].update(max_steps=3, batch_size=8, warmup_steps=1)
    spec["validation"]["bootstrap_samples"] = 200
    (project / "experiments" / "seeded.yml").write_text(yaml.safe_dump(spec))
    result = cli("run", "seeded")
    assert result.code == 0, result.err
    with _store(project) as store:
        [(_, comp, stat_rows, _, _, _)] = queries.latest_comparisons(store)
        runs = json.loads(comp.seeds_json)
        assert [r["seed"] for r in runs] == [0, 1]
        for r in runs:
            for role in ("baseline", "variant"):
                run = queries.get_run(store, r[f"{role}_run_id"])
                assert run.status == "succeeded" and run.seed == r["seed"]
        f1 = next(s for s in stat_rows if s.metric == "f1")
        assert f1.n_seeds == 2 and f1.seed_diff_sd is not None
        # the paired difference is of seed-averaged scores: it equals the mean of seed diffs
        assert abs(f1.mean_diff - f1.seed_diff_mean) < 1e-12
    md = cli("report", "seeded")
    assert "(2 seeds)" in md.out


def test_mis_sized_variant_is_rejected_for_budget_parity(project: Path, cli) -> None:
    spec = yaml.safe_load((project / "experiments" / "v3_kron.yml").read_text())
    spec["experiment_name"] = "kron_too_big"
    spec["bem_config"]["kron_rank"] = 3  # ~+12% trainable parameters over the baseline
    spec["data"]["max_new_tokens"] = 4
    (project / "experiments" / "kron_too_big.yml").write_text(yaml.safe_dump(spec))
    result = cli("run", "kron_too_big", "--quick")
    assert result.code == 0, result.err
    with _store(project) as store:
        [(_, comp, _, gate_rows, _, _)] = queries.latest_comparisons(store)
    assert comp.verdict == "REJECT"  # not INCONCLUSIVE: more data cannot fix the budget
    reasons = json.loads(comp.reasons_json)
    assert any(r.startswith("budget parity: budget_parity_params") for r in reasons)
    [params] = [g for g in gate_rows if g.gate == "budget_parity_params"]
    assert not params.passed and params.observed > 1.05


def test_gate_shaping_reports_its_pre_generation_phase(project: Path, cli) -> None:
    spec = yaml.safe_load((project / "experiments" / "v2_gateshaping.yml").read_text())
    spec["data"]["max_new_tokens"] = 4
    (project / "experiments" / "v2_gateshaping.yml").write_text(yaml.safe_dump(spec))
    result = cli("run", "v2_gateshaping", "--quick")
    assert result.code == 0, result.err
    assert "pre-generation" in result.out
    with _store(project) as store:
        [(_, _, _, gate_rows, base_run, var_run)] = queries.latest_comparisons(store)
    assert base_run.pregen_ms_p50 is None and var_run.pregen_ms_p50 > 0
    assert var_run.kv_hit_rate == base_run.kv_hit_rate == 1.0
    assert any(g.gate == "kv_hit_rate" and g.passed for g in gate_rows)
    record = json.loads(cli("report", "--format", "json").out)[0]
    assert record["variant_metrics"]["pre_generation_ms_p50"] > 0
    movement = record["variant_metrics"]["gate_movement"]
    assert movement["prompts"] == movement["prompts_gated"] == 24  # every prompt re-ranked
    assert len(movement["mean_abs_dev"]) == 4 and 0 <= movement["share_changed"] <= 1
    assert movement["no_op"] == (movement["answers_changed"] == 0)
