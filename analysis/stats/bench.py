"""Timing helpers for `make bench`: the vectorised block statistics against a per-neuron statsmodels loop.

    >>> from analysis.stats.bench import synthetic_block, time_block, statsmodels_loop
    >>> X, cov = synthetic_block(8192, 8192)                 # float16 [tokens, neurons], 16 x 512 sequences
    >>> t_vec = time_block(X, cov)                            # seconds, all statistics of one block
    >>> t_loop = statsmodels_loop(X, cov, n_neurons=64) * X.shape[1] / 64   # extrapolated

    $ python -m analysis.stats.bench --tokens 8192 --neurons 8192 --loop-neurons 64   # prints JSON

The loop computes the same statistics one neuron at a time with the library calls a reader would write
(statsmodels OLS for r, its cluster-robust p and the partial-correlation residuals; scipy for Spearman,
Mann-Whitney, skew/kurtosis; diptest). Hartigan's dip is the same C call in both, so the ratio is
reported with and without it.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from .block import Covariates, compute_block


def synthetic_block(n_tokens: int = 8192, n_neurons: int = 8192, seed: int = 0, n_seq: int = 16):
    rng = np.random.default_rng(seed)
    length = rng.integers(1, 17, n_tokens)
    log_freq = -0.3 * length + rng.standard_normal(n_tokens)
    seq = np.repeat(np.arange(n_seq), n_tokens // n_seq)
    nxt = np.r_[length[1:], np.nan]
    X = rng.standard_normal((n_tokens, n_neurons), dtype=np.float32)
    X += (0.05 * (length - 4))[:, None].astype(np.float32)
    return X.astype(np.float16), Covariates.build(length, log_freq, nxt, seq)


def time_block(X, cov, **kw) -> float:
    t = time.perf_counter()
    compute_block(X, cov, seed=(0, 0), **kw)
    return time.perf_counter() - t


def statsmodels_loop(X, cov, n_neurons: int = 64, dip: bool = True, linear_only: bool = False) -> float:
    """Seconds for the per-neuron reference loop over the first n_neurons neurons (linear_only: only the
    OLS-based statistics: r and p, cluster-robust p, the partial correlations, r with log frequency and
    with the next token's length)."""
    import diptest
    import scipy.stats as ss
    import statsmodels.api as sm

    y, f, seq = cov.length, cov.log_freq, cov.seq
    nm = np.isfinite(cov.next_length)
    Xy, Xf = sm.add_constant(y), sm.add_constant(f)
    ey = sm.OLS(y, Xf).fit().resid
    ef = sm.OLS(f, Xy).fit().resid
    S, L = cov.length < cov.median, cov.length > cov.median
    t = time.perf_counter()
    for j in range(n_neurons):
        a = X[:, j].astype(np.float64)
        fit = sm.OLS(a, Xy).fit()
        _ = np.sign(fit.params[1]) * np.sqrt(fit.rsquared), fit.pvalues[1]
        _ = fit.get_robustcov_results(cov_type="cluster", groups=seq, use_t=True).pvalues[1]
        _ = ss.pearsonr(a, f)
        _ = ss.pearsonr(sm.OLS(a, Xf).fit().resid, ey)
        _ = ss.pearsonr(sm.OLS(a, Xy).fit().resid, ef)
        _ = ss.pearsonr(a[nm], cov.next_length[nm])
        if linear_only:
            continue
        _ = ss.spearmanr(a, y)
        s, l = a[S], a[L]
        _ = s.mean(), l.mean(), np.median(s), np.median(l)
        mw = ss.mannwhitneyu(l, s, method="asymptotic")
        _ = 2 * mw.statistic / (len(l) * len(s)) - 1
        _ = ss.skew(a, bias=False), ss.kurtosis(a, bias=False)
        if dip:
            _ = diptest.diptest(a)
    return time.perf_counter() - t


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="time the vectorised statistics of one block")
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--neurons", type=int, default=8192)
    ap.add_argument("--loop-neurons", type=int, default=64)
    a = ap.parse_args(argv)
    X, cov = synthetic_block(a.tokens, a.neurons)
    t_all = time_block(X, cov)
    t_nodip = time_block(X, cov, dip=False)
    k = a.loop_neurons
    loop_all = statsmodels_loop(X, cov, k) * a.neurons / k
    loop_nodip = statsmodels_loop(X, cov, k, dip=False) * a.neurons / k
    t_lin = time_block(X, cov, dip=False, spearman=False, n_perm=0)
    loop_lin = statsmodels_loop(X, cov, k, linear_only=True) * a.neurons / k
    print(json.dumps({
        "n_tokens": a.tokens, "n_neurons": a.neurons, "loop_neurons": k,
        "vectorised_s": round(t_all, 2), "vectorised_no_dip_s": round(t_nodip, 2),
        "statsmodels_loop_s_extrapolated": round(loop_all, 1), "statsmodels_loop_no_dip_s_extrapolated": round(loop_nodip, 1),
        "stats_speedup_vs_statsmodels": round(loop_all / t_all, 1),
        "stats_speedup_vs_statsmodels_no_dip": round(loop_nodip / t_nodip, 1),
        "vectorised_linear_only_s": round(t_lin, 2), "statsmodels_loop_linear_only_s_extrapolated": round(loop_lin, 1),
        "stats_speedup_linear_only": round(loop_lin / t_lin, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
