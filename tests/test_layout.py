"""The house keeps its shape: every module imports alone, no import runs in a circle, the
layers and owners in pyproject.toml hold, ruff finds nothing, and the benchmarks run."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("service", "store")


def modules() -> list[str]:
    """Every module of service/ and store/ by its dotted name; __main__ runs, it is no module."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__main__":
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found.append(".".join(parts))
    return found


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_every_module_imports_on_its_own():
    """In a fresh interpreter each, so no module leans on another having been imported first."""
    names = modules()
    assert len(names) > 40

    def alone(name: str) -> tuple[str, str]:
        done = _run("-c", f"import {name}")
        return name, done.stderr.strip().splitlines()[-1] if done.returncode else ""

    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = {name: why for name, why in pool.map(alone, names) if why}
    assert failures == {}


def _cycles(graph: grimp.ImportGraph, names: set[str]) -> list[list[str]]:
    """Tarjan's strongly connected components larger than one module, or a module that
    imports itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        # The graph is a few dozen modules deep at most; recursion is fine here.
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module) & names:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            selfish = module in graph.find_modules_directly_imported_by(module)
            if len(component) > 1 or selfish:
                found.append(sorted(component))

    for module in sorted(names):
        if module not in index:
            visit(module)
    return found


def test_no_imports_run_in_a_circle():
    graph = grimp.build_graph(*PACKAGES)
    names = set(modules())
    assert names <= graph.modules
    assert _cycles(graph, names) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for name in ("a", "b", "c", "d"):
        graph.add_module(name)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    graph.add_import(importer="d", imported="a")
    assert _cycles(graph, {"a", "b", "c", "d"}) == [["a", "b", "c"]]


def test_the_layers_and_owners_hold():
    """The contracts in pyproject.toml: edge above intake above evaluation above referral,
    those above writing and delivery, those above reading; no store in readers; only store/
    speaks SQL; only the transports hand mail on; the SMTP edge renders nothing."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_ruff_finds_nothing():
    done = _run("-m", "ruff", "check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    "script",
    [
        ["bench/render_languages.py", "--rounds", "3"],
        ["bench/survey_tick.py", "--small", "20", "--factor", "2", "--due", "2", "--rounds", "1"],
        ["bench/deadline_tick.py", "--due", "5", "--rounds", "1"],
        ["bench/tick_cost.py", "--small", "20", "--large", "40", "--rounds", "1"],
        ["bench/from_parsing.py", "--words", "50,100", "--rounds", "1"],
        ["bench/outbox_throughput.py", "--mails", "40", "--connections", "2"],
        ["bench/dkim_signing.py", "--rounds", "2", "--bits", "1024"],
        ["bench/admission_lookup.py", "--referrers", "20", "--rounds", "3"],
        ["bench/policy_answers.py", "--requests", "5"],
        ["bench/health_check.py", "--small", "20", "--factor", "2", "--rounds", "1"],
        ["bench/smtp_accept.py", "--messages", "40", "--sessions", "4", "--rounds", "1"],
        ["bench/referral_lifecycle.py", "--referrals", "5", "--rounds", "1"],
        ["bench/run.py", "--quick", "--rounds", "1", "--only", "mail,lifecycle,tick"],
        # SQLite only, whatever the environment names: a figure drops a PostgreSQL's tables.
        ["bench/run.py", "--quick", "--rounds", "1", "--only", "smtp,outbox", "--database-url", ""],
    ],
    ids=lambda args: Path(args[0]).stem,
)
def test_the_benchmarks_run(script):
    done = _run(*script, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "ratio" in done.stdout


def test_the_benchmarks_stand_on_their_own():
    """A benchmark measures the service, so it imports the service, never the tests."""
    for script in sorted((ROOT / "bench").glob("*.py")):
        tree = ast.parse(script.read_text())
        imported = [
            name
            for node in ast.walk(tree)
            for name in (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
        ]
        assert not [n for n in imported if n.split(".")[0] == "tests"], script.name


def test_the_wheel_carries_every_package():
    """setuptools is given the package list by hand: a new package must be on it."""
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for package in PACKAGES
        for path in (ROOT / package).rglob("__init__.py")
    }
    assert found <= set(listed)
