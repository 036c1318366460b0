"""Every per-neuron statistic of analysis.stats against an independent reference (scipy, statsmodels,
formulas written out here), to 1e-6 in float64, with ties and a constant neuron."""

import numpy as np
import pytest
import scipy.stats as ss
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests

import diptest
from analysis.stats import core
from analysis.stats.block import Covariates, compute_block

TOL = 1e-6


def make_data(n_seq=8, seq_len=80, m=10, seed=1, dtype=np.float16):
    rng = np.random.default_rng(seed)
    n = n_seq * seq_len
    length = rng.integers(1, 10, n).astype(float)
    log_freq = -0.25 * length + rng.standard_normal(n)
    seq = np.repeat(np.arange(n_seq), seq_len)
    nxt = np.r_[length[1:], np.nan]
    nxt[seq_len - 1 :: seq_len] = np.nan  # last token of each sequence has no next token
    X = rng.standard_normal((n, m))
    X[:, 1] += -0.3 * length  # a length neuron
    X[:, 2] = 0.5 * log_freq + rng.standard_normal(n)  # a frequency neuron
    X[:, 3] = rng.integers(0, 4, n)  # heavy ties
    X[:, 4] = 2.5  # constant
    X[:, 5] = np.where(rng.random(n) < 0.5, -2, 2) + 0.3 * rng.standard_normal(n)  # bimodal
    X = X.astype(dtype)
    return X, Covariates.build(length, log_freq, nxt, seq)


@pytest.fixture(scope="module", params=[np.float16, np.float64], ids=["f16", "f64"])
def data(request):
    X, cov = make_data(dtype=request.param)
    out = compute_block(X, cov, seed=(0, 3), chunk=4, n_perm=99, null_neurons=6, pooled=True)
    return X.astype(np.float64), cov, out


def live(X):
    return [j for j in range(X.shape[1]) if np.ptp(X[:, j]) > 0]


def test_zscore_form_equals_ordinary_pearson():
    rng = np.random.default_rng(0)
    x, A = rng.standard_normal(300), rng.standard_normal((5, 300))
    zx = (x - x.mean()) / x.std(ddof=1)
    for a, r in zip(A, core.pearson_rows(A, x)):
        za = (a - a.mean()) / a.std(ddof=1)
        assert abs(za @ zx / (len(x) - 1) - r) < 1e-12
        assert abs(ss.pearsonr(a, x).statistic - r) < 1e-12


def test_pearson_spearman_freq_next(data):
    X, cov, out = data
    c = out.neurons
    m = np.isfinite(cov.next_length)
    for j in live(X):
        a = X[:, j]
        pr = ss.pearsonr(a, cov.length)
        assert abs(c["pearson_r"][j] - pr.statistic) < TOL and abs(c["pearson_p"][j] - pr.pvalue) < TOL
        sr = ss.spearmanr(a, cov.length)
        assert abs(c["spearman_r"][j] - sr.statistic) < TOL and abs(c["spearman_p"][j] - sr.pvalue) < TOL
        assert abs(c["r_freq"][j] - ss.pearsonr(a, cov.log_freq).statistic) < TOL
        nr = ss.pearsonr(a[m], cov.next_length[m])
        assert abs(c["r_next_length"][j] - nr.statistic) < TOL and abs(c["r_next_length_p"][j] - nr.pvalue) < TOL
    assert c["pearson_r"][1] < -0.3 and c["pearson_p"][1] < 1e-6  # the planted length neuron is found


def _resid(y, z):
    return sm.OLS(y, sm.add_constant(z)).fit().resid


def test_partial_correlations_vs_ols_residuals(data):
    X, cov, out = data
    c = out.neurons
    n = cov.n
    for j in live(X):
        a = X[:, j]
        for col, target, control in (("length", cov.length, cov.log_freq), ("freq", cov.log_freq, cov.length)):
            r = ss.pearsonr(_resid(a, control), _resid(target, control)).statistic
            t = r * np.sqrt((n - 3) / (1 - r**2))  # pingouin's partial_corr: n - k - 2 df with k = 1
            assert abs(c[f"partial_r_{col}"][j] - r) < TOL
            assert abs(c[f"partial_p_{col}"][j] - 2 * ss.t.sf(abs(t), n - 3)) < TOL
    assert c["partial_r_freq"][2] > 0.3  # the planted frequency neuron keeps its effect under control


