"""Every per-neuron statistic of analysis.stats against an independent reference (scipy, statsmodels,
numpy least squares, diptest), in float64, with ties, a constant neuron and recurring token types."""

import numpy as np
import pytest
import scipy.stats as ss
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests

import diptest
from analysis.stats import core
from analysis.stats.block import compute_block, jitter
from analysis.stats.design import Design, natural_spline_basis, strata_of
from analysis.stats.simulate import small_sample

TOL = 1e-9


def build(X, cov, **kw):
    d = Design.build(cov["token_id"], cov["length"], cov["log_freq"], cov["seq"], cov["next_token_id"],
                     **{"n_permutations": 60, "seed": (0,), "strata_min_types": 5, **kw})
    return d


@pytest.fixture(scope="module", params=[np.float16, np.float64], ids=["f16", "f64"])
def data(request):
    X, cov = small_sample(dtype=request.param)
    d = build(X, cov)
    out = compute_block(X, d, seed=(0, 3), chunk=4, pooled=True, dip_neurons=None, rank_neurons=None)
    return X.astype(np.float64), cov, d, out


def live(X):
    return [j for j in range(X.shape[1]) if np.ptp(X[:, j]) > 0]


def resid(v, Z):
    return v - Z @ np.linalg.lstsq(Z, v, rcond=None)[0]


def dummies(labels, drop_first=False):
    u, inv = np.unique(labels, return_inverse=True)
    D = np.eye(len(u))[inv]
    return D[:, 1:] if drop_first else D


def test_pooled_pearson_and_frequency(data):
    X, cov, d, out = data
    c = out.neurons
    for j in live(X):
        pr = ss.pearsonr(X[:, j], cov["length"])
        assert abs(c["pearson_r"][j] - pr.statistic) < TOL and abs(c["pearson_p_naive"][j] - pr.pvalue) < TOL
        assert abs(c["r_freq"][j] - ss.pearsonr(X[:, j], cov["log_freq"]).statistic) < TOL
    assert c["pearson_r"][1] < -0.3


def test_within_sequence_and_partial_correlations_vs_least_squares(data):
    X, cov, d, out = data
    c = out.neurons
    D = dummies(cov["seq"])
    y, f = cov["length"], cov["log_freq"]
    n, G = len(y), D.shape[1]
    for j in live(X):
        a = X[:, j]
        for col, x, Z in (("r_within", y, D), ("partial_r_length", y, np.column_stack([D, f])),
                          ("partial_r_freq", f, np.column_stack([D, y]))):
            r = np.corrcoef(resid(a, Z), resid(x, Z))[0, 1]
            assert abs(c[col][j] - r) < TOL, col
            dfree = n - Z.shape[1] - 1
            t = r * np.sqrt(dfree / (1 - r * r))
            assert abs(c[f"{col}_p_naive"][j] - 2 * ss.t.sf(abs(t), dfree)) < 1e-8, col
        B = natural_spline_basis(f, np.unique(np.quantile(f, np.linspace(0.05, 0.95, 5))))
        Zs = np.column_stack([D, B])
        assert abs(c["partial_r_length_spline"][j] - np.corrcoef(resid(a, Zs), resid(y, Zs))[0, 1]) < 1e-8
    assert c["partial_r_freq"][2] > 0.3 and abs(c["partial_r_length"][1]) > 0.2


def test_spline_basis_is_natural():
    x = np.linspace(-3, 3, 200)
    B = natural_spline_basis(x, np.array([-2, -1, 0, 1, 2.0]))
    beyond = x > 2
    for k in range(B.shape[1]):  # linear beyond the boundary knots: second differences vanish
        assert np.allclose(np.diff(B[beyond, k], 2), 0, atol=1e-9)


def test_next_token_partial_given_type_and_sequence(data):
    X, cov, d, out = data
    c = out.neurons
    has = cov["next_token_id"] >= 0
    Z = np.column_stack([dummies(cov["seq"][has], drop_first=True), dummies(cov["token_id"][has])])
    for j in live(X):
        a = X[has, j]
        r = np.corrcoef(resid(a, Z), resid(cov["next_length"][has], Z))[0, 1]
        assert abs(c["partial_r_next"][j] - r) < 1e-8


