"""Experiment specs (strict validation, all errors at once, lookup) and the variant registry."""

import re
from pathlib import Path

import pytest
import yaml

from engine.spec import ExperimentSpec, find_spec, load_spec, spec_errors, spec_files
from engine.variants import registry
from engine.variants.dynrank.config import DynamicRankConfig
from engine.variants.lora.model import StaticLoraModel
from store.errors import BemctlError

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
EXPECTED_IDS = {
    "ar0_bc",
    "ar1_pg",
    "mm_mini",
    "ol_shadow",
    "v1_dynrank",
    "v2_gateshaping",
    "v3_kron",
    "v4_film",
    "vc_curve",
}
LINE = re.compile(r"^(?P<file>[^:]+): (?P<field>[A-Za-z0-9_.]+): (?P<msg>.+) \(got (?P<got>.+)\)$")


def _write(path: Path, data: dict | str) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def _minimal(name: str, **extra) -> dict:
    return {
        "experiment_name": name,
        "variant_type": "performance",
        "bem_config": {"variant": "pt1_dynamic_rank"},
        **extra,
    }


# ---------------------------------------------------------------- shipped experiments


def test_all_nine_experiments_are_found() -> None:
    assert set(spec_files([EXPERIMENTS])) == EXPECTED_IDS


@pytest.mark.parametrize("name", sorted(EXPECTED_IDS))
def test_shipped_experiment_validates(name: str) -> None:
    path = EXPERIMENTS / f"{name}.yml"
    assert spec_errors(path) == []
    loaded = find_spec(name, [EXPERIMENTS])
    assert loaded.spec.experiment_name == name
    assert loaded.path == path


def test_v1_spec_has_dynamic_rank_config() -> None:
    spec = load_spec(EXPERIMENTS / "v1_dynrank.yml").spec
    assert isinstance(spec.bem_config, DynamicRankConfig)
    assert spec.bem_config.k_active == 4
    assert spec.training.learning_rate == pytest.approx(2e-3)


# ---------------------------------------------------------------- error reporting


def test_several_errors_reported_at_once(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "broken.yml",
        _minimal(
            "broken",
            colour="red",
            bem_config={"variant": "pt1_dynamic_rank", "rank_dimension": "eight"},
            training={"learning_rate": -0.1},
        ),
    )
    errors = spec_errors(path)
    assert len(errors) == 3, errors
    parsed = {}
    for line in errors:
        match = LINE.match(line)
        assert match, f"badly formatted line: {line!r}"
        assert match["file"] == str(path)
        parsed[match["field"]] = (match["msg"], match["got"])
    assert set(parsed) == {"colour", "bem_config.rank_dimension", "training.learning_rate"}
    assert parsed["colour"] == ("unknown field", "'red'")
    assert parsed["bem_config.rank_dimension"][1] == "'eight'"
    assert "integer" in parsed["bem_config.rank_dimension"][0]
    assert parsed["training.learning_rate"][1] == "-0.1"
    assert "greater than 0" in parsed["training.learning_rate"][0]
    # the discriminator tag never leaks into the dotted path
    assert not any("pt1_dynamic_rank" in line.split(": ")[1] for line in errors)


def test_load_spec_joins_all_errors_into_one_message(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "broken.yml", _minimal("broken", colour="red", training={"learning_rate": -0.1})
    )
    with pytest.raises(BemctlError) as info:
        load_spec(path)
    message = str(info.value)
    assert "\n" not in message
    assert f"{path}: colour: unknown field" in message
    assert f"{path}: training.learning_rate:" in message


def test_unknown_variant_lists_known_variants(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.yml", _minimal("x", bem_config={"variant": "mystery"}))
    errors = spec_errors(path)
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}: bem_config: ")
    assert "unknown variant 'mystery'" in errors[0]
    for known in registry.REGISTRY:
        assert known in errors[0]


