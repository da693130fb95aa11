"""Full-resolution labels of low-resolution logits, exactly as the bilinear reference, fast.

The reference is ``argmax(F.interpolate(logits, size, mode="bilinear",
align_corners=False))`` (first maximum wins). It interpolates every class plane at every
output pixel, although most output pixels are settled by the four source pixels around
them: bilinear weights are convex, so a class below another at all four stays below it in
between. Where one class leads at all four corners of a source cell (a source pixel and
its right, lower and diagonal neighbours), :func:`cells` marks it decided and its whole
block of output pixels gets that class without arithmetic (a nearest-neighbour expansion
of the source grid). Only the blocks of the other cells are interpolated, for the few
classes :func:`candidates` keeps there, first in plain float32 and, for the blocks where
two classes come within the margin of each other, again with the reference kernel's own
arithmetic (:func:`interpolate_blocks`).

Exactness rests on two things. Every shortcut keeps a margin far above the rounding error
of any convex float32 interpolation, so rounding cannot make a dropped class win. The
values that decide close calls are computed bit for bit as the CPU kernel computes them:
its weights (``area_pixel_compute_source_index``), its order (width first, then height)
and its use of fused multiply-adds, which depends on how PyTorch was built and on the
code path a shape takes. :func:`kernel_rule` finds that arithmetic per pair of sizes by
comparing the candidates with ``F.interpolate`` on random planes, once per process; where
none matches, :func:`upsampled_labels` runs the reference itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

Order = Literal["first", "second", "separate"]
"""How a kernel rounds ``a * wa + b * wb``: one fused multiply-add of ``a * wa`` onto the
rounded ``b * wb`` ("first"), the same with the roles swapped ("second"), or two rounded
products and a sum ("separate"). Which one a build uses is up to its compiler."""


@dataclass(frozen=True)
class Rule:
    """The arithmetic of a bilinear kernel: whether the source position is a fused
    multiply-add, and the rounding of the blend along the width, then the height."""

    fused_position: bool
    width: Order
    height: Order


RULES = tuple(
    Rule(fused, width, height)
    for fused in (True, False)
    for width in ("first", "second", "separate")
    for height in ("first", "second", "separate")
)

MARGIN = 2.0**-16
"""A class is dropped from a cell only when it trails another class by more than this
fraction of the cell's largest logit magnitude: about 250 times the worst rounding of a
float32 bilinear interpolation, so rounding can never make a dropped class win."""


@dataclass(frozen=True)
class Taps:
    """Along one axis: the two source indices and weights of every output position, and its
    blocks: runs of output positions with the same first source index, cut at the length
    ``L`` an upsampling by ``target / source`` gives (border runs are longer)."""

    first: torch.Tensor
    second: torch.Tensor
    first_weight: torch.Tensor
    second_weight: torch.Tensor
    counts: torch.Tensor
    """(source,) how many output positions have each source index as first tap."""
    positions: torch.Tensor
    """(blocks, L) output positions of each block; shorter blocks repeat their last
    position (computing a pixel twice writes the same label twice)."""
    sources: torch.Tensor
    """(blocks,) the first source index of each block's positions."""