def test_sequence_clustered_p_vs_statsmodels(data):
    X, cov, d, out = data
    c = out.neurons
    D = dummies(cov["seq"])
    y, f, seq = cov["length"], cov["log_freq"], cov["seq"]
    has = cov["next_token_id"] >= 0
    Zn = np.column_stack([dummies(seq[has], drop_first=True), dummies(cov["token_id"][has])])
    G = D.shape[1]
    for j in live(X):
        a = X[:, j]
        for col, x, Z in (("r_within", y, D), ("partial_r_length", y, np.column_stack([D, f])),
                          ("partial_r_freq", f, np.column_stack([D, y]))):
            fit = sm.OLS(a, np.column_stack([Z, x])).fit(cov_type="cluster", cov_kwds={"groups": seq}, use_t=True)
            assert abs(c[f"{col}_p_seq"][j] - fit.pvalues[-1]) < 1e-9, col
        # next token: the dummies are absorbed, so only G / (G - 1) is applied (no (n - 1) / (n - K))
        fit = sm.OLS(a[has], np.column_stack([Zn, cov["next_length"][has]])).fit(
            cov_type="cluster", cov_kwds={"groups": seq[has], "use_correction": False})
        se = fit.bse[-1] * np.sqrt(G / (G - 1))
        assert abs(c["partial_r_next_p_seq"][j] - 2 * ss.t.sf(abs(fit.params[-1] / se), G - 1)) < 1e-8


def test_twoway_clustered_p_vs_statsmodels():
    X, cov = small_sample(m=6, seed=4)
    X = X.astype(np.float64) - 0.15 * np.random.default_rng(0).standard_normal((8, 6))[cov["seq"]]
    d = build(X, cov)
    c = compute_block(X, d, rank_neurons=None, dip=False).neurons
    _, tix = np.unique(cov["token_id"], return_inverse=True)
    checked = 0
    for j in live(X):
        fit = sm.OLS(X[:, j], sm.add_constant(cov["length"])).fit(
            cov_type="cluster", cov_kwds={"groups": np.column_stack([cov["seq"], tix])}, use_t=True)
        if np.isfinite(fit.pvalues[1]):
            assert abs(c["pearson_p_twoway"][j] - fit.pvalues[1]) < 1e-9
            checked += 1
    assert checked >= 3


def test_commonality_vs_ols(data):
    X, cov, d, out = data
    c = out.neurons
    D = dummies(cov["seq"])
    y, f = cov["length"], cov["log_freq"]
    for j in live(X):
        a = resid(X[:, j], D)
        r2 = lambda *cols: sm.OLS(a, np.column_stack([resid(v, D) for v in cols])).fit().rsquared  # noqa: E731
        both, ry, rf = r2(y, f), r2(y), r2(f)
        assert abs(c["r2_both"][j] - both) < 1e-8
        assert abs(c["unique_length"][j] - (both - rf)) < 1e-8
        assert abs(c["shared"][j] - (ry + rf - both)) < 1e-8


def test_permutation_nulls_vs_brute_force(data):
    """Each permuted statistic equals the statistic recomputed with the permuted covariate."""
    from analysis.stats import linear, nulls, sums
    from analysis.stats.block import _prepared
    from analysis.stats.nexttoken import next_partial

    X, cov, d, out = data
    prep = _prepared(d)
    At = np.take(X[:, :4], d.order, axis=0).astype(np.float64)
    mean = At.mean(axis=0)
    At -= mean
    s = sums.chunk_sums(At, mean, d, prep["_reduce"])
    C, saa, Ag = sums.cross_products(s, d)
    tc = d.token_covariates()
    D = dummies(tc["seq"])
    ok = [j for j in range(4) if j in live(X)]
    for spec in linear.TESTED:
        r, parts = linear.partial_r(C, saa, d.spaces["all"], spec)
        nt = prep[spec.name]["null"]
        rp = nulls.permuted_r(nulls.permuted_products(s, nt.VT), Ag, parts, nt)
        perms = d.perms if spec.stratified else d.perms_free
        for p in (0, 17, 59):
            vec = d.extra[{"length": "cov_t"}.get(spec.permute, "cov_t")][:, d.spaces["all"].col(spec.permute)]
            v = vec[perms[p]][tc["type"]]
            Z = D if not spec.controls else np.column_stack([D] + [tc[{"logfreq": "log_freq"}.get(z, z)]
                                                                   for z in spec.controls])
            for j in ok:
                ref = np.corrcoef(resid(X[:, j], Z), resid(v, Z))[0, 1]
                assert abs(rp[j, p] - ref) < 1e-5, (spec.name, p, j)
    rn, rnp, *_ = next_partial(s, d, prep["partial_r_next"])
    inv = np.empty(d.n, dtype=np.int64)
    inv[d.order] = np.arange(d.n)
    nt_row = d.next_type_of[inv]
    has = nt_row >= 0
    Zn = np.column_stack([dummies(tc["seq"][has], drop_first=True), dummies(tc["type"][has])])
    for p in (0, 33):
        v = d.length_t[d.perms[p]][np.maximum(nt_row, 0)]
        for j in ok:
            ref = np.corrcoef(resid(X[has, j], Zn), resid(v[has], Zn))[0, 1]
            assert abs(rnp[j, p] - ref) < 1e-5