def test_cluster_robust_p_vs_statsmodels(data):
    X, cov, out = data
    for j in live(X):
        fit = sm.OLS(X[:, j], sm.add_constant(cov.length)).fit(
            cov_type="cluster", cov_kwds={"groups": cov.seq}, use_t=True)
        assert abs(out.neurons["pearson_p_cluster"][j] - fit.pvalues[1]) < TOL


def test_median_split_vs_references(data):
    X, cov, out = data
    c = out.neurons
    S, E, L = cov.length < cov.median, cov.length == cov.median, cov.length > cov.median
    for j in live(X):
        a = X[:, j]
        s, e, l = a[S], a[E], a[L]
        for name, g in (("short", s), ("equal", e), ("long", l)):
            assert abs(c[f"split_mean_{name}"][j] - g.mean()) < TOL
            assert abs(c[f"split_median_{name}"][j] - np.median(g)) < TOL
        sp = np.sqrt(((len(l) - 1) * l.var(ddof=1) + (len(s) - 1) * s.var(ddof=1)) / (len(l) + len(s) - 2))
        assert abs(c["split_cohens_d"][j] - (l.mean() - s.mean()) / sp) < TOL
        gt = (l[:, None] > s[None, :]).sum()
        lt = (l[:, None] < s[None, :]).sum()
        assert abs(c["split_cliffs_delta"][j] - (gt - lt) / (len(l) * len(s))) < TOL
        assert abs(c["split_p"][j] - ss.mannwhitneyu(l, s, method="asymptotic").pvalue) < TOL


def test_shape_measures(data):
    X, cov, out = data
    c = out.neurons
    n = cov.n
    for j in live(X):
        a = X[:, j]
        g1, g2 = ss.skew(a, bias=False), ss.kurtosis(a, bias=False)
        bc = (g1**2 + 1) / (g2 + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3)))
        assert abs(c["bimodality_coefficient"][j] - bc) < TOL
        dip, p = diptest.diptest(a)
        assert abs(c["dip"][j] - dip) < TOL and abs(c["dip_p"][j] - p) < TOL
    assert c["bimodality_coefficient"][5] > 5 / 9 and c["dip_p"][5] < 0.01  # the planted bimodal neuron
    assert c["bimodality_coefficient"][0] < 5 / 9


def test_constant_neuron_is_nan_with_reason(data):
    X, cov, out = data
    c = out.neurons
    assert c["nan_reason"][4] == "constant activation" and c["nan_reason"][0] == ""
    for k in ("pearson_r", "pearson_p", "spearman_r", "r_freq", "partial_r_length", "partial_r_freq",
              "r_next_length", "split_cohens_d", "split_cliffs_delta", "split_p", "dip", "bimodality_coefficient",
              "pearson_p_cluster", "perm_p"):
        assert np.isnan(c[k][4]), k
    assert not c["dip_tested"][4]


def test_nulls(data):
    X, cov, out = data
    nl = out.null
    assert abs(nl["null_sd_analytic"] - 1 / np.sqrt(cov.n - 1)) < 1e-15
    assert 0.75 < nl["null_sd_permutation"] / nl["null_sd_analytic"] < 1.3
    assert nl["null_sd_shift"] > 0
    p = out.neurons["perm_p"]
    sel = out.neurons["null_subset"]
    assert np.isnan(p[~sel]).all()
    ok = sel & np.isfinite(out.neurons["pearson_r"])
    assert ((p[ok] >= 1 / 100) & (p[ok] <= 1)).all()
    if sel[1]:
        assert p[1] == pytest.approx(1 / 100)  # the length neuron beats every permutation


