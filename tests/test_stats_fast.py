"""The fast paths of analysis.stats (uint16 keys, packed tie-group bounds, working token order, exact
constancy test for float16, benchmark helpers) against independent references (scipy, numpy)."""

import numpy as np
import pytest
import scipy.stats as ss

from analysis.stats import bench, core
from analysis.stats.block import Covariates, compute_block

TOL = 1e-6


def all_float16():
    """Every non-NaN float16 value (both zeros and both infinities included)."""
    v = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
    return v[~np.isnan(v)]


def test_f16_keys_order_and_roundtrip():
    v = all_float16()
    key = core.f16_keys(v)
    a = v.astype(np.float64)
    o = np.argsort(a, kind="stable")
    assert np.all(np.diff(key[o].astype(np.int64)) >= 0)  # order preserving
    pz, nz = np.array([0.0, -0.0], np.float16)
    assert core.f16_keys(np.array([pz]))[0] == core.f16_keys(np.array([nz]))[0]  # -0 and +0 are one value
    # strictly increasing on distinct values, and decoding gives the values back
    u, first = np.unique(a, return_index=True)
    ku = key[first]
    assert np.all(np.diff(ku.astype(np.int64)) > 0)
    np.testing.assert_array_equal(core.sorted_values(ku[None])[0], u)


def _pooled_reference(x, is_s, is_l):
    """Rank sum of the long group in the pooled short+long sample, and its tie term, from scipy."""
    pooled = np.r_[x[is_l], x[is_s]]
    r = ss.rankdata(pooled)
    _, t = np.unique(pooled, return_counts=True)
    return r[: is_l.sum()].sum(), float((t**3 - t).sum())


