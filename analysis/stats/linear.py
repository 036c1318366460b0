"""Correlations, partial correlations and cluster-robust tests from sums (vectorised over neurons).

    >>> from analysis.stats.linear import Partial, partial_r, cluster_test, twoway_test
    >>> spec = Partial("partial_r_length", space="all", x="ey", controls=("logfreq",))
    >>> r, parts = partial_r(C, saa, d.spaces["all"], spec)        # one value per neuron

Every statistic here is within sequences (sequence fixed effects) unless named pooled: a sequence-level
shift of activations, shared by many neurons, cannot masquerade as a length effect. The partial correlation
of a with x given controls Z is corr(M a, M x) with M the residual maker of [sequence dummies, Z]; from
the within inner products C = <a, x_j>, saa = <a, a> and the covariate Gram matrix it is

    num = <a,x> - <a,Z> G_ZZ^-1 <Z,x>,   r = num / sqrt((<a,a> - <a,Z> G_ZZ^-1 <Z,a>) (<x,x> - <x,Z> G_ZZ^-1 <Z,x>))

`cluster_test`: the OLS slope of x in a ~ sequence dummies + Z + x with a cluster-robust (CR1) variance,
sequences as clusters, t with G - 1 df, exactly as statsmodels `OLS(...).fit(cov_type="cluster")` with the
dummies as regressors. `twoway_test`: the study's pooled slope a ~ 1 + length with two-way clustering
(sequence x token type; Cameron, Gelbach & Miller 2011), as statsmodels with two group columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy import stats as sps

from .design import Design, Space


@dataclass(frozen=True)
class Partial:
    """A (partial) correlation of activation with covariate `x` given `controls`, in `space`, and the
    type-level vector its null permutes (`permute`: a column of design.extra["cov_t"])."""

    name: str
    space: str
    x: str
    controls: tuple[str, ...] = ()
    permute: str = "length"
    stratified: bool = False   # permute within frequency strata (Design.perms) or among all types


# Statistics of the current token with dependence-aware inference (type-level permutation + sequence
# clusters); the next token's length has its own module (nexttoken: current-type fixed effects).
# Length given frequency is permuted within frequency strata (the control and the strata agree); the raw
# length effect and frequency given length are permuted among all types (their signal lies between strata).
TESTED = (
    Partial("r_within", "all", "length", (), permute="length"),
    Partial("partial_r_length", "all", "ey", ("logfreq",), permute="ey", stratified=True),
    Partial("partial_r_freq", "all", "ef", ("length",), permute="ef"),
)
NEXT = "partial_r_next"
TESTED_NAMES = tuple(s.name for s in TESTED) + (NEXT,)


def _solve(G: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.linalg.solve(G, B) if G.size else np.zeros((0,) + B.shape[1:])


def partial_r(C: np.ndarray, saa: np.ndarray, sp: Space, spec: Partial):
    """(r [k], parts) for neurons with within cross-products C [k, q] and saa [k]."""
    j = sp.col(spec.x)
    Z = [sp.col(z) for z in spec.controls]
    G = sp.gram
    GZZ = G[np.ix_(Z, Z)]
    GZx = G[Z, j]
    CZ = C[:, Z]
    w = _solve(GZZ, GZx)                                   # coefficients of x on Z
    num = C[:, j] - CZ @ w
    gamma = _solve(GZZ, CZ.T).T if Z else np.zeros((C.shape[0], 0))  # a on Z, per neuron
    saa_z = saa - np.einsum("ij,ij->i", gamma, CZ) if Z else saa.copy()
    sxx = float(G[j, j] - GZx @ w)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / np.sqrt(saa_z * sxx)
    bad = ~(saa_z > 1e-12 * np.maximum(saa, 1e-300)) | (not sxx > 0)
    r = np.where(bad, np.nan, np.clip(r, -1.0, 1.0))
    return r, {"num": num, "saa_z": saa_z, "sxx": sxx, "gamma": gamma, "w": w, "Z": Z, "j": j}


def residual_covariate(sp: Space, spec: Partial, w: np.ndarray) -> np.ndarray:
    """x residualised on [sequence dummies, Z] at the token level (the space's tokens)."""
    j = sp.col(spec.x)
    Z = [sp.col(z) for z in spec.controls]
    return sp.Xw[:, j] - (sp.Xw[:, Z] @ w if Z else 0.0)


def seq_weight_matrix(d: Design, sp: Space, values: np.ndarray) -> sparse.csr_array:
    """Sparse [n, G]: values[i] at (working position of the space's token i, its sequence)."""
    return sparse.csr_array((np.asarray(values, float), (sp.rows, sp.seq_of)), shape=(d.n, d.n_seq))


@dataclass
class ClusterTerms:
    """Neuron-independent pieces of the sequence-clustered test of one statistic."""

    W: sparse.csr_array     # [n, G] residualised covariate by sequence
    K: np.ndarray           # [G, |Z|] sum_g xt * Zw
    L: np.ndarray           # [G] sum_g xt^2
    sxx: float
    n: int
    n_params: int
    G: int
    # the same by token type (one-way type clusters: a cross-check of the permutation's width); the
    # residualised covariate is constant within a (type, sequence) cell, so both come from the cell sums
    WcT: sparse.csr_array | None = None   # [G, C] xt of each cell at (its sequence, cell)
    WctT: sparse.csr_array | None = None  # [T, C] xt of each cell at (its type, cell)
    Kt: np.ndarray | None = None         # [T, |Z|]
    Lt: np.ndarray | None = None         # [T]
    H: np.ndarray | None = None          # [T, G] sum over (type, sequence) cells of xt
    T: int = 0
    name: str = ""                       # the statistic (its U_seq / U_type in sums.ChunkSums)


def cluster_terms(d: Design, spec: Partial, parts: dict) -> ClusterTerms:
    sp = d.spaces[spec.space]
    xt = residual_covariate(sp, spec, parts["w"])
    Z = parts["Z"]
    G = d.n_seq
    K = np.zeros((G, len(Z)))
    if Z:
        np.add.at(K, sp.seq_of, xt[:, None] * sp.Xw[:, Z])
    L = np.bincount(sp.seq_of, weights=xt * xt, minlength=G)
    n_g = int((sp.seq_sizes > 0).sum())
    T = d.n_types
    t = d.type_of[sp.rows]
    Kt = np.zeros((T, len(Z)))
    if Z:
        np.add.at(Kt, t, xt[:, None] * sp.Xw[:, Z])
    H = np.zeros((T, G))
    np.add.at(H, (t, sp.seq_of), xt)
    xcell = xt[d.cell_starts]                    # sp covers every token in working order
    if not np.allclose(np.repeat(xcell, d.cell_sizes), xt):
        raise AssertionError("internal: the residualised covariate is not constant within cells")
    C = len(d.cell_starts)
    return ClusterTerms(W=seq_weight_matrix(d, sp, xt), K=K, L=L, sxx=float(xt @ xt), n=len(sp.rows),
                        n_params=n_g + len(Z) + 1, G=n_g,
                        WcT=sparse.csr_array((xcell, (d.cell_seq, np.arange(C))), shape=(G, C)),
                        WctT=sparse.csr_array((xcell, (d.cell_type, np.arange(C))), shape=(T, C)), Kt=Kt,
                        Lt=np.bincount(t, weights=xt * xt, minlength=T), H=H, T=T, name=spec.name)


def type_cluster_var(s, A_g_over: np.ndarray, parts: dict, ct: ClusterTerms, cols: np.ndarray) -> np.ndarray:
    """Variance of the within-sequence slope with token types as clusters, from the scores under the null
    (slope 0: no residualisation on x, so a frequent, high-leverage type's score is not shrunk; the usual
    CR1 residual scores underestimated it by half on a Zipf stream), on the scale of r, for the chunk's
    neurons `cols` (NaN elsewhere: it only sets a block-level widening factor)."""
    out = np.full(len(parts["num"]), np.nan)
    if not len(cols):
        return out
    if not np.array_equal(cols, s.widen):
        raise ValueError("internal: the type-clustered variance needs the per-type sums of exactly these neurons")
    U = s.U_t(ct.name).copy()                              # [T, k'] sum over the type's tokens of xt * a
    U -= ct.H @ A_g_over[cols].T
    if ct.Kt.shape[1]:
        U -= ct.Kt @ parts["gamma"][cols].T
    with np.errstate(invalid="ignore", divide="ignore"):
        out[cols] = np.einsum("ij,ij->j", U, U) / ct.sxx / parts["saa_z"][cols]
    return out


def cluster_test(s, parts: dict, ct: ClusterTerms, alternative: str = "two-sided"):
    """(p, var_r): p of the within-sequence OLS slope with a CR1 sequence-clustered variance, t with G - 1
    df (as statsmodels), and the sequence-clustered variance from the scores under the null (slope 0) on
    the scale of r, for nulls.widen_factor."""
    U0 = s.U(ct.name).copy()                              # [G, k] sum over the sequence's tokens of xt * a
    beta = parts["num"] / ct.sxx
    if ct.K.shape[1]:
        U0 -= ct.K @ parts["gamma"].T
    U = U0 - ct.L[:, None] * beta[None, :]
    corr = ct.G / (ct.G - 1.0) * (ct.n - 1.0) / (ct.n - ct.n_params) if ct.G > 1 else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        var_b = corr * np.einsum("ij,ij->j", U, U) / ct.sxx**2
        t = beta / np.sqrt(var_b)
        # null-imposed scores have mean zero under H0: their sum of squares needs no small-sample factor
        var_r = np.einsum("ij,ij->j", U0, U0) / ct.sxx / parts["saa_z"]
    return t_test_p(t, ct.G - 1, alternative), var_r


def t_test_p(t: np.ndarray, df: float, alternative: str = "two-sided") -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    if not df > 0:
        return np.full(t.shape, np.nan)
    if alternative == "two-sided":
        p = 2.0 * sps.t.sf(np.abs(t), df)
    elif alternative == "less":
        p = sps.t.cdf(t, df)
    else:
        p = sps.t.sf(t, df)
    return np.where(np.isfinite(t), p, np.nan)


def twoway_test(s, d: Design, cols: np.ndarray | None = None) -> np.ndarray:
    """p of the pooled slope of a ~ 1 + length, two-way clustered (sequence x type), CR1 per dimension,
    t with min(G_seq, G_type) - 1 df (statsmodels cov_type="cluster" with two group columns), for the
    chunk's neurons `cols` (all by default). NaN where the combined variance is not positive.

    The score of token i is yc_i (a_i - b yc_i) with yc = length - mean length, constant within a type and
    within a (type, sequence) cell; the cluster sums of scores come from the per-type sums, the per-sequence
    sums of yc a, and, for the cells, the expanded square sum_c (yc_c A_c - b n_c yc_c^2)^2 =
    Q_cell - 2 b L_cell + b^2 sum_c n_c^2 yc_c^4 (no per-cell sums kept). The expansion loses digits as a
    neuron becomes an exact linear function of length within cells (relative error ~ 1e-16 / (1 - R^2));
    where it keeps fewer than ~6 (the cell term below 1e-10 of Q_cell) p is NaN rather than wrong."""
    cols = np.arange(s.S_T.shape[1]) if cols is None else cols
    S_T = s.S_T[:, cols]
    n = d.n
    w = d.counts.astype(np.float64)
    yc_t = d.length_centred_t()
    Syy = float(w @ yc_t**2)
    b = (yc_t @ S_T) / Syy                                         # [k]
    yc_cell = yc_t[d.cell_type]
    size = d.cell_sizes.astype(np.float64)
    U_type = S_T * yc_t[:, None] - (w * yc_t**2)[:, None] * b[None, :]
    seq_yy = np.bincount(d.cell_seq, weights=size * yc_cell**2, minlength=d.n_seq)
    U_seq = s.yU_seq[:, cols] - seq_yy[:, None] * b[None, :]
    cell_ss = s.Q_cell[cols] - 2 * b * s.L_cell[cols] + b**2 * float(np.sum(size**2 * yc_cell**4))
    precise = cell_ss > 1e-10 * s.Q_cell[cols]

    def factor(G):
        return G / (G - 1.0) * (n - 1.0) / (n - 2.0)

    G_t, G_s, G_c = d.n_types, d.n_seq, len(d.cell_sizes)
    V = (np.einsum("ij,ij->j", U_seq, U_seq) * factor(G_s) + np.einsum("ij,ij->j", U_type, U_type) * factor(G_t)
         - cell_ss * factor(G_c)) / Syy**2
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where((V > 0) & precise, b / np.sqrt(np.where(V > 0, V, 1.0)), np.nan)
    return t_test_p(t, min(G_s, G_t) - 1)


def commonality(r_y: np.ndarray, r_f: np.ndarray, r_yf: float) -> dict[str, np.ndarray]:
    """R^2 of a on length alone, on log frequency alone, on both, and the split of the joint R^2 into
    unique length, unique frequency and shared parts (Nimon et al. 2008), from within-sequence r's."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r2_both = (r_y**2 + r_f**2 - 2 * r_y * r_f * r_yf) / (1 - r_yf**2)
    return {"r2_length": r_y**2, "r2_freq": r_f**2, "r2_both": r2_both,
            "unique_length": r2_both - r_f**2, "unique_freq": r2_both - r_y**2,
            "shared": r_y**2 + r_f**2 - r2_both}
