"""A run's delegation tree as the API (`GET /v1/runs/{id}/tree`) and the console's run page
show it: the root, every run below it depth first (each run, then its children in start
order), and the chain from the root down to the run asked about. Read from the store's
`run_tree` / `ancestry` (the `runs` table's parent_run_id, root_run_id and hop)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from steward.store.database import Database
from steward.store.runs import RunRow, ancestry, run_tree


@dataclass(frozen=True, slots=True)
class RunTree:
    run: RunRow  # the run asked about
    chain: tuple[RunRow, ...]  # root .. run
    nodes: tuple[RunRow, ...]  # root first, depth first

    @property
    def root(self) -> RunRow:
        return self.chain[0]

    def subtree(self) -> frozenset[str]:
        """The run asked about and every run below it (what waits when it waits)."""
        inside = {self.run.id}
        for row in self.nodes:  # depth first: a parent comes before its children
            if row.parent_run_id in inside:
                inside.add(row.id)
        return frozenset(inside)

    @property
    def delegated(self) -> bool:
        """More than one run: the tree is worth showing."""
        return len(self.nodes) > 1


def depth_first(rows: list[RunRow]) -> tuple[RunRow, ...]:
    """`rows` as run_tree returns them (root first, the rest in start order) reordered so
    each run is followed by its children. A run whose parent is not in the list (a
    corrupt or partly projected tree) is kept, at the end, rather than hidden."""
    if not rows:
        return ()
    children: dict[str, list[RunRow]] = defaultdict(list)
    for row in rows[1:]:
        children[row.parent_run_id or ""].append(row)
    ordered: list[RunRow] = []
    seen: set[str] = set()
    stack = [rows[0]]
    while stack:
        row = stack.pop()
        if row.id in seen:
            continue
        seen.add(row.id)
        ordered.append(row)
        stack.extend(reversed(children.get(row.id, [])))
    ordered.extend(r for r in rows if r.id not in seen)
    return tuple(ordered)


def tree_of(db: Database, run_id: str) -> RunTree:
    """The tree `run_id` belongs to (NotFoundError when the run is unknown)."""
    chain = tuple(ancestry(db, run_id))
    return RunTree(chain[-1], chain, depth_first(run_tree(db, chain[0].id)))