@pytest.mark.parametrize("n", [257, 2**15 + 3], ids=["uint32-packing", "uint64-packing"])
def test_rank_statistics_vs_scipy(n):
    rng = np.random.default_rng(n)
    A = np.stack([rng.integers(0, 5, n), rng.integers(0, 60, n), rng.standard_normal(n),
                  np.repeat(rng.standard_normal(n // 7 + 1), 7)[:n], np.full(n, 3.0)]).astype(np.float64)
    y = rng.integers(1, 12, n).astype(float)
    med = np.median(y)
    grp = np.where(y < med, 0, np.where(y > med, 2, 1))
    ry = ss.rankdata(y) - (n + 1) / 2
    order, s = core.sort_rows(A)
    rs = core.rank_statistics(s, np.rint(2 * ry)[order].astype(np.int32), grp[order] == 0, grp[order] == 2)
    for i, x in enumerate(A):
        r = ss.rankdata(x) - (n + 1) / 2
        assert rs["num"][i] == pytest.approx(r @ ry, abs=1e-6)
        assert rs["Srr"][i] == pytest.approx(r @ r, abs=1e-6)
        rl, tie = _pooled_reference(x, grp == 0, grp == 2)
        assert rs["rank_sum_l"][i] == rl and rs["tie_sl"][i] == tie


def test_rank_statistics_on_float16_keys_match_values():
    rng = np.random.default_rng(3)
    X16 = (rng.standard_normal((6, 999)) * [[1], [0.01], [100], [1e-5], [1], [1]]).astype(np.float16)
    X16[4, ::3] = -0.0
    X16[4, 1::3] = 0.0
    g = rng.integers(0, 3, 999)
    order_k, sk = core.sort_rows(None, X16)
    order_v, sv = core.sort_rows(X16.astype(np.float64))
    y2 = rng.integers(-20, 20, 999).astype(np.int32)
    a = core.rank_statistics(sk, y2[order_k], g[order_k] == 0, g[order_k] == 2)
    b = core.rank_statistics(sv, y2[order_v], g[order_v] == 0, g[order_v] == 2)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def make(n_seq=6, seq_len=70, m=8, seed=0, lengths=None, dtype=np.float16):
    rng = np.random.default_rng(seed)
    n = n_seq * seq_len
    length = rng.integers(1, 10, n).astype(float) if lengths is None else lengths
    log_freq = -0.25 * length + rng.standard_normal(n)
    seq = np.repeat(np.arange(n_seq), seq_len)
    nxt = np.r_[length[1:], np.nan]
    X = rng.standard_normal((n, m)) - 0.2 * length[:, None]
    return X.astype(dtype), Covariates.build(length, log_freq, nxt, seq)


def test_constant_detection_float16_exact():
    X, cov = make(m=8)
    for j, v in enumerate([0.1, -3.3, 60000.0, 6e-8, -0.0]):  # awkward float16 values, n not a power of 2
        X[:, j] = v
    X[:, 5] = 0.1
    X[7, 5] = np.nextafter(np.float16(0.1), np.float16(1))  # one ulp off: not constant
    out = compute_block(X, cov, seed=(0, 0), n_perm=10, null_neurons=8, chunk=3)
    c = out.neurons
    for j in range(5):
        assert c["nan_reason"][j] == "constant activation"
        for k in ("pearson_r", "spearman_r", "partial_r_length", "split_p", "bimodality_coefficient", "dip"):
            assert np.isnan(c[k][j]), (j, k)
    assert c["nan_reason"][5] == "" and np.isfinite(c["pearson_r"][5]) and np.isfinite(c["spearman_r"][5])
    a = X[:, 5].astype(np.float64)
    assert abs(c["pearson_r"][5] - ss.pearsonr(a, cov.length).statistic) < TOL
    assert abs(c["spearman_r"][5] - ss.spearmanr(a, cov.length).statistic) < TOL


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_empty_equal_group(dtype):
    n = 420
    rng = np.random.default_rng(5)
    lengths = rng.permutation(np.r_[rng.integers(1, 3, n // 2), rng.integers(5, 7, n // 2)]).astype(float)
    X, cov = make(lengths=lengths, dtype=dtype)
    assert not (cov.length == cov.median).any()
    c = compute_block(X, cov, seed=(0, 1), n_perm=0, chunk=5).neurons
    S, L = cov.length < cov.median, cov.length > cov.median
    for j in range(X.shape[1]):
        a = X[:, j].astype(np.float64)
        assert np.isnan(c["split_median_equal"][j]) and np.isnan(c["split_mean_equal"][j])
        assert abs(c["split_median_short"][j] - np.median(a[S])) < TOL
        assert abs(c["split_median_long"][j] - np.median(a[L])) < TOL
        assert abs(c["split_p"][j] - ss.mannwhitneyu(a[L], a[S], method="asymptotic").pvalue) < TOL
        assert abs(c["spearman_r"][j] - ss.spearmanr(a, cov.length).statistic) < TOL


def test_working_order_is_invisible():
    """Shuffling the tokens (rows and covariates together) changes no statistic beyond rounding."""
    X, cov = make(m=6, seed=4)
    p = np.random.default_rng(0).permutation(cov.n)
    cov2 = Covariates.build(cov.length[p], cov.log_freq[p], cov.next_length[p], cov.seq[p])
    a = compute_block(X, cov, n_perm=0, dip=True).neurons
    b = compute_block(X[p], cov2, n_perm=0, dip=True).neurons
    for k in ("pearson_r", "pearson_p_cluster", "spearman_r", "partial_r_length", "partial_r_freq",
              "split_median_short", "split_median_long", "split_cliffs_delta", "split_p", "dip", "bimodality_coefficient"):
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-10, err_msg=k)


def test_bench_helpers_small():
    X, cov = bench.synthetic_block(512, 48, n_seq=4)
    assert X.dtype == np.float16 and X.shape == (512, 48)
    res = bench.bench_block(X, cov, loop_neurons=3, repeats=1, chunk=16)
    for k in ("stats_speedup_vs_statsmodels", "stats_speedup_all", "stats_speedup_all_no_dip"):
        assert res[k] > 0, k
    assert res["vectorised_linear_s"] >= 0 and res["loop_all_s_extrapolated"] >= res["loop_all_no_dip_s_extrapolated"] * 0.5
    t = bench.time_1p3b(blocks_timed=1, n_blocks=3, n_tokens=256, n_neurons=32, chunk=16, n_perm=5, null_neurons=4)
    assert t["stats_1p3b_blocks_timed"] == 1 and t["stats_1p3b_s"] == pytest.approx(3 * t["stats_1p3b_block_s"], abs=0.02)
    assert bench.block_peak_mb(X, cov, chunk=16, n_perm=0) > 0
