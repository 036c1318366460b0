"""Timing helpers for `make bench`: the vectorised block statistics against per-neuron statsmodels/scipy loops.

    >>> from analysis.stats.bench import synthetic_block, time_block, statsmodels_loop, bench_block, time_1p3b
    >>> X, cov = synthetic_block(8192, 8192)                 # float16 [tokens, neurons], 16 x 512 sequences
    >>> t_vec = time_block(X, cov)                            # seconds, all statistics of one block
    >>> t_loop = statsmodels_loop(X, cov, n_neurons=64) * X.shape[1] / 64   # extrapolated
    >>> res = bench_block(X, cov, loop_neurons=32)            # both ratios (dict, see below)
    >>> t13 = time_1p3b(blocks_timed=2)                       # 24 x [8192, 8192], 2 blocks timed, extrapolated

    $ python -m analysis.stats.bench --tokens 8192 --neurons 8192 --loop-neurons 32 --blocks-1p3b 2   # JSON

Two comparisons, each on the same data, the loop on the first `loop_neurons` neurons and extrapolated:
- `stats_speedup_vs_statsmodels`: the statsmodels-comparable part, i.e. what a per-neuron `sm.OLS(...).fit()`
  loop gives (Pearson r and p with length, cluster-robust p, r with log frequency, both partial correlations
  from OLS residuals, r with the next token's length), against `compute_block(..., spearman=False,
  dip=False, n_perm=0)`, which computes those and also the group means, Cohen's d and the bimodality
  coefficient (so the ratio, if anything, understates the speed-up).
- `stats_speedup_all`: every per-neuron statistic (adds Spearman, group medians, Mann-Whitney / Cliff's
  delta, skew/kurtosis, Hartigan's dip) against the same loop with scipy and diptest calls added, vs
  `compute_block(..., n_perm=0)` (no nulls: the loop has none). The dip is the same C call per neuron in
  both, so it bounds this ratio; `stats_speedup_all_no_dip` leaves it out of both.
Timings are the best of `repeats` runs (other jobs share this machine's cores).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import tracemalloc

import numpy as np

from .block import compute_block
from .pipeline import design_from_tokens
from .simulate import zipf_stream


class _Cov:
    """The token covariates of a design in row order, as the reference loop reads them."""

    def __init__(self, d):
        tc = d.token_covariates()
        self.length, self.log_freq, self.seq = tc["length"], tc["log_freq"], tc["seq"]
        self.next_length, self.type = tc["next_length"], tc["type"]
        self.median = float(np.median(self.length))


def synthetic_block(n_tokens: int = 8192, n_neurons: int = 8192, seed: int = 0, n_seq: int = 16,
                    n_permutations: int | None = None):
    """A float16 block [n_tokens (non-special), n_neurons] (standard normal + a small length effect) and the
    design of a Zipf token stream of n_seq sequences (analysis.stats.simulate); generated in column chunks
    so that no float32 copy of the whole block exists. Settings from params.yaml `stats`."""
    from analysis.params import load_params

    cfg = load_params()["stats"]
    if n_permutations is not None:
        cfg = {**cfg, "nulls": {**cfg.get("nulls", {}), "n_permutations": n_permutations}}
    tok = zipf_stream(seed, n_seq=n_seq, seq_len=max(n_tokens // n_seq, 8))
    d, keep = design_from_tokens(tok, cfg, seed)
    rng = np.random.default_rng(seed)
    length = tok["length"].to_numpy(float)[keep]
    X = np.empty((d.n, n_neurons), dtype=np.float16)
    shift = (0.05 * (length - 4))[:, None].astype(np.float32)
    for j0 in range(0, n_neurons, 1024):
        j1 = min(j0 + 1024, n_neurons)
        X[:, j0:j1] = rng.standard_normal((d.n, j1 - j0), dtype=np.float32) + shift
    return X, d


def time_block(X, cov, **kw) -> float:
    t = time.perf_counter()
    compute_block(X, cov, seed=(0, 0), **kw)
    return time.perf_counter() - t


def best_time(fn, repeats: int = 3) -> float:
    """Best wall time of `repeats` calls of fn() (the least disturbed by other jobs)."""
    best = np.inf
    for _ in range(max(repeats, 1)):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


LINEAR_KW = {"ranks": False, "dip": False}  # the statsmodels-comparable part (plus the nulls)


def statsmodels_loop(X, d, n_neurons: int = 64, dip: bool = True, linear_only: bool = False) -> float:
    """Seconds for the per-neuron reference loop over the first n_neurons neurons (linear_only: only the
    OLS-based statistics: r and p, cluster-robust p, the partial correlations, r with log frequency and
    with the next token's length)."""
    import diptest
    import scipy.stats as ss
    import statsmodels.api as sm

    cov = _Cov(d)
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


def block_peak_mb(X, cov, **kw) -> float:
    """Peak of numpy/Python memory allocated while computing one block (tracemalloc; numpy reports its
    buffers to it), in MB: what the statistics add on top of the block itself."""
    tracemalloc.start()
    try:
        compute_block(X, cov, seed=(0, 0), **kw)
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def bench_block(X, cov, loop_neurons: int = 32, repeats: int = 3, **kw) -> dict:
    """Both speed-ups for one block (see the module docstring); kw: compute_block settings (chunk,
    dip_neurons, ...). Loop times are extrapolated from the first `loop_neurons` neurons."""
    n, m = X.shape
    k = min(loop_neurons, m)
    compute_block(X[:, :64], cov, seed=(0, 0), **kw)  # warm-up: imports, scipy's first calls
    t_lin = best_time(lambda: compute_block(X, cov, seed=(0, 0), **{**kw, **LINEAR_KW}), repeats)
    t_all = best_time(lambda: compute_block(X, cov, seed=(0, 0), **kw), repeats)
    t_nodip = best_time(lambda: compute_block(X, cov, seed=(0, 0), **{**kw, "dip": False}), repeats)
    statsmodels_loop(X, cov, 2)  # warm-up
    loop_lin = min(statsmodels_loop(X, cov, k, linear_only=True) for _ in range(max(repeats - 1, 1))) * m / k
    loop_all = min(statsmodels_loop(X, cov, k) for _ in range(max(repeats - 1, 1))) * m / k
    loop_nodip = min(statsmodels_loop(X, cov, k, dip=False) for _ in range(max(repeats - 1, 1))) * m / k
    dip_neurons = kw.get("dip_neurons")
    return {
        "n_tokens": n, "n_neurons": m, "loop_neurons": k, "repeats": repeats,
        "dip_neurons": "all" if dip_neurons is None else int(min(dip_neurons, m)),
        "vectorised_linear_s": round(t_lin, 3),
        "statsmodels_loop_linear_s_extrapolated": round(loop_lin, 1),
        "statsmodels_loop_linear_ms_per_neuron": round(1e3 * loop_lin / m, 2),
        "stats_speedup_vs_statsmodels": round(loop_lin / t_lin, 1),
        "vectorised_all_s": round(t_all, 3),
        "vectorised_all_no_dip_s": round(t_nodip, 3),
        "loop_all_s_extrapolated": round(loop_all, 1),
        "loop_all_no_dip_s_extrapolated": round(loop_nodip, 1),
        "stats_speedup_all": round(loop_all / t_all, 1),
        "stats_speedup_all_no_dip": round(loop_nodip / t_nodip, 1),
        "note": "loop on the first loop_neurons neurons, extrapolated; vectorised = best of repeats; "
                "all = every per-neuron statistic, no permutation nulls (the loop has none)",
    }


def time_1p3b(blocks_timed: int = 2, n_blocks: int = 24, n_tokens: int = 8192, n_neurons: int = 8192,
              **kw) -> dict:
    """All statistics (nulls, dip as configured by kw, pooled split on block 0) for the GPT-Neo 1.3B shape,
    n_blocks x [n_tokens, n_neurons] float16: `blocks_timed` blocks are timed and the total extrapolated
    (blocks cost the same: the work does not depend on the values). One block in memory at a time."""
    per = []
    for b in range(blocks_timed):
        X, cov = synthetic_block(n_tokens, n_neurons, seed=b)
        t = time.perf_counter()
        compute_block(X, cov, seed=(0, b), pooled=(b == 0), **kw)
        per.append(time.perf_counter() - t)
        del X
    per_block = float(np.median(per))
    return {"stats_1p3b_block_s": round(per_block, 3), "stats_1p3b_blocks_timed": blocks_timed,
            "stats_1p3b_block_times_s": [round(x, 3) for x in per],
            "stats_1p3b_s": round(n_blocks * per_block, 2), "stats_1p3b_extrapolated_from_blocks": blocks_timed}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="time the vectorised statistics of one block")
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--neurons", type=int, default=8192)
    ap.add_argument("--loop-neurons", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=None, help="default: params.yaml stats.chunk_neurons")
    ap.add_argument("--dip-neurons", type=int, default=-1, help="default (-1): params.yaml stats.dip_neurons")
    ap.add_argument("--blocks-1p3b", type=int, default=0, help="also time the 1.3B shape from this many blocks")
    a = ap.parse_args(argv)
    kw = {}
    try:
        from analysis.params import load_params

        s = load_params().get("stats", {}) or {}
        kw = {"chunk": int(s.get("chunk_neurons", 256)), "dip_neurons": s.get("dip_neurons"),
              "rank_neurons": s.get("rank_neurons")}
    except Exception:  # noqa: BLE001 - benchmark without a params file
        pass
    if a.chunk is not None:
        kw["chunk"] = a.chunk
    if a.dip_neurons != -1:
        kw["dip_neurons"] = a.dip_neurons
    X, cov = synthetic_block(a.tokens, a.neurons)
    res = bench_block(X, cov, a.loop_neurons, a.repeats, **kw)
    res["settings"] = {k: v for k, v in kw.items()}
    res["block_peak_alloc_mb"] = round(block_peak_mb(X, cov, **kw), 1)
    del X
    if a.blocks_1p3b:
        res.update(time_1p3b(a.blocks_1p3b, **kw))
    res["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)  # whole process
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
