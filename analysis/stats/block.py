"""All per-neuron statistics of one block and its block-level null summaries, in chunks of neurons.

    >>> import numpy as np
    >>> from analysis.stats.design import Design
    >>> from analysis.stats.block import compute_block
    >>> d = Design.build(token_id, length, log_freq, seq, next_token_id, n_permutations=200, seed=(0,))
    >>> out = compute_block(X, d, seed=(0, 5))      # X: [n_tokens, n_neurons] one block, non-special rows
    >>> out.neurons["r_within_p"], out.nulls["r_within.neg"].shape     # per neuron; [P] per summary

Families (one module each): sums (per-type / per-sequence sums), linear (correlations, partial
correlations, cluster-robust tests), nulls (type-level permutations), ranks and shape (core: Spearman,
Mann-Whitney, dip), split (median split). This module only wires them per chunk of neurons and collects:

- per neuron (`neurons`): the study's pooled Pearson r with its naive and two-way clustered p; the four
  tested statistics (within-sequence r with length, partial r with length given log frequency, partial r
  with log frequency given length, partial r with the next token's length given the current token's type
  and the sequence), each with p_type (type-level permutation), p_seq (sequence-clustered t) and p = max of
  the two (what q-values and verdicts use); the partial r with a spline in log frequency; the commonality split;
  the median split; Spearman; Sarle's bimodality coefficient; the dip test on jittered values.
- per block (`summaries`, `nulls`): for each tested statistic the share of negative values, the median, the
  mean square and the share individually significant, observed and under each of the P permutations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import core
from .blas import keep_freed_memory, one_blas_thread
from .design import EQUAL, LONG, SHORT, Design
from .linear import (NEXT, TESTED, TESTED_NAMES, Partial, cluster_terms, cluster_test, commonality, partial_r,
                     twoway_test, type_cluster_var)
from .nexttoken import next_partial, next_terms
from .nulls import null_terms, permutation_p, permuted_products, permuted_r, split_shift_null, widen_factor
from .sums import chunk_sums, cross_products, reduce_terms

SPLINE = "partial_r_length_spline"
SUMMARY_KEYS = ("neg", "med", "ms", "sig")


@dataclass
class BlockResult:
    neurons: dict                   # column -> array [n_neurons]
    summaries: dict                 # "<stat>.<neg|med|ms|sig|null_ms>" -> observed block-level value
    nulls: dict                     # "<stat>.<neg|med|ms|sig>" -> [P] the same under each permutation
    pooled: dict | None = None      # median split pooled over neurons (the split block only)
    extra: dict = field(default_factory=dict)


def _spline_spec(d: Design) -> Partial:
    names = [c for c in d.spaces["all"].names if c.startswith("spline")]
    return Partial(SPLINE, "all", "length", tuple(names))


def _prepared(d: Design):
    """Neuron-independent terms of every statistic, cached on the design (shared by all blocks)."""
    if "prepared" not in d.extra:
        prep = {}
        for spec in TESTED:
            q = len(d.spaces[spec.space].names)
            _, parts = partial_r(np.zeros((1, q)), np.ones(1), d.spaces[spec.space], spec)
            prep[spec.name] = {"spec": spec, "cluster": cluster_terms(d, spec, parts),
                               "null": null_terms(d, spec)}
        prep[NEXT] = next_terms(d)
        prep["_reduce"] = reduce_terms(d, {spec.name: prep[spec.name]["cluster"] for spec in TESTED}, prep[NEXT].WT)
        nts = [prep[spec.name]["null"] for spec in TESTED]
        prep["_VT"] = np.vstack([t.VT for t in nts]) if all(t is not None for t in nts) else None
        yc = d.length_centred_t()
        y_tok = d.length_t[d.type_of]
        ry = core.center(core.rank_rows(y_tok[None, :])[0])
        prep["_pooled"] = {"yc_t": yc, "Syy": float(d.counts @ yc**2),
                           "fc_t": d.logfreq_t - (d.counts @ d.logfreq_t) / d.n,
                           "ry2": np.rint(2 * ry).astype(np.int32), "Sry": float(ry @ ry)}
        prep["_pooled"]["Sff"] = float(d.counts @ prep["_pooled"]["fc_t"] ** 2)
        prep["_pooled"]["r_yf"] = float((d.counts * yc) @ prep["_pooled"]["fc_t"]
                                        / np.sqrt(prep["_pooled"]["Syy"] * prep["_pooled"]["Sff"]))
        sp = d.spaces["all"]
        G = sp.gram
        iy, ifr = sp.col("length"), sp.col("logfreq")
        prep["_pooled"]["r_yf_within"] = float(G[iy, ifr] / np.sqrt(G[iy, iy] * G[ifr, ifr]))
        d.extra["prepared"] = prep
    return d.extra["prepared"]


def reduce_terms_of(d: Design):
    """The design-level weights of the chunk and shard sums (sums.ReduceTerms), cached on the design."""
    return _prepared(d)["_reduce"]


def compute_block(X: np.ndarray, d: Design, *, seed=(0, 0), chunk: int = 256, alpha: float = 0.05,
                  dip_neurons: int | None = None, rank_neurons: int | None = None, widen_neurons: int | None = 512,
                  ranks: bool = True, dip: bool = True, pooled: bool = False, workers: int = 1, shards: int = 0,
                  shard_batch: int = 8, engine=None) -> BlockResult:
    """Statistics of one block. X: [n_tokens, n_neurons] in the row order of the design's (non-special)
    tokens, float16/32/64; finite (the stage checks). seed: picks the dip and rank subsets (`dip_neurons`,
    `rank_neurons` neurons per block; None: all) and the jitter. ranks / dip: the rank-based and shape
    statistics (descriptive; no verdict but C7 uses them). widen_neurons: the seeded subset on which the
    type-clustered variance is computed for the block's widening factor (nulls.widen_factor). shards: 0, the
    sums chunk by chunk in memory; N, every sum of the linear statistics from N shards of whole windows run
    on `engine` (engine.Engine; in-process by default), `shard_batch` shards per task, and merged (shards.py;
    equal to 1e-9)."""
    keep_freed_memory()
    with one_blas_thread():
        return _compute_block(X, d, seed=seed, chunk=chunk, alpha=alpha, dip_neurons=dip_neurons,
                              rank_neurons=rank_neurons, widen_neurons=widen_neurons, ranks=ranks, dip=dip,
                              pooled=pooled, workers=max(1, int(workers)), shards=int(shards),
                              shard_batch=int(shard_batch), engine=engine)


class _Columns:
    """The columns of one chunk of k neurons (positions 0..k-1), merged into the block's afterwards."""

    def __init__(self, k: int):
        self.k, self.cols = k, {}

    def put(self, name, j0, vals):
        if name not in self.cols:
            self.cols[name] = np.full(self.k, np.nan)
        self.cols[name][j0: j0 + len(vals)] = vals

    def put_at(self, name, idx, vals):
        if name not in self.cols:
            self.cols[name] = np.full(self.k, np.nan)
        self.cols[name][idx] = vals


