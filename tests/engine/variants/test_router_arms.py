"""AR1's arms: its baseline is AR0 (same model, same init), found in the store by its key."""

from __future__ import annotations

from pathlib import Path

import torch

from engine.adapter_files import adapter_key
from engine.plan import RunOptions, make_plan
from engine.settings import load_settings
from engine.spec import find_spec
from engine.variants.build import build_adapter_model
from engine.variants.router.config import RouterBCConfig, RouterPGConfig
from engine.variants.router.model import RouterModel
from tests.engine.variants.helpers import tiny_gpt2

REPO = Path(__file__).resolve().parents[3]


def test_ar1_baseline_is_ar0_built_exactly_like_ar0s_own_arm() -> None:
    pg = RouterPGConfig(rank_dimension=4, chunk_size=8, trust_region_kl=0.02, pg_rounds=3)
    borrowed = pg.baseline_variant_config()
    assert isinstance(borrowed, RouterBCConfig)
    assert borrowed.model_dump(exclude={"variant"}) == pg.model_dump(
        exclude={
            "variant",
            "trust_region_kl",
            "pg_rounds",
            "pg_batch_size",
            "pg_lr",
            "quick_pg_fraction",
            "pg_gamma",
            "gae_lambda",
            "value_lr",
            "value_steps",
            "max_backtracks",
            "entropy_coef",
        }
    )
    assert pg.warm_starts_from_baseline and not borrowed.warm_starts_from_baseline
    base = tiny_gpt2(0)
    ar1_baseline = build_adapter_model("baseline", pg, base, seed=3, where="ar1.yml")
    ar0_variant = build_adapter_model("variant", borrowed, base, seed=3, where="ar0.yml")
    assert isinstance(ar1_baseline, RouterModel) and ar1_baseline.config == borrowed
    a, b = ar1_baseline.state_dict(), ar0_variant.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ar1_variant = build_adapter_model("variant", pg, base, seed=3, where="ar1.yml")
    assert ar1_variant.parameter_counts() == ar1_baseline.parameter_counts()


def test_the_shipped_ar1_spec_finds_ar0s_arm_by_its_adapter_key(tmp_path: Path) -> None:
    settings = load_settings(REPO / "bemctl.toml")
    ar0 = find_spec("ar0_bc", [REPO / "experiments"])
    ar1 = find_spec("ar1_pg", [REPO / "experiments"])
    full, quick = RunOptions(), RunOptions(quick=True)

    def key(loaded, role, options=full, seed=0):
        return adapter_key(role, loaded, make_plan(loaded.spec, settings, options), seed)

    assert key(ar1, "baseline") == key(ar0, "variant")
    assert key(ar1, "baseline", quick) == key(ar0, "variant", quick)
    assert key(ar1, "baseline", quick) != key(ar1, "baseline")  # a smoke run's AR0 is not it
    assert key(ar1, "baseline", seed=1) != key(ar1, "baseline")
    assert key(ar1, "variant") != key(ar1, "baseline")
    assert key(ar0, "baseline") != key(ar0, "variant")  # the static LoRA is another adapter
    changed = ar0.spec.model_copy(
        update={"training": ar0.spec.training.model_copy(update={"learning_rate": 1e-3})}
    )
    assert key(ar0.model_copy(update={"spec": changed}), "variant") != key(ar0, "variant")
