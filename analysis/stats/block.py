"""All per-neuron statistics of one block, vectorised over neurons, in column chunks (bounded memory).

    >>> import numpy as np
    >>> from analysis.stats.block import Covariates, compute_block
    >>> rng = np.random.default_rng(0)
    >>> n = 1024
    >>> length = rng.integers(1, 12, n); log_freq = -0.3 * length + rng.standard_normal(n)
    >>> next_length = np.r_[length[1:], np.nan]; seq = np.repeat(np.arange(4), n // 4)
    >>> cov = Covariates.build(length, log_freq, next_length, seq)
    >>> X = rng.standard_normal((n, 64)).astype(np.float16)      # [tokens, neurons], one block
    >>> out = compute_block(X, cov, seed=(0, 5))
    >>> out.neurons["pearson_r"].shape, out.null["null_sd_analytic"]
    ((64,), 0.03126...)

What it computes per neuron (columns documented in analysis/stats/COLUMNS.md): Pearson r with length
(and its p), the same with a cluster-robust SE (sequences as clusters), Spearman rho, r with log frequency,
the two partial correlations, r with the next token's length, the median split (group means, medians,
Cohen's d, Cliff's delta, Mann-Whitney p), the bimodality coefficient and Hartigan's dip test; per block
the chance spread of r (analytic, permutation, within-sequence circular shift) on a seeded subset.
The q-values are not here: they are per model (all blocks together), see analysis.stats.model.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import stats as sps

from . import core

SHORT, EQUAL, LONG = 0, 1, 2


@dataclass
class Covariates:
    """Token-level covariates (non-special tokens only, in activation row order), precomputed once."""

    length: np.ndarray
    log_freq: np.ndarray
    next_length: np.ndarray
    seq: np.ndarray
    median: float
    group: np.ndarray  # SHORT/EQUAL/LONG per token (median split of length)
    # derived (centred vectors and residuals), filled by build()
    d: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.length)

    @classmethod
    def build(cls, length, log_freq, next_length, seq) -> "Covariates":
        y = np.asarray(length, dtype=np.float64)
        f = np.asarray(log_freq, dtype=np.float64)
        nx = np.asarray(next_length, dtype=np.float64)
        seq = np.asarray(seq)
        med = float(np.median(y))
        group = np.where(y < med, SHORT, np.where(y > med, LONG, EQUAL)).astype(np.int8)
        d: dict = {}
        yc, fc = core.center(y), core.center(f)
        Syy, Sff, Syf = float(yc @ yc), float(fc @ fc), float(yc @ fc)
        # least-squares residuals of each covariate on the other (+ intercept): the partial-correlation
        # covariates. Activation residuals are never formed: with one control z, ||resid(a|z)||^2 =
        # Saa - (a.zc)^2/Szz and resid(a|z).e = a.e because e is orthogonal to [1, z].
        ey = yc - (Syf / Sff) * fc if Sff > 0 else yc * np.nan
        ef = fc - (Syf / Syy) * yc if Syy > 0 else fc * np.nan
        d.update(yc=yc, fc=fc, Syy=Syy, Sff=Sff, ey=ey, ef=ef, See_y=float(ey @ ey), See_f=float(ef @ ef))
        d["r_length_logfreq"] = Syf / np.sqrt(Syy * Sff) if Syy > 0 and Sff > 0 else np.nan
        m = np.isfinite(nx)
        d.update(next_mask=m, nc=core.center(nx[m]))
        ry = core.center(core.rank_rows(y[None, :])[0])
        d.update(ryc=ry, Sry=float(ry @ ry), Snc=float(d["nc"] @ d["nc"]))
        # cluster-robust SE: group sums via a one-hot [n, G] matrix scaled by centred length
        labels, inv = np.unique(seq, return_inverse=True)
        onehot = np.zeros((len(y), len(labels)))
        onehot[np.arange(len(y)), inv] = 1.0
        d.update(Wy=onehot * yc[:, None], Wyy=onehot.T @ (yc * yc), n_clusters=len(labels))
        # within-sequence positions, for the circular-shift null
        d["seq_index"] = [np.flatnonzero(inv == g) for g in range(len(labels))]
        # compute_block works on tokens reordered so that the median-split groups are contiguous (short,
        # equal, long): group medians are then sorts of column slices, and group membership of a sorted
        # element is a comparison of its token index. Every statistic is a sum over tokens, so the order
        # does not change any result; `perm` maps the working order to the activation rows.
        perm = np.argsort(group, kind="stable")
        nc_full = np.zeros(len(y))
        nc_full[m] = d["nc"]
        # first moments of a centred activation row A: A @ Z1 (one matrix product per chunk); columns:
        # yc, fc, next length centred over has-next (0 elsewhere), then the G cluster columns (cluster
        # indicator x centred length) of the cluster-robust score. Sums over the median-split groups need
        # no product: the groups are contiguous slices of the working order.
        Z1 = np.column_stack([yc, fc, nc_full, d["Wy"]])
        d.update(perm=perm, Z1=np.ascontiguousarray(Z1[perm]),
                 no_next_perm=np.flatnonzero(~m[perm]),  # the few tokens without a next token
                 ry2_perm=np.rint(2 * ry[perm]).astype(np.int32),  # centred ranks are multiples of 1/2
                 group_sizes=tuple(int((group == g).sum()) for g in (SHORT, EQUAL, LONG)))
        return cls(y, f, nx, seq, med, group, d)


@contextmanager
def one_blas_thread():
    """Run the enclosed matrix products on one BLAS thread.

    Every product here is skinny ([k, n] @ [n, <30]) and memory-bound: a second thread gains little on
    an idle machine, while OpenBLAS threads that wait for a core busy with another job cost seconds per
    block (measured: 11.5 s vs 4.4 s for a block on this 2-core machine with one core taken). Uses
    threadpoolctl when installed, else numpy's bundled OpenBLAS through ctypes; a no-op if neither works."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        with threadpool_limits(1, user_api="blas"):
            yield
        return
    lib = _numpy_openblas()
    if lib is None:
        yield
        return
    get, set_ = lib
    old = get()
    set_(1)
    try:
        yield
    finally:
        set_(old)


