"""bench/router.py: finds the trained router run read-only, and its measuring code runs (tiny)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from engine.models.tokenizer import ByteTokenizer
from engine.variants.build import build_adapter_model
from engine.variants.router.config import RouterBCConfig
from store import queries
from store.db import Store
from tests.engine.variants.helpers import tiny_gpt2

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "router.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_router", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _finished_run(store: Store, name: str, role: str, status: str, adapter: Path | None) -> int:
    experiment = queries.get_or_create_experiment(store, name, "{}", f"h-{name}", f"{name}.yml")
    run = queries.create_run(
        store,
        experiment_id=experiment.id,
        invocation_id="inv",
        role=role,
        seed=0,
        quick=True,
        device="cpu",
        total_steps=1,
    )
    queries.mark_run_finished(store, run.id, status)
    if adapter is not None:
        adapter.write_bytes(b"")
        queries.update_run(store, run.id, adapter_path=str(adapter))
    return run.id


def test_trained_run_prefers_ar1_then_ar0_and_skips_unusable_runs(tmp_path: Path) -> None:
    bench = _load()
    path = tmp_path / "bemctl.db"
    with Store(path) as store:
        assert bench.find_trained_run(path) is None
        ar0 = _finished_run(store, "ar0_bc", "variant", "succeeded", tmp_path / "a.st")
        _finished_run(store, "ar0_bc", "baseline", "succeeded", tmp_path / "b.st")
        _finished_run(store, "ar0_bc", "variant", "failed", tmp_path / "c.st")
        found = bench.find_trained_run(path)
        assert (found.experiment, found.run_id, found.quick) == ("ar0_bc", ar0, True)
        ar1 = _finished_run(store, "ar1_pg", "variant", "succeeded", tmp_path / "d.st")
        _finished_run(store, "ar1_pg", "variant", "succeeded", None)  # newer, no adapter
        assert bench.find_trained_run(path).run_id == ar1
        (tmp_path / "d.st").unlink()  # a deleted adapter file is no candidate
        assert bench.find_trained_run(path).run_id == ar0


def test_a_missing_store_is_refused_before_the_base_model_loads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load()

    def no_load(*args, **kwargs):
        raise AssertionError("the base model must not be loaded for a bad --store")

    monkeypatch.setattr("engine.models.base_model.load_base_model", no_load)
    assert bench.main(["--store", str(tmp_path / "none.db"), "--rounds", "1"]) == 2
    assert "no store file there" in capsys.readouterr().err


def test_measure_times_both_arms_and_reports_the_plans() -> None:
    bench = _load()
    config = RouterBCConfig(rank_dimension=4, chunk_size=4)
    base = tiny_gpt2(0)
    baseline, router = (
        build_adapter_model(role, config, base, 0, "x.yml").eval()
        for role in ("baseline", "variant")
    )
    prompts = ["k: v\nQ: k?\nA:", "a: b; c: d\nQ: c?\nA:"]
    out = bench.measure(baseline, router, ByteTokenizer(), prompts, 3, 5, 64, 4)
    for part in ("prefill_plus_decode", "prefill_only", "decode_loop"):
        assert out[part]["ratio_p50"] > 0 and len(out[part]["p50_ms"]) == 2
    assert out["plans"]["sequences"] == 2  # one plan per prompt, from the first rounds
    assert out["plans"]["decode_chunk_boundaries_per_sequence_mean"] >= 1  # 5 tokens, chunk 4
    assert out["plans"]["chunks_per_sequence_mean"] >= 4
