"""The direction of dependencies between monitor's packages, read from the source.

Every import counts: at module level, inside functions (the lazy ones that keep start-up
fast) and under ``TYPE_CHECKING``. A package may import only what ``ALLOWED`` lists for
it, which is acyclic: the data path runs config -> runs (adapters, scoring, store) ->
verdicts -> alerts -> notify (sinks) and metrics, with the API, the daemon and the CLI on
top. The pure cores import no I/O package and no I/O library, so their tests need no
server, no database and no clock.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from tests.cli.test_import_cost import imported_after
from tests.servers import ROOT

VOCABULARY = {"errors", "clock", "durations", "records"}
"""The top-level modules every package may use: the shared vocabulary."""

ALLOWED: dict[str, set[str]] = {
    "scoring": {"records"},
    "drift": set(),
    "performance": {"drift", "scoring"},
    "config": {"durations", "errors", "scoring"},
    "alerts": {"config", "durations", "records"},
    "store": {"alerts", "errors", "records"},
    "adapters": {"config", "errors", "records"},
    "gate": {"records", "wire"},
    # Model registries: the version lookup (runs) and the gate's and canary's promotion (cli).
    "registry": {"clock", "config", "errors", "gate", "store"},
    "runs": {
        *("adapters", "clock", "config", "durations", "errors", "records", "registry"),
        *("scoring", "store"),
    },
    "verdicts": {"config", "records", "scoring", "store"},
    "streams": {"clock", "config", "drift", "errors", "performance", "records", "store"},
    "sinks": {"alerts", "config"},
    "notify": {"alerts", "clock", "config", "sinks", "store"},
    "metrics": {"adapters", "clock", "records", "store"},
    "wire": {"records", "scoring"},
    "api": {
        *VOCABULARY,
        *("alerts", "config", "gate", "scoring", "store", "streams", "verdicts", "wire"),
    },
    "daemon": {
        *VOCABULARY,
        *("alerts", "api", "config", "metrics", "notify", "runs", "sinks", "store"),
        *("streams", "verdicts"),
    },
    "demo": {"config", "daemon", "durations", "sinks"},
    "cli": {
        *VOCABULARY,
        *("config", "daemon", "demo", "gate", "notify", "registry", "runs", "scoring"),
        "store",
        *("streams", "verdicts", "wire"),
    },
}

PURE = ("scoring", "drift", "alerts", "wire", "verdicts.compare", "verdicts.decide")
PURE += ("verdicts.stats", "verdicts.review", "performance", "gate.sequential")
"""Modules (or whole packages) of pure computation."""

IO_PACKAGES = {"store", "adapters", "runs", "sinks", "notify", "metrics", "streams", "api"}
IO_PACKAGES |= {"gate", "daemon", "cli", "demo", "registry"}
IO_LIBRARIES = {"httpx", "sqlalchemy", "alembic", "psycopg", "prometheus_client", "fastapi"}
IO_LIBRARIES |= {"starlette", "uvicorn", "anyio", "apscheduler", "pyarrow", "aiohttp"}


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted((ROOT / "monitor").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def imports(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def package(module: str) -> str | None:
    """``monitor.runs.runner`` -> ``runs``; the top level and ``__main__`` -> None."""
    parts = module.split(".")
    if parts[0] != "monitor" or len(parts) < 2 or parts[1] == "__main__":
        return None
    return parts[1]


def package_graph() -> dict[str, dict[str, set[str]]]:
    """package -> imported package -> the modules that import it."""
    graph: dict[str, dict[str, set[str]]] = {}
    for module, path in modules():
        source = package(module)
        if source is None or source in VOCABULARY:
            continue
        for name in imports(path):
            target = package(name)
            if target is not None and target != source:
                graph.setdefault(source, {}).setdefault(target, set()).add(module)
    return graph


def test_every_package_is_in_the_map() -> None:
    found = {p for m, _ in modules() if (p := package(m)) is not None} - VOCABULARY
    assert found == set(ALLOWED)


def test_the_allowed_directions_have_no_cycle() -> None:
    try:
        order = list(TopologicalSorter(ALLOWED).static_order())
    except CycleError as exc:
        pytest.fail(f"ALLOWED has a cycle: {exc.args[1]}")
    assert order.index("config") < order.index("runs") < order.index("daemon")


def test_packages_import_only_what_they_may() -> None:
    graph = package_graph()
    wrong = [
        f"{source} -> {target} (in {', '.join(sorted(users))})"
        for source, targets in sorted(graph.items())
        for target, users in sorted(targets.items())
        if target not in ALLOWED[source]
    ]
    assert wrong == []


def test_the_package_graph_has_no_cycle() -> None:
    graph = {source: set(targets) - VOCABULARY for source, targets in package_graph().items()}
    TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_top_level_modules_are_only_the_vocabulary() -> None:
    top = {p.stem for p in (ROOT / "monitor").glob("*.py")} - {"__init__", "__main__"}
    assert top == VOCABULARY


@pytest.mark.parametrize("core", PURE)
def test_pure_cores_import_no_io(core: str) -> None:
    name = f"monitor.{core}"
    paths = [path for module, path in modules() if module == name or module.startswith(name + ".")]
    assert paths, core
    for path in paths:
        for imported in imports(path):
            top = imported.split(".")[0]
            assert top not in IO_LIBRARIES, f"{path.name} imports {imported}"
            assert package(imported) not in IO_PACKAGES, f"{path.name} imports {imported}"


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("monitor.config", {"sqlalchemy", "apscheduler"}),
        ("monitor.scoring", {"sqlalchemy", "apscheduler"}),
        ("monitor.gate", {"fastapi", "starlette"}),
        ("monitor.wire", {"fastapi", "starlette", "sqlalchemy"}),
    ],
    ids=["config", "scoring", "gate", "wire"],
)
def test_importing_a_package_loads_none_of(module: str, absent: set[str]) -> None:
    assert imported_after(f"import {module}").isdisjoint(absent)
