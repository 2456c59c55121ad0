"""The package's layout as the README's "Layout" draws it: no import cycles, and the top stays on top.

Imports are read from the source (module level; imports inside a function, as the CLI makes them, and those
under ``TYPE_CHECKING`` do not run at import time and cannot make a cycle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dsr_mailbot"


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[str]:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module == "dsr_mailbot":  # from dsr_mailbot import faults
            yield from (f"dsr_mailbot.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dsr_mailbot."):
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("dsr_mailbot"))


GRAPH = {_module(path): set(_imports(path)) for path in PACKAGE.rglob("*.py")}


def _cycle() -> list[str] | None:
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(GRAPH.get(module, ())):
            if state.get(target) == "open":
                return [*stack[stack.index(target):], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[module] = "done"
        return None

    for module in sorted(GRAPH):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_no_module_imports_itself_through_others() -> None:
    assert len(GRAPH) > 40 and GRAPH["dsr_mailbot.pipeline"]  # the graph was read, not found empty
    assert _cycle() is None


def _importers(prefix: str) -> set[str]:
    return {m for m, targets in GRAPH.items() for t in targets
            if (t == prefix or t.startswith(prefix + ".")) and not (m == prefix or m.startswith(prefix + "."))}


def test_the_console_and_the_command_line_are_on_top() -> None:
    assert _importers("dsr_mailbot.web") <= {"dsr_mailbot.cli"}
    assert _importers("dsr_mailbot.cli") <= {"dsr_mailbot.__main__"}


def test_the_service_runs_the_pipeline_and_only_the_top_runs_the_service() -> None:
    assert _importers("dsr_mailbot.service") <= {"dsr_mailbot.cli", "dsr_mailbot.demo"} | {
        m for m in GRAPH if m.startswith("dsr_mailbot.web")}
    stages = ("mailbox", "reading", "trust", "intents", "replies", "store", "systems")
    for stage in stages:
        above = {"lifecycle", "pipeline", "service", "web", "cli", "demo", "facts", "decisions"}
        for module, targets in GRAPH.items():
            if module.startswith(f"dsr_mailbot.{stage}"):
                assert not {t for t in targets if t.split(".")[1] in above}, module
