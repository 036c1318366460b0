"""Sums over shards of whole windows, merged, against the in-memory sums of the whole sample."""

import numpy as np
import pytest

from analysis.stats import shards
from analysis.stats.block import reduce_terms_of
from analysis.stats.pipeline import design_from_tokens
from analysis.stats.simulate import zipf_stream
from analysis.stats.sums import chunk_sums

FIELDS = ("mean", "Saa", "S3", "S4", "S_T", "A_gT", "A_sgT", "S_nextT", "nnT", "group_sums", "group_sq", "U_seq",
          "U_type", "U_next", "yU_seq", "Q_cell", "L_cell")
WIDEN = np.array([0, 3, 7, 11, 20])


def _sample(n_permutations):
    tok = zipf_stream(6, n_seq=16, seq_len=128)
    d, _ = design_from_tokens(tok, {"nulls": {"n_permutations": n_permutations}, "spline_knots": 5}, 0)
    rng = np.random.default_rng(2)
    X = (rng.standard_normal((d.n, 24)) * rng.uniform(0.01, 2, 24) + rng.uniform(-3, 3, 24)).astype(np.float16)
    X[:, 0] = 0.5                                           # a constant neuron stays exactly constant
    inv = np.empty(d.n, dtype=np.int64)
    inv[d.order] = np.arange(d.n)
    seq_row = d.seq_of[inv]                                 # window of each row
    return d, X, seq_row


@pytest.fixture(scope="module")
def sample():
    return _sample(0)


@pytest.fixture(scope="module")
def sample_with_nulls():
    return _sample(40)


def _in_memory(d, X):
    At = np.take(X, d.order, axis=0).astype(np.float64)
    mean = At.mean(axis=0)
    return chunk_sums(At - mean, mean, d, reduce_terms_of(d), widen=WIDEN)


def _sharded(d, X, seq_row, bounds, order):
    first = np.flatnonzero(seq_row < bounds[1])
    shift = X[first].astype(np.float64).mean(axis=0)        # the first shard's mean, used by every shard
    parts = []
    for i in order:
        rows = np.flatnonzero((seq_row >= bounds[i]) & (seq_row < bounds[i + 1]))
        parts.append(shards.shard_sums(X[rows], rows, d, reduce_terms_of(d), shard=i, shift=shift, widen=WIDEN))
    return shards.finish(shards.merge(parts, d), d, reduce_terms_of(d))


@pytest.mark.parametrize("n_shards", [1, 4, 16])
def test_merged_shards_equal_the_in_memory_sums(sample, n_shards):
    d, X, seq_row = sample
    ref = _in_memory(d, X)
    bounds = np.linspace(0, d.n_seq, n_shards + 1).round().astype(int)
    got = _sharded(d, X, seq_row, bounds, np.random.default_rng(n_shards).permutation(n_shards))
    for f in FIELDS:
        a, b = getattr(got, f), getattr(ref, f)
        # per neuron: relative 1e-9 of the largest magnitude of that neuron's sums (a sum near zero is
        # compared on the scale of its column, not on its own)
        scale = np.max(np.abs(b), axis=0) if b.ndim > 1 else np.abs(b)
        assert a.shape == b.shape, f
        assert np.all(np.abs(a - b) <= 1e-9 * np.maximum(scale, 1e-12)), (f, np.max(np.abs(a - b)))
    assert got.Saa[0] == 0.0 and ref.Saa[0] == 0.0           # constant column: exact zeros either way


def test_arrival_order_does_not_change_the_bytes(sample):
    d, X, seq_row = sample
    bounds = np.linspace(0, d.n_seq, 9).round().astype(int)
    a = _sharded(d, X, seq_row, bounds, range(8))
    b = _sharded(d, X, seq_row, bounds, [5, 2, 7, 0, 3, 6, 1, 4])
    for f in FIELDS:
        assert getattr(a, f).tobytes() == getattr(b, f).tobytes(), f


