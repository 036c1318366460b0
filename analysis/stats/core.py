"""Vectorised per-neuron statistics: arrays in, arrays out (no I/O, no parameters file).

Convention: activations are given neurons-as-rows, ``A`` with shape [k neurons, n tokens], float64
(contiguous rows make every reduction a fast row operation). Covariates are 1-D arrays of length n.

    >>> import numpy as np
    >>> from analysis.stats.core import pearson_rows, t_pvalue, bh_qvalues
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((4, 100)); y = rng.standard_normal(100)
    >>> r = pearson_rows(A, y)                    # one r per neuron (row)
    >>> p = t_pvalue(r, df=100 - 2)               # two-sided, t distribution
    >>> q = bh_qvalues(p)                         # Benjamini-Hochberg, NaN-aware

Hand-written pieces (not scipy) exist for one reason: scipy's per-call functions work one neuron at a
time or re-rank the data for every statistic; here one sort per neuron serves ranks, medians, the
Mann-Whitney U, Cliff's delta and the dip test. The tests check each against scipy/statsmodels.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests


# ---------------------------------------------------------------------------------------------------------
# correlation and p-values
def center(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    return y - y.mean()


def pearson_rows(A: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row of A with y (NaN for a constant row)."""
    Ac = A - A.mean(axis=1, keepdims=True)
    yc = center(y)
    return _r_from_centered(Ac, yc, np.einsum("ij,ij->i", Ac, Ac))


def _r_from_centered(Ac: np.ndarray, yc: np.ndarray, Saa: np.ndarray) -> np.ndarray:
    Syy = float(yc @ yc)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (Ac @ yc) / np.sqrt(Saa * Syy)
    r[~(Saa > 0)] = np.nan
    return np.clip(r, -1.0, 1.0)


def _r_from_centered_pairs(num: np.ndarray, Saa: np.ndarray, Syy: float) -> np.ndarray:
    """r from a cross-product and the two centred sums of squares (NaN where the row is constant)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / np.sqrt(Saa * Syy)
    r[~(Saa > 0)] = np.nan
    return np.clip(r, -1.0, 1.0)


def t_pvalue(r: np.ndarray, df: float | np.ndarray) -> np.ndarray:
    """Two-sided p of a correlation r under H0 (t = r*sqrt(df/(1-r^2)), Student t with df)."""
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt(df / ((1.0 - r) * (1.0 + r)))
    p = 2.0 * sps.t.sf(np.abs(t), df)
    return np.where(np.isnan(r), np.nan, p)


def bh_qvalues(p: np.ndarray, method: str = "fdr_bh") -> np.ndarray:
    """FDR q-values with statsmodels `multipletests`; NaN p stay NaN and do not count as tests."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():  # multipletests cannot take NaN: correct the finite ones only
        q[ok] = multipletests(p[ok], method=method)[1]
    return q