@dataclass
class _Block:
    """What every chunk of one block shares: the design's prepared terms and the seeded neuron subsets."""
    d: Design
    prep: dict
    seed: tuple
    dip_sel: np.ndarray
    rank_sel: np.ndarray
    widen_sel: np.ndarray
    f16: bool
    pooled: bool
    gemm_threads: int     # BLAS threads of the permutation products: 1, whatever `workers` (threaded
    #                       sgemm sums in another order: the bytes would depend on the thread count)
    sums: object = None   # sums.ChunkSums of every neuron, merged from shards (None: each chunk sums its own)
    dip_pool: object = None  # offload.side_process() when chunks run on threads: the dip holds the GIL


@dataclass
class _ChunkOut:
    columns: _Columns
    perm_r: dict
    ratios: dict
    const: np.ndarray
    ts_sums: tuple | None      # (per type [T], per short / long and sequence [2, G]) token-score sums
    n_scored: int
    pending: object = None     # put_at -> None: puts the columns computed elsewhere (the dip), or None


def _compute_block(X, d: Design, *, seed, chunk, alpha, dip_neurons, rank_neurons, widen_neurons, ranks, dip,
                   pooled, workers, shards, shard_batch, engine) -> BlockResult:
    n, m = X.shape
    if n != d.n:
        raise ValueError(f"activations have {n} rows, the design {d.n} tokens")
    seed = tuple(int(x) for x in np.atleast_1d(seed))
    dip_sel, rank_sel, widen_sel = neuron_subsets(m, seed, dip_neurons=dip_neurons, rank_neurons=rank_neurons,
                                                  widen_neurons=widen_neurons, ranks=ranks, dip=dip)
    blk = _Block(d, _prepared(d), seed, dip_sel=dip_sel, rank_sel=rank_sel, widen_sel=widen_sel,
                 f16=X.dtype == np.float16, pooled=pooled, gemm_threads=1)
    if shards:
        from .shards import sharded_sums, window_shards

        blk.sums = sharded_sums(X, d, blk.prep["_reduce"], window_shards(d, shards), engine=engine,
                                widen=np.flatnonzero(blk.widen_sel), batch=shard_batch)
    if workers > 1 and dip_sel.any():
        from .offload import side_process

        blk.dip_pool = side_process()
    starts = list(range(0, m, chunk))
    run = lambda j0: _chunk(X, blk, j0, min(j0 + chunk, m))  # noqa: E731
    if workers > 1 and len(starts) > 1:
        # chunks are independent (their own neurons, their own jitter stream): the same bytes in any order
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            outs = list(pool.map(run, starts))
    else:
        outs = [run(j0) for j0 in starts]
    for o in outs:
        if o.pending is not None:
            o.pending(o.columns.put_at)
    cols: dict = {}
    for j0, o in zip(starts, outs):
        for name, v in o.columns.cols.items():
            if name not in cols:
                cols[name] = np.full(m, np.nan)
            cols[name][j0: j0 + len(v)] = v
    perm_r = {name: [o.perm_r[name] for o in outs if o.perm_r.get(name) is not None] for name in TESTED_NAMES}
    ratios = {name: [o.ratios[name] for o in outs if o.ratios.get(name) is not None] for name in TESTED_NAMES}
    const_all = np.concatenate([o.const for o in outs])
    cols["nan_reason"] = np.where(const_all, "constant activation", "")
    cols["dip_tested"] = blk.dip_sel & ~const_all
    cols["rank_tested"] = blk.rank_sel & ~const_all
    for c in ("pearson_p_twoway", "dip", "dip_p", "dip_short", "dip_short_p", "spearman_r", "spearman_p_naive",
              "split_p_naive", "split_cliffs_delta", "sd_ulps", "split_median_short", "split_median_equal",
              "split_median_long", "split_mean_short", "split_mean_equal", "split_mean_long", "split_cohens_d"):
        cols.setdefault(c, np.full(m, np.nan))
    summaries, nulls, extra = _finish_tested(cols, perm_r, ratios, alpha, workers)
    res = BlockResult(cols, summaries, nulls, extra=extra)
    if pooled:
        n_scored = max(sum(o.n_scored for o in outs), 1)
        ts_type = sum(o.ts_sums[0] for o in outs) / n_scored
        ts_seq = sum(o.ts_sums[1] for o in outs) / n_scored
        res.pooled = _pooled_split(X, d, ts_type, ts_seq)
    return res


