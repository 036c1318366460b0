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
time or re-rank the data for every statistic; here one (radix) sort per neuron serves the Spearman ranks,
the Mann-Whitney U, Cliff's delta, both tie corrections and the dip test (`rank_statistics`, `dip_rows`).
The tests (tests/test_stats.py, tests/test_stats_fast.py) check each against scipy/statsmodels.
"""

from __future__ import annotations

import sys

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
#
# Why sorting and not counting: float16 has at most 65536 distinct values, so ranks could come from a
# per-neuron histogram of the uint16 keys + cumsum. But a block has 8192 tokens per neuron, and the histogram
# has 65536 bins per neuron: the counting pass touches 8x more memory than the data, and observed neurons use
# most of the float16 range (a standard normal hits ~30k distinct values), so compressing the key range does
# not help. numpy's stable sort of 16-bit integers is a radix sort (two linear passes), which wins.
def f16_keys(A16: np.ndarray) -> np.ndarray:
    """Order-preserving uint16 keys of float16 values: key(a) < key(b) iff a < b, and -0, +0 share a key.

    Sign-magnitude to two's complement (negate the magnitude where the sign bit is set), then shift by
    0x8000 so that the key is unsigned; -0 has magnitude 0 and lands on +0's key. Five int16 passes."""
    v = np.ascontiguousarray(A16).view(np.int16)
    neg = v >> 15  # 0 or -1 (arithmetic shift)
    mag = v & np.int16(0x7FFF)
    return ((mag ^ neg) - neg).view(np.uint16) ^ np.uint16(0x8000)