@lru_cache(maxsize=1)
def _numpy_openblas():
    import ctypes
    import glob
    import os

    libdir = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in glob.glob(os.path.join(libdir, "*openblas*.so*")):
        try:
            lib = ctypes.CDLL(path)  # already loaded by numpy: the same handle
        except OSError:
            continue
        for suffix in ("64_", "_64_", ""):
            get = getattr(lib, f"scipy_openblas_get_num_threads{suffix}", None) or getattr(lib, f"openblas_get_num_threads{suffix}", None)
            set_ = getattr(lib, f"scipy_openblas_set_num_threads{suffix}", None) or getattr(lib, f"openblas_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                get.restype = ctypes.c_int
                set_.argtypes = [ctypes.c_int]
                return get, set_
    return None


@dataclass
class BlockResult:
    neurons: dict  # column -> array [n_neurons]
    null: dict  # block-level null numbers
    pooled: dict | None = None  # pooled median-split numbers (only when asked)


def _null_designs(cov: Covariates, n_perm: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """[n, P] centred lengths: P random permutations, and P within-sequence circular shifts (which keep
    the serial dependence of lengths and of activations inside each sequence and only break alignment)."""
    yc = cov.d["yc"]
    n = len(yc)
    perm = np.empty((n, n_perm))
    shift = np.empty((n, n_perm))
    for j in range(n_perm):
        perm[:, j] = yc[rng.permutation(n)]
        col = yc.copy()
        for idx in cov.d["seq_index"]:
            col[idx] = np.roll(yc[idx], int(rng.integers(1, max(len(idx), 2))))
        shift[:, j] = col
    return perm, shift


def compute_block(
    X: np.ndarray,
    cov: Covariates,
    *,
    seed: tuple = (0, 0),
    chunk: int = 512,
    dip_neurons: int | None = None,
    n_perm: int = 200,
    null_neurons: int = 256,
    pooled: bool = False,
    spearman: bool = True,
    dip: bool = True,
) -> BlockResult:
    """Statistics of one block. X: [n_tokens, n_neurons] (non-special rows only), float16/32/64.

    seed: entropy for numpy's default_rng (e.g. (params seed, block)); it picks the dip subset (when
    dip_neurons is set) and the null subset and permutations. chunk: neurons per vectorised chunk (memory
    ~ 60 bytes x chunk x n_tokens). pooled: also compute the pooled median-split numbers (used at the
    configured split block). spearman (all rank statistics: Spearman, group medians, Mann-Whitney) and
    dip: switch off for benchmarks only.
    """
    with one_blas_thread():
        return _compute_block(X, cov, seed=seed, chunk=chunk, dip_neurons=dip_neurons, n_perm=n_perm,
                              null_neurons=null_neurons, pooled=pooled, spearman=spearman, dip=dip)


def _compute_block(X, cov, *, seed, chunk, dip_neurons, n_perm, null_neurons, pooled, spearman, dip) -> BlockResult:
    n, m = X.shape
    assert n == cov.n, f"activations have {n} rows, covariates {cov.n}"
    d = cov.d
    rng = np.random.default_rng(list(seed))
    dip_sel = np.zeros(m, bool)
    if dip:
        dip_sel[:] = True
        if dip_neurons is not None and dip_neurons < m:
            dip_sel[:] = False
            dip_sel[rng.choice(m, dip_neurons, replace=False)] = True
    null_sel = np.zeros(m, bool)
    if n_perm > 0:
        null_sel[rng.choice(m, min(null_neurons, m), replace=False)] = True
        Yperm, Yshift = _null_designs(cov, n_perm, rng)
    perm = d["perm"]  # working token order: short, equal, long (see Covariates.build)
    if n_perm > 0:
        Yperm, Yshift = Yperm[perm], Yshift[perm]

    n_s, n_e, n_l = d["group_sizes"]
    counts = np.array([n_s, n_e, n_l], dtype=np.float64)
    nm = d["next_mask"]
    n_next = int(nm.sum())
    G = d["n_clusters"]
    df_cl = G - 1
    cl_corr = G / (G - 1.0) * (n - 1.0) / (n - 2.0) if G > 1 else np.nan  # statsmodels' small-sample factor
    Syf_over_Sff = float(d["yc"] @ d["fc"]) / d["Sff"] if d["Sff"] > 0 else np.nan
    Syf_over_Syy = float(d["yc"] @ d["fc"]) / d["Syy"] if d["Syy"] > 0 else np.nan
    f16 = X.dtype == np.float16

    cols: dict[str, np.ndarray] = {}

    def put(name, j0, vals):
        if name not in cols:
            cols[name] = np.full(m, np.nan)
        cols[name][j0 : j0 + len(vals)] = vals

    r_perm_all, r_shift_all = [], []
    const_all = np.zeros(m, dtype=bool)
    token_score = np.zeros(n)
    n_scored = 0
    for j0 in range(0, m, chunk):
        j1 = min(j0 + chunk, m)
        k = j1 - j0
        Xc = np.take(X[:, j0:j1], perm, axis=0)  # [n, k] in the storage dtype, working token order
        Ac = Xc.T.astype(np.float64)  # [k, n]: the one conversion (float16 -> float64 is exact)
        ranks = spearman or dip
        if ranks:  # sort keys: uint16 of float16 data (radix sort), else the values themselves
            V = core.f16_keys(Ac.astype(np.float16)) if f16 else Ac.copy()  # float64 -> float16 is exact here
        mean_all = Ac.mean(axis=1)
        if f16:
            const = None  # decided from Saa below: exact for float16 data
        else:  # exact test (a float64 mean of equal float32/64 values need not be exact)
            const = Ac.min(axis=1) == Ac.max(axis=1)
        Ac -= mean_all[:, None]  # centre first: higher moments from raw sums would cancel catastrophically
        if const is not None:
            Ac[const] = 0.0
        # first moments with the covariates: one matrix product (Z1 built once per model)
        M1 = Ac @ d["Z1"]  # [k, 3 + G]: a.yc, a.fc, a.nc, per-cluster sums of a * yc
        a_y, a_f, a_n = M1[:, 0], M1[:, 1], M1[:, 2]
        U0 = M1[:, 3:]
        # group sums and sums of squares over contiguous slices (short | equal | long); has-next = all
        # tokens minus the few without a next token
        A2 = Ac * Ac
        cut = (0, n_s, n_s + n_e, n)
        S1 = np.stack([Ac[:, cut[g] : cut[g + 1]].sum(axis=1) for g in range(3)], axis=1)  # [k, 3]
        Q = np.stack([A2[:, cut[g] : cut[g + 1]].sum(axis=1) for g in range(3)], axis=1)
        Saa = Q.sum(axis=1)
        nn = d["no_next_perm"]
        S_next = S1.sum(axis=1) - Ac[:, nn].sum(axis=1)
        Q_next = Saa - A2[:, nn].sum(axis=1)
        m3 = np.einsum("ij,ij->i", A2, Ac)
        m4 = np.einsum("ij,ij->i", A2, A2)
        del A2
        if const is None:
            # float16 data: each value v has 11 significant bits, so the float64 sum of n copies (any
            # order, n < 2^42) is exact, n*v/n rounds back to v, and a constant row centres to exact
            # zeros; a non-constant row has some |a - mean| >= 2^-25, whose square does not underflow
            const = ~(Saa > 0)
        Saa[const] = 0.0
        const_all[j0:j1] = const
        # --- correlations with length and log frequency, partial correlations
        r = core._r_from_centered_pairs(a_y, Saa, d["Syy"])
        put("pearson_r", j0, r)
        put("pearson_p", j0, core.t_pvalue(r, n - 2))
        put("r_freq", j0, core._r_from_centered_pairs(a_f, Saa, d["Sff"]))
        # partials from moments: with one control z, ||resid(a|z)||^2 = Saa - (a.zc)^2/Szz, and
        # resid(a|z).e = a.e because e (the covariate's residual on [1, z]) is orthogonal to [1, z];
        # a.ey = a.yc - (Syf/Sff) a.fc, so no residual array is ever formed
        with np.errstate(invalid="ignore", divide="ignore"):
            res_f = Saa - a_f**2 / d["Sff"]  # ||resid(a | log_freq)||^2
            res_y = Saa - a_y**2 / d["Syy"]  # ||resid(a | length)||^2
            pr_len = (a_y - Syf_over_Sff * a_f) / np.sqrt(res_f * d["See_y"])
            pr_freq = (a_f - Syf_over_Syy * a_y) / np.sqrt(res_y * d["See_f"])
        tiny = 1e-12 * Saa
        pr_len[const | ~(res_f > tiny)] = np.nan  # nothing left after the control: undefined, not 0
        pr_freq[const | ~(res_y > tiny)] = np.nan
        pr_len, pr_freq = np.clip(pr_len, -1, 1), np.clip(pr_freq, -1, 1)
        put("partial_r_length", j0, pr_len)
        put("partial_p_length", j0, core.t_pvalue(pr_len, n - 3))
        put("partial_r_freq", j0, pr_freq)
        put("partial_p_freq", j0, core.t_pvalue(pr_freq, n - 3))
        # --- cluster-robust (sequences) test of the length slope: sandwich variance, G-1 df
        b = a_y / d["Syy"]
        U = U0 - b[:, None] * d["Wyy"][None, :]  # per-cluster score sums, [k, G]
        with np.errstate(invalid="ignore", divide="ignore"):
            se = np.sqrt(cl_corr * np.einsum("ij,ij->i", U, U)) / d["Syy"]
            tcl = b / se
        p_cl = 2.0 * sps.t.sf(np.abs(tcl), df_cl) if G > 1 else np.full(k, np.nan)
        p_cl[const] = np.nan
        put("pearson_p_cluster", j0, p_cl)
        # --- next token's length (rows that have a next token); nc sums to 0 over them
        Snn = Q_next - S_next**2 / n_next
        with np.errstate(invalid="ignore", divide="ignore"):
            rn = np.clip(a_n / np.sqrt(Snn * d["Snc"]), -1, 1)
        rn[const | ~(Snn > 1e-12 * Saa)] = np.nan
        put("r_next_length", j0, rn)
        put("r_next_length_p", j0, core.t_pvalue(rn, n_next - 2))
        # --- moments: bimodality coefficient
        put("bimodality_coefficient", j0, core.bimodality_from_moments(n, Saa, m3, m4))
        # --- group means / variances (median split); Ac is centred, add the mean back for the means
        means = S1[:, :3] / np.maximum(counts, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            var_s = (Q[:, 0] - S1[:, 0] ** 2 / n_s) / (n_s - 1) if n_s > 1 else np.full(k, np.nan)
            var_l = (Q[:, 2] - S1[:, 2] ** 2 / n_l) / (n_l - 1) if n_l > 1 else np.full(k, np.nan)
        for gi, name in ((SHORT, "short"), (EQUAL, "equal"), (LONG, "long")):
            if counts[gi]:
                put(f"split_mean_{name}", j0, means[:, gi] + mean_all)
        put("split_cohens_d", j0, core.cohens_d(means[:, LONG], var_l, n_l, means[:, SHORT], var_s, n_s)
            if n_s > 1 and n_l > 1 else np.full(k, np.nan))
        # --- one sort per neuron: ranks (Spearman), Mann-Whitney / Cliff, dip; group medians from sorts
        # of the group's (contiguous) token slice
        if ranks:
            order, s = core.sort_keys(V)
            if spearman:
                is_s = order < n_s  # working order puts short tokens first, long tokens last
                is_l = order >= n_s + n_e
                rs = core.rank_statistics(s, d["ry2_perm"][order], is_s, is_l)
                del is_s, is_l
                Srr = rs["Srr"]
                Srr[const] = 0.0
                rho = core._r_from_centered_pairs(rs["num"], Srr, d["Sry"])
                put("spearman_r", j0, rho)
                put("spearman_p", j0, core.t_pvalue(rho, n - 2))
                put_medians(put, j0, V, (n_s, n_e, n_l))
                if n_s and n_l:
                    _, p_mw, delta = core.mann_whitney_from_ranks(rs["rank_sum_l"], n_l, n_s, rs["tie_sl"])
                    delta[const] = np.nan
                    put("split_p", j0, p_mw)
                    put("split_cliffs_delta", j0, delta)
            del order
            if dip and dip_sel[j0:j1].any():
                dv, dp = core.dip_rows(s, np.flatnonzero(dip_sel[j0:j1]))
                put("dip", j0, dv)
                put("dip_p", j0, dp)
            del s, V
        # --- nulls on the seeded subset
        sub = np.flatnonzero(null_sel[j0:j1])
        if len(sub):
            norm = np.sqrt(Saa[sub] * d["Syy"])[:, None]
            with np.errstate(invalid="ignore", divide="ignore"):
                rp = (Ac[sub] @ Yperm) / norm
                rs_ = (Ac[sub] @ Yshift) / norm
            r_perm_all.append(rp)
            r_shift_all.append(rs_)
            ro = np.abs(r[sub])[:, None]
            put("perm_p", j0, _scatter(k, sub, (1 + (np.abs(rp) >= ro).sum(1)) / (n_perm + 1)))
            put("shift_p", j0, _scatter(k, sub, (1 + (np.abs(rs_) >= ro).sum(1)) / (n_perm + 1)))
        if pooled:
            sd = np.sqrt(Saa / (n - 1))
            ok = ~const
            token_score += (Ac[ok] / sd[ok, None]).sum(axis=0)
            n_scored += int(ok.sum())
        del Ac, Xc

    # reasons for NaN; constant neurons get NaN in every statistic above (never 0)
    reason = np.where(const_all, "constant activation", "")
    if n_perm > 0:
        for c in ("perm_p", "shift_p"):
            cols.setdefault(c, np.full(m, np.nan))
            cols[c][const_all] = np.nan
    for c in ("split_median_short", "split_median_equal", "split_median_long", "split_mean_short",
              "split_mean_equal", "split_mean_long", "dip", "dip_p"):  # a group may be empty
        cols.setdefault(c, np.full(m, np.nan))
    if not spearman:
        for c in ("spearman_r", "spearman_p", "split_p", "split_cliffs_delta"):
            cols.setdefault(c, np.full(m, np.nan))
    cols["nan_reason"] = reason
    cols["dip_tested"] = dip_sel & ~const_all
    cols["null_subset"] = null_sel

    null = {"null_sd_analytic": 1.0 / np.sqrt(n - 1)}
    if r_perm_all:
        rp = np.concatenate(r_perm_all)
        rs_ = np.concatenate(r_shift_all)
        rp, rs_ = rp[np.isfinite(rp).all(1)], rs_[np.isfinite(rs_).all(1)]
        null.update(
            null_sd_permutation=float(rp.std()),
            null_q95_abs_permutation=float(np.quantile(np.abs(rp), 0.95)),
            null_sd_shift=float(rs_.std()),
            null_q95_abs_shift=float(np.quantile(np.abs(rs_), 0.95)),
            null_n_neurons=int(len(rp)),
            null_n_permutations=int(n_perm),
        )
    out = BlockResult(cols, null)
    if pooled:
        ts = np.empty(n)
        ts[perm] = token_score / max(n_scored, 1)  # back to activation row order
        out.pooled = _pooled_split(X, cov, ts)
    return out


def put_medians(put, j0: int, V: np.ndarray, sizes) -> None:
    """Median of each median-split group per neuron. V: [k, n] sort keys (uint16 of float16, or values) in
    the working token order, where each group's tokens are a contiguous slice; a (radix, for keys) sort
    of the slice gives the two middle order statistics, whose mean is the median (as numpy.median)."""
    a = 0
    for name, ng in zip(("short", "equal", "long"), sizes):
        if ng:
            sg = np.sort(V[:, a : a + ng], axis=1, kind="stable")
            mid = core.sorted_values(sg[:, [(ng - 1) // 2, ng // 2]])
            put(f"split_median_{name}", j0, 0.5 * (mid[:, 0] + mid[:, 1]))
        a += ng


def _scatter(k: int, idx: np.ndarray, vals: np.ndarray) -> np.ndarray:
    out = np.full(k, np.nan)
    out[idx] = vals
    return out


def _pooled_split(X: np.ndarray, cov: Covariates, token_score: np.ndarray, n_bins: int = 80) -> dict:
    """Median split pooled over neurons.

    - Values pooled over all (token, neuron) pairs, as the study's histograms: means, medians, Cohen's d
      (long - short) and histograms on common edges.
    - The test uses tokens as units: each token's mean z-scored activation over neurons (token score);
      Mann-Whitney and Cliff's delta long vs short on it, and a sequence-level Wilcoxon signed-rank test
      of (mean long - mean short) per sequence, which respects the dependence of tokens in a sequence.
    """
    out: dict = {}
    vals = {}
    for g, name in ((SHORT, "short"), (EQUAL, "equal"), (LONG, "long")):
        v = np.asarray(X[cov.group == g], dtype=np.float32).ravel()
        vals[name] = v
        out[f"pooled_mean_{name}"] = float(v.mean(dtype=np.float64)) if v.size else np.nan
        out[f"pooled_median_{name}"] = float(np.median(v)) if v.size else np.nan
    vS, vL = vals["short"], vals["long"]
    if vS.size > 1 and vL.size > 1:
        out["pooled_cohens_d"] = float(
            core.cohens_d(vL.mean(dtype=np.float64), vL.var(dtype=np.float64, ddof=1), vL.size,
                          vS.mean(dtype=np.float64), vS.var(dtype=np.float64, ddof=1), vS.size)
        )
        allv = np.concatenate([vS, vals["equal"], vL])
        lo, hi = np.quantile(allv, [0.005, 0.995])
        edges = np.linspace(lo, hi, n_bins + 1)
        out["histogram"] = {"edges": edges.tolist(), **{k: np.histogram(v, edges)[0].tolist() for k, v in vals.items()}}
        del allv
    ts, tl = token_score[cov.group == SHORT], token_score[cov.group == LONG]
    if ts.size and tl.size:
        mw = sps.mannwhitneyu(tl, ts, method="asymptotic")
        out["pooled_cliffs_delta"] = float(2 * mw.statistic / (tl.size * ts.size) - 1)
        out["pooled_p"] = float(mw.pvalue)
        out["token_score_cohens_d"] = float(
            core.cohens_d(tl.mean(), tl.var(ddof=1), tl.size, ts.mean(), ts.var(ddof=1), ts.size)
        )
        diffs = []
        for s_ in np.unique(cov.seq):
            ins = cov.seq == s_
            a, b = token_score[ins & (cov.group == LONG)], token_score[ins & (cov.group == SHORT)]
            if a.size and b.size:
                diffs.append(a.mean() - b.mean())
        diffs = np.asarray(diffs)
        out["sequence_n"] = int(diffs.size)
        out["sequence_mean_diff"] = float(diffs.mean()) if diffs.size else np.nan
        out["sequence_share_long_lower"] = float((diffs < 0).mean()) if diffs.size else np.nan
        out["sequence_p"] = float(sps.wilcoxon(diffs).pvalue) if diffs.size >= 2 and np.any(diffs != 0) else np.nan
    return out
