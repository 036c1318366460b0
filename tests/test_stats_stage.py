"""The stats and summary stages end to end on small synthetic results/<model>/ trees in tmp_path."""

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis.params import load_params
from analysis.stages import stats as stats_stage
from analysis.stages import summary as summary_stage
from analysis.stats.pipeline import analyse, design_from_tokens
from analysis.stats.simulate import activations, write_model, zipf_stream

TESTED = ("r_within", "partial_r_length", "partial_r_freq", "partial_r_next")
CONTRACT_COLUMNS = ["block", "neuron", "rel_depth", "n", "pearson_r", "pearson_p_naive", "pearson_p_twoway", "r_freq",
                    "partial_r_length_spline", "r2_length", "r2_freq", "r2_both", "unique_length", "unique_freq",
                    "shared", "spearman_r", "spearman_p_naive", "split_mean_short", "split_mean_equal",
                    "split_mean_long", "split_median_short", "split_median_long", "split_cohens_d",
                    "split_cliffs_delta", "split_p_naive", "dip", "dip_p", "dip_short", "dip_short_p", "dip_tested",
                    "rank_tested", "bimodality_coefficient", "sd_ulps", "nan_reason"] + [
    f"{s}{suf}" for s in TESTED for suf in ("", "_p_naive", "_p_seq", "_p_type", "_p", "_q", "_null_scale")]
VERDICTS = {"supported", "not_supported", "mixed", "not_applicable"}


@pytest.fixture(scope="module")
def params():
    p = copy.deepcopy(load_params())
    p["stats"].update(split_block=1, chunk_neurons=20, dip_neurons=None, rank_neurons=None)
    p["stats"]["nulls"].update(n_permutations=120)
    return p


def add_replicates(root, name, params, kind, seeds, scenario, n_blocks, m, weights, planted=None):
    """What the replicates stage writes, from analyse() on further samples (no model needed)."""
    rep = root / "results" / name / "replicates"
    rep.mkdir(parents=True, exist_ok=True)
    index = []
    for k, s in enumerate(seeds, start=1):
        tok = zipf_stream(100 + s) if kind == "sample" else zipf_stream(0)
        X = activations(tok, scenario, n_blocks, m, 1000 + s, planted=planted)
        d, keep = design_from_tokens(tok, params["stats"], 0)
        st = analyse(enumerate(X), d, keep, params["stats"], 0, {"model": name, "weights": weights}, n_blocks,
                     len(tok), ranks=False, dip=True)
        rid = f"{kind}{k if kind == 'sample' else s}"
        (rep / rid).mkdir()
        st.blocks.to_csv(rep / rid / "blocks.csv", index=False)
        st.nulls.to_parquet(rep / rid / "nulls.parquet")
        (rep / rid / "summary.json").write_text(json.dumps(st.summary))
        (rep / rid / "claims.json").write_text(json.dumps(st.claims))
        index.append({"id": rid, "sample": k if kind == "sample" else 0, "init_seed": None})
    (rep / "index.json").write_text(json.dumps({"model": name, "replicates": index}))


@pytest.fixture(scope="module")
def root(tmp_path_factory, params):
    root = tmp_path_factory.mktemp("proj")
    tok = zipf_stream(0)
    X = activations(tok, "iid", 6, 40, 1, planted="study")
    X[2][:, 3] = 1.25  # a constant neuron
    X[2][tok["is_special"].to_numpy(), :] = 50.0  # special rows must not leak into any statistic
    write_model(root, "tiny", tok, X)
    big = activations(tok, "iid", 8, 48, 2, planted="study")
    for b in big:  # two clear modes in half of the neurons
        b[:, ::2] += (6 * (np.random.default_rng(3).random((len(tok), 1)) < 0.5)).astype(np.float16)
    write_model(root, "tiny-big", tok, big)
    write_model(root, "tiny-random", tok, activations(tok, "iid", 6, 40, 3), weights="random")
    for m in ("tiny", "tiny-big", "tiny-random"):
        stats_stage.run(m, params, root=root, progress=False)
    add_replicates(root, "tiny", params, "sample", [1, 2], "iid", 6, 40, "pretrained", planted="study")
    add_replicates(root, "tiny-random", params, "init", [1, 2], "iid", 6, 40, "random")
    summary_stage.run(params, root=root, models=["tiny", "tiny-big", "tiny-random"])
    return root


def test_neurons_table(root, params):
    nt = pd.read_parquet(root / "results/tiny/neurons.parquet")
    assert set(CONTRACT_COLUMNS) <= set(nt.columns), set(CONTRACT_COLUMNS) - set(nt.columns)
    n_used = int((~zipf_stream(0)["is_special"]).sum())
    assert len(nt) == 6 * 40 and (nt["n"] == n_used).all()  # special rows excluded
    for s in TESTED:
        v = nt[f"{s}_q"].dropna()
        assert len(v) == 6 * 40 - 1 and v.between(0, 1).all()
        p = nt[f"{s}_p"].dropna()
        assert (p >= 1 / (params["stats"]["nulls"]["n_permutations"] + 1) - 1e-12).all()
    const = nt[(nt["block"] == 2) & (nt["neuron"] == 3)]
    assert (const["nan_reason"] == "constant activation").all() and const["r_within"].isna().all()
    assert nt[nt["block"] == 0]["r_within"].median() > 0.3   # the planted positive first block
    assert nt[nt["block"] == 1]["r_within"].median() < 0


