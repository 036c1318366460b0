"""Sums accumulated during the forward passes (stream.StreamSums) against the sums of the stored block."""

import numpy as np
import pytest
import torch

from analysis.models.architectures import architecture_of, gpt_neo_config
from analysis.models.extraction import extract_to_dir
from analysis.stats.block import compute_block, neuron_subsets, reduce_terms_of
from analysis.stats.pipeline import design_from_tokens
from analysis.stats.simulate import zipf_stream
from analysis.stats.stream import StreamSums
from analysis.stats.sums import chunk_sums

FIELDS = ("mean", "Saa", "S3", "S4", "S_T", "A_gT", "A_sgT", "S_nextT", "nnT", "group_sums", "group_sq", "U_seq",
          "U_type", "U_next", "yU_seq", "Q_cell", "L_cell")
SEQ_LEN = 64


def _close(got, ref):
    for f in FIELDS:
        a, b = getattr(got, f), getattr(ref, f)
        scale = np.max(np.abs(b), axis=0) if b.ndim > 1 else np.abs(b)
        assert a.shape == b.shape, f
        assert np.all(np.abs(a - b) <= 1e-9 * np.maximum(scale, 1e-12)), (f, np.max(np.abs(a - b)))


def _in_memory(d, X, widen):
    At = np.take(X, d.order, axis=0).astype(np.float64)
    mean = At.mean(axis=0)
    return chunk_sums(At - mean, mean, d, reduce_terms_of(d), widen=widen)


@pytest.fixture(scope="module")
def tokens():
    return zipf_stream(8, n_seq=12, seq_len=SEQ_LEN, vocab=400)


@pytest.mark.parametrize("batch", [1, 5, 12])
def test_batches_summed_as_they_arrive_equal_the_sums_of_the_stored_block(tokens, batch):
    d, keep = design_from_tokens(tokens, {"nulls": {"n_permutations": 0}, "spline_knots": 5}, 0)
    rng = np.random.default_rng(batch)
    X = (rng.standard_normal((len(tokens), 20)) * rng.uniform(0.05, 2, 20) + rng.uniform(-2, 2, 20))
    X = X.astype(np.float16)
    X[:, 3] = -1.25                                               # a constant neuron stays exactly constant
    widen = np.array([0, 3, 9, 19])
    acc = StreamSums(d, keep, SEQ_LEN, widen={2: widen})
    for w0 in range(0, 12, batch):                                # the row ranges extraction hands over
        r0, r1 = w0 * SEQ_LEN, min(w0 + batch, 12) * SEQ_LEN
        acc.add(2, r0, X[r0:r1])
    got = acc.finish(2)
    _close(got, _in_memory(d, X[keep], widen))
    assert got.Saa[3] == 0.0 and acc.nbytes() > 0


def test_spilled_sums_are_the_in_memory_bytes(tokens, tmp_path):
    d, keep = design_from_tokens(tokens, {"nulls": {"n_permutations": 0}, "spline_knots": 5}, 0)
    X = np.random.default_rng(3).standard_normal((len(tokens), 12)).astype(np.float16)
    widen = {0: np.array([1, 4]), 1: np.array([0])}
    mem, disk = StreamSums(d, keep, SEQ_LEN, widen=widen), StreamSums(d, keep, SEQ_LEN, widen=widen, spill=tmp_path)
    for w0 in range(0, 12, 3):
        r0 = w0 * SEQ_LEN
        for b in (0, 1):
            mem.add(b, r0, X[r0: r0 + 3 * SEQ_LEN] + b)
            disk.add(b, r0, X[r0: r0 + 3 * SEQ_LEN] + b)
    assert disk.nbytes() < mem.nbytes() / 5 and disk.disk_bytes() > 0
    assert len(list(tmp_path.glob("block_01_*.f64"))) == 8           # every per-type / per-window sum of block 1
    disk.close()                                                    # finish still reads the closed files
    for b in (0, 1):
        a, c = mem.finish(b), disk.finish(b)
        for f in FIELDS:
            assert getattr(a, f).tobytes() == getattr(c, f).tobytes(), (b, f)