# ---------------------------------------------------------------------------------------------------------
# ranks (average ranks for ties), from one sort per row
def sort_rows(A: np.ndarray | None, A16: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Order and sorted values of each row.

    With the float16 original `A16`, the rows are sorted as order-preserving uint16 keys by a stable radix
    sort (about 10x faster than a comparison sort) and the *keys* are returned: equal keys are equal values,
    so ranks and ties work on them directly (numpy's float16 arithmetic is emulated and slow); turn keys
    back into values with `sorted_values`. Otherwise A (float64) is argsorted and its values returned."""
    if A16 is not None and A16.dtype == np.float16:
        u = A16.view(np.uint16)
        u = np.where(u == 0x8000, np.uint16(0), u)  # -0 -> +0: they are equal values, so one key
        key = np.where(u & 0x8000, ~u, u | 0x8000).astype(np.uint16)
        order = np.argsort(key, axis=1, kind="stable")
        return order, np.take_along_axis(key, order, axis=1)
    order = np.argsort(A, axis=1)
    return order, np.take_along_axis(A, order, axis=1)


def sorted_values(s: np.ndarray) -> np.ndarray:
    """float64 values of sorted rows from `sort_rows` (decodes uint16 keys of float16 data)."""
    if s.dtype != np.uint16:
        return np.asarray(s, dtype=np.float64)
    u = np.where(s & 0x8000, s & np.uint16(0x7FFF), ~s).astype(np.uint16)
    return u.view(np.float16).astype(np.float64)


def average_ranks_sorted(s: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) of the elements of each sorted row `s`, in sorted order (ties share
    the mean of their positions, as scipy.stats.rankdata(method='average'))."""
    k, n = s.shape
    new = np.empty(s.shape, dtype=bool)  # True where a tie group starts (every row starts one)
    new[:, 0] = True
    np.not_equal(s[:, 1:], s[:, :-1], out=new[:, 1:])
    starts = np.flatnonzero(new.ravel())  # groups never span rows, so work on the flat array
    sizes = np.diff(starts, append=k * n)
    avg = (starts % n) + (sizes + 1) * 0.5  # 1-based mean position of each group
    return np.repeat(avg, sizes).reshape(k, n)


def rank_rows(A: np.ndarray) -> np.ndarray:
    """Average ranks of each row of A (as scipy.stats.rankdata(A, axis=1))."""
    order, s = sort_rows(A)
    R = np.empty(A.shape, dtype=np.float64)
    np.put_along_axis(R, order, average_ranks_sorted(s), axis=1)
    return R


def tie_term_from_ranks(ranks_sorted: np.ndarray) -> np.ndarray:
    """sum over tie groups of (t^3 - t), per row, from average ranks.

    Identity: a tie group of size t at positions p+1..p+t loses t(t^2-1)/12 of the sum of squared
    positions when its ranks are averaged, so sum(t^3-t) = 12 * (sum i^2 - sum r_i^2). Exact in float64.
    """
    n = ranks_sorted.shape[1]
    return 12.0 * (n * (n + 1) * (2 * n + 1) / 6.0 - np.einsum("ij,ij->i", ranks_sorted, ranks_sorted))


# ---------------------------------------------------------------------------------------------------------
# two-group comparison (long vs short tokens)
def mann_whitney_from_ranks(rank_sum_x: np.ndarray, n_x: int, n_y: int, tie_term: np.ndarray):
    """U of sample x, two-sided asymptotic p (normal approximation, tie correction, continuity
    correction; as scipy.stats.mannwhitneyu(method='asymptotic')), and Cliff's delta of x vs y."""
    u_x = rank_sum_x - n_x * (n_x + 1) / 2.0
    n = n_x + n_y
    mu = n_x * n_y / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.sqrt(n_x * n_y / 12.0 * ((n + 1) - tie_term / (n * (n - 1))))
        u = np.maximum(u_x, n_x * n_y - u_x)  # two-sided: the larger U
        z = (u - mu - 0.5) / s
        p = np.clip(2.0 * sps.norm.sf(z), 0.0, 1.0)
    p = np.where(s > 0, p, np.nan)
    delta = 2.0 * u_x / (n_x * n_y) - 1.0  # P(x>y) - P(x<y), ties count half
    return u_x, p, delta


def cohens_d(mean_x, var_x, n_x, mean_y, var_y, n_y):
    """(mean_x - mean_y) / pooled SD (variances with ddof=1)."""
    sp2 = ((n_x - 1) * var_x + (n_y - 1) * var_y) / (n_x + n_y - 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = (mean_x - mean_y) / np.sqrt(sp2)
    return np.where(sp2 > 0, d, np.nan)


# ---------------------------------------------------------------------------------------------------------
# shape of the distribution
def bimodality_coefficient(Ac: np.ndarray, Saa: np.ndarray) -> np.ndarray:
    """Sarle's bimodality coefficient per row from centred rows: (G1^2 + 1) / (G2 + 3(n-1)^2/((n-2)(n-3)))
    with bias-corrected sample skewness G1 and excess kurtosis G2 (as scipy skew/kurtosis bias=False).
    Values above 5/9 (uniform distribution) suggest bimodality."""
    n = Ac.shape[1]
    m2 = Saa / n
    A2 = Ac * Ac
    m3 = np.einsum("ij,ij->i", A2, Ac) / n
    m4 = np.einsum("ij,ij->i", A2, A2) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        g1 = m3 / m2**1.5
        g2 = m4 / m2**2 - 3.0
    G1 = g1 * np.sqrt(n * (n - 1.0)) / (n - 2.0)
    G2 = ((n + 1.0) * g2 + 6.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0))
    bc = (G1**2 + 1.0) / (G2 + 3.0 * (n - 1.0) ** 2 / ((n - 2.0) * (n - 3.0)))
    return np.where(m2 > 0, bc, np.nan)


def dip_rows(s: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hartigan's dip statistic and its p-value (diptest package, interpolated table) per sorted row
    (values or the uint16 keys of `sort_rows`);
    NaN for rows not in `rows` and for constant rows. The C implementation is per sample, so this loops."""
    import diptest

    k = s.shape[0]
    dip = np.full(k, np.nan)
    p = np.full(k, np.nan)
    for i in range(k) if rows is None else rows:
        row = sorted_values(s[i])  # sorted rows may be uint16 keys of float16 data
        if row[0] == row[-1]:
            continue  # constant: no distribution shape to test
        dip[i], p[i] = diptest.diptest(row, sort_x=False)
    return dip, p
