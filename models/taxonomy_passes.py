"""The error taxonomy's compiled passes: the kind of every wrong pixel, Boundary IoU counts.

The rules are those of :mod:`models.taxonomy`, which documents them; here they are worked
out for all classes at once instead of one class after the other. Seen one class ``c`` at a
time, every question the taxonomy asks of an error is "is there a pixel of some set of
``c`` near it": a true positive or a true negative of ``c`` within one pixel (its run is
found, lies between the two sides) or within the band (it is a seed), a seed of ``c`` of
the same view within the band (it is a boundary error). So each pixel carries one bit per
class and set (true positives and true negatives; the seeds of either view), and one pass
ORs the bits over the band's square window, along the rows and then down the columns a
block of rows at a time, reading the result at the errors only. Runs (the 8-connected
errors of one class in one view) come from one union-find pass. The Boundary IoU counts
(:func:`band_counts`) add each judged pixel to its classes' counts in one pass.

numba compiles the loops (``nogil``: the two models' taxonomies run in two threads) and
keeps them in its cache beside this file, so only the first process on a machine compiles.
Work is handed to a function a row at a time, not a pixel: a call that takes arrays costs
numba more than a pixel's work.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from models.labels import BACKGROUND, NUM_CLASSES, NUM_EVALUATED

_SHIFT = 32
"""A pixel's near-bits: true positives of class c at bit c, true negatives at bit 32 + c;
seeds of the false-negative view at bit c, of the false-positive view at 32 + c."""
_NO_ERROR = -1
_ALL_CLASSES = (1 << NUM_CLASSES) - 1


@njit(nogil=True, cache=True)
def _root(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(nogil=True, cache=True)
def _join(parent: np.ndarray, i: int, j: int) -> None:
    a, b = _root(parent, i), _root(parent, j)
    if a < b:
        parent[b] = a
    elif b < a:
        parent[a] = b


@njit(nogil=True, cache=True)
def _sides(a: int, b: int) -> np.uint64:
    """Near-bits of a pixel of ground truth ``a`` and prediction ``b``: its class's
    true-positive bit where the two agree, and the true-negative bit of every class that is
    neither of them."""
    own = (np.uint64(1) << np.uint64(a)) | (np.uint64(1) << np.uint64(b))
    right = own if a == b else np.uint64(0)
    return right | ((np.uint64(_ALL_CLASSES) & ~own) << np.uint64(_SHIFT))


@njit(nogil=True, cache=True)
def _touch_row(
    gt: np.ndarray, pred: np.ndarray, y: int, where: np.ndarray, touched: np.ndarray
) -> None:
    """``touched``: for each error of row ``y`` (at flat ``where``), which sets of its two
    classes lie within one pixel of it: a true positive (bit 0) and a true negative (bit 1)
    of its ground truth's class, the same of its prediction's (bits 2, 3)."""
    height, width = gt.shape
    for n in range(where.size):
        x = where[n] - y * width
        near = np.uint64(0)
        for yy in range(max(0, y - 1), min(height, y + 2)):
            for xx in range(max(0, x - 1), min(width, x + 2)):
                near |= _sides(gt[yy, xx], pred[yy, xx])
        bits = 0
        for view, c in enumerate((gt[y, x], pred[y, x])):
            right, neither = (near >> np.uint64(c)) & 1, (near >> np.uint64(c + _SHIFT)) & 1
            bits |= int(right | neither << 1) << (2 * view)
        touched[n] = bits


@njit(nogil=True, cache=True)
def _join_row(
    parent: np.ndarray,
    labels: np.ndarray,
    above: np.ndarray,
    here: np.ndarray,
    y: int,
    where: np.ndarray,
) -> None:
    """Join each error of row ``y`` (at flat ``where``; ``above`` and ``here`` hold the
    errors' indices in the row above and this one, or -1) with those of its 8-neighbours
    before it in raster order that are errors of its class in ``labels``: the one above if
    it is one (the others are already joined with it), else the one left or above-left,
    and the one above-right."""
    width = labels.shape[1]
    for n in range(where.size):
        x = where[n] - y * width
        c, i = labels[y, x], here[x]
        if y > 0 and above[x] != _NO_ERROR and labels[y - 1, x] == c:
            _join(parent, i, above[x])
            continue
        if x > 0 and here[x - 1] != _NO_ERROR and labels[y, x - 1] == c:
            _join(parent, i, here[x - 1])
        elif y > 0 and x > 0 and above[x - 1] != _NO_ERROR and labels[y - 1, x - 1] == c:
            _join(parent, i, above[x - 1])
        if y > 0 and x + 1 < width and above[x + 1] != _NO_ERROR and labels[y - 1, x + 1] == c:
            _join(parent, i, above[x + 1])


@njit(nogil=True, cache=True)
def _scan(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, ...]:
    """One raster pass over the errors: the first error of each row (and their count), their
    flat positions, the union-find forests of their runs in the two views (false negatives
    by the ground truth's class, false positives by the prediction's) and the sets each one
    touches (:func:`_touch_row`)."""
    height, width = gt.shape
    count = np.count_nonzero(gt != pred)
    starts, where = np.empty(height + 1, dtype=np.int64), np.empty(count, dtype=np.int64)
    parents = np.arange(2 * count).astype(np.int32).reshape(2, count)
    parents[1] -= count
    touched = np.empty(count, dtype=np.uint8)
    above, here = np.full(width, _NO_ERROR, dtype=np.int32), np.empty(width, dtype=np.int32)
    i = 0
    for y in range(height):
        starts[y] = i
        for x in range(width):
            here[x] = i if gt[y, x] != pred[y, x] else _NO_ERROR
            if here[x] != _NO_ERROR:
                where[i], i = y * width + x, i + 1
        row = slice(starts[y], i)
        _touch_row(gt, pred, y, where[row], touched[row])
        _join_row(parents[0], gt, above, here, y, where[row])
        _join_row(parents[1], pred, above, here, y, where[row])
        above, here = here, above
    starts[height] = i
    return starts, where, parents, touched


@njit(nogil=True, cache=True)
def _run_sides(parent: np.ndarray, touched: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether each error's run (in the view of ``parent``, whose sets are ``touched``'s
    two low bits) is found (touches a true positive of its class), and whether it lies
    between the two sides (found, and touches a true negative)."""
    found = np.zeros(parent.size, dtype=np.bool_)
    between = np.zeros(parent.size, dtype=np.bool_)
    for i in range(parent.size):
        run = parent[i] = _root(parent, i)
        found[run] |= touched[i] & 1
        between[run] |= (touched[i] >> 1) & 1
    for i in range(parent.size):
        run = parent[i]
        found[i], between[i] = found[run], found[run] & between[run]
    return found, between


@njit(nogil=True, cache=True)
def _or_along_row(
    row: np.ndarray, radius: int, forward: np.ndarray, backward: np.ndarray, out: np.ndarray
) -> None:
    """``out``: the OR of each entry of ``row`` over the entries within ``radius`` (nothing
    beyond its ends), by van Herk's blocks of the window's width: a window's OR is the
    suffix of one block's and the prefix of the next. ``forward`` and ``backward`` are
    scratch of a whole number of blocks covering the row padded by ``radius``."""
    span, width, zero = 2 * radius + 1, row.size, row.dtype.type(0)
    for start in range(0, forward.size, span):
        ahead = behind = zero
        for k in range(span):
            i, j = start + k, start + span - 1 - k
            ahead |= row[i - radius] if radius <= i < radius + width else zero
            behind |= row[j - radius] if radius <= j < radius + width else zero
            forward[i], backward[j] = ahead, behind
    for x in range(width):
        out[x] = backward[x] | forward[x + span - 1]


@njit(nogil=True, cache=True)
def _block_scans(rows: np.ndarray, forward: np.ndarray, backward: np.ndarray) -> None:
    """Prefix and suffix ORs down a block of ``rows``, a whole row at a time."""
    span = rows.shape[0]
    forward[0], backward[span - 1] = rows[0], rows[span - 1]
    for k in range(1, span):
        for x in range(rows.shape[1]):
            forward[k, x] = forward[k - 1, x] | rows[k, x]
            backward[span - 1 - k, x] = backward[span - k, x] | rows[span - 1 - k, x]


@njit(nogil=True, cache=True)
def _fill_row(
    maps: tuple, seeds: np.ndarray | None, errors: tuple, y: int, line: np.ndarray
) -> bool:
    """Row ``y``'s near-bits in ``line``, and whether any is set: those of true positives and
    true negatives of the ``maps`` (ground truth, prediction; :func:`_sides`), or with
    ``seeds`` (each error's seed bits), the errors' (``errors``: ``starts`` of rows and
    flat ``where``)."""
    gt, pred = maps
    if seeds is None:
        for x in range(line.size):
            line[x] = _sides(gt[y, x], pred[y, x])
        return True
    starts, where = errors
    line[:] = 0
    seen = np.uint64(0)
    for i in range(starts[y], starts[y + 1]):
        line[where[i] - y * line.size] = seeds[i]
        seen |= seeds[i]
    return seen != 0


@njit(nogil=True, cache=True)
def _near_bits(maps: tuple, seeds: np.ndarray | None, errors: tuple, radius: int) -> np.ndarray:
    """(E,) uint64: for each error, the OR of the near-bits of :func:`_fill_row` over the
    square window of ``radius`` around it. Blocks of ``2 radius + 1`` rows are OR-ed along
    their rows, then down (prefix and suffix per block, as along a row), so that only the
    current block and the previous one's suffixes are held, never a map of the image."""
    starts, where = errors
    (height, width), span = maps[0].shape, 2 * radius + 1
    line = np.zeros(width, dtype=np.uint64)
    padded = ((width + 2 * radius) // span + 1) * span
    forward_row, backward_row = np.empty(padded, np.uint64), np.empty(padded, np.uint64)
    rows = np.zeros((span, width), dtype=np.uint64)
    forward, backward, previous = np.empty_like(rows), np.empty_like(rows), np.zeros_like(rows)
    near = np.empty(where.size, dtype=np.uint64)
    for start in range(0, height + span, span):
        for k in range(span):
            y = start + k - radius
            if 0 <= y < height and _fill_row(maps, seeds, errors, y, line):
                _or_along_row(line, radius, forward_row, backward_row, rows[k])
            else:
                rows[k] = 0
        _block_scans(rows, forward, backward)
        for k in range(span):
            y = start - span + k
            if 0 <= y < height:
                for i in range(starts[y], starts[y + 1]):
                    x = where[i] - y * width
                    near[i] = previous[k, x] | (forward[k - 1, x] if k else np.uint64(0))
        previous, backward = backward, previous
    return near


@njit(nogil=True, cache=True)
def _seed_bits(sides: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(2, E) each error's bit of its class in each view, laid out as seeds' near-bits;
    (E,) its seed bits: its bit in each view where a true positive and a true negative of
    that class lie within the band (``sides``, its near-bits over the window)."""
    bits = np.empty(classes.shape, dtype=np.uint64)
    seeds = np.zeros(classes.shape[1], dtype=np.uint64)
    for view in range(2):
        for i in range(seeds.size):
            bit = np.uint64(1) << np.uint64(classes[view, i])
            both = bit | (bit << np.uint64(_SHIFT))
            bits[view, i] = bit << np.uint64(view * _SHIFT)
            if sides[i] & both == both:
                seeds[i] |= bits[view, i]
    return bits, seeds


@njit(nogil=True, cache=True)
def error_kinds(gt: np.ndarray, pred: np.ndarray, band: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat positions of the wrong pixels and the kind of each (1 boundary, 2 extent,
    3 segment), the graver of its two views; ``gt`` and ``pred`` are C-contiguous uint8
    maps, ``band`` in pixels."""
    starts, where, parents, touched = _scan(gt, pred)
    classes = np.stack((gt.ravel()[where], pred.ravel()[where]))
    bits, seeds = _seed_bits(_near_bits((gt, pred), None, (starts, where), band), classes)
    near_seeds = _near_bits((gt, pred), seeds, (starts, where), band)
    kinds = np.zeros(where.size, dtype=np.uint8)
    for view in range(2):
        found, between = _run_sides(parents[view], touched >> np.uint8(2 * view))
        for i in range(where.size):
            boundary = between[i] and near_seeds[i] & bits[view, i]
            kinds[i] = max(kinds[i], 1 if boundary else 2 if found[i] else 3)
    return where, kinds


@njit(nogil=True, cache=True)
def band_counts(
    gt: np.ndarray, pred: np.ndarray, in_gt: np.ndarray, in_pred: np.ndarray
) -> np.ndarray:
    """(2, 19): per evaluated class, intersection and union of the two maps' bands
    (``in_gt``, ``in_pred``: 0/255) over the judged pixels, in one pass over the pixels:
    the union is the truth's band and the prediction's less the intersection."""
    counts = np.zeros((2, NUM_CLASSES), dtype=np.int64)
    truth, predicted = gt.ravel(), pred.ravel()
    truth_band, predicted_band = in_gt.ravel(), in_pred.ravel()
    for i in range(truth.size):
        c, d = truth[i], predicted[i]
        if c != BACKGROUND:
            if truth_band[i] and predicted_band[i] and c == d:
                counts[0, c] += 1
            if truth_band[i]:
                counts[1, c] += 1
            if predicted_band[i]:
                counts[1, d] += 1
    counts[1] -= counts[0]
    return counts[:, :NUM_EVALUATED]