def _centred_chunk(X, d: Design, j0: int, j1: int, f16: bool):
    """(At [n, k] float64 centred in working order, mean [k], const [k], raw [n, k] the stored values in
    working order, in their storage dtype) of neurons j0..j1."""
    raw = np.asarray(X[d.order, j0:j1])
    At = raw.astype(np.float64)
    const = None if f16 else At.min(axis=0) == At.max(axis=0)
    mean = At.mean(axis=0)
    At -= mean
    if f16:  # a float64 sum of float16 values is exact, so a constant column centres to exact zeros
        const = ~(np.einsum("ij,ij->j", At, At) > 0)
    At[:, const] = 0.0
    return At, mean, const, raw


def _chunk(X, blk: _Block, j0: int, j1: int) -> _ChunkOut:
    """Every per-neuron statistic of neurons j0..j1 (positions in the chunk's own columns)."""
    d = blk.d
    At, mean, const, raw = _centred_chunk(X, d, j0, j1, blk.f16)
    dips = _start_dips(raw, const, blk, j0, j1)        # first: in the side process it overlaps with the rest
    if blk.sums is None:
        s = chunk_sums(At, mean, d, blk.prep["_reduce"], widen=np.flatnonzero(blk.widen_sel[j0:j1]))
    else:
        s = blk.sums.columns(j0, j1)
    out = sum_statistics(s, d, const, twoway_cols=np.flatnonzero(blk.rank_sel[j0:j1] & ~const),
                         f16=blk.f16, pooled=blk.pooled, gemm_threads=blk.gemm_threads)
    del At
    _rank_subset(out.columns.put_at, raw, const, blk, j0, j1)
    out.pending = dips
    return out


