"""Imports point down the layers of DESIGN.md, and no two modules import each other.

Every import in ``src/assay`` counts: top-level, function-local and under
``TYPE_CHECKING`` (a deferred import still ties the two modules together). A module may
import its own layer or a lower one; ``serve`` and ``monitor`` share a rank but are two
layers, so neither imports the other. The module graph must have no cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "assay"

# DESIGN.md "Layers", bottom up: (layer, rank, module prefixes). The longest matching
# prefix decides a module's layer.
LAYERS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    # the ground floor
    (
        "ground",
        0,
        (
            "assay.errors",
            "assay.config",
            "assay.data",
            "assay.datasets",
            "assay.store",
            "assay.registry",
            "assay.project",
            "assay.aliases",
            # pretrained checkpoints, tokenizers and encoders: what the text families, the
            # text audit checks and text drift all stand on
            "assay.text",
        ),
    ),
    # the stages
    (
        "stages",
        1,
        (
            "assay.audit",
            "assay.split",
            "assay.train",
            "assay.evaluate",
            # what a model leans on: global and per-row attributions
            "assay.explain",
            "assay.gate",
            "assay.report",
            "assay.label",
        ),
    ),
    # load a verified version, score it, validate records; deployments; the log's read
    # side. Shared by serve, monitor and batch. It sits above the stages, not below as
    # DESIGN.md draws it: a loaded artifact is made of train's classes (the thresholded
    # classifier, the ensembles, the preprocessing steps the fast path compiles), so
    # scoring one names them. No stage imports it.
    ("model", 2, ("assay.model",)),
    # the server, and measuring traffic: the same rank, two layers
    ("serve", 3, ("assay.serve",)),
    ("monitor", 3, ("assay.monitor",)),
    # orchestration: strings the stages together (run, retrain, watch)
    (
        "orchestration",
        4,
        (
            "assay.pipeline",
            "assay.lifecycle",
            "assay.data_audit",
            "assay.candidate",
            "assay.labelling",
            "assay.monitor.retrain",
            "assay.monitor.watch",
            "assay.monitor._candidate",
        ),
    ),
    # the contract-test kit for every plug-in kind (families, splitters, stores, audit
    # checks, drift tests): it exercises the layers below it and nothing imports it
    ("testing", 4, ("assay.testing",)),
    # shells: parse, call, render
    (
        "shells",
        5,
        (
            "assay.cli",
            "assay.ui",
            "assay.demo",
            "assay.__main__",
        ),
    ),
)

# Upward imports that remain, each with the reason and the change that removes it:
# (importer, imported) -> reason. A stale entry fails the test, so the list only shrinks.
#
# Empty: monitor's measuring modules (drift, performance, reference, alerts, monitor,
# report, _shadow) import neither serve nor pipeline; what they shared with the server
# moved down to assay.model, the process lock to assay.store.lock, and open_registry is
# imported from assay.registry. The training sequence that pipeline.py and
# monitor/_candidate.py both hold is duplicated, not an upward import: merging it into
# one orchestration module (assay.candidate, already listed) needs no entry here.
ALLOWED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    """One import statement's edge: ``source`` imports ``target`` at ``path:line``."""

    source: str
    target: str
    path: Path
    line: int

    def where(self) -> str:
        return f"{self.path.relative_to(SRC.parent)}:{self.line}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports_in(source: str, path: Path, text: str, modules: dict[str, Path]) -> Iterator[Import]:
    """Each import in ``text`` (module ``source``), wherever it sits in the file."""
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(source, alias.name, path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                # ``from assay.train import mlp`` imports the module assay.train.mlp
                name = f"{base}.{alias.name}"
                yield Import(source, name if name in modules else base, path, node.lineno)


def _imports(modules: dict[str, Path]) -> Iterator[Import]:
    for source, path in modules.items():
        yield from _imports_in(source, path, path.read_text(encoding="utf-8"), modules)


def _edges() -> list[Import]:
    modules = _modules()
    edges = {edge for edge in _imports(modules) if edge.target.split(".")[0] == "assay"}
    return sorted(edges, key=lambda edge: (edge.source, edge.line, edge.target))


def layer_of(module: str) -> tuple[str, int]:
    """The layer (name, rank) of ``module``: its longest matching prefix in ``LAYERS``."""
    if module == "assay":
        return "ground", 0  # the package root holds the version and the error names
    best: tuple[int, str, int] | None = None
    for name, rank, prefixes in LAYERS:
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), name, rank)
    assert best is not None, f"{module} is in no layer: add it to LAYERS in tests/test_layers.py"
    return best[1], best[2]


def _points_up(edge: Import) -> bool:
    source, source_rank = layer_of(edge.source)
    target, target_rank = layer_of(edge.target)
    return source != target and target_rank >= source_rank


def upward_imports() -> list[Import]:
    """Every import whose target sits in a higher layer, or a sibling layer of equal rank."""
    return [edge for edge in _edges() if _points_up(edge)]


def import_cycles() -> list[list[str]]:
    """The strongly connected components of the module graph with more than one module."""
    graph: dict[str, set[str]] = {}
    for edge in _edges():
        if edge.source != edge.target:
            graph.setdefault(edge.source, set()).add(edge.target)
            graph.setdefault(edge.target, set())
    # Tarjan's algorithm, iterative so a deep graph cannot hit the recursion limit
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            step = next(successors, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph[step]))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def _describe(edge: Import) -> str:
    source, source_rank = layer_of(edge.source)
    target, target_rank = layer_of(edge.target)
    return (
        f"{edge.where()}: {edge.source} ({source}, rank {source_rank}) imports "
        f"{edge.target} ({target}, rank {target_rank})"
    )


def test_every_module_has_a_layer() -> None:
    for module in _modules():
        layer_of(module)


def test_imports_point_down() -> None:
    found = upward_imports()
    offending = [edge for edge in found if (edge.source, edge.target) not in ALLOWED]
    if offending:
        pytest.fail("imports pointing up:\n" + "\n".join(map(_describe, offending)), False)
    stale = set(ALLOWED) - {(edge.source, edge.target) for edge in found}
    assert not stale, f"allowlisted imports that are gone, remove them from ALLOWED: {stale}"


def test_no_module_imports_itself_through_others() -> None:
    cycles = import_cycles()
    edges = _edges()
    lines: list[str] = []
    for component in cycles:
        members = set(component)
        lines.append("cycle: " + " <-> ".join(component))
        lines.extend(
            "  " + edge.where() + f": {edge.source} imports {edge.target}"
            for edge in edges
            if edge.source in members and edge.target in members and edge.source != edge.target
        )
    if cycles:
        pytest.fail("import cycles:\n" + "\n".join(lines), False)


def test_the_check_sees_function_local_and_type_checking_imports() -> None:
    # the referee itself: a deferred import is still an edge
    text = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from assay.serve.app import ServerState\n"
        "def f():\n    from ..pipeline import run\n"
        "    import assay.train.mlp\n"
    )
    path = PACKAGE / "monitor" / "example.py"
    edges = list(_imports_in("assay.monitor.example", path, text, _modules()))
    assert {edge.target for edge in edges} == {
        "typing",
        "assay.serve.app",
        "assay.pipeline",
        "assay.train.mlp",
    }
    assert [_points_up(edge) for edge in edges if edge.target.startswith("assay")] == [
        True,
        True,
        False,
    ]
    assert not _points_up(Import("assay.monitor.retrain", "assay.serve.app", path, 1))
    assert _points_up(Import("assay.serve.app", "assay.monitor.drift", path, 1))
