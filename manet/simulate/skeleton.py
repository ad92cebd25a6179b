"""Skeleton pixels as a graph, and the longest path through each of its pieces.

The simulated user draws along the middle of an error region: the region's skeleton is
turned into a graph (one node per skeleton pixel, edges between 8-neighbours weighted by
their distance, 1 or sqrt(2)), and each connected piece contributes its longest path.

The longest path is found by a double sweep: from any node, the farthest node ``a``; from
``a``, the farthest node ``b``; the shortest ``a``-``b`` path. On a tree this is exactly the
diameter. Skeletons are trees up to tiny 3-pixel loops where 8-neighbours touch, on which
the sweep is still a longest path up to a pixel or two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from manet.optional import require

if TYPE_CHECKING:
    from scipy import sparse

# Forward half of the 8-neighbourhood: each undirected edge is found exactly once.
_FORWARD_OFFSETS = ((0, 1), (1, -1), (1, 0), (1, 1))


def skeleton_graph(skeleton: np.ndarray) -> tuple[np.ndarray, sparse.csr_matrix]:
    """Graph of a skeleton image.

    Args:
        skeleton: (h, w) bool, True on skeleton pixels.

    Returns:
        ``(coords, graph)``: coords is (N, 2) int64 ``(row, col)`` of each node; graph is an
        (N, N) symmetric sparse matrix of edge lengths (1 for side, sqrt(2) for diagonal
        neighbours).
    """
    scipy_sparse = require("scipy.sparse", "the simulated user")
    coords = np.argwhere(skeleton)
    count = coords.shape[0]
    height, width = skeleton.shape
    index = np.full((height + 2, width + 2), -1, dtype=np.int64)  # padded: no bounds checks
    index[coords[:, 0] + 1, coords[:, 1] + 1] = np.arange(count)
    sources, targets, weights = [], [], []
    for d_row, d_col in _FORWARD_OFFSETS:
        neighbour = index[coords[:, 0] + 1 + d_row, coords[:, 1] + 1 + d_col]
        found = neighbour >= 0
        sources.append(np.nonzero(found)[0])
        targets.append(neighbour[found])
        weights.append(np.full(int(found.sum()), np.sqrt(2.0) if d_row and d_col else 1.0))
    source, target, weight = (np.concatenate(part) for part in (sources, targets, weights))
    graph = scipy_sparse.coo_matrix(
        (np.concatenate([weight, weight]), (np.concatenate([source, target]), np.concatenate([target, source]))),
        shape=(count, count),
    ).tocsr()
    return coords, graph


def longest_paths(skeleton: np.ndarray, min_nodes: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Longest path of every connected piece of a skeleton with at least ``min_nodes`` pixels.

    Args:
        skeleton: (h, w) bool skeleton image.
        min_nodes: pieces with fewer pixels are dropped.
        rng: picks the start node of each double sweep (deterministic for a seeded generator).

    Returns:
        One (L, 2) int64 array of ``(row, col)`` pixels per kept piece, consecutive pixels
        8-adjacent, ordered from one end of the path to the other. Pieces are ordered by
        their first pixel in raster order.
    """
    csgraph = require("scipy.sparse.csgraph", "the simulated user")
    coords, graph = skeleton_graph(skeleton)
    if coords.shape[0] == 0:
        return []
    count, labels = csgraph.connected_components(graph, directed=False)
    kept = np.flatnonzero(np.bincount(labels, minlength=count) >= max(1, min_nodes))
    if kept.size == 0:
        return []
    # Pieces are disjoint, so one multi-source sweep serves all of them: every node's
    # nearest source is the start node of its own piece.
    starts = _argmax_per_piece(rng.random(labels.shape[0]), labels, count)[kept]
    first = csgraph.dijkstra(graph, directed=False, indices=starts, min_only=True)
    ends_a = _argmax_per_piece(first, labels, count)[kept]
    second, predecessors, _ = csgraph.dijkstra(graph, directed=False, indices=ends_a, min_only=True,
                                               return_predecessors=True)
    ends_b = _argmax_per_piece(second, labels, count)[kept]
    return [coords[_walk_back(predecessors, int(a), int(b))] for a, b in zip(ends_a, ends_b)]


def _argmax_per_piece(values: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """(count,) node index of the largest finite value within each piece (lowest index on ties)."""
    finite = np.where(np.isfinite(values), values, -1.0)
    nodes = np.arange(labels.shape[0])
    order = np.lexsort((-nodes, finite, labels))  # last of each label group = its argmax
    last = np.flatnonzero(np.append(np.diff(labels[order]) != 0, True))
    result = np.full(count, -1, dtype=np.int64)
    result[labels[order[last]]] = order[last]
    return result


def _walk_back(predecessors: np.ndarray, start: int, end: int) -> np.ndarray:
    """Nodes of the shortest path ``start`` -> ``end`` from a Dijkstra predecessor array."""
    nodes = [end]
    while nodes[-1] != start:
        nodes.append(int(predecessors[nodes[-1]]))
    return np.array(nodes[::-1], dtype=np.int64)