def sum_statistics(s, d: Design, const: np.ndarray, *, twoway_cols: np.ndarray, f16: bool, pooled: bool = False,
                   gemm_threads: int = 1) -> _ChunkOut:
    """Every per-neuron statistic that is a function of the chunk's sums (sums.ChunkSums, in memory or merged
    from shards): all but the ranks and the dip test. const: [k] constant neurons (NaN statistics);
    twoway_cols: neurons of the two-way clustered cross-check (the rank subset); the type-clustered
    variance uses the neurons s.widen."""
    prep = _prepared(d)
    pp = prep["_pooled"]
    n, P = d.n, d.n_perm
    out = _Columns(len(s.Saa))
    put, put_at = out.put, out.put_at
    perm_r: dict = {}
    ratios: dict = {}
    C, saa, Ag_over = xp = cross_products(s, d)
    # --- the study's pooled statistics
    r = core._r_from_centered_pairs(pp["yc_t"] @ s.S_T, s.Saa, pp["Syy"])
    put("pearson_r", 0, r)
    put("pearson_p_naive", 0, core.t_pvalue(r, n - 2))
    if len(twoway_cols):
        put_at("pearson_p_twoway", twoway_cols, twoway_test(s, d, twoway_cols))
    put("r_freq", 0, core._r_from_centered_pairs(pp["fc_t"] @ s.S_T, s.Saa, pp["Sff"]))
    # --- the four tested statistics: value, p_naive, p_seq; permuted values and variances for p
    vals = {}
    products = permuted_products(s, prep["_VT"], gemm_threads) if prep["_VT"] is not None else None
    for i, spec in enumerate(TESTED):
        rv, parts = partial_r(C, saa, d.spaces[spec.space], spec)
        rv[const] = np.nan
        vals[spec.name] = rv
        t = prep[spec.name]
        p_seq, var_seq = cluster_test(s, parts, t["cluster"])
        var_type = type_cluster_var(s, Ag_over, parts, t["cluster"], s.widen)
        rp = permuted_r(products[:, i * P:(i + 1) * P], Ag_over, parts, t["null"]) if products is not None else None
        _put_tested(put, 0, spec.name, rv, core.t_pvalue(rv, parts_df(d, spec)), p_seq, (var_seq, var_type),
                    rp, perm_r, ratios)
    rn, rn_perm, p_seq, var_seq, p_naive = next_partial(s, d, prep[NEXT], gemm_threads)
    rn[const] = np.nan
    _put_tested(put, 0, NEXT, rn, p_naive, p_seq, (var_seq,), rn_perm, perm_r, ratios)
    rs, _ = partial_r(C, saa, d.spaces["all"], _spline_spec(d))
    rs[const] = np.nan
    put(SPLINE, 0, rs)
    for key, v in commonality(vals["r_within"], _within_r(xp, d, "logfreq"), pp["r_yf_within"]).items():
        put(key, 0, np.where(const, np.nan, v))
    # --- moments: bimodality coefficient; storage resolution; the median split
    put("bimodality_coefficient", 0, core.bimodality_from_moments(n, s.Saa, s.S3, s.S4))
    sd = np.sqrt(s.Saa / max(n - 1, 1))
    if f16:
        ulp = np.spacing(np.abs(s.mean).astype(np.float16)).astype(np.float64)
        put("sd_ulps", 0, np.where(const, 0.0, sd / ulp))
    _split_columns(put, 0, s, s.mean, d.group_sizes)
    ts_sums, n_scored = None, 0
    if pooled:   # sums of the token score (sum over neurons of a / sd) per type and per (short|long, sequence)
        ok = ~const
        inv_sd = 1.0 / sd[ok]
        ts_sums = (s.S_T[:, ok] @ inv_sd, s.A_sgT[:, :, ok] @ inv_sd)
        n_scored = int(ok.sum())
    for name in TESTED_NAMES:
        perm_r.setdefault(name, None)
        ratios.setdefault(name, None)
    return _ChunkOut(out, perm_r, ratios, const, ts_sums, n_scored)


def _rank_subset(put_at, raw, const, blk: _Block, j0: int, j1: int) -> None:
    """Ranks (Spearman, Mann-Whitney, group medians) of the chunk's rank subset; raw: the chunk's stored
    values [n, k] in working order (ranks need no centring)."""
    rk = np.flatnonzero(blk.rank_sel[j0:j1])
    if len(rk):
        A = raw[:, rk].T.copy()                      # [k', n] stored values
        V = core.f16_keys(A) if blk.f16 else A.astype(np.float64)
        order, srt = core.sort_keys(V)
        _rank_columns(lambda name, _j0, v: put_at(name, rk, v), 0, V, order, srt, const[rk], blk.prep["_pooled"],
                      blk.d.group_sizes)


