"""The next token's length (C5): partial correlation given the current token's type and the sequence.

    >>> from analysis.stats.nexttoken import next_terms, next_partial
    >>> nt = next_terms(design)                            # neuron-independent, once per design
    >>> r, r_perm, p_seq, var_r, p_naive = next_partial(sums, design, nt)   # sums: sums.ChunkSums

Why the current token's *type* and not just its length and frequency: the activation at a position is
largely a function of the current token (its identity), and the current token predicts the next one
(bigrams), so any neuron that encodes the current token correlates with the next token's length through
the bigram statistics of text, even controlling the current length and frequency. The claim that the last
blocks "move toward predicting the next token" is about what the activation carries *beyond* the current
token: the within-type association. Statistic: corr(M a, M x) over the tokens that have a next token,
with x the next token's length and M the residual maker of [current-type dummies, sequence dummies]
(two-way fixed effects; the normal equations are solved through the G x G Schur complement of the type
block, so every quantity is a function of per-type and per-sequence sums).

Null: the length attribute is permuted among types within frequency strata in its "next token" role only
(Design.perms). Cluster check: the OLS slope of x in a ~ type dummies + sequence dummies + x with a
sequence-clustered sandwich variance and the small-sample factor G / (G - 1) (the dummies are absorbed, as
in Stata's areg), t with G - 1 df; equal to statsmodels' cluster covariance without its correction, times
G / (G - 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .design import Design
from .blas import blas_threads
from .linear import t_test_p


@dataclass
class NextTerms:
    rows: np.ndarray        # working positions of the tokens with a next token
    D: np.ndarray           # [T] current-type counts among them
    Dinv: np.ndarray
    N: np.ndarray           # [T, G] (current type, sequence) counts
    Ms_pinv: np.ndarray     # [G, G]
    B: sparse.csr_array     # [T, T] bigram counts current -> next
    BT: sparse.csr_array    # its transpose, stored as rows (next -> current): a CSR product is ~5x a CSC one
    Xt: np.ndarray          # [T] sum of next length by current type
    Xg: np.ndarray          # [G] sum of next length by sequence
    sxx: float
    WT: sparse.csr_array    # [G, n] residualised next length at (sequence, position)
    K: np.ndarray           # [T, G] cell sums of the residualised next length
    L: np.ndarray           # [G] per-sequence sums of its square
    n_x: int
    n_params: int
    G: int
    # null (P permutations)
    YT: np.ndarray | None   # [P, T] float32
    Xg_p: np.ndarray | None  # [G, P]
    sxx_p: np.ndarray | None  # [P]


def _fe_solve(terms_D, Dinv, N, Ms_pinv, Vt, Vg):
    """Least-squares type effects alpha [T, ...] and sequence effects beta [G, ...] of a vector with type sums
    Vt and sequence sums Vg (one or many columns)."""
    beta = Ms_pinv @ (Vg - N.T @ (Vt * Dinv[:, None] if Vt.ndim == 2 else Vt * Dinv))
    alpha = ((Vt - N @ beta).T * Dinv).T
    return alpha, beta


def next_terms(d: Design) -> NextTerms:
    has = np.flatnonzero(d.next_type_of >= 0)
    t, g, tn = d.type_of[has], d.seq_of[has], d.next_type_of[has]
    T, G = d.n_types, d.n_seq
    D = np.bincount(t, minlength=T).astype(np.float64)
    Dinv = np.where(D > 0, 1.0 / np.maximum(D, 1), 0.0)
    N = np.zeros((T, G))
    np.add.at(N, (t, g), 1.0)
    DG = N.sum(axis=0)
    Ms = np.diag(DG) - N.T @ (N * Dinv[:, None])
    Ms_pinv = np.linalg.pinv(Ms, rcond=1e-10, hermitian=True)
    B = sparse.csr_array((np.ones(len(has)), (t, tn)), shape=(T, T))
    SN = sparse.csr_array((np.ones(len(has)), (g, tn)), shape=(G, T))
    y = d.length_t
    nl = y[tn]
    Xt = np.asarray(B @ y)
    Xg = np.asarray(SN @ y)
    alpha, beta = _fe_solve(D, Dinv, N, Ms_pinv, Xt, Xg)
    xt = nl - alpha[t] - beta[g]
    K = np.zeros((T, G))
    np.add.at(K, (t, g), xt)
    L = np.bincount(g, weights=xt * xt, minlength=G)
    WT = sparse.csr_array((xt, (g, has)), shape=(G, d.n))
    n_x = len(has)
    n_params = int((D > 0).sum()) + int((DG > 0).sum())  # rank of [type, sequence dummies, x]: T + G - 1 + 1
    YT = Xg_p = sxx_p = None
    if d.n_perm:
        Yd = y[d.perms].T                                   # [T, P]
        next_counts = np.bincount(tn, minlength=T).astype(np.float64)
        Xt_p = np.asarray(B @ Yd)
        Xg_p = np.asarray(SN @ Yd)
        a_p, b_p = _fe_solve(D, Dinv, N, Ms_pinv, Xt_p, Xg_p)
        sxx_p = next_counts @ (Yd * Yd) - np.einsum("tp,tp->p", a_p, Xt_p) - np.einsum("gp,gp->p", b_p, Xg_p)
        YT = np.ascontiguousarray(Yd.T, dtype=np.float32)
    return NextTerms(rows=has, D=D, Dinv=Dinv, N=N, Ms_pinv=Ms_pinv, B=B, BT=B.T.tocsr(), Xt=Xt, Xg=Xg, sxx=float(xt @ xt),
                     WT=WT, K=K, L=L, n_x=n_x, n_params=n_params, G=int((DG > 0).sum()),
                     YT=YT, Xg_p=Xg_p, sxx_p=sxx_p)


def next_partial(s, d: Design, nt: NextTerms, threads: int = 2):
    """(r [k], r_perm [k, P] or None, p_seq [k], var_r [k], p_naive [k]) for the chunk's neurons; var_r is
    the sequence-clustered variance on the scale of r (see nulls.widen_factor)."""
    nn = d.no_next
    S_cur = s.S_T.copy()                                      # [T, k] over the tokens with a next token
    A_g = s.A_gT.copy()                                       # [G, k]
    if len(nn):
        np.subtract.at(S_cur, d.type_of[nn], s.nnT)
        np.subtract.at(A_g, d.seq_of[nn], s.nnT)
    saa = s.Saa - np.einsum("ij,ij->j", s.nnT, s.nnT)
    beta = nt.Ms_pinv @ (A_g - nt.N.T @ (S_cur * nt.Dinv[:, None]))      # [G, k]; Ms is symmetric
    alpha = nt.N @ beta                                                    # [T, k], in place from here
    np.subtract(S_cur, alpha, out=alpha)
    alpha *= nt.Dinv[:, None]
    saa_M = saa - np.einsum("ij,ij->j", alpha, S_cur) - np.einsum("ij,ij->j", beta, A_g)
    num = d.length_t @ s.S_nextT - nt.Xt @ alpha - nt.Xg @ beta
    ok = saa_M > 1e-12 * np.maximum(s.Saa, 1e-300)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(ok, np.clip(num / np.sqrt(saa_M * nt.sxx), -1, 1), np.nan)
    r_perm = None
    if nt.YT is not None:
        Anx = s.S_nextT - np.asarray(nt.BT @ alpha)                        # [T, k]: S_next - B' alpha
        with blas_threads(threads):
            num_p = (nt.YT @ Anx.astype(np.float32)).T.astype(np.float64)
        num_p -= beta.T @ nt.Xg_p
        with np.errstate(invalid="ignore", divide="ignore"):
            r_perm = np.clip(num_p / np.sqrt(saa_M[:, None] * nt.sxx_p[None, :]), -1, 1)
        r_perm[~ok] = np.nan
    # sequence-clustered slope
    U0 = s.U_next.copy()                                                   # [G, k]: nt.WT @ a
    b = num / nt.sxx
    U0 -= nt.K.T @ alpha                                                   # scores under the null (slope 0)
    U = U0 - nt.L[:, None] * b[None, :]
    # small-sample factor G / (G - 1) only: the type dummies are absorbed (as areg's absorbed effects), and
    # the residual-based meat already reflects them; CR1's (n - 1) / (n - K) with K ~ the number of types
    # would widen the test by ~40 % (measured: p_seq rejecting 2.7 % of independent data at 5 %)
    corr = nt.G / (nt.G - 1.0) if nt.G > 1 else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        var_b = corr * np.einsum("ij,ij->j", U, U) / nt.sxx**2
        tstat = b / np.sqrt(var_b)
        var_r = np.einsum("ij,ij->j", U0, U0) / nt.sxx / saa_M     # null-imposed scores: no factor
        t_naive = r * np.sqrt((nt.n_x - nt.n_params) / ((1 - r) * (1 + r)))
    p_seq = np.where(ok, t_test_p(tstat, nt.G - 1), np.nan)
    p_naive = np.where(ok, t_test_p(t_naive, nt.n_x - nt.n_params), np.nan)
    return r, r_perm, p_seq, var_r, p_naive