def test_pooled_split(data):
    X, cov, out = data
    P = out.pooled
    S, L = cov.length < cov.median, cov.length > cov.median
    assert abs(P["pooled_mean_short"] - X[S].mean()) < TOL
    assert abs(P["pooled_median_long"] - np.median(X[L].astype(np.float32))) < TOL
    vl, vs = X[L].ravel(), X[S].ravel()
    sp = np.sqrt(((vl.size - 1) * vl.var(ddof=1) + (vs.size - 1) * vs.var(ddof=1)) / (vl.size + vs.size - 2))
    assert abs(P["pooled_cohens_d"] - (vl.mean() - vs.mean()) / sp) < 1e-5
    live_ = live(X)
    Z = (X[:, live_] - X[:, live_].mean(0)) / X[:, live_].std(0, ddof=1)
    score = Z.mean(1)
    assert abs(P["pooled_p"] - ss.mannwhitneyu(score[L], score[S], method="asymptotic").pvalue) < TOL
    diffs = [score[L & (cov.seq == s)].mean() - score[S & (cov.seq == s)].mean() for s in np.unique(cov.seq)]
    assert abs(P["sequence_p"] - ss.wilcoxon(diffs).pvalue) < TOL


def test_chunking_and_dtype_do_not_change_results():
    X, cov = make_data(m=9, dtype=np.float16)
    a = compute_block(X, cov, seed=(0, 1), chunk=2, n_perm=20, null_neurons=4)
    b = compute_block(X, cov, seed=(0, 1), chunk=512, n_perm=20, null_neurons=4)
    c = compute_block(X.astype(np.float32), cov, seed=(0, 1), chunk=3, n_perm=20, null_neurons=4)
    for k, v in a.neurons.items():
        if v.dtype.kind == "f":
            np.testing.assert_allclose(v, b.neurons[k], rtol=0, atol=1e-12, equal_nan=True, err_msg=k)
            np.testing.assert_allclose(v, c.neurons[k], rtol=0, atol=1e-9, equal_nan=True, err_msg=k)


def test_dip_subset_is_seeded_and_nan_elsewhere():
    X, cov = make_data(m=10)
    a = compute_block(X, cov, seed=(0, 2), dip_neurons=3, n_perm=0)
    b = compute_block(X, cov, seed=(0, 2), dip_neurons=3, n_perm=0)
    assert a.neurons["dip_tested"].sum() <= 3 and np.isfinite(a.neurons["dip"]).sum() <= 3
    np.testing.assert_array_equal(a.neurons["dip"], b.neurons["dip"])


def test_ranks_with_ties():
    A = np.array([[3, 1, 2, 2, 3, 3, 0], [5, 5, 5, 5, 1, 2, 2]], float)
    np.testing.assert_array_equal(core.rank_rows(A), ss.rankdata(A, axis=1))
    order, s = core.sort_rows(A)
    r = core.average_ranks_sorted(s)
    for row, rs in zip(s, r):
        _, t = np.unique(row, return_counts=True)
        assert core.tie_term_from_ranks(rs[None])[0] == pytest.approx((t**3 - t).sum())


def test_float16_keys_sort_like_values():
    v = np.array([-0.0, 0.0, -1.5, 2.0, -np.inf, 65504, -65504, 1e-7, -1e-7, 2.0], np.float16)[None]
    a = v.astype(np.float64)
    order, s = core.sort_rows(a, v)  # radix sort on uint16 keys
    assert s.dtype == np.uint16 and np.all(np.diff(core.sorted_values(s)[0]) >= 0)
    np.testing.assert_array_equal(core.sorted_values(s)[0], np.sort(a[0]))
    R = np.empty_like(a)
    np.put_along_axis(R, order, core.average_ranks_sorted(s), axis=1)
    np.testing.assert_array_equal(R, ss.rankdata(a, axis=1))  # -0 and +0 tie, as do the two 2.0


def test_bh_qvalues_with_nan():
    rng = np.random.default_rng(0)
    p = rng.random(50) ** 3
    p[[3, 17]] = np.nan
    q = core.bh_qvalues(p)
    assert np.isnan(q[[3, 17]]).all()
    ok = np.isfinite(p)
    np.testing.assert_allclose(q[ok], multipletests(p[ok], method="fdr_bh")[1], atol=1e-15)
    assert (q[ok] >= p[ok]).all()
