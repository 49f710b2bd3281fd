"""Imports flow one way: bemctl -> engine -> store, engine -> triton_ops (README "Layout").

The console/CLI package sits on top; the engine must run without it (a worker, a library
call), the store must not know what an experiment is, and the kernels must not know bemctl.
Checked on the source (every import statement, function-level ones included), so a lazy
import cannot hide a dependency.

`make test` also runs import-linter (`lint-imports`, contracts in pyproject.toml), which sees
function-level and TYPE_CHECKING imports too and follows indirect chains. This test stays
because import-linter's graph (grimp) only holds modules of regular packages: directories
without an `__init__.py` are invisible to it (store/migrations/, the Alembic revisions, which
Alembic loads by path; engine/variants/ has one now, so import-linter sees every variant).
This test reads every .py file under each package, whatever its directory, so those are
checked here too (direct imports only).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "engine": {"bemctl"},
    # and no ML stack, as import-linter's "store imports no ML stack" contract says
    "store": {"bemctl", "engine", "triton_ops", "torch", "transformers", "triton"},
    "triton_ops": {"bemctl", "engine", "store"},
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_packages_never_import_higher_ones(package: str) -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(_imported_packages(path) & FORBIDDEN[package])
        for path in sorted((REPO / package).rglob("*.py"))
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}


def _imported_modules(path: Path, package: str = "") -> set[str]:
    """Every module an import statement of `path` names, in full (TYPE_CHECKING and
    function-level imports included; `from a import b` names both a and a.b; a relative
    import is resolved against `package`, the dotted package holding `path`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(parts) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            if not module:
                continue
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_router_parts_never_import_the_variants() -> None:
    """engine/router holds the router's pure parts; the model and the training stages that
    drive it (engine/variants/router) import them, never the reverse (no cycle)."""
    offenders = {
        str(path.relative_to(REPO)): sorted(
            m
            for m in _imported_modules(path, ".".join(path.relative_to(REPO).parent.parts))
            if _under(m, "engine.variants")
        )
        for path in sorted((REPO / "engine" / "router").rglob("*.py"))
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}


def test_the_router_check_would_catch_a_type_checking_import(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from engine.variants.router.model import RouterModel\n"
        "def f():\n"
        "    from engine import variants\n"
        "    from ..variants.router import arm\n"
    )
    found = {m for m in _imported_modules(source, "engine.router") if _under(m, "engine.variants")}
    assert found == {
        "engine.variants.router.model",
        "engine.variants.router.model.RouterModel",
        "engine.variants",
        "engine.variants.router",
        "engine.variants.router.arm",
    }
