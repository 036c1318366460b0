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

from dataclasses import dataclass, field

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
        return cls(y, f, nx, seq, med, group, d)


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
    dip_neurons is set) and the null subset and permutations. pooled: also compute the pooled median-split
    numbers (used at the configured split block). spearman/dip: switch off for benchmarks only.
    """
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
    null_idx = np.sort(rng.choice(m, min(null_neurons, m), replace=False)) if n_perm > 0 else np.array([], int)
    null_sel = np.zeros(m, bool)
    null_sel[null_idx] = True
    Yperm, Yshift = _null_designs(cov, n_perm, rng) if n_perm > 0 else (None, None)

    n_s, n_e, n_l = (int((cov.group == g).sum()) for g in (SHORT, EQUAL, LONG))
    mask = {g: cov.group == g for g in (SHORT, EQUAL, LONG)}
    nm = d["next_mask"]
    G = d["n_clusters"]
    df_cl = G - 1
    cl_corr = G / (G - 1.0) * (n - 1.0) / (n - 2.0) if G > 1 else np.nan  # statsmodels' small-sample factor

    cols: dict[str, np.ndarray] = {}
    counts = np.array([n_s, n_e, n_l], dtype=np.float64)
    n_next = int(nm.sum())
    nc_full = np.zeros(n)
    nc_full[nm] = d["nc"]
    Gm = np.column_stack([mask[SHORT], mask[EQUAL], mask[LONG], nm, nc_full]).astype(np.float64)

    def put(name, j0, vals):
        if name not in cols:
            cols[name] = np.full(m, np.nan)
        cols[name][j0 : j0 + len(vals)] = vals

    r_perm_all, r_shift_all = [], []
    token_score = np.zeros(n)
    n_scored = 0
    for j0 in range(0, m, chunk):
        j1 = min(j0 + chunk, m)
        X16 = np.ascontiguousarray(X[:, j0:j1].T)  # [k, n] in the storage dtype
        Ac = X16.astype(np.float64)
        const = Ac.min(axis=1) == Ac.max(axis=1)  # exact test: a float64 mean of equal values may not be exact
        Ac -= Ac.mean(axis=1, keepdims=True)
        Ac[const] = 0.0
        # sums over token subsets as one matrix product each (fancy-indexing rows is 10x slower):
        # columns of Gm: short, equal, long, has-next, next length centred over has-next (0 elsewhere)
        S1 = Ac @ Gm  # [k, 5]
        S2 = (Ac * Ac) @ Gm[:, :4]  # [k, 4] sums of squares
        Saa = np.einsum("ij,ij->i", Ac, Ac)
        Saa[const] = 0.0
        # --- correlations with length and log frequency, partial correlations
        r = core._r_from_centered(Ac, d["yc"], Saa)
        put("pearson_r", j0, r)
        put("pearson_p", j0, core.t_pvalue(r, n - 2))
        put("r_freq", j0, core._r_from_centered(Ac, d["fc"], Saa))
        a_y, a_f = Ac @ d["yc"], Ac @ d["fc"]
        with np.errstate(invalid="ignore", divide="ignore"):
            res_f = Saa - a_f**2 / d["Sff"]  # ||resid(a | log_freq)||^2
            res_y = Saa - a_y**2 / d["Syy"]  # ||resid(a | length)||^2
            pr_len = (Ac @ d["ey"]) / np.sqrt(res_f * d["See_y"])
            pr_freq = (Ac @ d["ef"]) / np.sqrt(res_y * d["See_f"])
        tiny = 1e-12 * Saa
        pr_len[const | (res_f <= tiny)] = np.nan  # nothing left after the control: undefined, not 0
        pr_freq[const | (res_y <= tiny)] = np.nan
        pr_len, pr_freq = np.clip(pr_len, -1, 1), np.clip(pr_freq, -1, 1)
        put("partial_r_length", j0, pr_len)
        put("partial_p_length", j0, core.t_pvalue(pr_len, n - 3))
        put("partial_r_freq", j0, pr_freq)
        put("partial_p_freq", j0, core.t_pvalue(pr_freq, n - 3))
        # --- cluster-robust (sequences) test of the length slope: sandwich variance, G-1 df
        b = a_y / d["Syy"]
        U = Ac @ d["Wy"] - b[:, None] * d["Wyy"][None, :]  # per-cluster score sums, [k, G]
        with np.errstate(invalid="ignore", divide="ignore"):
            se = np.sqrt(cl_corr * np.einsum("ij,ij->i", U, U)) / d["Syy"]
            tcl = b / se
        p_cl = 2.0 * sps.t.sf(np.abs(tcl), df_cl) if G > 1 else np.full(len(b), np.nan)
        p_cl[const] = np.nan
        put("pearson_p_cluster", j0, p_cl)
        # --- next token's length (rows that have a next token); nc sums to 0 over them
        Snn = S2[:, 3] - S1[:, 3] ** 2 / n_next
        with np.errstate(invalid="ignore", divide="ignore"):
            rn = np.clip(S1[:, 4] / np.sqrt(Snn * d["Snc"]), -1, 1)
        rn[const | ~(Snn > 1e-12 * Saa)] = np.nan
        put("r_next_length", j0, rn)
        put("r_next_length_p", j0, core.t_pvalue(rn, n_next - 2))
        # --- moments: bimodality coefficient
        put("bimodality_coefficient", j0, core.bimodality_coefficient(Ac, Saa))
        # --- group means / variances (median split); Ac is centred, add the mean back for the means
        means = S1[:, :3] / np.maximum(counts, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            vars_ = (S2[:, :3] - S1[:, :3] ** 2 / counts) / (counts - 1)
        mean_all = X16.mean(axis=1, dtype=np.float64)
        for gi, name in ((SHORT, "short"), (EQUAL, "equal"), (LONG, "long")):
            if counts[gi]:
                put(f"split_mean_{name}", j0, means[:, gi] + mean_all)
        put("split_cohens_d", j0, core.cohens_d(means[:, LONG], vars_[:, LONG], n_l, means[:, SHORT], vars_[:, SHORT], n_s)
            if n_s > 1 and n_l > 1 else np.full(j1 - j0, np.nan))
        # --- one sort per neuron: ranks (Spearman), group medians, Mann-Whitney / Cliff, dip
        if spearman or dip:
            if X16.dtype == np.float16:
                order, s = core.sort_rows(None, X16)
            else:
                order, s = core.sort_rows(X16.astype(np.float64))
            if spearman:
                rk = core.average_ranks_sorted(s)
                rk -= (n + 1) / 2.0
                Srr = np.einsum("ij,ij->i", rk, rk)  # permutation invariant: no need to unsort
                Srr[const] = 0.0
                rho = core._r_from_centered_pairs(np.einsum("ij,ij->i", rk, d["ryc"][order]), Srr, d["Sry"])
                put("spearman_r", j0, rho)
                put("spearman_p", j0, core.t_pvalue(rho, n - 2))
                del rk
                gs = cov.group[order]  # group of each sorted element
                for gi, name in ((SHORT, "short"), (EQUAL, "equal"), (LONG, "long")):
                    ng = int(counts[gi])
                    if ng:
                        sg = s[gs == gi].reshape(-1, ng)  # each row keeps its sorted order
                        lo, hi = core.sorted_values(sg[:, (ng - 1) // 2]), core.sorted_values(sg[:, ng // 2])
                        put(f"split_median_{name}", j0, 0.5 * (lo + hi))
                if n_s and n_l:
                    keep = gs != EQUAL
                    s_ls = s[keep].reshape(-1, n_s + n_l)
                    rk = core.average_ranks_sorted(s_ls)
                    is_long = (gs[keep] == LONG).reshape(-1, n_s + n_l)
                    _, p_mw, delta = core.mann_whitney_from_ranks(
                        np.einsum("ij,ij->i", rk, is_long.astype(np.float64)), n_l, n_s, core.tie_term_from_ranks(rk)
                    )
                    delta[const] = np.nan
                    put("split_p", j0, p_mw)
                    put("split_cliffs_delta", j0, delta)
                    del s_ls, rk, is_long
                del gs
            if dip and dip_sel[j0:j1].any():
                dv, dp = core.dip_rows(s, np.flatnonzero(dip_sel[j0:j1]))
                put("dip", j0, dv)
                put("dip_p", j0, dp)
            del order, s
        # --- nulls on the seeded subset
        sub = np.flatnonzero(null_sel[j0:j1])
        if len(sub):
            norm = np.sqrt(Saa[sub] * d["Syy"])[:, None]
            with np.errstate(invalid="ignore", divide="ignore"):
                rp = (Ac[sub] @ Yperm) / norm
                rs = (Ac[sub] @ Yshift) / norm
            r_perm_all.append(rp)
            r_shift_all.append(rs)
            ro = np.abs(r[sub])[:, None]
            put("perm_p", j0 + 0, _scatter(j1 - j0, sub, (1 + (np.abs(rp) >= ro).sum(1)) / (n_perm + 1)))
            put("shift_p", j0 + 0, _scatter(j1 - j0, sub, (1 + (np.abs(rs) >= ro).sum(1)) / (n_perm + 1)))
        if pooled:
            sd = np.sqrt(Saa / (n - 1))
            ok = ~const
            token_score += (Ac[ok] / sd[ok, None]).sum(axis=0)
            n_scored += int(ok.sum())
        del Ac, X16

    # reasons for NaN; constant neurons get NaN in every statistic above (never 0)
    const_all = np.asarray(X.min(axis=0) == X.max(axis=0))
    reason = np.where(const_all, "constant activation", "")
    if n_perm > 0:
        for c in ("perm_p", "shift_p"):
            cols.setdefault(c, np.full(m, np.nan))
            cols[c][const_all] = np.nan
    for c in ("split_median_short", "split_median_equal", "split_median_long", "dip", "dip_p"):
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
        rs = np.concatenate(r_shift_all)
        rp, rs = rp[np.isfinite(rp).all(1)], rs[np.isfinite(rs).all(1)]
        null.update(
            null_sd_permutation=float(rp.std()),
            null_q95_abs_permutation=float(np.quantile(np.abs(rp), 0.95)),
            null_sd_shift=float(rs.std()),
            null_q95_abs_shift=float(np.quantile(np.abs(rs), 0.95)),
            null_n_neurons=int(len(rp)),
            null_n_permutations=int(n_perm),
        )
    out = BlockResult(cols, null)
    if pooled:
        out.pooled = _pooled_split(X, cov, token_score / max(n_scored, 1))
    return out


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
