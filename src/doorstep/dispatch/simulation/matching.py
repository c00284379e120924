"""Minimum-cost bipartite matching (the Hungarian method, O(n^2 m)), for the `batched` policy."""

from __future__ import annotations

import math
from collections.abc import Sequence


def min_cost_matching(costs: Sequence[Sequence[float | None]]) -> list[tuple[int, int]]:
    """(row, column) pairs of a matching with as many pairs as possible and, among those, the least total
    cost; `None` marks a pair that may not be matched. Sorted by row."""
    rows = len(costs)
    columns = len(costs[0]) if rows else 0
    if rows == 0 or columns == 0:
        return []
    finite = [value for line in costs for value in line if value is not None]
    # a forbidden pair costs more than every allowed pair together, so fewer forbidden pairs always win
    forbidden = 1.0 + math.fsum(abs(value) for value in finite) * 2
    dense = [[forbidden if value is None else value for value in line] for line in costs]
    transposed = rows > columns
    if transposed:
        dense = [list(line) for line in zip(*dense, strict=True)]
    pairs = _hungarian(dense)
    if transposed:
        pairs = [(row, column) for column, row in pairs]
    return sorted((row, column) for row, column in pairs if costs[row][column] is not None)


def _hungarian(cost: list[list[float]]) -> list[tuple[int, int]]:
    """Every row (no more rows than columns) matched to a distinct column at least total cost."""
    rows, columns = len(cost), len(cost[0])
    row_potential = [0.0] * (rows + 1)
    column_potential = [0.0] * (columns + 1)
    owner = [0] * (columns + 1)  # owner[j]: the row (1-based) matched to column j, 0 for none
    way = [0] * (columns + 1)
    for row in range(1, rows + 1):
        owner[0] = row
        free_column = 0
        slack = [math.inf] * (columns + 1)
        used = [False] * (columns + 1)
        while True:
            used[free_column] = True
            current = owner[free_column]
            delta = math.inf
            next_column = 0
            for column in range(1, columns + 1):
                if used[column]:
                    continue
                reduced = cost[current - 1][column - 1] - row_potential[current] - column_potential[column]
                if reduced < slack[column]:
                    slack[column] = reduced
                    way[column] = free_column
                if slack[column] < delta:
                    delta = slack[column]
                    next_column = column
            for column in range(columns + 1):
                if used[column]:
                    row_potential[owner[column]] += delta
                    column_potential[column] -= delta
                else:
                    slack[column] -= delta
            free_column = next_column
            if owner[free_column] == 0:
                break
        while free_column:
            previous = way[free_column]
            owner[free_column] = owner[previous]
            free_column = previous
    return [(owner[column] - 1, column - 1) for column in range(1, columns + 1) if owner[column]]