def test_missing_or_overlapping_shards_are_refused(sample):
    d, X, seq_row = sample
    shift = np.zeros(X.shape[1])
    rows = np.flatnonzero(seq_row < 8)
    half = shards.shard_sums(X[rows], rows, d, reduce_terms_of(d), shard=0, shift=shift)
    with pytest.raises(ValueError, match="a shard is missing"):
        shards.finish(shards.merge([half], d), d, reduce_terms_of(d))
    with pytest.raises(ValueError, match="same token"):
        shards.merge([half, shards.shard_sums(X[rows], rows, d, reduce_terms_of(d), shard=1, shift=shift)], d)
    other = shards.shard_sums(X[rows], rows, d, reduce_terms_of(d), shard=1, shift=shift + 1)
    with pytest.raises(ValueError, match="another shift"):
        shards.merge([half, other], d)


def test_linear_statistics_from_merged_shards(sample):
    """The tested correlations (within-sequence r, both partial r) computed from merged shard sums, as the
    stats stage computes them from in-memory sums: the same to 1e-9."""
    from analysis.stats.linear import TESTED, partial_r
    from analysis.stats.sums import cross_products

    d, X, seq_row = sample
    bounds = np.linspace(0, d.n_seq, 5).round().astype(int)
    ref, got = _in_memory(d, X), _sharded(d, X, seq_row, bounds, [3, 1, 0, 2])
    (C0, s0, _), (C1, s1, _) = cross_products(ref, d), cross_products(got, d)
    for spec in TESTED:
        r0, _ = partial_r(C0, s0, d.spaces[spec.space], spec)
        r1, _ = partial_r(C1, s1, d.spaces[spec.space], spec)
        ok = np.isfinite(r0)
        assert np.array_equal(ok, np.isfinite(r1)) and ok.sum() == X.shape[1] - 1, spec.name
        np.testing.assert_allclose(r1[ok], r0[ok], rtol=1e-9, atol=1e-12, err_msg=spec.name)