def test_strata_and_permutations():
    counts = np.r_[np.ones(40, int), np.full(12, 3), np.full(6, 9), [200, 150, 90]]
    s = strata_of(counts, min_types=5)
    for k in np.unique(s):
        assert (s == k).sum() >= 5
    assert s[-1] == s[-2] == s[-3]  # the three most frequent types are merged into one stratum
    X, cov = small_sample()
    d = build(X, cov)
    for row in d.perms:  # every stratified permutation maps each type into its own stratum
        assert np.array_equal(d.strata[row], d.strata)
        assert np.array_equal(np.sort(row), np.arange(d.n_types))
    assert not all(np.array_equal(d.strata[row], d.strata) for row in d.perms_free)
    d2 = build(X, cov)
    assert np.array_equal(d.perms, d2.perms) and np.array_equal(d.perms_free, d2.perms_free)  # seeded


def test_median_split_vs_references(data):
    X, cov, d, out = data
    c = out.neurons
    y = cov["length"]
    med = np.median(y)
    S, E, L = y < med, y == med, y > med
    for j in live(X):
        a = X[:, j]
        s, e, l = a[S], a[E], a[L]
        for name, g in (("short", s), ("equal", e), ("long", l)):
            assert abs(c[f"split_mean_{name}"][j] - g.mean()) < TOL
            assert abs(c[f"split_median_{name}"][j] - np.median(g)) < TOL
        sp = np.sqrt(((len(l) - 1) * l.var(ddof=1) + (len(s) - 1) * s.var(ddof=1)) / (len(l) + len(s) - 2))
        assert abs(c["split_cohens_d"][j] - (l.mean() - s.mean()) / sp) < TOL
        gt, lt = (l[:, None] > s[None, :]).sum(), (l[:, None] < s[None, :]).sum()
        assert abs(c["split_cliffs_delta"][j] - (gt - lt) / (len(l) * len(s))) < TOL
        assert abs(c["split_p_naive"][j] - ss.mannwhitneyu(l, s, method="asymptotic").pvalue) < TOL
        assert abs(c["spearman_r"][j] - ss.spearmanr(a, y).statistic) < TOL


def test_shape_measures_on_jittered_values(data):
    X, cov, d, out = data
    c = out.neurons
    n = len(X)
    for j in live(X):
        a = X[:, j]
        g1, g2 = ss.skew(a, bias=False), ss.kurtosis(a, bias=False)
        bc = (g1**2 + 1) / (g2 + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3)))
        assert abs(c["bimodality_coefficient"][j] - bc) < TOL
    assert c["bimodality_coefficient"][5] > 5 / 9 and c["dip_p"][5] < 0.01  # the planted bimodal neuron
    assert c["bimodality_coefficient"][0] < 5 / 9 and c["dip_p"][0] > 0.05


def test_jitter_stays_within_half_a_storage_step():
    rng = np.random.default_rng(0)
    v = (rng.standard_normal(5000) * 3).astype(np.float16)
    j = jitter(v.astype(np.float64)[None], True, np.random.default_rng(1))[0]
    step = np.spacing(np.abs(v)).astype(np.float64)
    assert np.all(np.abs(j - v) <= step / 2 + 1e-15) and len(np.unique(j)) == len(j)
    # the stored float16 values themselves (a lookup table for the step) give the same draws, bit for bit
    edge = np.array([0, -0.0, 6e-8, -6e-8, 6.1e-5, 1, -1, 2, 1024, -65504, 65504], dtype=np.float16)
    w = np.concatenate([v, edge])[None]
    np.testing.assert_array_equal(jitter(w, True, np.random.default_rng(1)),
                                  jitter(w.astype(np.float64), True, np.random.default_rng(1)))


def test_float16_storage_cannot_fake_multimodality():
    """A narrow unimodal neuron far from zero is a handful of float16 values: the dip test on the stored
    values rejects unimodality, on jittered values it does not (what the statistics use)."""
    rng = np.random.default_rng(2)
    a16 = (6.0 + 0.004 * rng.standard_normal(4000)).astype(np.float16)   # SD ~ 1 float16 step at 6
    assert diptest.diptest(a16.astype(np.float64))[1] < 0.01
    p = [diptest.diptest(jitter(a16.astype(np.float64)[None], True, np.random.default_rng(k))[0])[1]
         for k in range(20)]
    assert np.mean(np.array(p) < 0.05) <= 0.1