def _start_dips(raw, const, blk: _Block, j0: int, j1: int):
    """The dip test of the chunk's dip subset on jittered stored values (core.dip_and_short), started now:
    in the side process when the block has one (blk.dip_pool), else computed here. Returns a function
    put_at -> None that puts the four dip columns (waiting for the side process if needed), or None when
    no neuron of the chunk is in the subset."""
    dp = np.flatnonzero(blk.dip_sel[j0:j1] & ~const)
    if not len(dp):
        return None
    jitter_rng = np.random.default_rng(list(blk.seed) + [1, j0])   # per chunk: any order, same values
    J = jitter(raw[:, dp].T.copy(), blk.f16, jitter_rng)
    n_s = blk.d.group_sizes[0]
    if blk.dip_pool is None:
        res = core.dip_and_short(J, n_s)
        result = lambda: res  # noqa: E731
    else:
        fut = blk.dip_pool.submit(J, n_s)

        def result():
            from .offload import SideProcessError

            try:
                return fut.result()
            except SideProcessError:       # the side process is gone: the same values, computed here
                return core.dip_and_short(J, n_s)

    def put(put_at):
        for name, v in zip(("dip", "dip_p", "dip_short", "dip_short_p"), result()):
            put_at(name, dp, v)

    return put


def _put_tested(put, j0, name, r, p_naive, p_seq, variances, r_perm, perm_r, ratios) -> None:
    """Columns of one tested statistic for one chunk: value, naive p, p_seq; keeps the permuted values, and
    the permutation variance with the analytic cluster variances of each neuron (see _finish_tested)."""
    ok = np.isfinite(r)
    put(name, j0, r)
    put(f"{name}_p_naive", j0, np.where(ok, p_naive, np.nan))
    put(f"{name}_p_seq", j0, np.where(ok, p_seq, np.nan))
    if r_perm is None:
        return
    r_perm[~ok] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.mean(r_perm**2, axis=1)
    ratios[name] = np.column_stack([v, *variances])
    perm_r[name] = r_perm.astype(np.float32)


def _finish_tested(cols: dict, perm_r: dict, ratios: dict, alpha: float, workers: int = 1):
    """p_type, the widened null, p and the block-level summaries of every tested statistic, once all chunks
    are done (the statistics in parallel on `workers` threads; each writes only its own keys).

    The widening factor f is one per block and statistic (nulls.widen_factor): the permutation null scaled
    by the block's ratio of each analytic clustered variance to the permutation variance, where that
    exceeds 1. Scaling by f is applied to the comparisons, not to the arrays: |r_perm| f >= |r| is
    |r_perm| >= |r| / f; a median scales by f and a mean square by f^2; a share beyond each neuron's own
    (1 - alpha) quantile does not change. Summaries: share of negative values, median, mean square, and
    "sig", the share of neurons beyond their own null's (1 - alpha) quantile of |r|."""
    parts = {}

    def one(name):
        parts[name] = _finish_statistic(name, cols[name], perm_r[name], ratios[name], alpha)

    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, TESTED_NAMES))
    else:
        for name in TESTED_NAMES:
            one(name)
    summaries, nulls, extra = {}, {}, {}
    for name in TESTED_NAMES:                      # merged in a fixed order: the same dicts either way
        c, sm, nl, ex = parts[name]
        cols.update(c)
        summaries.update(sm)
        nulls.update(nl)
        extra.update(ex)
    return summaries, nulls, extra


def _finish_statistic(name: str, r: np.ndarray, perm_chunks: list, ratio_chunks: list, alpha: float):
    """(columns, summaries, nulls, extra) of one tested statistic (see _finish_tested)."""
    cols, summaries, nulls, extra = {}, {}, {}, {}
    ok = np.isfinite(r)
    rv = r[ok]
    summaries[f"{name}.neg"] = float(np.mean(rv < 0)) if rv.size else np.nan
    summaries[f"{name}.med"] = float(np.median(rv)) if rv.size else np.nan
    summaries[f"{name}.ms"] = float(np.mean(rv**2)) if rv.size else np.nan
    if not perm_chunks:
        return cols, summaries, nulls, extra
    rp = np.concatenate(perm_chunks)                                    # [m, P] float32
    var = np.concatenate(ratio_chunks)
    f = widen_factor(var[:, 1:], var[:, 0])
    absr = np.abs(rp)
    cols[f"{name}_p_type"] = permutation_p(r, rp, abs_perm=absr)
    with np.errstate(invalid="ignore"):
        cols[f"{name}_p"] = permutation_p(r / f, rp, abs_perm=absr)
    cols[f"{name}_null_scale"] = np.where(ok, f, np.nan)
    if not rv.size:
        return cols, summaries, nulls, extra
    rp, absr = rp[ok], absr[ok]
    sig_obs, sig_perm = _significant(np.abs(rv) / f, absr, alpha)
    sq = np.square(rp, dtype=np.float64)
    v = sq.mean(axis=1)
    summaries[f"{name}.sig"] = float(np.mean(sig_obs))
    summaries[f"{name}.null_ms"] = float(f * f * v.mean())
    extra[f"{name}.null_sd"] = float(f * np.sqrt(v.mean()))
    nulls[f"{name}.neg"] = np.mean(rp < 0, axis=0)
    nulls[f"{name}.ms"] = f * f * sq.mean(axis=0)
    nulls[f"{name}.sig"] = np.mean(sig_perm, axis=0)
    nulls[f"{name}.med"] = f * _column_medians(rp)
    return cols, summaries, nulls, extra


