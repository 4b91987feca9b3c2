"""Which records are one person or enterprise, given scored pairs and people's rulings.

The linker scores pairs; a person may have ruled some pairs "same" or "different". Clusters are
built greedily, strongest evidence first: every "same" ruling (must-link), then every pair at or
above the link threshold in descending probability, joining two groups only when no "different"
ruling (cannot-link) would end up inside one group. Ties are broken by record id, so the same
input always gives the same clusters, which is what keeps master IDs stable across re-runs.

Speed matters at a million records: when no "different" ruling touches a group, greedy joining
and plain connectivity give the same group, so connectivity is computed at once with
``scipy.sparse.csgraph``; only the few groups holding both ends of a "different" ruling are
replayed pair by pair in Python. Plain Python and numpy, no Django.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["cluster_records"]


def _positions(index: pd.Index, ids: Iterable, what: str) -> np.ndarray:
    values = np.asarray([str(i) for i in ids], dtype=object)
    found = index.get_indexer(values)
    if (found < 0).any():
        unknown = values[found < 0][0]
        raise ValueError(f"{what} names record {unknown!r}, which is not among the records")
    return found.astype(np.int64)


def _pair_positions(index: pd.Index, pairs: Iterable[tuple], what: str) -> np.ndarray:
    pairs = list(pairs)
    if not pairs:
        return np.empty((0, 2), dtype=np.int64)
    left = _positions(index, [a for a, _b in pairs], what)
    right = _positions(index, [b for _a, b in pairs], what)
    return np.column_stack([left, right])


def _find(parent: dict[int, int], x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:  # path compression
        parent[x], x = root, parent[x]
    return root


def _replay(
    nodes: np.ndarray,
    must: np.ndarray,
    edges: np.ndarray,
    cannot: np.ndarray,
) -> dict[int, int]:
    """Greedy constrained union-find over one group's nodes; returns node -> root."""
    parent = {int(n): int(n) for n in nodes}
    # per root: the nodes this group must never share a cluster with
    apart: dict[int, set[int]] = {int(n): set() for n in nodes}
    for a, b in cannot:
        apart[int(a)].add(int(b))
        apart[int(b)].add(int(a))

    def join(a: int, b: int) -> None:
        ra, rb = _find(parent, a), _find(parent, b)
        if ra == rb:
            return
        if any(_find(parent, x) == rb for x in apart[ra]):
            return  # a "different" ruling keeps these two groups apart
        keep, drop = (ra, rb) if ra < rb else (rb, ra)
        parent[drop] = keep
        apart[keep] |= apart.pop(drop)

    for a, b in must:
        join(int(a), int(b))
    for a, b in edges:
        join(int(a), int(b))
    return {int(n): _find(parent, int(n)) for n in nodes}


def _split(values: np.ndarray, keys: np.ndarray, wanted: np.ndarray) -> dict[int, np.ndarray]:
    """``values`` grouped by ``keys``, for the keys in ``wanted`` only (one sort, not a scan
    per key: there may be thousands of groups)."""
    keep = np.isin(keys, wanted)
    values, keys = values[keep], keys[keep]
    order = np.argsort(keys, kind="stable")
    values, keys = values[order], keys[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else []
    bounds = list(starts) + [len(keys)]
    return {int(keys[a]): values[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)}


def _torn_groups(torn, component, must, edges, cannot):
    """For each connected group holding both ends of a "different" ruling: its nodes and the
    rulings and pairs inside it, each in their original order."""
    empty = np.empty((0, 2), dtype=np.int64)
    nodes = _split(np.arange(len(component)), component, torn)
    musts = _split(must, component[must[:, 0]], torn) if len(must) else {}
    strong = _split(edges, component[edges[:, 0]], torn) if len(edges) else {}
    apart = _split(cannot, component[cannot[:, 0]], torn)
    for group in torn:
        group = int(group)
        group_cannot = apart[group]
        group_cannot = group_cannot[component[group_cannot[:, 1]] == group]
        yield (
            nodes[group],
            musts.get(group, empty),
            strong.get(group, empty),
            group_cannot,
        )


def cluster_records(
    record_ids: Sequence[str],
    pairs: pd.DataFrame,
    *,
    threshold: float,
    same: Iterable[tuple[str, str]] = (),
    different: Iterable[tuple[str, str]] = (),
) -> pd.DataFrame:
    """Cluster ``record_ids`` and return ``record_id``, ``cluster_id`` (every record once).

    ``pairs`` has ``record_l``, ``record_r`` and ``match_probability``; pairs below
    ``threshold`` are ignored. ``same`` pairs are joined first whatever their score;
    ``different`` pairs never end up in one cluster (a "same" ruling that would break one is
    skipped: a person's "different" is the stronger word). A cluster's id is the smallest record
    id in it (as text), so it does not depend on the order of the input.
    """
    ids = pd.Index(sorted({str(r) for r in record_ids}), dtype=object)
    if len(ids) != len(record_ids):
        raise ValueError("record ids must be unique")
    n = len(ids)
    if n == 0:
        return pd.DataFrame({"record_id": [], "cluster_id": []}, dtype=object)
    strong = pairs[pairs["match_probability"] >= threshold] if len(pairs) else pairs
    left = _positions(ids, strong["record_l"] if len(strong) else [], "a scored pair")
    right = _positions(ids, strong["record_r"] if len(strong) else [], "a scored pair")
    probability = strong["match_probability"].to_numpy(dtype=float) if len(strong) else np.empty(0)
    must = _pair_positions(ids, same, "a 'same' ruling")
    cannot = _pair_positions(ids, different, "a 'different' ruling")

    # normalise each edge as (low, high) and order: strongest first, ties by record id
    lo, hi = np.minimum(left, right), np.maximum(left, right)
    order = np.lexsort((hi, lo, -probability))
    edges = np.column_stack([lo[order], hi[order]]) if len(order) else np.empty((0, 2), np.int64)
    must = np.sort(must, axis=1) if len(must) else must
    must = must[np.lexsort((must[:, 1], must[:, 0]))] if len(must) else must

    everything = np.concatenate([must, edges]) if len(must) else edges
    graph = coo_matrix(
        (np.ones(len(everything), dtype=np.int8), (everything[:, 0], everything[:, 1])),
        shape=(n, n),
    )
    _count, component = connected_components(graph, directed=False)

    # the smallest position in each component names it (positions are in record-id order)
    root = np.full(component.max() + 1, n, dtype=np.int64)
    np.minimum.at(root, component, np.arange(n))
    label = root[component]

    if len(cannot):
        ends = component[cannot[:, 0]]
        torn = np.unique(ends[ends == component[cannot[:, 1]]])
        for nodes, group_must, group_edges, group_cannot in _torn_groups(
            torn, component, must, edges, cannot
        ):
            roots = _replay(nodes, group_must, group_edges, group_cannot)
            # name each replayed cluster by its smallest member
            smallest: dict[int, int] = {}
            for node, r in roots.items():
                smallest[r] = min(smallest.get(r, node), node)
            for node, r in roots.items():
                label[node] = smallest[r]

    return pd.DataFrame(
        {"record_id": ids.to_numpy(dtype=object), "cluster_id": ids.to_numpy(dtype=object)[label]}
    )
