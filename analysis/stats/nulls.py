"""Type-level permutation nulls, computed for all neurons at once from per-type sums.

    >>> from analysis.stats.nulls import null_terms, permuted_r
    >>> terms = null_terms(design, spec)                  # neuron-independent, once per design and statistic
    >>> r_perm = permuted_r(sums, xprods, parts, terms)   # [k neurons, P permutations]

The null of a (partial) correlation with a type-level covariate x: the values of x are permuted among token
types within frequency strata (Design.perms; the same permutations for every neuron and every block, so
block-level summaries keep the dependence between neurons), the partial correlation is recomputed with the
same controls, and the observed value is compared with the P permuted ones. For a partial correlation the
permuted vector is the covariate already residualised on its controls at the type level (length given log
frequency, log frequency given length: the type-level analogue of Freedman & Lane's residual permutation,
as in Smith's method). The next token's length has its own null (nexttoken.py).

With S the [k, T] per-type activation sums, sum_i a_i x_pi(type(i)) = S @ x_pi: one matrix product per
statistic ([k, T] x [T, P]) gives every permuted cross-product; the within-sequence terms and the Gram
entries of each permuted vector are neuron-independent and precomputed here. The products run in float32
(a null distribution needs no more); observed statistics stay float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .blas import blas_threads
from .design import Design
from .linear import Partial


@dataclass
class NullTerms:
    VT: np.ndarray         # [P, T] float32: the permuted type-level vectors
    Vg: np.ndarray         # [G, P] per-sequence sums of the permuted vector over the space's tokens
    GZp: np.ndarray        # [|Z|, P] <Z, v_pi>_w
    spp: np.ndarray        # [P] <v_pi, v_pi>_w after the controls


def null_terms(d: Design, spec: Partial) -> NullTerms | None:
    if d.n_perm == 0:
        return None
    cov_t = d.extra["cov_t"]
    sp_all = d.spaces["all"]
    col = sp_all.col(spec.permute)
    V = cov_t[:, col][d.perms if spec.stratified else d.perms_free].T.astype(np.float64)   # [T, P]
    sp = d.spaces[spec.space]
    Z = [sp.col(z) for z in spec.controls]
    with np.errstate(invalid="ignore", divide="ignore"):
        inv_n = np.where(sp.seq_sizes > 0, 1.0 / sp.seq_sizes, 0.0)
    Vg = np.asarray(d.extra["seq_type_counts"] @ V)
    tok_weight = d.counts.astype(np.float64)
    Zt = cov_t[:, [sp_all.col(z) for z in spec.controls]] * tok_weight[:, None]
    Gpp = tok_weight @ (V * V) - inv_n @ (Vg * Vg)
    GZp = Zt.T @ V - (sp.seq_sums[:, Z] * inv_n[:, None]).T @ Vg
    if Z:
        GZZ = sp.gram[np.ix_(Z, Z)]
        spp = Gpp - np.einsum("ip,ip->p", GZp, np.linalg.solve(GZZ, GZp))
    else:
        spp = Gpp
    return NullTerms(VT=np.ascontiguousarray(V.T, dtype=np.float32), Vg=Vg, GZp=GZp, spp=spp)


def permuted_products(s, VT: np.ndarray, threads: int = 2) -> np.ndarray:
    """[k, rows of VT]: S' v for every stacked permuted vector (one product for all statistics; the
    compute-bound step, so it runs on `threads` BLAS threads; the values do not depend on it)."""
    with blas_threads(threads):
        return (VT @ s.S32_T()).T.astype(np.float64)


def permuted_r(products: np.ndarray, Ag_over: np.ndarray, parts: dict, terms: NullTerms) -> np.ndarray:
    """[k, P] the statistic under each permutation, for the neurons of one chunk; `products` are this
    statistic's columns of permuted_products."""
    C = products - Ag_over @ terms.Vg
    if terms.GZp.shape[0]:
        C -= parts["gamma"] @ terms.GZp
    with np.errstate(invalid="ignore", divide="ignore"):
        r = C / np.sqrt(parts["saa_z"][:, None] * terms.spp[None, :])
    return np.clip(r, -1.0, 1.0)


def permutation_p(r: np.ndarray, r_perm: np.ndarray, alternative: str = "two-sided",
                  abs_perm: np.ndarray | None = None) -> np.ndarray:
    """(1 + #{permuted at least as extreme}) / (P + 1) per neuron; NaN where r is NaN. abs_perm: |r_perm|
    when the caller has it. A relative tolerance of 1e-6 counts float32 copies of the observed value
    as ties."""
    P = r_perm.shape[1]
    if alternative == "two-sided":
        a = np.abs(r_perm) if abs_perm is None else abs_perm
        thr = (np.abs(r) * (1 - 1e-6))[:, None].astype(a.dtype)
        hits = (a >= thr).sum(axis=1)
    elif alternative == "less":
        hits = (r_perm <= r[:, None] + 1e-12).sum(axis=1)
    else:
        hits = (r_perm >= r[:, None] - 1e-12).sum(axis=1)
    return np.where(np.isfinite(r), (1.0 + hits) / (P + 1.0), np.nan)


def split_shift_null(d: Design, ts_type: np.ndarray) -> tuple[float, np.ndarray]:
    """Median split on the token score: (observed, [P] permuted) difference of mean token score, long minus
    short tokens, with the length attribute permuted among types (the observed median kept as the cut)."""
    y = d.length_t
    c = d.counts.astype(np.float64)

    def diff(lengths):
        lo, hi = lengths < d.median, lengths > d.median
        n_lo, n_hi = (lo * c).sum(-1), (hi * c).sum(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (hi * ts_type).sum(-1) / n_hi - (lo * ts_type).sum(-1) / n_lo

    return float(diff(y)), diff(y[d.perms_free]) if d.n_perm else np.zeros(0)


def widen_factor(variances: np.ndarray, v_perm: np.ndarray) -> float:
    """How much wider than the type-level permutation a block's null must be: f = sqrt(max(1, max_k
    mean_j var_k[j] / mean_j v_perm[j])), with var_k [m, K] the analytic clustered variances of the
    statistic (on the scale of r) and v_perm [m] each neuron's permutation variance.

    The type-level permutation keeps type recurrence but not the dependence between *different* tokens of
    one context (an autocorrelated activation meets locally clustered lengths); the sequence-clustered
    variance keeps the latter but not the former (a type recurs across sequences); the type-clustered
    variance is an analytic counterpart of the permutation's own width. Scaling the permuted values keeps
    the permutation's shape and its joint dependence across neurons (one permutation for all), and makes
    the null at least as wide as each structure implies on average over the block's neurons. A ratio of
    means over the block, not each neuron's own ratio: a variance from 16 sequence clusters is too noisy per
    neuron (the median of noisy per-neuron ratios exceeds 1 even for independent data: measured 1.23)."""
    ok = np.isfinite(v_perm) & (v_perm > 0)
    if not ok.any():
        return 1.0
    base = v_perm[ok].mean()
    ratios = [1.0]
    for k in range(variances.shape[1]):
        v = variances[ok, k]
        v = v[np.isfinite(v)]
        if v.size:
            ratios.append(v.mean() / base)
    f = float(np.sqrt(max(ratios)))
    return f if np.isfinite(f) else 1.0