def test_out_of_order_or_partial_windows_are_refused(tokens):
    d, keep = design_from_tokens(tokens, {"nulls": {"n_permutations": 0}, "spline_knots": 5}, 0)
    X = np.ones((len(tokens), 4), np.float16)
    acc = StreamSums(d, keep, SEQ_LEN)
    acc.add(0, SEQ_LEN, X[SEQ_LEN: 2 * SEQ_LEN])
    with pytest.raises(ValueError, match="window order"):
        acc.add(0, 0, X[:SEQ_LEN])
    acc.add(0, 2 * SEQ_LEN, X[2 * SEQ_LEN: 4 * SEQ_LEN])           # windows 2-3
    with pytest.raises(ValueError, match="without overlap"):
        acc.add(0, 3 * SEQ_LEN, X[3 * SEQ_LEN: 4 * SEQ_LEN])        # window 3 again
    with pytest.raises(ValueError, match="whole windows"):
        acc.add(0, 5 * SEQ_LEN, X[5 * SEQ_LEN: 5 * SEQ_LEN + 10])
    with pytest.raises(ValueError, match="a shard is missing"):
        acc.finish(0)


def test_extraction_sink_sums_what_the_files_store(tokens, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                                   # store=False must write nothing, anywhere
    torch.manual_seed(0)
    from transformers import GPTNeoModel

    model = GPTNeoModel(gpt_neo_config("gpt-neo-125m", hidden_size=32, num_layers=4, num_heads=4,
                                             vocab_size=512, max_position_embeddings=SEQ_LEN)).eval()
    arch = architecture_of(model)
    sites = arch.site_names(model, "pre")
    ids = tokens["token_id"].to_numpy().reshape(12, SEQ_LEN)
    d, keep = design_from_tokens(tokens, {"nulls": {"n_permutations": 0}, "spline_knots": 5}, 0)
    m = 4 * 32
    widen = {b: np.flatnonzero(neuron_subsets(m, (0, b), dip_neurons=8, rank_neurons=8, widen_neurons=16)[2])
             for b in range(4)}
    acc = StreamSums(d, keep, SEQ_LEN, widen=widen)
    info = extract_to_dir(model, ids, sites, None, retain=arch.retain("pre"), batch_size=5, progress=False,
                          sink=acc.add, store=False)
    assert info["n_neurons"] == m and not list(tmp_path.iterdir())
    extract_to_dir(model, ids, sites, tmp_path, retain=arch.retain("pre"), batch_size=5, progress=False)
    for b in range(4):
        X = np.load(tmp_path / f"block_{b:02d}.npy")
        _close(acc.finish(b), _in_memory(d, X[keep], widen[b]))


def test_neuron_subsets_are_compute_blocks_own(tokens):
    d, keep = design_from_tokens(tokens, {"nulls": {"n_permutations": 0}, "spline_knots": 5}, 0)
    X = np.random.default_rng(1).standard_normal((d.n, 40)).astype(np.float32)
    res = compute_block(X, d, seed=(0, 4), dip_neurons=7, rank_neurons=9, widen_neurons=11)
    dip, rank, widen = neuron_subsets(40, (0, 4), dip_neurons=7, rank_neurons=9, widen_neurons=11)
    assert np.array_equal(res.neurons["dip_tested"], dip) and np.array_equal(res.neurons["rank_tested"], rank)
    rng = np.random.default_rng([0, 4])                            # the documented draw order: dip, rank, widen
    expect = [np.isin(np.arange(40), rng.choice(40, k, replace=False)) for k in (7, 9, 11)]
    for got, want in zip((dip, rank, widen), expect):
        assert np.array_equal(got, want)


def test_spill_without_widening_neurons_and_store_without_folder(tokens, tmp_path):
    d, keep = design_from_tokens(tokens, {"nulls": {"n_permutations": 0}, "spline_knots": 5}, 0)
    X = np.random.default_rng(5).standard_normal((len(tokens), 6)).astype(np.float16)
    with StreamSums(d, keep, SEQ_LEN, spill=tmp_path) as acc:      # no widen: U_type has no columns
        for w0 in range(0, 12, 4):
            acc.add(0, w0 * SEQ_LEN, X[w0 * SEQ_LEN: (w0 + 4) * SEQ_LEN])
        _close(acc.finish(0), _in_memory(d, X[keep], np.zeros(0, np.int64)))
    with pytest.raises(ValueError, match="store=True"):
        extract_to_dir(None, np.zeros((1, 4), np.int64), [], None)
