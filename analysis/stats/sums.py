"""Sums of one chunk of neurons that every linear statistic is a function of (activations in, sums out).

    >>> from analysis.stats.sums import chunk_sums
    >>> s = chunk_sums(At, mean, design, terms)  # At: [n tokens, k neurons] float64 centred, working order
    >>> s.S_T.shape, s.A_gT.shape                # per-type sums [T, k], per-sequence sums [G, k]

All sums are of the activations centred at their mean over the sample, which leaves every
within-sequence inner product unchanged and keeps the float64 sums well conditioned. `terms`
(`ReduceTerms`, block._prepared builds it once per design) holds the design-level weights of the weighted
sums the clustered tests need.

    S_T      [T, k]      sum over the tokens of each type
    A_gT     [G, k]      sum over each sequence
    A_sgT    [2, G, k]   the same over its short / long tokens (the pooled median split's sequence test)
    S_nextT  [T, k]      sum over the tokens whose NEXT token is of type t
    nnT      [N, k]      the values at the few tokens without a next token (left out of next-token statistics)
    U_seq    [S, G, k]   per sequence, sum of a * x~ for each tested statistic's residualised covariate x~
    U_type   [S, T, k']  per type, the same, on the `widen` neurons only (the type-clustered variance)
    U_next   [G, k]      per sequence, sum of a * the residualised next-token length (nexttoken)
    yU_seq   [G, k]      per sequence, sum of a * (length - mean length)       (two-way clustered test)
    Q_cell   [k]         sum over (type, sequence) cells of (yc * cell sum)^2  (its intersection clusters)
    L_cell   [k]         sum over cells of size * yc^3 * cell sum
    Saa, S3, S4          central sums of powers 2, 3, 4 over all tokens

Every field is a sum over tokens or, for Q_cell, over cells, and a cell never crosses a sequence: the sums
of a sample are the sums of its shards of whole sequences (shards.py). The per-cell sums themselves are
only an intermediate of one chunk or shard: what is kept grows with the number of types and sequences,
not with the number of (type, sequence) cells (406 961 in a million tokens of the offline corpus).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .design import LONG, SHORT, Design


@dataclass
class ReduceTerms:
    """Neuron-independent weights of the weighted sums (built once per design by block._prepared)."""
    names: tuple               # the tested statistics, in U_seq / U_type order
    seq_W: sparse.csr_array    # [(S + 3) G, C]: x~ of each statistic, yc, short, long at (sequence, cell)
    type_W: sparse.csr_array   # [S T, C]: x~ of each statistic at (type, cell)
    next_W: sparse.csr_array   # [G, n]: the residualised next-token length at (sequence, token)
    yc_cell: np.ndarray        # [C] the centred length of each cell's type


@dataclass
class ChunkSums:
    mean: np.ndarray
    Saa: np.ndarray
    S3: np.ndarray
    S4: np.ndarray
    S_T: np.ndarray      # [T, k]
    A_gT: np.ndarray     # [G, k]
    A_sgT: np.ndarray    # [2, G, k]
    S_nextT: np.ndarray  # [T, k]
    nnT: np.ndarray      # [N, k]
    group_sums: np.ndarray   # [3, k] sums over the short / equal / long tokens
    group_sq: np.ndarray     # [3, k] sums of squares over them
    U_seq: np.ndarray    # [S, G, k]
    U_type: np.ndarray   # [S, T, k'] on the neurons `widen`
    widen: np.ndarray    # [k'] chunk positions of the U_type columns
    U_next: np.ndarray   # [G, k]
    yU_seq: np.ndarray   # [G, k]
    Q_cell: np.ndarray   # [k]
    L_cell: np.ndarray   # [k]
    names: tuple = ()    # the tested statistics, in U_seq / U_type order
    _S32: np.ndarray | None = None

    @property
    def A_g(self) -> np.ndarray:       # [k, G]
        return self.A_gT.T

    def U(self, name: str) -> np.ndarray:
        """[G, k] per-sequence sums of a * x~ of the tested statistic `name`."""
        return self.U_seq[self.names.index(name)]

    def U_t(self, name: str) -> np.ndarray:
        """[T, k'] per-type sums of a * x~ of `name` on the neurons `widen`."""
        return self.U_type[self.names.index(name)]

    def columns(self, j0: int, j1: int) -> "ChunkSums":
        """The sums of neurons j0..j1 only (views; U_type keeps the widen neurons among them)."""
        sel = (self.widen >= j0) & (self.widen < j1)
        cut = lambda a: a[..., j0:j1]  # noqa: E731
        return ChunkSums(mean=cut(self.mean), Saa=cut(self.Saa), S3=cut(self.S3), S4=cut(self.S4), S_T=cut(self.S_T),
                         A_gT=cut(self.A_gT), A_sgT=cut(self.A_sgT), S_nextT=cut(self.S_nextT), nnT=cut(self.nnT),
                         group_sums=cut(self.group_sums), group_sq=cut(self.group_sq), U_seq=cut(self.U_seq),
                         U_type=self.U_type[..., sel], widen=self.widen[sel] - j0, U_next=cut(self.U_next),
                         yU_seq=cut(self.yU_seq), Q_cell=cut(self.Q_cell), L_cell=cut(self.L_cell), names=self.names)

    def S32_T(self) -> np.ndarray:
        """S_T in float32 (for the permutation products), computed once."""
        if self._S32 is None:
            self._S32 = self.S_T.astype(np.float32)
        return self._S32


def reduce_terms(d: Design, cluster: dict, next_W: sparse.csr_array) -> ReduceTerms:
    """ReduceTerms from the per-statistic linear.ClusterTerms (`cluster`: name -> terms, in TESTED order)
    and the next-token statistic's token weights."""
    names = tuple(cluster)
    yc_cell = d.length_centred_t()[d.cell_type]
    C, G = len(d.cell_sizes), d.n_seq
    cell_group = d.group[d.cell_starts]                  # a cell's tokens share its type's median-split group
    short, long = cell_group == SHORT, cell_group == LONG
    cells = np.arange(C)

    def at_seq(values, where=None):
        where = np.ones(C, bool) if where is None else where
        return sparse.csr_array((values[where], (d.cell_seq[where], cells[where])), shape=(G, C))

    seq_W = sparse.vstack([cluster[k].WcT for k in names]
                          + [at_seq(yc_cell), at_seq(np.ones(C), short), at_seq(np.ones(C), long)], format="csr")
    type_W = sparse.vstack([cluster[k].WctT for k in names], format="csr")
    return ReduceTerms(names=names, seq_W=seq_W, type_W=type_W, next_W=next_W.tocsr(), yc_cell=yc_cell)


# Sums indexed by type, next-token type or sequence, and the axis of that index: a shard keeps only the rows
# of the types and sequences it contains (the others are exactly zero), so what it holds and sends does not
# grow with the sample (shards.merge puts them back in place).
INDEXED = {"S_T": ("types", 0), "U_type": ("types", 1), "S_nextT": ("next_types", 0), "A_gT": ("seqs", 0),
           "A_sgT": ("seqs", 1), "U_seq": ("seqs", 1), "U_next": ("seqs", 0), "yU_seq": ("seqs", 0)}


def window_sums(Ac: np.ndarray, d: Design, terms: ReduceTerms, widen: np.ndarray,
                pos: np.ndarray | None = None) -> tuple[dict, dict]:
    """(sums, index): every sum of ChunkSums, of the activations `Ac` ([len(pos), k], C-contiguous) taken
    around any fixed per-neuron value, at the working positions `pos` (ascending; whole sequences; None: all
    n tokens in working order). The (type, sequence) cell sums are formed here and reduced at once. With
    `pos`, the sums in INDEXED hold only the rows index["types" | "next_types" | "seqs"] (None: all rows)."""
    G, T, S = d.n_seq, d.n_types, len(terms.names)
    if pos is None:
        index = {"types": None, "next_types": None, "seqs": None}
        t2c, c2t, c2s = d.extra["token_to_cell"], d.extra["cell_to_type"], d.cell_to_seq.T
        seq_W, type_W = terms.seq_W, terms.type_W
        nxt, nW = d.extra["next_type_of_token"], terms.next_W
        n_types, n_seqs, yc, size = T, G, terms.yc_cell, d.cell_sizes.astype(np.float64)
    else:
        t2c_all = d.extra["token_to_cell"][:, pos]
        cells = np.flatnonzero(np.diff(t2c_all.indptr) > 0)              # the cells of these sequences
        t2c = t2c_all[cells]
        if not np.array_equal(np.diff(t2c.indptr), d.cell_sizes[cells]):
            raise ValueError("a shard must hold whole sequences: a (type, sequence) cell is split")
        nt = d.next_type_of[pos]
        index = {"types": np.unique(d.cell_type[cells]), "next_types": np.unique(nt[nt >= 0]),
                 "seqs": np.unique(d.cell_seq[cells])}
        types, seqs = index["types"], index["seqs"]
        c2t = d.extra["cell_to_type"][types][:, cells]
        c2s = d.cell_to_seq[cells][:, seqs].T
        seq_W = terms.seq_W[(np.arange(S + 3)[:, None] * G + seqs).ravel()][:, cells]
        type_W = terms.type_W[(np.arange(S)[:, None] * T + types).ravel()][:, cells]
        nxt = d.extra["next_type_of_token"][index["next_types"]][:, pos]
        nW = terms.next_W[seqs][:, pos]
        n_types, n_seqs, yc, size = len(types), len(seqs), terms.yc_cell[cells], d.cell_sizes[cells].astype(np.float64)
    A2 = Ac * Ac
    grp = d.group if pos is None else d.group[pos]
    cut = np.searchsorted(grp, [0, 1, 2, 3])          # groups are contiguous in working order and cover it
    out = {"S3": np.einsum("ij,ij->j", A2, Ac), "S4": np.einsum("ij,ij->j", A2, A2),
           "group_sums": np.stack([Ac[cut[g]:cut[g + 1]].sum(axis=0) for g in range(3)]),
           "group_sq": np.stack([A2[cut[g]:cut[g + 1]].sum(axis=0) for g in range(3)])}
    out["S1"], out["Saa"] = out["group_sums"].sum(axis=0), out["group_sq"].sum(axis=0)   # one pass fewer each
    del A2
    cellsT = np.asarray(t2c @ Ac)                  # sparse sums: much faster than reduceat on rows
    out["S_T"] = np.asarray(c2t @ cellsT)
    out["A_gT"] = np.asarray(c2s @ cellsT)
    per_seq = np.asarray(seq_W @ cellsT).reshape(S + 3, n_seqs, -1)
    out["U_seq"], out["yU_seq"], out["A_sgT"] = per_seq[:S], per_seq[S], per_seq[S + 1:]
    out["U_type"] = np.asarray(type_W @ cellsT[:, widen]).reshape(S, n_types, len(widen))
    out["S_nextT"] = np.asarray(nxt @ Ac)
    out["U_next"] = np.asarray(nW @ Ac)
    out["Q_cell"] = np.einsum("ij,ij,i->j", cellsT, cellsT, yc * yc)      # sum over cells of (yc * cell sum)^2
    out["L_cell"] = (size * yc**3) @ cellsT
    out["Q_lin"] = (size * yc**2) @ cellsT         # only to move Q_cell to another centre (shards.finish)
    return out, index


def chunk_sums(At: np.ndarray, mean: np.ndarray, d: Design, terms: ReduceTerms,
               widen: np.ndarray | None = None) -> ChunkSums:
    """Sums of a centred chunk `At` ([n, k]: tokens as rows in the design's working order, neurons as
    columns, C-contiguous, so that every reduction adds whole rows); `widen`: chunk positions of the
    neurons whose per-type sums U_type are kept (default none)."""
    widen = np.zeros(0, np.int64) if widen is None else np.asarray(widen, np.int64)
    w, _ = window_sums(At, d, terms, widen)
    return ChunkSums(mean=mean, Saa=w["Saa"], S3=w["S3"], S4=w["S4"], S_T=w["S_T"], A_gT=w["A_gT"],
                     A_sgT=w["A_sgT"], S_nextT=w["S_nextT"], nnT=At[d.no_next], group_sums=w["group_sums"],
                     group_sq=w["group_sq"], U_seq=w["U_seq"], U_type=w["U_type"], widen=widen,
                     U_next=w["U_next"], yU_seq=w["yU_seq"], Q_cell=w["Q_cell"], L_cell=w["L_cell"],
                     names=terms.names)


def cross_products(s: ChunkSums, d: Design) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Within-sequence inner products of each neuron with each covariate (columns of d.spaces["all"]).

    Returns (C [k, q], saa [k], A_g / n_g [k, G]): C[:, j] = <a, x_j>_w and saa = <a, a>_w, where
    <u, v>_w = sum_i u_i v_i - sum_g U_g V_g / n_g (sequence means removed)."""
    sp = d.spaces["all"]
    with np.errstate(invalid="ignore", divide="ignore"):
        Ag_over = np.where(sp.seq_sizes > 0, s.A_g / sp.seq_sizes, 0.0)
    C = (d.extra["cov_t"].T @ s.S_T).T - Ag_over @ sp.seq_sums
    saa = s.Saa - np.einsum("ij,ij->i", Ag_over, s.A_g)
    return C, saa, Ag_over