def test_constant_neuron_is_nan_with_reason(data):
    X, cov, d, out = data
    c = out.neurons
    assert c["nan_reason"][4] == "constant activation" and c["nan_reason"][0] == ""
    for k in ("pearson_r", "r_within", "r_within_p", "r_within_p_seq", "r_within_p_type", "partial_r_length",
              "partial_r_freq", "partial_r_next", "partial_r_next_p", "spearman_r", "split_cohens_d",
              "split_p_naive", "dip", "bimodality_coefficient", "pearson_p_twoway", "r2_both"):
        assert np.isnan(c[k][4]), k
    assert not c["dip_tested"][4]


def test_chunking_and_dtype_do_not_change_results():
    X, cov = small_sample(m=9)
    d = build(X, cov)
    a = compute_block(X, d, seed=(0, 1), chunk=2, rank_neurons=None, dip_neurons=None)
    b = compute_block(X, d, seed=(0, 1), chunk=512, rank_neurons=None, dip_neurons=None)
    c = compute_block(X.astype(np.float32), d, seed=(0, 1), chunk=3, rank_neurons=None, dip_neurons=None)
    # permutation products run in float32: what depends on them agrees to float32 rounding (a permutation
    # p-value may move by one permutation, 1 / (P + 1), where a permuted value ties the observed one)
    nullish = lambda k: k.endswith(("_p_type", "_null_scale")) or (k.endswith("_p") and "naive" not in k)  # noqa: E731
    for k, v in a.neurons.items():
        if v.dtype.kind == "f" and not k.startswith("dip"):
            tol = dict(rtol=1e-6, atol=1.01 / (d.n_perm + 1)) if nullish(k) else dict(rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(v, b.neurons[k], equal_nan=True, err_msg=k, **tol)
            if k != "sd_ulps":  # a float16 notion
                tol = tol if nullish(k) else dict(rtol=1e-9, atol=1e-9)
                np.testing.assert_allclose(v, c.neurons[k], equal_nan=True, err_msg=k, **tol)
    for k in a.nulls:
        np.testing.assert_allclose(a.nulls[k], b.nulls[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_subsets_are_seeded_and_nan_elsewhere():
    X, cov = small_sample(m=10)
    d = build(X, cov)
    a = compute_block(X, d, seed=(0, 2), dip_neurons=3, rank_neurons=4)
    b = compute_block(X, d, seed=(0, 2), dip_neurons=3, rank_neurons=4)
    assert a.neurons["dip_tested"].sum() <= 3 and np.isfinite(a.neurons["dip"]).sum() <= 3
    assert np.isfinite(a.neurons["spearman_r"]).sum() <= 4
    np.testing.assert_array_equal(a.neurons["dip"], b.neurons["dip"])
    np.testing.assert_array_equal(a.neurons["spearman_r"], b.neurons["spearman_r"])


def test_pooled_split(data):
    X, cov, d, out = data
    P = out.pooled
    y, seq = cov["length"], cov["seq"]
    med = np.median(y)
    S, L = y < med, y > med
    assert abs(P["pooled_mean_short"] - X[S].mean()) < 1e-6
    assert abs(P["pooled_median_long"] - np.median(X[L].astype(np.float32))) < 1e-6
    vl, vs = X[L].ravel(), X[S].ravel()
    sp = np.sqrt(((vl.size - 1) * vl.var(ddof=1) + (vs.size - 1) * vs.var(ddof=1)) / (vl.size + vs.size - 2))
    assert abs(P["pooled_cohens_d"] - (vl.mean() - vs.mean()) / sp) < 1e-5
    lv = live(X)
    Z = (X[:, lv] - X[:, lv].mean(0)) / X[:, lv].std(0, ddof=1)
    score = Z.mean(1)
    assert abs(P["token_score_diff"] - (score[L].mean() - score[S].mean())) < 1e-9
    diffs = [score[L & (seq == g)].mean() - score[S & (seq == g)].mean() for g in np.unique(seq)]
    assert abs(P["p_seq"] - ss.ttest_1samp(diffs, 0.0, alternative="less").pvalue) < 1e-9
    # the permutation null: lengths of types permuted among all types, the same median cut
    _, tix = np.unique(cov["token_id"], return_inverse=True)
    for p in (0, 9):
        yp = d.length_t[d.perms_free[p]][tix]
        ref = score[yp > med].mean() - score[yp < med].mean()
        assert abs(P["null_diff"][p] - ref) < 1e-9
    assert P["p"] == max(P["p_type"], P["p_seq"])


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


def test_design_errors_name_the_covariate():
    from analysis.stats.design import DesignError

    X, cov = small_sample()
    with pytest.raises(DesignError, match="length is constant"):
        Design.build(cov["token_id"], np.full(len(X), 3.0), cov["log_freq"], cov["seq"], cov["next_token_id"])
    with pytest.raises(DesignError, match="log frequency is constant"):
        Design.build(cov["token_id"], cov["length"], np.zeros(len(X)), cov["seq"], cov["next_token_id"])