def test_invalid_yaml_is_one_line_with_line_number(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.yml", "experiment_name: bad\nbem_config: [1, 2\nfoo: 1\n")
    errors = spec_errors(path)
    assert len(errors) == 1
    assert "\n" not in errors[0]
    assert errors[0].startswith(f"{path}: line 3: invalid YAML")


def test_non_mapping_and_missing_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "list.yml", "- 1\n- 2\n")
    assert spec_errors(path) == [f"{path}: expected a mapping at the top level (got list)"]
    missing = tmp_path / "nope.yml"
    assert spec_errors(missing) == [f"{missing}: file not found"]


def test_missing_required_fields(tmp_path: Path) -> None:
    path = _write(tmp_path / "empty.yml", {"description": "nothing else"})
    errors = spec_errors(path)
    fields = {line.split(": ")[1] for line in errors}
    assert {"experiment_name", "variant_type", "bem_config"} <= fields


# ---------------------------------------------------------------- lookup


def test_find_spec_unknown_id_lists_valid_ids() -> None:
    with pytest.raises(BemctlError) as info:
        find_spec("v9_nothing", [EXPERIMENTS])
    message = str(info.value)
    assert "unknown experiment 'v9_nothing'" in message
    for name in EXPECTED_IDS:
        assert name in message


def test_copied_and_edited_spec_is_found(tmp_path: Path) -> None:
    text = (EXPERIMENTS / "v1_dynrank.yml").read_text()
    assert 'experiment_name: "v1_dynrank"' in text
    edited = text.replace('experiment_name: "v1_dynrank"', 'experiment_name: "my_custom_variant"')
    _write(tmp_path / "my_custom_variant.yml", edited)
    loaded = find_spec("my_custom_variant", [tmp_path, EXPERIMENTS])
    assert loaded.spec.experiment_name == "my_custom_variant"
    assert loaded.path == tmp_path / "my_custom_variant.yml"
    # still resolvable through the shipped dir as a fallback
    assert find_spec("v1_dynrank", [tmp_path, EXPERIMENTS]).path == EXPERIMENTS / "v1_dynrank.yml"


def test_find_spec_accepts_a_path(tmp_path: Path) -> None:
    path = _write(tmp_path / "direct.yml", _minimal("direct"))
    assert find_spec(str(path), []).spec.experiment_name == "direct"


def test_first_directory_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    _write(first / "dup.yml", _minimal("dup", description="first"))
    _write(second / "dup.yml", _minimal("dup", description="second"))
    assert find_spec("dup", [first, second]).spec.description == "first"


def test_name_mismatch_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "renamed.yml", (EXPERIMENTS / "v1_dynrank.yml").read_text())
    with pytest.raises(BemctlError) as info:
        find_spec("renamed", [tmp_path])
    message = str(info.value)
    assert "experiment_name" in message
    assert "must match the file name 'renamed'" in message
    assert "'v1_dynrank'" in message


def test_resolve_relative_paths_against_spec(tmp_path: Path) -> None:
    loaded = load_spec(_write(tmp_path / "r.yml", _minimal("r")))
    assert loaded.resolve(Path("data/train.jsonl")) == tmp_path / "data/train.jsonl"
    assert loaded.resolve(Path("/abs/x.jsonl")) == Path("/abs/x.jsonl")


# ---------------------------------------------------------------- canonical hash


def test_canonical_hash_stable_and_sensitive() -> None:
    path = EXPERIMENTS / "v1_dynrank.yml"
    a, b = load_spec(path).spec, load_spec(path).spec
    assert a.canonical_json() == b.canonical_json()
    assert a.spec_hash() == b.spec_hash()
    assert re.fullmatch(r"[0-9a-f]{16}", a.spec_hash())

    data = yaml.safe_load(path.read_text())
    assert ExperimentSpec.model_validate(data).spec_hash() == a.spec_hash()
    data["training"]["learning_rate"] = 3e-3
    assert ExperimentSpec.model_validate(data).spec_hash() != a.spec_hash()
    data = yaml.safe_load(path.read_text())
    data["bem_config"]["chunk_size"] = 32
    assert ExperimentSpec.model_validate(data).spec_hash() != a.spec_hash()


def test_hash_ignores_key_order_and_explicit_defaults() -> None:
    short = ExperimentSpec.model_validate(_minimal("h"))
    spelled = ExperimentSpec.model_validate(
        {
            "bem_config": {"rank_dimension": 8, "variant": "pt1_dynamic_rank"},
            "training": {"learning_rate": 5e-4},
            "variant_type": "performance",
            "experiment_name": "h",
        }
    )
    assert short.spec_hash() == spelled.spec_hash()


# ---------------------------------------------------------------- registry


def test_registry_contents() -> None:
    assert {"static_lora", "pt1_dynamic_rank", "pt1_gate_shaping"} <= set(registry.REGISTRY)
    entry = registry.get_entry("pt1_dynamic_rank")
    assert entry.config_cls is DynamicRankConfig


def test_model_class_lazy_import() -> None:
    assert registry.model_class("static_lora") is StaticLoraModel
    assert registry.model_class("pt1_dynamic_rank").__name__ == "DynamicRankModel"


def test_pending_variant_is_not_implemented() -> None:
    with pytest.raises(BemctlError, match="^not implemented yet: multimodal_mini$"):
        registry.model_class("multimodal_mini")


def test_unknown_variant_in_registry() -> None:
    with pytest.raises(BemctlError, match="unknown variant 'nope'; known: .*static_lora"):
        registry.get_entry("nope")


def test_register_twice_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(DynamicRankConfig, None, "again")
