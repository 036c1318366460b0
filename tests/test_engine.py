"""Shards on a Dask LocalCluster give the bytes of the in-process run (issue 11: "shards run anywhere")."""

import numpy as np
import pytest

from analysis.stats import shards
from analysis.stats.block import reduce_terms_of
from analysis.stats.engine import Engine, EngineError
from analysis.stats.pipeline import design_from_tokens
from analysis.stats.simulate import zipf_stream

FIELDS = ("mean", "Saa", "S3", "S4", "S_T", "A_gT", "A_sgT", "S_nextT", "nnT", "group_sums", "group_sq", "U_seq",
          "U_type", "U_next", "yU_seq", "Q_cell", "L_cell")


def _config():
    tok = zipf_stream(3, n_seq=16, seq_len=96)
    d, _ = design_from_tokens(tok, {"nulls": {"n_permutations": 20}, "spline_knots": 5}, 0)
    rng = np.random.default_rng(4)
    X = (rng.standard_normal((d.n, 16)) + rng.uniform(-2, 2, 16)).astype(np.float16)
    return d, X


def test_dask_local_cluster_gives_the_in_process_bytes():
    pytest.importorskip("distributed")
    d, X = _config()
    terms, rows, widen = reduce_terms_of(d), shards.window_shards(d, 8), np.array([1, 5, 9])
    local = shards.sharded_sums(X, d, terms, rows, widen=widen, batch=3)      # 3 tasks: a real reduction tree
    with Engine("dask", workers=2) as eng:
        remote = shards.sharded_sums(X, d, terms, rows, engine=eng, widen=widen, batch=3)
    for f in FIELDS:
        a, b = getattr(local, f), getattr(remote, f)
        assert a.shape == b.shape and a.tobytes() == b.tobytes(), f
    assert np.any(local.S_T != 0) and local.U_type.shape == (3, d.n_types, 3)


def test_window_shards_cover_every_row_once():
    d, _ = _config()
    rows = shards.window_shards(d, 5)
    allr = np.concatenate(rows)
    assert len(rows) == 5 and np.array_equal(np.sort(allr), np.arange(d.n))
    seq_row = d.seq_of[d.row_positions()]
    assert all(len(np.unique(seq_row[r])) in (3, 4) for r in rows)      # 16 windows in 5 shards


def test_unknown_engine_is_refused_with_the_parameter_named():
    with pytest.raises(EngineError, match="stats.engine is 'spark'"):
        Engine("spark")


def test_stats_pipeline_on_a_local_cluster_equals_in_process():
    """analyse() with `stats.shards: 4`: `engine: dask` (2 local worker processes) writes the same tables,
    byte for byte, as `engine: inprocess`, and both agree with the in-memory path (`shards: 0`) in verdicts."""
    pytest.importorskip("distributed")
    import copy

    from analysis.params import load_params
    from analysis.stats.pipeline import analyse
    from analysis.stats.simulate import activations

    cfg = copy.deepcopy(load_params()["stats"])
    cfg["nulls"]["n_permutations"] = 30
    cfg["split_block"] = 1
    tok = zipf_stream(5, n_seq=8, seq_len=96)
    X = activations(tok, "iid", 3, 12, 7, planted="study")
    d, keep = design_from_tokens(tok, cfg, 0)

    def run(**over):
        c = {**cfg, **over}
        return analyse(enumerate(X), d, keep, c, 0, {"model": "engine-test"}, 3, len(tok), ranks=False, dip=False)

    a = run(shards=4, shard_batch=2, engine="inprocess")
    b = run(shards=4, shard_batch=2, engine="dask", engine_workers=2)
    assert a.neurons.equals(b.neurons) and a.blocks.equals(b.blocks) and a.nulls.equals(b.nulls)
    assert a.claims == b.claims
    c = run(shards=0)
    assert {k: v["verdict"] for k, v in c.claims.items()} == {k: v["verdict"] for k, v in a.claims.items()}


def test_a_bad_scheduler_address_is_one_clear_error():
    pytest.importorskip("distributed")
    with pytest.raises(EngineError, match=r"stats.engine_address 'nowhere://x'.*dask scheduler"):
        with Engine("dask", address="nowhere://x"):
            pass