def sort_rows(A: np.ndarray | None, A16: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Order and sorted values of each row.

    With the float16 original `A16`, the rows are sorted as order-preserving uint16 keys (`f16_keys`) by a
    stable radix sort (about 10x faster than a comparison sort) and the *keys* are returned: equal keys are
    equal values, so ranks and ties work on them directly (numpy's float16 arithmetic is emulated and slow);
    turn keys back into values with `sorted_values`. Otherwise A (float64) is argsorted (stable) and its
    values returned."""
    if A16 is not None and A16.dtype == np.float16:
        return sort_keys(f16_keys(A16))
    order = np.argsort(A, axis=1, kind="stable")
    return order, np.take_along_axis(A, order, axis=1)


def sort_keys(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order and sorted rows of a key array ([k, n]: uint16 keys from `f16_keys`, or float values)."""
    order = np.argsort(key, axis=1, kind="stable")  # radix sort for uint16
    return order, np.sort(key, axis=1, kind="stable")  # a second radix pass beats gathering by `order`


def sorted_values(s: np.ndarray) -> np.ndarray:
    """float64 values of sorted rows from `sort_rows` (decodes uint16 keys of float16 data)."""
    if s.dtype != np.uint16:
        return np.asarray(s, dtype=np.float64)
    v = (s ^ np.uint16(0x8000)).view(np.int16)  # the two's complement form of f16_keys
    neg = v >> 15
    mag = (v ^ neg) - neg  # |v|; -0 never appears (it was folded into +0)
    return (mag | (neg & np.int16(-0x8000))).view(np.float16).astype(np.float64)


def tie_bounds(s: np.ndarray):
    """For each element of each sorted row, the first and last 0-based position of its tie group.

    Returns (new, last, st, en): `new`/`last` mark where a tie group starts/ends; st/en are int32.
    A position carried forward from group starts (a running maximum, valid because positions increase)
    gives st; carried backward from group ends (a running minimum from the right) gives en."""
    k, n = s.shape
    new = np.empty((k, n), dtype=bool)
    new[:, 0] = True
    np.not_equal(s[:, 1:], s[:, :-1], out=new[:, 1:])
    last = np.empty((k, n), dtype=bool)
    last[:, -1] = True
    last[:, :-1] = new[:, 1:]
    idx = np.arange(n, dtype=np.int32)
    st = carry_first(idx, new)
    en = carry_last(idx, last)
    return new, last, st, en


def carry_first(v: np.ndarray, new: np.ndarray) -> np.ndarray:
    """v (non-decreasing along each row) at the start of each element's tie group."""
    out = v * new  # multiplying by the mask is several times faster than np.where
    return np.maximum.accumulate(out, axis=1, out=out)


def carry_last(v: np.ndarray, last: np.ndarray) -> np.ndarray:
    """v (non-decreasing along each row) at the end of each element's tie group."""
    out = np.where(last, v, np.iinfo(v.dtype).max)
    rev = out[:, ::-1]
    np.minimum.accumulate(rev, axis=1, out=rev)
    return out


def average_ranks_sorted(s: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) of the elements of each sorted row `s`, in sorted order (ties share
    the mean of their positions, as scipy.stats.rankdata(method='average'))."""
    _, _, st, en = tie_bounds(s)
    return (st + en) * 0.5 + 1.0


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


# the two halves of a packed unsigned integer viewed as a pair of half-width integers (this machine's order)
_LO, _HI = (0, 1) if sys.byteorder == "little" else (1, 0)


def rank_statistics(s: np.ndarray, y2s: np.ndarray, is_s: np.ndarray, is_l: np.ndarray) -> dict:
    """Spearman and Mann-Whitney ingredients from sorted rows, from one pass of tie-group bounds.

    s: sorted rows [k, n] (keys or values); y2s: twice the centred ranks of the covariate (integers)
    carried along the same sort ([k, n]); is_s / is_l: [k, n] bool, element belongs to the short / long
    group. Returns per row: `num` = sum (r_i - (n+1)/2) * y2s_i / 2 and `Srr` = sum (r_i - (n+1)/2)^2
    (Spearman numerator and rank sum of squares, r = average ranks); `rank_sum_l`, the rank sum of the
    long group within the pooled short+long sample (average ranks); `tie_sl`, the sum of t^3 - t over the
    tie groups of that sample.

    Ranks among the pooled short+long elements come from one cumulative count C (pooled elements up to a
    position): an element's pooled rank is C before its tie group + (pooled tie size + 1)/2, and the pooled
    tie size is C at the group's end minus C before it; tie groups of the pooled sample are the global
    ones restricted to it, so one set of group bounds serves both rankings.

    Group bounds are carried along each row by a running maximum (numpy's accumulate is a scalar loop, the
    cost here, so there are only two): (start position, C before the start) packed into one unsigned
    integer, non-decreasing along the row, carried forward from group starts; the bitwise complement of
    (end position, C at the end), non-increasing along the row, carried backward from group ends. Both
    fields fit in 16 bits when n < 2^15 (uint32 packing, half the memory traffic), else 32 bits. All
    integer arithmetic is exact; only the final sums are float64 (exact for these integers)."""
    k, n = s.shape
    ut, half, wide, sh = (np.uint32, np.uint16, np.int32, 16) if n < 2**15 else (np.uint64, np.uint32, np.int64, 32)
    top = 1 << sh  # complement of a field f is (top - 1) - f
    nb = np.empty((k, n + 1), dtype=bool)  # nb[:, p] : a tie group starts at p (and the previous one ends)
    nb[:, 0] = nb[:, n] = True
    np.not_equal(s[:, 1:], s[:, :-1], out=nb[:, 1:n])
    new, last = nb[:, :n], nb[:, 1:]
    in_sl = is_s | is_l
    c_incl = np.cumsum(in_sl, axis=1, dtype=ut)
    pos = np.arange(n, dtype=ut) << ut(sh)
    fwd = (pos + (c_incl - in_sl)) * new  # (start, C before it) at starts; 0 (neutral) elsewhere
    np.maximum.accumulate(fwd, axis=1, out=fwd)
    bwd = ~(pos + c_incl) * last  # complement of (end, C at end) at ends; 0 elsewhere
    rev = bwd[:, ::-1]
    np.maximum.accumulate(rev, axis=1, out=rev)
    del c_incl, nb
    fh, bh = fwd.view(half), bwd.view(half)
    st, lo = fh[:, _HI::2], fh[:, _LO::2]
    en_c, hi_c = bh[:, _HI::2], bh[:, _LO::2]  # en = top - 1 - en_c, hi = top - 1 - hi_c
    d2 = np.subtract(st, en_c, dtype=wide)
    d2 += wide(top - n)  # st + en + 1 - n = 2 * (average rank - (n+1)/2), an exact integer
    num = 0.25 * np.einsum("ij,ij->i", d2, y2s, dtype=np.float64)
    Srr = 0.25 * np.einsum("ij,ij->i", d2, d2, dtype=np.float64)
    del d2
    rank2 = np.subtract(lo, hi_c, dtype=wide)
    rank2 += wide(top)  # lo + hi + 1 = 2 * average rank within the pooled sample
    rank_sum_l = 0.5 * np.einsum("ij,ij->i", rank2, is_l, dtype=np.float64)
    t = np.add(lo, hi_c, dtype=wide)
    np.subtract(wide(top - 1), t, out=t)  # hi - lo: pooled tie size
    t *= in_sl  # counted at pooled positions only, where each group of size t appears t times: sum t^3
    tie_sl = np.einsum("ij,ij->i", t, t, dtype=np.float64) - in_sl.sum(axis=1)
    return {"num": num, "Srr": Srr, "rank_sum_l": rank_sum_l, "tie_sl": tie_sl}


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
    A2 = Ac * Ac
    return bimodality_from_moments(Ac.shape[1], Saa, np.einsum("ij,ij->i", A2, Ac), np.einsum("ij,ij->i", A2, A2))


def bimodality_from_moments(n: int, S2: np.ndarray, S3: np.ndarray, S4: np.ndarray) -> np.ndarray:
    """`bimodality_coefficient` from the central sums of powers 2, 3, 4 of each row (NaN where S2 = 0)."""
    m2, m3, m4 = S2 / n, S3 / n, S4 / n
    with np.errstate(invalid="ignore", divide="ignore"):
        g1 = m3 / m2**1.5
        g2 = m4 / m2**2 - 3.0
    G1 = g1 * np.sqrt(n * (n - 1.0)) / (n - 2.0)
    G2 = ((n + 1.0) * g2 + 6.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0))
    bc = (G1**2 + 1.0) / (G2 + 3.0 * (n - 1.0) ** 2 / ((n - 2.0) * (n - 3.0)))
    return np.where(m2 > 0, bc, np.nan)


def dip_and_short(J: np.ndarray, n_s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(dip, p, dip_short, p_short) per row of J ([k, n] values, unsorted): the dip test of each row and of
    its first n_s columns (the short group in working order; NaN where n_s <= 3). A module-level function of
    arrays only, so that it can run in a side process (analysis.stats.offload)."""
    dv, dp = dip_rows(np.sort(J, axis=1))
    if n_s > 3:
        ds, dsp = dip_rows(np.sort(J[:, :n_s], axis=1))
    else:
        ds, dsp = np.full(len(J), np.nan), np.full(len(J), np.nan)
    return dv, dp, ds, dsp


def dip_rows(s: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hartigan's dip statistic and its p-value (diptest package, interpolated table) per sorted row
    (values or the uint16 keys of `sort_rows`); NaN for rows not in `rows` and for constant rows.

    The C implementation takes one sample at a time, so this loops over rows (about 0.2 ms per neuron of
    8192 tokens; it does not release the GIL, so threads do not help); decoding is vectorised."""
    import diptest

    k = s.shape[0]
    dip = np.full(k, np.nan)
    p = np.full(k, np.nan)
    rows = np.arange(k) if rows is None else np.asarray(rows)
    rows = rows[s[rows, 0] != s[rows, -1]]  # constant: no distribution shape to test
    vals = sorted_values(s[rows])
    for i, row in zip(rows, vals):
        dip[i], p[i] = diptest.diptest(row, sort_x=False)
    return dip, p