def test_blocks_nulls_metrics_summary(root, params):
    bl = pd.read_csv(root / "results/tiny/blocks.csv")
    assert len(bl) == 6
    for s in TESTED:
        for k in ("neg", "med", "ms", "sig"):
            assert {f"{s}.{k}", f"{s}.{k}.q025", f"{s}.{k}.q975"} <= set(bl.columns)
        assert (bl[f"{s}.neg.q025"] <= bl[f"{s}.neg.q975"]).all()
    nl = pd.read_parquet(root / "results/tiny/nulls.parquet")
    P = params["stats"]["nulls"]["n_permutations"]
    assert len(nl) == 6 * P and nl.groupby("block")["perm"].nunique().eq(P).all()
    metrics = json.loads((root / "results/tiny/metrics.json").read_text(),
                         parse_constant=lambda c: pytest.fail(f"{c} in metrics.json"))
    assert set(metrics["blocks"]) == {f"{b:02d}" for b in range(6)}
    s = json.loads((root / "results/tiny/summary.json").read_text())
    assert s["lengths"]["min"] >= 1 and s["n_tokens_used"] == s["design"]["n_tokens"]
    assert s["split"]["block"] == 1 and "0-based" in s["split"]["block_numbering"]
    assert s["split"]["n_short"] + s["split"]["n_equal"] + s["split"]["n_long"] == s["n_tokens_used"]
    assert s["r_length_logfreq"] < -0.3
    assert "dip" in s["multimodality"]["name"] and s["design"]["n_types"] > 100
    assert math.isclose(s["null"]["analytic_sd"], 1 / math.sqrt(s["n_tokens_used"] - 1))


def test_claims_and_summary(root):
    per_model = json.loads((root / "results/tiny/claims.json").read_text())
    assert set(per_model) == {f"C{i}" for i in range(1, 9)}
    for v in per_model.values():
        assert v["verdict"] in VERDICTS and {"statistic", "threshold", "detail", "tests", "null"} <= set(v)
    for cid in ("C3", "C4", "C6"):
        assert per_model[cid]["verdict"] == "supported", (cid, per_model[cid]["detail"])
    assert per_model["C7"]["verdict"] == "not_applicable"
    ctrl = json.loads((root / "results/tiny-random/claims.json").read_text())
    assert all(ctrl[c]["verdict"] != "supported" for c in ("C2", "C3", "C4", "C5", "C6", "C8"))
    allc = json.loads((root / "summary/claims.json").read_text())
    assert set(allc) == {"tiny", "tiny-big", "tiny-random"}
    c7 = allc["tiny"]["C7"]
    assert c7["verdict"] in ("supported", "mixed") and c7["statistic"]["larger"] == "tiny-big"
    assert allc["tiny-random"]["C3"]["role"] == "control"
    ctl = allc["tiny"]["C3"]["control"]["tiny-random"]
    assert ctl["n"] == 3 and len(ctl["verdicts"]) == 3  # the headline init and two more
    st = allc["tiny"]["C4"]["stability"]
    assert st["n"] == 3 and st["verdicts"][0] == allc["tiny"]["C4"]["verdict"] and st["stable"]
    v = pd.read_csv(root / "summary/verdicts.csv")
    assert len(v[v["model"] == "tiny"]) == 3 * 8 and set(v["verdict"]) <= VERDICTS
    cmp_ = pd.read_csv(root / "summary/compare.csv")
    assert len(cmp_) == 6 and "tiny-big/share_multimodal" in cmp_


def test_nonfinite_activations_are_named(tmp_path, params):
    tok = zipf_stream(0)
    X = activations(tok, "iid", 3, 10, 1)
    X[1][5:15, 2] = np.nan
    write_model(tmp_path, "m", tok, X)
    with pytest.raises(ValueError, match=r"block_01\.npy: 10 non-finite values"):
        stats_stage.run("m", params, root=tmp_path, progress=False)
    assert not (tmp_path / "results/m/neurons.parquet").exists()


def test_truncated_block_is_named(tmp_path, params):
    tok = zipf_stream(0)
    write_model(tmp_path, "m", tok, activations(tok, "iid", 3, 10, 1))
    f = tmp_path / "results/m/activations/block_02.npy"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(ValueError, match="block_02.npy"):
        stats_stage.run("m", params, root=tmp_path, progress=False)


def test_split_block_numbering():
    from analysis.stats.pipeline import split_block_index

    assert split_block_index({"split_block": 5, "split_block_base": 1}, 12)[0] == 4
    assert split_block_index({"split_block": 5, "split_block_base": 0}, 12)[0] == 5
    with pytest.raises(ValueError, match="stats.split_block"):
        split_block_index({"split_block": 12, "split_block_base": 0}, 12)