@cache
def taps(source: int, target: int, fused: bool) -> Taps:
    """Source indices and weights of ``target`` positions resampled from ``source``, as
    ATen's ``compute_source_index_and_lambda`` computes them in float32 (align_corners
    False); the source position ``scale * (i + 0.5) - 0.5`` is one FMA if ``fused``."""
    if source == target:
        index = torch.arange(target)
        ones, zeros = torch.ones(target), torch.zeros(target)
        return Taps(index, index, ones, zeros, torch.ones_like(index), index[:, None], index)
    scale = torch.tensor(source, dtype=torch.float32) / target
    shifted = torch.arange(target, dtype=torch.float32) + 0.5
    if fused:
        real = fused_multiply_add(scale.expand(target), shifted, torch.full_like(shifted, -0.5))
    else:
        real = scale * shifted - 0.5
    real = real.clamp(min=0.0)
    first = torch.floor(real).long().clamp(max=source - 1)
    second_weight = (real - first.float()).clamp(0.0, 1.0)
    second = torch.where(first < source - 1, first + 1, first)
    counts = torch.bincount(first, minlength=source)
    positions, sources = _blocks(counts, -(-target // source))
    return Taps(first, second, 1.0 - second_weight, second_weight, counts, positions, sources)


def _blocks(counts: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (blocks, ``length``) and source indices (blocks,) of the blocks of runs of
    ``counts`` positions per source index, each run cut into blocks of ``length``."""
    pieces = -(-counts // length)
    sources = torch.repeat_interleave(torch.arange(len(counts)), pieces)
    piece = torch.arange(len(sources)) - (pieces.cumsum(0) - pieces)[sources]
    start = (counts.cumsum(0) - counts)[sources] + piece * length
    last = (counts[sources] - piece * length).clamp(max=length) - 1
    return start[:, None] + torch.arange(length)[None].minimum(last[:, None]), sources


HALFWAY_BITS = (1 << 29) - 1
"""The float64 fraction bits below float32's: ``1 << 28`` in them marks a float64 that lies
exactly halfway between two float32 values."""


def fused_multiply_add(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """float32 ``a * b + c`` rounded once, as a hardware FMA. The product is exact in
    float64 and the sum rounded to float64 then float32 rounds the same as once, except
    where the float64 sum lands exactly halfway between two float32 values while the
    exact sum is not there: there the sum's rounding error (TwoSum) decides."""
    wide_a, wide_b = a.double(), b.double()
    total = torch.addcmul(c.double(), wide_a, wide_b)
    rounded = total.float()
    bits = total.view(torch.int64).bitwise_and_(HALFWAY_BITS)
    halfway = (bits == 1 << 28).nonzero(as_tuple=True)
    if len(halfway[0]):
        shape = rounded.shape
        wide_a, wide_b, addend = (x.expand(shape)[halfway].double() for x in (a, b, c))
        rounded[halfway] = _round_halfway(wide_a * wide_b, addend)
    return rounded


def _round_halfway(product: torch.Tensor, addend: torch.Tensor) -> torch.Tensor:
    """float32 of float64 sums of an exact ``product`` and ``addend`` that lie halfway
    between two float32: towards the exact sum where it is off that point, else as is."""
    total = product + addend
    virtual = total - product
    error = (product - (total - virtual)) + (addend - virtual)
    beyond = torch.nextafter(total, torch.where(error > 0, torch.inf, -torch.inf).double())
    return torch.where(error != 0, beyond, total).float()


def _blend(
    a: torch.Tensor, b: torch.Tensor, wa: torch.Tensor, wb: torch.Tensor, order: Order
) -> torch.Tensor:
    """``a * wa + b * wb`` rounded in ``order``."""
    if order == "first":
        return fused_multiply_add(a, wa, b * wb)
    if order == "second":
        return fused_multiply_add(b, wb, a * wa)
    return a * wa + b * wb


@dataclass(frozen=True)
class Blocks:
    """The output blocks of N source cells: the rows (Lr, N, 1) and columns (1, N, Lc) of
    their pixels and the values (K, Lr, N, Lc) of each cell's K classes there. Cells run
    along the inner dimensions so that every elementwise pass runs over long rows."""

    rows: torch.Tensor
    cols: torch.Tensor
    values: torch.Tensor


def interpolate_blocks(
    logits: torch.Tensor,
    rows: Taps,
    cols: Taps,
    blocks: tuple[torch.Tensor, torch.Tensor],
    classes: torch.Tensor,
    rule: Rule,
) -> Blocks:
    """Bilinear values of ``classes`` (K, N) over N output blocks (``blocks``: (N,) row
    blocks, (N,) column blocks) of logits (C, h, w), blended along the width first, then
    the height, as the kernel does; per block the four source corners are gathered once."""
    out_rows, out_cols = rows.positions[blocks[0]].T[:, :, None], cols.positions[blocks[1]]
    cell_rows, cell_cols = rows.sources[blocks[0]], cols.sources[blocks[1]]
    below, right = rows.second[out_rows[0, :, 0]], cols.second[out_cols[:, 0]]

    flat, plane = logits.reshape(-1), logits.shape[1] * logits.shape[2]

    def corner(r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        index = classes * plane + (r * logits.shape[2] + c)
        return flat.index_select(0, index.reshape(-1)).view(*index.shape, 1)

    left_weight, right_weight = cols.first_weight[out_cols], cols.second_weight[out_cols]
    upper = corner(cell_rows, cell_cols), corner(cell_rows, right)
    lower = corner(below, cell_cols), corner(below, right)
    upper = _blend(*upper, left_weight, right_weight, rule.width)[:, None]
    lower = _blend(*lower, left_weight, right_weight, rule.width)[:, None]
    shape = (out_rows.shape[0], len(cell_rows), out_cols.shape[1])
    top_weight = rows.first_weight[out_rows].expand(shape).contiguous()
    bottom_weight = rows.second_weight[out_rows].expand(shape).contiguous()
    values = _blend(upper, lower, top_weight, bottom_weight, rule.height)
    return Blocks(out_rows, out_cols[None], values)


def _next(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x`` shifted by one along ``dim`` towards lower indices, the last slice repeated."""
    size = x.shape[dim]
    return torch.cat([x.narrow(dim, 1, size - 1), x.narrow(dim, size - 1, 1)], dim)


def _over_cell(x: torch.Tensor, combine: Callable[..., torch.Tensor]) -> torch.Tensor:
    """``combine`` (torch.minimum, maximum, logical and) of ``x`` (..., h, w) over each
    source pixel, its right, lower and diagonal neighbour, clamped at the border."""
    across = combine(x, _next(x, -1))
    return combine(across, _next(across, -2))


def _top_two(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per pixel of logits (C, h, w): the largest value, the second largest and the class
    of the largest (the first where several are equal), one pass per class plane."""
    planes = logits.unbind(0)
    best, second = planes[0].clone(), torch.full_like(planes[0], -torch.inf)
    label = torch.zeros(best.shape, dtype=torch.uint8)
    for index, plane in enumerate(planes[1:], start=1):
        second = torch.maximum(second, torch.minimum(best, plane))
        label.masked_fill_(plane > best, index)
        best = torch.maximum(best, plane)
    return best, second, label


@dataclass(frozen=True)
class Cells:
    """What the four corners of every source cell decide (a cell is a source pixel with its
    right, lower and diagonal neighbours, clamped at the border: the only source pixels
    the output pixels of its block interpolate)."""

    winner: torch.Tensor
    """(h, w) uint8: the class every output pixel of the cell gets, where ``decided``."""
    decided: torch.Tensor
    """(h, w) bool: one class leads at all four corners, each time by more than the margin."""
    margin: torch.Tensor
    """(h, w) float32: ``MARGIN`` times the largest logit magnitude at the cell's corners."""


def cells(logits: torch.Tensor) -> Cells:
    """The cells of logits (C, h, w)."""
    margin = _over_cell(logits.abs().amax(0), torch.maximum) * MARGIN
    best, second, label = _top_two(logits)
    along = label == _next(label, -1)
    decided = along & _next(along, -2) & (label == _next(label, -2))
    decided &= _over_cell(best - second, torch.minimum) > margin
    return Cells(label, decided, margin)


def candidates(
    logits: torch.Tensor, cell_rows: torch.Tensor, cell_cols: torch.Tensor, margin: torch.Tensor
) -> torch.Tensor:
    """(N, C) bool: the classes that may win somewhere in each of N cells (``margin`` (N,)).
    A class is left out when its largest corner value is below the smallest corner value of
    another class by more than the margin: interpolated values lie between their corners'."""
    height, width = logits.shape[1:]
    below, right = (cell_rows + 1).clamp(max=height - 1), (cell_cols + 1).clamp(max=width - 1)
    planes = logits.reshape(len(logits), -1)
    a, b, c, d = (
        planes.index_select(1, r * width + c)
        for r in (cell_rows, below)
        for c in (cell_cols, right)
    )
    lowest = torch.minimum(torch.minimum(a, b), torch.minimum(c, d)).amax(0)
    highest = torch.maximum(torch.maximum(a, b), torch.maximum(c, d))
    return (highest >= (lowest - margin)[None]).T


def fast_upsampled_labels(logits: torch.Tensor, size: Sequence[int], rule: Rule) -> torch.Tensor:
    """trainIds (H, W) uint8 of logits (C, h, w) upsampled to ``size`` under ``rule``: the
    decided cells' winners, nearest-expanded, then the other cells' blocks interpolated for
    their candidate classes in plain float32 (:mod:`models.upsampling_pass`, imported at
    the first call: numba's import would slow every start of the app), and the blocks where
    that was too close to call, again under ``rule`` (:func:`_exact_labels`)."""
    from models.upsampling_pass import rough_labels

    rows, cols = (
        taps(n, m, rule.fused_position) for n, m in zip(logits.shape[1:], size, strict=True)
    )
    found = cells(logits)
    labels = found.winner.index_select(1, cols.first).index_select(0, rows.first)
    open_blocks = (~found.decided)[rows.sources][:, cols.sources]
    block_rows, block_cols = open_blocks.nonzero(as_tuple=True)
    cell_rows, cell_cols = rows.sources[block_rows], cols.sources[block_cols]
    margins = found.margin[cell_rows, cell_cols]
    possible = candidates(logits, cell_rows, cell_cols, margins)
    counts = possible.sum(1)
    order = torch.where(possible, torch.arange(len(logits)), len(logits)).sort(dim=1).values
    unsure = rough_labels(
        logits.contiguous().numpy(),
        _tap_arrays(rows),
        _tap_arrays(cols),
        (block_rows.numpy(), block_cols.numpy()),
        (order.to(torch.uint8).numpy(), counts.numpy(), margins.numpy()),
        labels.numpy(),
    )
    again = torch.from_numpy(unsure).nonzero()[:, 0]
    _exact_labels(
        logits, rows, cols, (block_rows[again], block_cols[again]), order[again], rule, labels
    )
    return labels


def compile_fast_labels() -> None:
    """Compile the fast path's loop now, or load it from numba's cache: the first large
    image would otherwise wait for that."""
    logits = torch.randn((2, 4, 4), generator=torch.Generator().manual_seed(0))
    fast_upsampled_labels(logits, (32, 32), RULES[0])


def _tap_arrays(taps: Taps) -> tuple[np.ndarray, ...]:
    """The taps' arrays the compiled pass reads: second source index, both weights, the
    output positions of each block and its first source index."""
    arrays = (taps.second, taps.first_weight, taps.second_weight, taps.positions, taps.sources)
    return tuple(array.contiguous().numpy() for array in arrays)


def _exact_labels(
    logits: torch.Tensor,
    rows: Taps,
    cols: Taps,
    blocks: tuple[torch.Tensor, torch.Tensor],
    order: torch.Tensor,
    rule: Rule,
    labels: torch.Tensor,
) -> None:
    """Write into ``labels`` the pixels of ``blocks`` interpolated with the kernel's own
    arithmetic (``rule``) for their candidate classes (``order``: the classes first, then
    ``C``), grouped by how many candidates a block has."""
    counts = (order < len(logits)).sum(1)
    for count in counts.unique().tolist():
        chosen = (counts == count).nonzero()[:, 0]
        classes = order[chosen, :count]
        picked = (blocks[0][chosen], blocks[1][chosen])
        values = interpolate_blocks(logits, rows, cols, picked, classes.T, rule)
        height, number, width = values.values.shape[1:]
        best = argmax_classes(values.values.reshape(count, height, -1)).view(height, number, width)
        offsets = (torch.arange(len(chosen)) * count)[:, None]
        winners = classes.reshape(-1)[best.long() + offsets]
        labels[values.rows, values.cols] = winners.to(torch.uint8)


def reference_upsampled(logits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """One image's logits (C, h, w) bilinearly resized to ``size`` by ``F.interpolate``."""
    return F.interpolate(logits[None], size=tuple(size), mode="bilinear", align_corners=False)[0]


FAST_MIN_AREA_RATIO = 16
"""Outputs with fewer times the source's pixels are left to the reference: the fast path's
fixed passes over the source grid cost about as much as interpolating them all."""

PROBE_BLOCKS = 512
"""Random output blocks a probe compares, besides every block of the four borders."""


@cache
def kernel_rule(source: tuple[int, int], target: tuple[int, int]) -> Rule | None:
    """The arithmetic of this process's bilinear CPU kernel from ``source`` to ``target``
    (height, width): the first rule whose values equal ``F.interpolate`` bit for bit on two
    random planes over every border block and random blocks; None if none does."""
    generator = torch.Generator().manual_seed(16)
    logits = torch.randn((2, *source), generator=generator) * 8
    expected = reference_upsampled(logits, target)
    for rule in RULES:
        rows, cols = (taps(n, m, rule.fused_position) for n, m in zip(source, target, strict=True))
        picked = _probe_blocks(len(rows.sources), len(cols.sources), generator)
        classes = torch.arange(2)[:, None].expand(2, len(picked[0]))
        blocks = interpolate_blocks(logits, rows, cols, picked, classes, rule)
        wanted = expected[:, blocks.rows, blocks.cols]
        if torch.equal(blocks.values, wanted):
            return rule
    return None


def _probe_blocks(
    rows: int, cols: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(row block, column block) of every block on the borders of a grid of ``rows`` x
    ``cols`` blocks and of random ones."""
    down, across = torch.arange(rows), torch.arange(cols)
    block_rows = [torch.zeros_like(across), torch.full_like(across, rows - 1), down, down]
    block_cols = [across, across, torch.zeros_like(down), torch.full_like(down, cols - 1)]
    block_rows.append(torch.randint(rows, (PROBE_BLOCKS,), generator=generator))
    block_cols.append(torch.randint(cols, (PROBE_BLOCKS,), generator=generator))
    return torch.cat(block_rows), torch.cat(block_cols)


def argmax_classes(logits: torch.Tensor) -> torch.Tensor:
    """``logits.argmax(-3)`` as uint8, of (classes, H, W) or (N, classes, H, W) logits (first
    maximum wins, as argmax; softmax keeps the order): one pass per class plane, faster on
    the CPU than a reduction across planes."""
    planes = logits.unbind(-3)
    best = planes[0].clone()
    labels = torch.zeros(best.shape, dtype=torch.uint8)
    better = torch.empty(best.shape, dtype=torch.bool)
    for index, plane in enumerate(planes[1:], start=1):
        torch.gt(plane, best, out=better)
        torch.maximum(best, plane, out=best)
        labels.masked_fill_(better, index)
    return labels


def reference_labels(logits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """trainIds (H, W) uint8: the argmax of the reference interpolation of logits (C, h, w)."""
    return argmax_classes(reference_upsampled(logits, size))


def upsampled_labels(logits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """trainIds (H, W) uint8 of one image's logits (C, h, w) upsampled to ``size``: equal to
    :func:`reference_labels`, computed by :func:`fast_upsampled_labels` where the output has
    at least ``FAST_MIN_AREA_RATIO`` times the source's pixels and :func:`kernel_rule`
    knows the kernel's arithmetic for these sizes."""
    source, target = tuple(logits.shape[-2:]), (int(size[0]), int(size[1]))
    if source == target:
        return argmax_classes(logits)
    large = target[0] * target[1] >= FAST_MIN_AREA_RATIO * source[0] * source[1]
    if large and logits.device.type == "cpu" and logits.dtype == torch.float32:
        rule = kernel_rule(source, target)
        if rule is not None:
            return fast_upsampled_labels(logits, target, rule)
    return reference_labels(logits, target)
