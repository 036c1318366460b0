"""The sums of sums.ChunkSums accumulated over shards of whole windows and merged exactly (issue 11's first
piece: the reduction itself; extraction does not call it yet, see notes/SCALE.md).

    >>> from analysis.stats.shards import shard_sums, merge, finish
    >>> parts = [shard_sums(X[rows], rows, d, shard=i, shift=shift) for i, rows in enumerate(shard_rows)]
    >>> s = finish(merge(parts), d)       # == sums.chunk_sums(At, mean, d) to float64 rounding

A shard holds the sums of its tokens' activations taken around a fixed per-neuron `shift` (any value the
same for every shard; close to the mean keeps the sums well conditioned, e.g. the first shard's mean):
power sums 1-4, per-(type, window) cell sums, per-next-type sums, per-group sums and sums of squares, and the
values at tokens without a next token. Every one of them is a sum over tokens, so the sample's sums are the
sums of the shards' (`merge`, in shard-index order, whatever order the shards arrive in: the same bytes).
`finish` moves them from the shift to the sample mean with the binomial identities (sum (a - m) = S1 - n d,
sum (a - m)^2 = S2 - 2 d S1 + n d^2, ...) and derives the per-type and per-window sums from the cells exactly
as the in-memory path does.

What does not scale yet: the cell sums are [n_cells, k], and n_cells grows with the sample (406 961 cells in
1 M tokens of the offline corpus); notes/SCALE.md has the replacement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .design import Design
from .sums import ChunkSums


@dataclass
class ShardSums:
    shard: int               # merge order
    n: int                   # tokens in the shard
    shift: np.ndarray        # [k] the sums are of a - shift
    powers: np.ndarray       # [4, k] sums of (a - shift)^1..4
    cells: np.ndarray        # [C, k] per (type, window) cell, cell order of the design
    next_sums: np.ndarray    # [T, k] over the tokens whose next token is of type t
    group_sums: np.ndarray   # [3, k] short / equal / long
    group_sq: np.ndarray     # [3, k]
    nn_pos: np.ndarray       # working positions of the shard's tokens without a next token
    nn: np.ndarray           # [len(nn_pos), k] their (a - shift)


def shard_sums(A: np.ndarray, rows: np.ndarray, d: Design, *, shard: int, shift: np.ndarray) -> ShardSums:
    """Sums of one shard. A: [len(rows), k] activations of the non-special token rows `rows` (indices into
    the design's row order); shift: [k]."""
    shift = np.asarray(shift, dtype=np.float64)
    pos = d.row_positions()[np.asarray(rows, dtype=np.int64)]
    keep = np.argsort(pos, kind="stable")            # working order inside the shard
    pos = pos[keep]
    Ac = np.asarray(A, dtype=np.float64)[keep] - shift
    A2 = Ac * Ac
    powers = np.stack([Ac.sum(axis=0), A2.sum(axis=0), np.einsum("ij,ij->j", A2, Ac),
                       np.einsum("ij,ij->j", A2, A2)])
    grp = d.group[pos]
    group_sums = np.stack([Ac[grp == g].sum(axis=0) for g in range(3)])
    group_sq = np.stack([A2[grp == g].sum(axis=0) for g in range(3)])
    cells = np.asarray(d.extra["token_to_cell"][:, pos] @ Ac)
    next_sums = np.asarray(d.extra["next_type_of_token"][:, pos] @ Ac)
    no_next = np.isin(pos, d.no_next)
    return ShardSums(shard=int(shard), n=len(pos), shift=shift, powers=powers, cells=cells, next_sums=next_sums,
                     group_sums=group_sums, group_sq=group_sq, nn_pos=pos[no_next], nn=Ac[no_next])


def merge(parts: list[ShardSums]) -> ShardSums:
    """The sums of all shards, added in shard-index order (any arrival order gives the same bytes)."""
    if not parts:
        raise ValueError("no shard to merge")
    parts = sorted(parts, key=lambda p: p.shard)
    shift = parts[0].shift
    for p in parts[1:]:
        if not np.array_equal(p.shift, shift):
            raise ValueError(f"shard {p.shard} was summed around another shift than shard {parts[0].shard}")
        if p.cells.shape != parts[0].cells.shape:
            raise ValueError(f"shard {p.shard} has {p.cells.shape} cell sums, shard {parts[0].shard} "
                             f"{parts[0].cells.shape}: not the same design")

    def total(name):
        out = getattr(parts[0], name).copy()
        for p in parts[1:]:
            out += getattr(p, name)
        return out

    nn_pos = np.concatenate([p.nn_pos for p in parts])
    if len(np.unique(nn_pos)) != len(nn_pos):
        raise ValueError("two shards hold the same token: shards must be disjoint sets of windows")
    return ShardSums(shard=parts[0].shard, n=sum(p.n for p in parts), shift=shift, powers=total("powers"),
                     cells=total("cells"), next_sums=total("next_sums"), group_sums=total("group_sums"),
                     group_sq=total("group_sq"), nn_pos=nn_pos, nn=np.concatenate([p.nn for p in parts]))


def finish(s: ShardSums, d: Design) -> ChunkSums:
    """ChunkSums of the merged sample, centred at its mean (as sums.chunk_sums computes them in memory)."""
    if s.n != d.n:
        raise ValueError(f"the shards hold {s.n} tokens, the design {d.n}: a shard is missing")
    n = float(s.n)
    S1, S2, S3, S4 = s.powers
    dl = S1 / n                                     # mean - shift
    saa = S2 - n * dl**2
    s3 = S3 - 3 * dl * S2 + 3 * dl**2 * S1 - n * dl**3
    s4 = S4 - 4 * dl * S3 + 6 * dl**2 * S2 - 4 * dl**3 * S1 + n * dl**4
    sizes = np.asarray(d.group_sizes, dtype=np.float64)[:, None]
    group_sums = s.group_sums - sizes * dl
    group_sq = s.group_sq - 2 * dl * s.group_sums + sizes * dl**2
    cellsT = s.cells - d.cell_sizes.astype(np.float64)[:, None] * dl
    next_counts = np.bincount(d.next_type_of[d.next_type_of >= 0], minlength=d.n_types).astype(np.float64)
    S_nextT = s.next_sums - next_counts[:, None] * dl
    nnT = s.nn[np.argsort(s.nn_pos)] - dl           # the design's no_next order (ascending positions)
    return ChunkSums(mean=s.shift + dl, Saa=saa, S3=s3, S4=s4, cellsT=cellsT,
                     S_T=np.asarray(d.extra["cell_to_type"] @ cellsT), A_gT=np.asarray(d.cell_to_seq.T @ cellsT),
                     S_nextT=S_nextT, nnT=nnT, group_sums=group_sums, group_sq=group_sq)
