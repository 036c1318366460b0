"""The linear statistics' sums accumulated while the forward passes run, one batch of windows at a time
(issue 11: extraction that need not store activations).

    >>> from analysis.stats.stream import StreamSums
    >>> acc = StreamSums(d, keep, seq_len=512, widen={b: widen_b for b in range(n_blocks)})
    >>> extract_to_dir(model, input_ids, sites, out_dir, sink=acc.add, store=False)  # nothing written
    >>> s = acc.finish(5)        # sums.ChunkSums of block 5, as sums.chunk_sums computes it from the file

`add(block, row0, A)` takes a batch's activations of one block exactly as extraction would store them
(token-table rows row0.., whole windows, special tokens included) and adds their shard sums
(shards.shard_sums, around the block's first batch mean) into one dense running total per block, in
batch order (so the bytes do not depend on anything but the batches). `finish` re-centres the total at the
sample mean (shards.finish). Nothing of the activations is kept but the rows without a next token (the
last of each window and those before a separator: ~3 per window, in memory even with `spill`).

What the totals hold grows with the sample's types and windows, not its tokens: per block about
(2 T + 8 G) x neurons + 4 T x widen float64 values (`nbytes`; measured sizes in notes/SCALE.md). With
`spill=<folder>` the per-type and per-window sums live in files there instead (`DiskRows`): a batch reads
and writes back only the rows of its own types and windows, so resident memory stays that of the
per-neuron sums while the files grow with types x neurons (bench/RESULTS-scale.md has both measured).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from .design import Design
from .shards import ShardSums, finish, shard_sums
from .sums import INDEXED, ChunkSums


def add_into(total: ShardSums, part: ShardSums) -> None:
    """total += part, in place: total holds the sample's full arrays (index None), part its own rows."""
    if not np.array_equal(part.shift, total.shift) or not np.array_equal(part.widen, total.widen):
        raise ValueError(f"shard {part.shard} was summed around another shift or widening subset than the total")
    for name, v in part.sums.items():
        if name not in INDEXED:
            total.sums[name] += v
            continue
        kind, axis = INDEXED[name]
        at = part.index[kind]
        dest = total.sums[name]
        if isinstance(dest, DiskRows):
            dest.add_rows(np.arange(dest.R) if at is None else at, v)
        elif at is None:
            dest += v
        else:          # distinct rows: a plain fancy-index add
            dest[(slice(None),) * axis + (at,)] += v
    total.n += part.n      # the rows without a next token are kept by the caller (StreamSums: one list)


class DiskRows:
    """A float64 array [*lead, R, cols] kept in a file, indexed on its row axis R: `add_rows` adds values at
    a set of rows (read, add, write back: positioned reads and writes of each run of consecutive rows,
    no memory map, so the rows never count in the process's resident memory); `load` reads it whole."""

    def __init__(self, path: Path, shape: tuple):
        self.path, self.shape = Path(path), tuple(int(x) for x in shape)
        self.lead, self.R, self.cols = int(np.prod(self.shape[:-2])), self.shape[-2], self.shape[-1]
        self.row_bytes = self.cols * 8
        self._fh = open(self.path, "w+b")
        self._fh.truncate(self.lead * self.R * self.row_bytes)      # a sparse file of zeros

    def add_rows(self, rows: np.ndarray, values: np.ndarray) -> None:
        """self[..., rows, :] += values ([*lead, len(rows), cols]); rows ascending and distinct."""
        if self.row_bytes == 0 or self.lead == 0 or len(rows) == 0:
            return                                      # e.g. U_type of a block without widening neurons
        rows = np.asarray(rows, dtype=np.int64)
        values = np.ascontiguousarray(values, dtype=np.float64).reshape(self.lead, len(rows), self.cols)
        starts = np.flatnonzero(np.r_[True, np.diff(rows) != 1])
        ends = np.r_[starts[1:], len(rows)]
        fd = self._fh.fileno()
        for li in range(self.lead):
            base = li * self.R
            for a, b in zip(starts, ends):
                off = (base + int(rows[a])) * self.row_bytes
                cur = np.frombuffer(os.pread(fd, (b - a) * self.row_bytes, off), dtype=np.float64)
                new = cur.reshape(b - a, self.cols) + values[li, a:b]
                if os.pwrite(fd, memoryview(new).cast("B"), off) != new.nbytes:
                    raise OSError(f"{self.path}: short write (disk full?): the spilled sums are incomplete")

    def load(self) -> np.ndarray:
        if not self._fh.closed:
            self._fh.flush()
        return np.fromfile(self.path, dtype=np.float64).reshape(self.shape)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def dense_like(part: ShardSums, d: Design, spill: Path | None = None, tag: str = "") -> ShardSums:
    """A zero total with the sample's full arrays for sums shaped like `part`'s; with `spill`, the indexed
    ones (sums.INDEXED) are DiskRows files in that folder named <tag>_<sum>.f64."""
    full = {"types": d.n_types, "next_types": d.n_types, "seqs": d.n_seq}
    sums = {}
    for name, v in part.sums.items():
        shape = list(v.shape)
        if name in INDEXED:
            kind, axis = INDEXED[name]
            shape[axis] = full[kind]
            if spill is not None:
                if axis != len(shape) - 2:
                    raise ValueError(f"internal: {name} is not indexed on its second-to-last axis")
                sums[name] = DiskRows(Path(spill) / f"{tag}_{name}.f64", tuple(shape))
                continue
        sums[name] = np.zeros(shape)
    return ShardSums(shard=part.shard, n=0, shift=part.shift, widen=part.widen, sums=sums,
                     index={k: None for k in full}, nn_pos=np.zeros(0, np.int64),
                     nn=np.zeros((0, part.nn.shape[1])))