def _significant(abs_obs: np.ndarray, abs_perm: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Which of each neuron's P + 1 values (observed [m], permuted [m, P]) are among its top
    floor(alpha (P + 1)): the same rule for the observed value and for every permutation, so that under the
    null the observed share of significant neurons is exchangeable with each permuted share. (A threshold
    from the P permuted values alone, applied to each of them, counts a permutation against a set that
    contains itself: the observed share then averages 26/501 against 25/500 and passes its null for a
    large enough model; measured 50 % of pure-noise runs at 36 864 neurons.) Ties at the threshold count
    as significant, for every value alike."""
    m, P = abs_perm.shape
    k = max(1, int(np.floor(alpha * (P + 1))))
    if k > P:
        thr = np.full(m, -np.inf)
    else:
        # the k-th largest of the P + 1 from the permuted values alone (one partition, in their own dtype):
        # with p_k >= ... the permuted sorted down, inserting the observed value o gives max(p_k, min(o, p_k-1))
        neg = np.partition(-abs_perm, k - 1, axis=1)                 # NaN last, as they were never counted
        p_k = -neg[:, k - 1].astype(np.float64)
        p_k1 = -neg[:, :k - 1].max(axis=1).astype(np.float64) if k > 1 else np.full(m, np.inf)
        thr = np.fmax(p_k, np.fmin(abs_obs, p_k1))
    return abs_obs >= thr, abs_perm >= thr[:, None]


def _column_medians(a: np.ndarray) -> np.ndarray:
    """np.median(a, axis=0) for a [m, P] array without NaN, through a contiguous [P, m] copy and one
    partition."""
    at = np.ascontiguousarray(a.T)
    m = at.shape[1]
    lo, hi = (m - 1) // 2, m // 2
    part = np.partition(at, hi, axis=1)
    below = part[:, hi] if lo == hi else part[:, :hi].max(axis=1)    # the lower middle: the largest below hi
    return 0.5 * (below.astype(np.float64) + part[:, hi].astype(np.float64))


def parts_df(d: Design, spec: Partial) -> int:
    """Residual degrees of freedom of the naive t of a within-sequence (partial) correlation."""
    n = len(d.spaces[spec.space].rows)
    return n - d.n_seq - len(spec.controls) - 1


def _within_r(xp, d: Design, name: str) -> np.ndarray:
    C, saa, _ = xp
    sp = d.spaces["all"]
    j = sp.col(name)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(C[:, j] / np.sqrt(saa * sp.gram[j, j]), -1, 1)


def neuron_subsets(m: int, seed, *, dip_neurons: int | None, rank_neurons: int | None,
                   widen_neurons: int | None, ranks: bool = True, dip: bool = True):
    """(dip, rank, widen) boolean masks over a block's m neurons, drawn from default_rng(seed) in that
    order: what compute_block uses, and what a caller that sums a block elsewhere (stream.StreamSums)
    needs to keep the same widening subset."""
    rng = np.random.default_rng([int(x) for x in np.atleast_1d(seed)])
    dip_sel = _subset(m, dip_neurons, rng) if dip else np.zeros(m, bool)
    rank_sel = _subset(m, rank_neurons, rng) if ranks else np.zeros(m, bool)
    return dip_sel, rank_sel, _subset(m, widen_neurons, rng)


def _subset(m: int, size: int | None, rng: np.random.Generator) -> np.ndarray:
    """A seeded subset of `size` of m neurons (all when size is None or >= m)."""
    sel = np.zeros(m, bool)
    if size is None or size >= m:
        sel[:] = True
    else:
        sel[rng.choice(m, int(size), replace=False)] = True
    return sel


def _split_columns(put, j0, s, mean, sizes) -> None:
    """Group means, and Cohen's d of long vs short, from the group sums of the chunk."""
    n_s, n_e, n_l = sizes
    S1, Q = s.group_sums, s.group_sq
    for g, name, ng in ((SHORT, "short", n_s), (EQUAL, "equal", n_e), (LONG, "long", n_l)):
        if ng:
            put(f"split_mean_{name}", j0, S1[g] / ng + mean)
    if n_s > 1 and n_l > 1:
        var_s = (Q[SHORT] - S1[SHORT] ** 2 / n_s) / (n_s - 1)
        var_l = (Q[LONG] - S1[LONG] ** 2 / n_l) / (n_l - 1)
        put("split_cohens_d", j0, core.cohens_d(S1[LONG] / n_l, var_l, n_l, S1[SHORT] / n_s, var_s, n_s))


def _rank_columns(put, j0, V, order, srt, const, pp, sizes) -> None:
    n_s, n_e, n_l = sizes
    is_s = order < n_s
    is_l = order >= n_s + n_e
    rs = core.rank_statistics(srt, pp["ry2"][order], is_s, is_l)
    Srr = rs["Srr"]
    Srr[const] = 0.0
    rho = core._r_from_centered_pairs(rs["num"], Srr, pp["Sry"])
    put("spearman_r", j0, rho)
    put("spearman_p_naive", j0, core.t_pvalue(rho, V.shape[1] - 2))
    put_medians(put, j0, V, sizes)
    if n_s and n_l:
        _, p_mw, delta = core.mann_whitney_from_ranks(rs["rank_sum_l"], n_l, n_s, rs["tie_sl"])
        delta[const] = np.nan
        put("split_p_naive", j0, np.where(const, np.nan, p_mw))
        put("split_cliffs_delta", j0, delta)


def put_medians(put, j0: int, V: np.ndarray, sizes) -> None:
    """Median of each median-split group per neuron. V: [k, n] sort keys (uint16 of float16, or values) in
    the working token order, where each group's tokens are a contiguous slice; a (radix, for keys) sort
    of the slice gives the two middle order statistics, whose mean is the median (as numpy.median)."""
    a = 0
    for name, ng in zip(("short", "equal", "long"), sizes):
        if ng:
            sg = np.sort(V[:, a: a + ng], axis=1, kind="stable")
            mid = core.sorted_values(sg[:, [(ng - 1) // 2, ng // 2]])
            put(f"split_median_{name}", j0, 0.5 * (mid[:, 0] + mid[:, 1]))
        a += ng


def jitter(values: np.ndarray, f16: bool, rng: np.random.Generator) -> np.ndarray:
    """Values spread uniformly within +-1/2 of their storage step (float16 or float32 ulp): ties that storage
    created are broken the way an unrounded value would be, so a shape test sees no spurious spikes.
    values: float64, or the stored float16 / float32 values themselves (the step then needs no rounding)."""
    dt = np.float16 if f16 else np.float32
    if values.dtype == np.float16:
        step = _f16_spacing()[values.view(np.uint16)]
    else:
        step = np.spacing(np.abs(values).astype(dt)).astype(np.float64)
    return values.astype(np.float64) + (rng.random(values.shape) - 0.5) * step


_F16_SPACING: list = []


def _f16_spacing() -> np.ndarray:
    """np.spacing(|x|) as float64 for every float16 bit pattern x (a lookup table: numpy's float16
    arithmetic is emulated, a gather is not)."""
    if not _F16_SPACING:
        every = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
        with np.errstate(invalid="ignore", over="ignore"):
            _F16_SPACING.append(np.spacing(np.abs(every)).astype(np.float64))
    return _F16_SPACING[0]


@dataclass
class _Distribution:
    """The values of many (token, neuron) pairs as distinct values with counts: exact order statistics,
    moments and histograms without sorting tens of millions of values (float16 has 65536 bit patterns)."""
    values: np.ndarray       # distinct values, ascending (float64)
    counts: np.ndarray       # how often each occurs (int64)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @classmethod
    def merge(cls, parts: list["_Distribution"]) -> "_Distribution":
        v, inv = np.unique(np.concatenate([p.values for p in parts]), return_inverse=True)
        return cls(v, np.bincount(inv, weights=np.concatenate([p.counts for p in parts])).astype(np.int64))

    def mean(self) -> float:
        return float(self.counts @ self.values / self.n)

    def var(self) -> float:
        return float(self.counts @ (self.values - self.mean()) ** 2 / (self.n - 1))

    def _order(self, k: np.ndarray) -> np.ndarray:     # k-th smallest (0-based)
        return self.values[np.searchsorted(np.cumsum(self.counts), k, side="right")]

    def quantile(self, q: float) -> float:
        """As numpy.quantile's default (linear between the order statistics around (n - 1) q)."""
        h = (self.n - 1) * q
        lo = int(np.floor(h))
        a, b = self._order(np.array([lo, min(lo + 1, self.n - 1)]))
        return float(a + (h - lo) * (b - a))

    def histogram(self, edges: np.ndarray) -> list[int]:
        return np.histogram(self.values, edges, weights=self.counts)[0].astype(np.int64).tolist()


def _pooled_values(X: np.ndarray, rows: np.ndarray) -> _Distribution:
    """The distribution of X[rows] (all columns): counted by bit pattern for float16, else np.unique."""
    sub = np.asarray(X[rows])
    if sub.dtype == np.float16:
        counts = np.bincount(sub.view(np.uint16).ravel(), minlength=1 << 16)
        values = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float64)
        used = counts > 0                 # finite values only (the stage checks); -0 and +0 merge below
        v, inv = np.unique(values[used], return_inverse=True)
        return _Distribution(v, np.bincount(inv, weights=counts[used]).astype(np.int64))
    v, c = np.unique(sub.astype(np.float64), return_counts=True)
    return _Distribution(v, c.astype(np.int64))


def _pooled_split(X: np.ndarray, d: Design, ts_type: np.ndarray, ts_seq: np.ndarray, n_bins: int = 80) -> dict:
    """Median split pooled over neurons (the study's histograms) and its dependence-aware test.

    - Values pooled over all (token, neuron) pairs: means, medians, Cohen's d (long - short) and histograms
      on common edges (descriptive, as the study's figure).
    - The test uses each token's mean z-scored activation over neurons (token score): the difference of its
      mean between long and short tokens, against (a) the type-level permutation null of that difference
      (length permuted among types within frequency strata) and (b) a one-sided t-test over sequences of
      the within-sequence difference; p = the larger of the two, one-sided in the claimed direction
      (long tokens lower)."""
    from scipy import stats as sps

    out: dict = {}
    group_rows = d.group[d.row_positions()]
    dists = {name: _pooled_values(X, group_rows == g)
             for g, name in ((SHORT, "short"), (EQUAL, "equal"), (LONG, "long"))}
    for name, dist in dists.items():
        out[f"pooled_mean_{name}"] = dist.mean() if dist.n else np.nan
        out[f"pooled_median_{name}"] = dist.quantile(0.5) if dist.n else np.nan
    dS, dL = dists["short"], dists["long"]
    if dS.n > 1 and dL.n > 1:
        out["pooled_cohens_d"] = float(core.cohens_d(dL.mean(), dL.var(), dL.n, dS.mean(), dS.var(), dS.n))
        pooled = _Distribution.merge(list(dists.values()))
        edges = np.linspace(pooled.quantile(0.005), pooled.quantile(0.995), n_bins + 1)
        out["histogram"] = {"edges": edges.tolist(), **{k: v.histogram(edges) for k, v in dists.items()}}
    # token score sums per type and per (short | long, sequence)
    diff, diff_perm = split_shift_null(d, ts_type)
    out["token_score_diff"] = diff
    if diff_perm.size:
        out["token_score_diff_null_q025"] = float(np.quantile(diff_perm, 0.025))
        out["token_score_diff_null_q975"] = float(np.quantile(diff_perm, 0.975))
        out["p_type"] = float((1 + np.sum(diff_perm <= diff + 1e-15)) / (diff_perm.size + 1))
        out["null_diff"] = diff_perm.tolist()
    grp_count = np.zeros((3, d.n_seq), dtype=np.int64)
    np.add.at(grp_count, (d.group, d.seq_of), 1)
    nl, nh = grp_count[SHORT], grp_count[LONG]
    both = (nl > 0) & (nh > 0)
    diffs = ts_seq[1][both] / nh[both] - ts_seq[0][both] / nl[both]
    out["sequence_n"] = int(diffs.size)
    out["sequence_mean_diff"] = float(diffs.mean()) if diffs.size else np.nan
    out["sequence_share_long_lower"] = float((diffs < 0).mean()) if diffs.size else np.nan
    if diffs.size >= 2 and diffs.std() > 0:
        out["p_seq"] = float(sps.ttest_1samp(diffs, 0.0, alternative="less").pvalue)
    if "p_type" in out and "p_seq" in out:
        out["p"] = max(out["p_type"], out["p_seq"])
    return out
