"""Sums over shards of whole windows, merged, against the in-memory sums of the whole sample."""

import numpy as np
import pytest

from analysis.stats import shards
from analysis.stats.pipeline import design_from_tokens
from analysis.stats.simulate import zipf_stream
from analysis.stats.sums import chunk_sums

FIELDS = ("mean", "Saa", "S3", "S4", "cellsT", "S_T", "A_gT", "S_nextT", "nnT", "group_sums", "group_sq")


@pytest.fixture(scope="module")
def sample():
    tok = zipf_stream(6, n_seq=16, seq_len=128)
    d, _ = design_from_tokens(tok, {"nulls": {"n_permutations": 0}, "spline_knots": 5}, 0)
    rng = np.random.default_rng(2)
    X = (rng.standard_normal((d.n, 24)) * rng.uniform(0.01, 2, 24) + rng.uniform(-3, 3, 24)).astype(np.float16)
    X[:, 0] = 0.5                                           # a constant neuron stays exactly constant
    inv = np.empty(d.n, dtype=np.int64)
    inv[d.order] = np.arange(d.n)
    seq_row = d.seq_of[inv]                                 # window of each row
    return d, X, seq_row


def _in_memory(d, X):
    At = np.take(X, d.order, axis=0).astype(np.float64)
    mean = At.mean(axis=0)
    return chunk_sums(At - mean, mean, d)


def _sharded(d, X, seq_row, bounds, order):
    first = np.flatnonzero(seq_row < bounds[1])
    shift = X[first].astype(np.float64).mean(axis=0)        # the first shard's mean, used by every shard
    parts = []
    for i in order:
        rows = np.flatnonzero((seq_row >= bounds[i]) & (seq_row < bounds[i + 1]))
        parts.append(shards.shard_sums(X[rows], rows, d, shard=i, shift=shift))
    return shards.finish(shards.merge(parts), d)


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
    half = shards.shard_sums(X[rows], rows, d, shard=0, shift=shift)
    with pytest.raises(ValueError, match="a shard is missing"):
        shards.finish(shards.merge([half]), d)
    with pytest.raises(ValueError, match="same token"):
        shards.merge([half, shards.shard_sums(X[rows], rows, d, shard=1, shift=shift)])
    other = shards.shard_sums(X[rows], rows, d, shard=1, shift=shift + 1)
    with pytest.raises(ValueError, match="another shift"):
        shards.merge([half, other])


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
