"""An import-linter contract type of our own: no import cycles between modules.

import-linter's built-in `acyclic_siblings` forbids cycles between *packages* (api.resources, the
composition root, and the packages it wires together form such a package-level cycle by design); what
we want is that no *module* ends up importing itself through others. Function-level (lazy) imports count
— a lazy import only moves a cycle out of the import-time failure path; imports under
`if TYPE_CHECKING:` do not (the `[tool.importlinter]` graph is built without them).

Registered in pyproject.toml (`contract_types`), so `lint-imports` checks it with the other contracts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from itertools import pairwise

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, output


def strongly_connected_components(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (a recursive one would hit the recursion limit on long chains)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(edges.get(root, ())))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(edges.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def shortest_cycle(edges: Mapping[str, Iterable[str]], start: str, members: set[str]) -> list[str]:
    """The shortest path start -> ... -> start inside one component (breadth-first)."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(edges.get(node, ())):
            if nxt not in members:
                continue
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return [start]


def find_module_cycles(graph: ImportGraph) -> list[list[str]]:
    """One representative cycle for each group of modules that import each other."""
    edges = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    cycles = []
    for component in strongly_connected_components(edges):
        if len(component) > 1:
            cycles.append(shortest_cycle(edges, component[0], set(component)))
    return cycles


class AcyclicModulesContract(Contract):
    type_name = "acyclic_modules"

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        cycles = find_module_cycles(graph)
        details = []
        for cycle in cycles:
            steps = []
            for importer, imported in pairwise(cycle):
                lines = graph.get_import_details(importer=importer, imported=imported)
                line = lines[0]["line_number"] if lines else "?"
                steps.append(f"{importer} (l.{line}) -> {imported}")
            details.append(steps)
        return ContractCheck(kept=not cycles, metadata={"cycles": details})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for steps in check.metadata["cycles"]:
            output.print_error("Import cycle:")
            for step in steps:
                output.print_error(f"    {step}", bold=False)
            output.new_line()
