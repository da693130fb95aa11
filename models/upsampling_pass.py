"""The fast full-resolution labels' first pass over the open blocks, compiled.

:func:`models.upsampling.fast_upsampled_labels` hands it the blocks whose four source
corners leave the class open; it interpolates their candidate classes in plain float32 and
says which blocks are too close to call, for the exact pass that follows. numba compiles it
the first time on a machine and keeps it in its cache beside this file.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def rough_labels(
    logits: np.ndarray,
    rows: tuple,
    cols: tuple,
    blocks: tuple[np.ndarray, np.ndarray],
    choices: tuple[np.ndarray, np.ndarray, np.ndarray],
    labels: np.ndarray,
) -> np.ndarray:
    """Write into ``labels`` the winner of every pixel of the open ``blocks`` (row and
    column block of each) among its block's candidate classes (``choices``: the classes in
    order, their count and the block's margin), interpolated width first, then height, in
    plain float32: within a few units in the last place of the kernel's arithmetic, which
    is far below the margin. Returns which blocks hold a pixel whose two best classes are
    within the margin: those are computed again exactly."""
    below_of, top_weight, bottom_weight, row_positions, row_sources = rows
    right_of, left_weight, right_weight, col_positions, col_sources = cols
    classes, counts, margins = choices
    unsure = np.zeros(blocks[0].size, dtype=np.bool_)
    for n in range(blocks[0].size):
        out_rows, out_cols = row_positions[blocks[0][n]], col_positions[blocks[1][n]]
        top, left = row_sources[blocks[0][n]], col_sources[blocks[1][n]]
        bottom, right = below_of[out_rows[0]], right_of[out_cols[0]]
        for y in out_rows:
            for x in out_cols:
                best, second, winner = -np.inf, -np.inf, 0
                for k in range(counts[n]):
                    plane = logits[classes[n, k]]
                    upper = plane[top, left] * left_weight[x] + plane[top, right] * right_weight[x]
                    lower = (
                        plane[bottom, left] * left_weight[x]
                        + plane[bottom, right] * right_weight[x]
                    )
                    value = upper * top_weight[y] + lower * bottom_weight[y]
                    if value > best:
                        best, second, winner = value, best, classes[n, k]
                    elif value > second:
                        second = value
                labels[y, x] = winner
                unsure[n] |= best - second <= margins[n]
    return unsure