class StreamSums:
    """Running sums of every block, fed batch by batch (see the module docstring).

    d, keep: the design of the token table's non-special rows and the row mask that selects them
    (pipeline.design_from_tokens); seq_len: tokens per window; widen: block -> neurons whose per-type
    sums are kept (block.neuron_subsets gives the stats stage's own); spill: a folder for the per-type and
    per-window sums (None: in memory)."""

    def __init__(self, d: Design, keep: np.ndarray, seq_len: int, widen: Mapping[int, np.ndarray] | None = None,
                 spill: str | Path | None = None):
        from .block import reduce_terms_of

        keep = np.asarray(keep, dtype=bool)
        if int(keep.sum()) != d.n:
            raise ValueError(f"keep selects {int(keep.sum())} rows, the design has {d.n} tokens")
        self.d, self.keep, self.seq_len = d, keep, int(seq_len)
        self.terms = reduce_terms_of(d)
        self.widen = dict(widen or {})
        self.spill = None if spill is None else Path(spill)
        if self.spill is not None:
            self.spill.mkdir(parents=True, exist_ok=True)
        self.row_in_design = np.cumsum(keep) - 1       # design row of each kept token-table row
        self.totals: dict[int, ShardSums] = {}
        self.no_next: dict[int, tuple[list, list]] = {}    # per block: positions and (a - shift) of the rows
        #                                                    without a next token, one entry per batch
        self.last: dict[int, int] = {}

    def add(self, block: int, row0: int, A: np.ndarray) -> None:
        """Add the activations A ([rows, neurons], whole windows from token-table row row0) of `block`."""
        row0, rows = int(row0), len(A)
        if row0 % self.seq_len or rows % self.seq_len or row0 + rows > len(self.keep):
            raise ValueError(f"rows {row0}..{row0 + rows} are not whole windows of {self.seq_len} tokens "
                             f"of the {len(self.keep)}-row token table")
        window = row0 // self.seq_len
        if window <= self.last.get(block, -1):
            raise ValueError(f"block {block}: batches must arrive in window order, without overlap (window "
                             f"{window} after {self.last[block]}): the sums' bytes follow that order")
        self.last[block] = (row0 + rows) // self.seq_len - 1      # the batch's last window
        kept = self.keep[row0: row0 + rows]
        Ak = np.asarray(A)[kept]
        if not len(Ak):
            return
        total = self.totals.get(block)
        shift = np.asarray(Ak, dtype=np.float64).mean(axis=0) if total is None else total.shift
        widen = self.widen.get(block)
        part = shard_sums(Ak, self.row_in_design[row0: row0 + rows][kept], self.d, self.terms, shard=window,
                          shift=shift, widen=widen)
        if total is None:
            total = self.totals[block] = dense_like(part, self.d, self.spill, f"block_{block:02d}")
            self.no_next[block] = ([], [])
        add_into(total, part)
        pos, vals = self.no_next[block]
        pos.append(part.nn_pos)
        vals.append(part.nn)

    def finish(self, block: int) -> ChunkSums:
        """The block's sums.ChunkSums over the whole sample (every window must have been added)."""
        if block not in self.totals:
            raise ValueError(f"block {block}: no activations were added")
        t = self.totals[block]
        sums = {k: v.load() if isinstance(v, DiskRows) else v for k, v in t.sums.items()}
        pos, vals = self.no_next[block]
        return finish(ShardSums(t.shard, t.n, t.shift, t.widen, sums, t.index, np.concatenate(pos),
                                np.concatenate(vals)), self.d, self.terms)

    def nbytes(self) -> int:
        """Bytes held in memory by the running totals of every block."""
        sums = sum(v.nbytes for t in self.totals.values() for v in t.sums.values() if isinstance(v, np.ndarray))
        return sums + sum(a.nbytes for _, vals in self.no_next.values() for a in vals)

    def disk_bytes(self) -> int:
        """Bytes of the spilled sums' files (what they hold, allocated or not)."""
        return sum(v.lead * v.R * v.row_bytes for t in self.totals.values() for v in t.sums.values()
                   if isinstance(v, DiskRows))

    def __enter__(self) -> "StreamSums":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the spilled sums' files (the folder and its files stay: the caller owns them; finish still
        reads them)."""
        for t in self.totals.values():
            for v in t.sums.values():
                if isinstance(v, DiskRows):
                    v.close()
