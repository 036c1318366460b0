"""Sums of one chunk of neurons that every linear statistic is a function of (activations in, sums out).

    >>> from analysis.stats.sums import chunk_sums
    >>> s = chunk_sums(At, mean, design)  # At: [n tokens, k neurons] float64 centred, working order
    >>> s.S_T.shape, s.A_gT.shape          # per-type sums [T, k], per-sequence sums [G, k]

All sums are of the activations centred at their mean over the sample, which leaves every
within-sequence inner product unchanged and keeps the float64 sums well conditioned.

    S_T     [T, k]  sum over the tokens of each type                (type index order)
    cellsT  [C, k]  sum over each (type, sequence) cell             (working order of cells)
    A_gT    [G, k]  sum over each sequence
    S_nextT [T, k]  sum over the tokens whose NEXT token is of type t
    nnT     [N, k]  the values at the few tokens without a next token (left out of next-token statistics)
    Saa, S3, S4     central sums of powers 2, 3, 4 over all tokens
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .design import Design


@dataclass
class ChunkSums:
    mean: np.ndarray
    Saa: np.ndarray
    S3: np.ndarray
    S4: np.ndarray
    cellsT: np.ndarray   # [C, k]
    S_T: np.ndarray      # [T, k]
    A_gT: np.ndarray     # [G, k]
    S_nextT: np.ndarray  # [T, k]
    nnT: np.ndarray      # [N, k]
    group_sums: np.ndarray   # [3, k] sums over the short / equal / long tokens
    group_sq: np.ndarray     # [3, k] sums of squares over them
    _S32: np.ndarray | None = None

    @property
    def A_g(self) -> np.ndarray:       # [k, G]
        return self.A_gT.T

    def S32_T(self) -> np.ndarray:
        """S_T in float32 (for the permutation products), computed once."""
        if self._S32 is None:
            self._S32 = self.S_T.astype(np.float32)
        return self._S32


def chunk_sums(At: np.ndarray, mean: np.ndarray, d: Design) -> ChunkSums:
    """Sums of a centred chunk `At` ([n, k]: tokens as rows in the design's working order, neurons as
    columns, C-contiguous, so that every reduction adds whole rows)."""
    A2 = At * At
    Saa = A2.sum(axis=0)
    S3 = np.einsum("ij,ij->j", A2, At)
    S4 = np.einsum("ij,ij->j", A2, A2)
    n_s, n_e, _ = d.group_sizes
    cut = (0, n_s, n_s + n_e, At.shape[0])
    group_sums = np.stack([At[cut[g]:cut[g + 1]].sum(axis=0) for g in range(3)])
    group_sq = np.stack([A2[cut[g]:cut[g + 1]].sum(axis=0) for g in range(3)])
    del A2
    cellsT = np.asarray(d.extra["token_to_cell"] @ At)      # sparse sums: much faster than reduceat on rows
    S_T = np.asarray(d.extra["cell_to_type"] @ cellsT)
    A_gT = np.asarray(d.cell_to_seq.T @ cellsT)
    S_nextT = np.asarray(d.extra["next_type_of_token"] @ At)
    return ChunkSums(mean=mean, Saa=Saa, S3=S3, S4=S4, cellsT=cellsT, S_T=S_T, A_gT=A_gT, S_nextT=S_nextT,
                     nnT=At[d.no_next], group_sums=group_sums, group_sq=group_sq)


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
