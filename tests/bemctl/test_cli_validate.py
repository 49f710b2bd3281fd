"""`bemctl validate`: every problem at once, one line each, exit 2; clean specs pass."""

from __future__ import annotations

from pathlib import Path


def test_validate_all_shipped_specs_and_toml(project: Path, cli) -> None:
    result = cli("validate")
    assert result.code == 0, result.err
    assert result.out.count("ok  ") == 10  # nine specs + bemctl.toml


def test_validate_reports_every_error_in_a_bad_spec(project: Path, cli) -> None:
    bad = project / "experiments" / "broken.yml"
    bad.write_text(
        'experiment_name: "broken"\n'
        'variant_type: "performance"\n'
        "colour: blue\n"
        "bem_config:\n"
        '  variant: "pt1_dynamic_rank"\n'
        '  rank_dimension: "eight"\n'
        "  active_ratio: 1.5\n"
        "training:\n"
        "  learning_rate: -0.1\n"
    )
    result = cli("validate", str(bad))
    assert result.code == 2
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 4
    assert all(line.startswith(f"{bad}: ") for line in lines)
    joined = "\n".join(lines)
    assert "colour: unknown field" in joined
    assert "bem_config.rank_dimension:" in joined and "(got 'eight')" in joined
    assert "bem_config.active_ratio:" in joined and "(got 1.5)" in joined
    assert "training.learning_rate:" in joined and "(got -0.1)" in joined


def test_validate_bad_toml(project: Path, cli) -> None:
    (project / "bemctl.toml").write_text('fdr_alpha = 1.5\ndevcie = "cpu"\n')
    result = cli("validate", str(project / "bemctl.toml"))
    assert result.code == 2
    assert "fdr_alpha" in result.err and "devcie: unknown field" in result.err


def test_run_with_bad_toml_is_one_line(project: Path, cli) -> None:
    (project / "bemctl.toml").write_text('device = "tpu"\n')
    result = cli("run", "v1_dynrank", "--quick")
    assert result.code == 2
    assert result.err.count("\n") == 1 and "device" in result.err and "'tpu'" in result.err


def test_run_refuses_mismatched_experiment_name(project: Path, cli) -> None:
    spec = project / "experiments" / "v1_dynrank.yml"
    spec.write_text(
        spec.read_text().replace('experiment_name: "v1_dynrank"', 'experiment_name: "other"')
    )
    result = cli("run", "v1_dynrank")
    assert result.code == 2
    assert "experiment_name: must match the file name" in result.err