def test_every_sum_statistic_from_merged_shards(sample_with_nulls):
    """All per-neuron statistics but ranks and dip (block.sum_statistics: the tested correlations, their
    sequence-clustered p and type-clustered variances, the next-token partial r, the two-way clustered p,
    moments, group means, the pooled split's token-score sums) from 8 shards merged in shuffled order, as
    the in-memory path computes them: observed values to 1e-9; permuted values and the variances that set
    the null's widening (float32 products) to 1e-5."""
    from analysis.stats.block import sum_statistics

    d, X, seq_row = sample_with_nulls
    bounds = np.linspace(0, d.n_seq, 9).round().astype(int)
    ref, got = _in_memory(d, X), _sharded(d, X, seq_row, bounds, [6, 1, 4, 0, 7, 2, 5, 3])
    kw = {"twoway_cols": np.arange(1, X.shape[1]), "f16": True, "pooled": True}
    a = sum_statistics(ref, d, ~(ref.Saa > 0), **kw)
    b = sum_statistics(got, d, ~(got.Saa > 0), **kw)
    assert np.array_equal(a.const, b.const) and a.const.sum() == 1
    assert set(a.columns.cols) == set(b.columns.cols) and len(a.columns.cols) >= 29
    for name, v in a.columns.cols.items():
        w = b.columns.cols[name]
        assert np.array_equal(np.isnan(v), np.isnan(w)), name
        np.testing.assert_allclose(w, v, rtol=1e-9, atol=1e-12, err_msg=name)
    for name, v in a.perm_r.items():
        assert v is not None and v.shape == (X.shape[1], d.n_perm), name
        np.testing.assert_allclose(b.perm_r[name], v, rtol=1e-5, atol=1e-6, err_msg=name)
    for name, v in a.ratios.items():     # permutation variance, sequence- and type-clustered variances
        np.testing.assert_allclose(b.ratios[name], v, rtol=1e-5, err_msg=name)
    for x, y in zip(a.ts_sums, b.ts_sums):
        np.testing.assert_allclose(y, x, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("shard_batch", [1, 3])
def test_block_statistics_through_shards_equal_the_in_memory_block(sample_with_nulls, shard_batch):
    """compute_block(shards=4): every per-neuron column within 1e-9 of its column's scale of the in-memory
    block (shards=0), every permutation p-value identical, the block summaries and their nulls within float32 rounding."""
    from analysis.stats.block import compute_block
    from analysis.stats.linear import TESTED_NAMES

    perm_p = {f"{t}{suffix}" for t in TESTED_NAMES for suffix in ("_p", "_p_type")}   # counts of permutations
    d, X, _ = sample_with_nulls
    kw = {"seed": (0, 2), "chunk": 8, "dip_neurons": 6, "rank_neurons": 6, "widen_neurons": 10, "pooled": True}
    a = compute_block(X, d, **kw)
    b = compute_block(X, d, shards=4, shard_batch=shard_batch, **kw)
    for name, v in a.neurons.items():
        w = b.neurons[name]
        if v.dtype.kind != "f":
            assert np.array_equal(v, w), name
            continue
        assert np.array_equal(np.isnan(v), np.isnan(w)), name
        ok = ~np.isnan(v)
        if name in perm_p:
            assert np.array_equal(v[ok], w[ok]), name
        scale = np.max(np.abs(v[ok])) if ok.any() else 0.0
        assert np.all(np.abs(v[ok] - w[ok]) <= 1e-9 * scale + 1e-15), (name, np.max(np.abs(v[ok] - w[ok])))
    for key, v in a.summaries.items():
        assert abs(b.summaries[key] - v) <= 1e-9 * max(abs(v), 1e-3), key
    for key, v in a.nulls.items():
        np.testing.assert_allclose(b.nulls[key], v, rtol=1e-4, atol=1e-6, err_msg=key)
    for key in ("token_score_diff", "p_type", "p_seq", "pooled_cohens_d"):
        assert abs(b.pooled[key] - a.pooled[key]) <= 1e-9 * max(abs(a.pooled[key]), 1e-12), key


def test_twoway_p_is_nan_rather_than_wrong_where_the_expanded_square_loses_its_digits(sample):
    """The two-way test's cell term comes from an expanded square (no per-cell sums kept): for a neuron that
    is an almost exact linear function of length it cancels; p must then be NaN, not a wrong number, while
    an ordinary neuron and a strongly length-tuned but noisy one keep a p equal to the per-cell formula's."""
    from analysis.stats.linear import t_test_p, twoway_test

    d, _, _ = sample
    rng = np.random.default_rng(1)
    yc = (d.length_t - d.counts @ d.length_t / d.n)[d.type_of]
    At = np.column_stack([3 * yc + rng.standard_normal(d.n), 3 * yc + 1e-6 * rng.standard_normal(d.n),
                          rng.standard_normal(d.n)])
    At = np.ascontiguousarray(At - At.mean(axis=0))
    p = twoway_test(chunk_sums(At, np.zeros(3), d, reduce_terms_of(d)), d)
    # the per-cell formula (what the expansion replaces), for the two well-conditioned neurons
    cells = np.asarray(d.extra["token_to_cell"] @ At)
    S_T = np.asarray(d.extra["cell_to_type"] @ cells)
    w, yt = d.counts.astype(float), d.length_t - d.counts @ d.length_t / d.n
    Syy = float(w @ yt**2)
    b = yt @ S_T / Syy
    yc_cell = yt[d.cell_type]
    U_cell = cells * yc_cell[:, None] - (d.cell_sizes * yc_cell**2)[:, None] * b
    U_type = S_T * yt[:, None] - (w * yt**2)[:, None] * b
    U_seq = np.asarray(d.cell_to_seq.T @ U_cell)
    f = lambda G: G / (G - 1.0) * (d.n - 1.0) / (d.n - 2.0)  # noqa: E731
    V = (f(d.n_seq) * (U_seq**2).sum(0) + f(d.n_types) * (U_type**2).sum(0)
         - f(len(d.cell_sizes)) * (U_cell**2).sum(0)) / Syy**2
    ref = t_test_p(b / np.sqrt(V), min(d.n_seq, d.n_types) - 1)
    assert np.isnan(p[1]) and np.isfinite(ref[1])
    np.testing.assert_allclose(p[[0, 2]], ref[[0, 2]], rtol=1e-8)
