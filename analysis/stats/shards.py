"""The sums of sums.ChunkSums accumulated over shards of whole windows and merged exactly (issue 11: the
reduction itself; extraction does not call it yet, see notes/SCALE.md).

    >>> from analysis.stats.block import reduce_terms_of
    >>> from analysis.stats.shards import shard_sums, merge, finish
    >>> terms = reduce_terms_of(d)
    >>> parts = [shard_sums(X[rows], rows, d, terms, shard=i, shift=shift) for i, rows in enumerate(shard_rows)]
    >>> s = finish(merge(parts, d), d, terms)   # == sums.chunk_sums(At, mean, d, terms) to float64 rounding
    >>> s = sharded_sums(X, d, terms, shard_rows, engine=Engine("dask"))   # the same, shards on a cluster

A shard holds every sum of sums.ChunkSums over its tokens' activations taken around a fixed per-neuron
`shift` (any value the same for every shard; close to the mean keeps the sums well conditioned, e.g. the
first shard's mean), computed by the same function as the in-memory path (sums.window_sums). Each is a sum
over tokens, or over (type, sequence) cells, which never cross a sequence: the sample's sums are the sums of
the shards' (`merge`, in shard-index order, whatever order the shards arrive in: the same bytes). `finish`
moves them from the shift to the sample mean (d = mean - shift): a weighted sum sum_i w_i (a_i - m) is
sum_i w_i (a_i - shift) - d sum_i w_i, and the power sums follow the binomial identities
(sum (a - m)^2 = S2 - 2 d S1 + n d^2, ...). What a shard keeps grows with the number of types and
sequences, not with its number of cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .design import Design
from .sums import INDEXED, ChunkSums, ReduceTerms, window_sums


@dataclass
class ShardSums:
    shard: int               # merge order
    n: int                   # tokens in the shard
    shift: np.ndarray        # [k] the sums are of a - shift
    widen: np.ndarray        # [k'] neurons whose per-type weighted sums are kept
    sums: dict               # name -> array: sums.window_sums of the shard's (a - shift)
    index: dict              # "types" | "next_types" | "seqs" -> the rows held of each sum in sums.INDEXED
    nn_pos: np.ndarray       # working positions of the shard's tokens without a next token
    nn: np.ndarray           # [len(nn_pos), k] their (a - shift)


def shard_sums(A: np.ndarray, rows: np.ndarray, d: Design, terms: ReduceTerms, *, shard: int, shift: np.ndarray,
               widen: np.ndarray | None = None) -> ShardSums:
    """Sums of one shard. A: [len(rows), k] activations of the non-special token rows `rows` (indices into
    the design's row order; whole sequences); shift: [k]; widen: neurons whose per-type sums are kept."""
    shift = np.asarray(shift, dtype=np.float64)
    widen = np.zeros(0, np.int64) if widen is None else np.asarray(widen, np.int64)
    pos = d.row_positions()[np.asarray(rows, dtype=np.int64)]
    keep = np.argsort(pos, kind="stable")            # working order inside the shard
    pos = pos[keep]
    Ac = np.asarray(A)[keep].astype(np.float64)      # gather in the storage dtype, then one float64 copy
    Ac -= shift
    no_next = np.isin(pos, d.no_next)
    sums, index = window_sums(Ac, d, terms, widen, pos)
    return ShardSums(shard=int(shard), n=len(pos), shift=shift, widen=widen, sums=sums, index=index,
                     nn_pos=pos[no_next], nn=Ac[no_next])


def merge(parts: list[ShardSums], d: Design, compact: bool = False) -> ShardSums:
    """The sums of all shards, added in shard-index order (any arrival order gives the same bytes); the
    per-type and per-sequence rows of each shard are added at their places in the sample's arrays, or, with
    `compact`, in arrays of only the rows some shard holds (a partial result that is merged again later)."""
    if not parts:
        raise ValueError("no shard to merge")
    parts = sorted(parts, key=lambda p: p.shard)
    if len({p.shard for p in parts}) != len(parts):
        raise ValueError("two shards have the same index: the merge order (and the bytes) would depend on arrival")
    first = parts[0]
    for p in parts[1:]:
        if not np.array_equal(p.shift, first.shift):
            raise ValueError(f"shard {p.shard} was summed around another shift than shard {first.shard}")
        if not np.array_equal(p.widen, first.widen) or p.sums["S_T"].shape[1] != first.sums["S_T"].shape[1]:
            raise ValueError(f"shard {p.shard} and shard {first.shard} do not hold the same sums: not the same "
                             f"design or neurons")
    full = {"types": d.n_types, "next_types": d.n_types, "seqs": d.n_seq}
    held = {k: [np.arange(n) if p.index[k] is None else p.index[k] for p in parts] for k, n in full.items()}
    rows = {k: np.unique(np.concatenate(v)) if compact else None for k, v in held.items()}
    total = {}
    for name, v in first.sums.items():
        if name not in INDEXED:
            total[name] = v.copy()
            for p in parts[1:]:
                total[name] += p.sums[name]
            continue
        kind, axis = INDEXED[name]
        shape = list(v.shape)
        shape[axis] = full[kind] if rows[kind] is None else len(rows[kind])
        total[name] = np.zeros(shape)
        for p, idx in zip(parts, held[kind]):
            at = idx if rows[kind] is None else np.searchsorted(rows[kind], idx)
            total[name][(slice(None),) * axis + (at,)] += p.sums[name]   # distinct rows: a plain fancy-index add
    nn_pos = np.concatenate([p.nn_pos for p in parts])
    if len(np.unique(nn_pos)) != len(nn_pos):
        raise ValueError("two shards hold the same token: shards must be disjoint sets of windows")
    return ShardSums(shard=first.shard, n=sum(p.n for p in parts), shift=first.shift, widen=first.widen,
                     sums=total, index=rows, nn_pos=nn_pos, nn=np.concatenate([p.nn for p in parts]))


def finish(s: ShardSums, d: Design, terms: ReduceTerms) -> ChunkSums:
    """ChunkSums of the merged sample, centred at its mean (as sums.chunk_sums computes them in memory)."""
    if s.n != d.n:
        raise ValueError(f"the shards hold {s.n} tokens, the design {d.n}: a shard is missing")
    if any(v is not None for v in s.index.values()):
        raise ValueError("internal: finish needs the sample's full arrays (merge(..., compact=False))")
    w = s.sums
    n = float(s.n)
    S1, S2, S3, S4 = w["S1"], w["Saa"], w["S3"], w["S4"]
    dl = S1 / n                                     # mean - shift
    saa = S2 - n * dl**2
    s3 = S3 - 3 * dl * S2 + 3 * dl**2 * S1 - n * dl**3
    s4 = S4 - 4 * dl * S3 + 6 * dl**2 * S2 - 4 * dl**3 * S1 + n * dl**4
    sizes = np.asarray(d.group_sizes, dtype=np.float64)[:, None]
    G, T, S = d.n_seq, d.n_types, len(terms.names)
    cell_n = d.cell_sizes.astype(np.float64)

    def moved(total, weight_sums, shift_dl=dl):      # sum_i w_i (a_i - m) from sum_i w_i (a_i - shift)
        return total - np.multiply.outer(weight_sums, shift_dl)

    seq_w = (terms.seq_W @ cell_n).reshape(S + 3, G)
    next_counts = np.bincount(d.next_type_of[d.next_type_of >= 0], minlength=T).astype(np.float64)
    yc = terms.yc_cell
    q_cell = w["Q_cell"] - 2 * dl * w["Q_lin"] + dl**2 * float(np.sum(yc**2 * cell_n**2))
    return ChunkSums(mean=s.shift + dl, Saa=saa, S3=s3, S4=s4,
                     S_T=moved(w["S_T"], d.counts.astype(np.float64)),
                     A_gT=moved(w["A_gT"], np.bincount(d.cell_seq, weights=cell_n, minlength=G)),
                     A_sgT=moved(w["A_sgT"], seq_w[S + 1:]),
                     S_nextT=moved(w["S_nextT"], next_counts),
                     nnT=s.nn[np.argsort(s.nn_pos)] - dl,     # the design's no_next order (ascending positions)
                     group_sums=w["group_sums"] - sizes * dl,
                     group_sq=w["group_sq"] - 2 * dl * w["group_sums"] + sizes * dl**2,
                     U_seq=moved(w["U_seq"], seq_w[:S]),
                     U_type=moved(w["U_type"], (terms.type_W @ cell_n).reshape(S, T), dl[s.widen]),
                     widen=s.widen, U_next=moved(w["U_next"], terms.next_W @ np.ones(d.n)),
                     yU_seq=moved(w["yU_seq"], seq_w[S]), Q_cell=q_cell,
                     L_cell=w["L_cell"] - dl * float(np.sum(cell_n**2 * yc**3)), names=terms.names)


def window_shards(d: Design, n_shards: int) -> list[np.ndarray]:
    """Rows (design row order) of n_shards shards of consecutive whole windows, as equal as possible."""
    seq_row = d.seq_of[d.row_positions()]
    bounds = np.linspace(0, d.n_seq, min(n_shards, d.n_seq) + 1).round().astype(int)
    return [np.flatnonzero((seq_row >= a) & (seq_row < b)) for a, b in zip(bounds[:-1], bounds[1:])]


def _worker_design(d: Design) -> Design:
    """A copy of the design with only what a shard needs (the reduction's weights, the token -> cell / type
    maps): what a cluster is sent, instead of the permutations and every statistic's prepared terms."""
    import dataclasses

    from .block import reduce_terms_of

    keep = ("token_to_cell", "cell_to_type", "next_type_of_token")
    extra = {k: d.extra[k] for k in keep} | {"prepared": {"_reduce": reduce_terms_of(d)},
                                             "row_positions": d.row_positions()}
    empty = np.zeros((0, d.n_types), dtype=np.int32)
    return dataclasses.replace(d, perms=empty, perms_free=empty, spaces={}, extra=extra)


def _shard_batch(batch, shared) -> ShardSums:
    """The merged (compact) sums of a batch of consecutive shards: one result per task, not per shard."""
    from .blas import keep_freed_memory
    from .block import reduce_terms_of

    keep_freed_memory()     # in a worker process too (measured: without it the same batch ran ~3x slower there)
    d, (shift, widen, shards) = shared, batch
    terms = reduce_terms_of(d)                  # cached on the design, which arrives with it
    return merge([shard_sums(A, rows, d, terms, shard=i, shift=shift, widen=widen) for i, rows, A in shards], d,
                 compact=True)


def sharded_sums(X: np.ndarray, d: Design, terms: ReduceTerms, shard_rows: list[np.ndarray], *, engine=None,
                 widen: np.ndarray | None = None, batch: int = 8) -> ChunkSums:
    """ChunkSums of the activations X ([n rows, k], the design's row order) computed shard by shard on
    `engine` (engine.Engine; default in-process) and merged: the same bytes for any engine whose workers
    run the same code and libraries, in any order in which tasks finish. Every shard's rows are copied out
    of X before the tasks start (so this spreads the computation, not the memory: a step towards shards
    that extraction sums itself, notes/SCALE.md). A task sums `batch` consecutive shards and
    merges them (so the reduction tree, and the bytes, depend on `batch`, never on the engine). The sums are
    taken around the first shard's mean."""
    from .block import reduce_terms_of
    from .engine import Engine

    shift = np.asarray(X[shard_rows[0]], dtype=np.float64).mean(axis=0)
    items = [(i, rows, np.asarray(X[rows])) for i, rows in enumerate(shard_rows)]
    size = max(1, int(batch))
    batches = [(shift, widen, items[i: i + size]) for i in range(0, len(items), size)]
    eng = engine if engine is not None else Engine()
    if terms is not reduce_terms_of(d):
        raise ValueError("internal: shards use the design's own reduction terms (block.reduce_terms_of)")
    if eng.kind == "inprocess":
        shared = d
    else:   # one light copy per design, so that the engine sends it once per cluster
        if "_worker_design" not in d.extra:
            d.extra["_worker_design"] = _worker_design(d)
        shared = d.extra["_worker_design"]
    return finish(merge(eng.map(_shard_batch, batches, shared=shared), d), d, terms)
