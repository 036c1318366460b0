"""The dip's side process (analysis.stats.offload): the same values as inline, and inline when it is gone."""

import numpy as np

from analysis.stats import core
from analysis.stats.block import compute_block
from analysis.stats.offload import SideProcess, SideProcessError, side_process


def test_side_process_gives_the_inline_values_in_order():
    side = side_process()
    assert side is not None
    rng = np.random.default_rng(0)
    jobs = [(rng.standard_normal((5, 300)) * (1 + k), 120) for k in range(4)]
    futs = [side.submit(J, n_s) for J, n_s in jobs]            # several in flight: answers come back in order
    for (J, n_s), fut in zip(jobs, futs):
        for a, b in zip(fut.result(timeout=60), core.dip_and_short(J, n_s)):
            np.testing.assert_array_equal(a, b)


def test_a_dead_side_process_fails_its_futures_and_the_block_computes_inline(monkeypatch):
    dead = SideProcess()
    dead._proc.kill()
    dead._proc.wait()
    fut = dead.submit(np.zeros((1, 10)), 4)
    try:
        fut.result(timeout=30)
        raise AssertionError("a future of a dead side process returned")
    except SideProcessError:
        pass
    from analysis.stats import offload
    from analysis.stats.pipeline import design_from_tokens
    from analysis.stats.simulate import zipf_stream

    d, keep = design_from_tokens(zipf_stream(3, n_seq=4, seq_len=64, vocab=300),
                                 {"nulls": {"n_permutations": 20}, "spline_knots": 5}, 0)
    X = np.random.default_rng(1).standard_normal((d.n, 40)).astype(np.float16)
    ref = compute_block(X, d, seed=(0, 1), chunk=16, workers=1)
    monkeypatch.setattr(offload, "_SIDE", [dead])
    got = compute_block(X, d, seed=(0, 1), chunk=16, workers=2)
    for c in ("dip", "dip_p", "dip_short", "dip_short_p"):
        np.testing.assert_array_equal(got.neurons[c], ref.neurons[c])
