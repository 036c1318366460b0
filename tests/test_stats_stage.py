"""The stats and summary stages end to end on tiny synthetic results/<model>/ directories in tmp_path."""

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis.params import load_params
from analysis.stages import stats as stats_stage
from analysis.stages import summary as summary_stage

CONTRACT_COLUMNS = """block neuron rel_depth n pearson_r pearson_p pearson_q spearman_r spearman_p spearman_q r_freq
partial_r_length partial_p_length partial_q_length partial_r_freq partial_p_freq partial_q_freq r_next_length
r_next_length_q split_mean_short split_mean_equal split_mean_long split_median_short split_median_equal
split_median_long split_cohens_d split_cliffs_delta split_p split_q dip dip_p bimodality_coefficient
nan_reason""".split()
BLOCK_COLUMNS = """block rel_depth n_neurons n_valid r_mean r_median r_sd r_iqr r_q05 r_q95 share_negative
share_significant partial_r_mean partial_r_median partial_r_sd partial_r_iqr partial_share_negative
partial_share_significant partial_freq_mean partial_freq_share_significant r_next_mean r_next_abs_mean
r_abs_mean share_multimodal dip_mean null_sd_analytic null_sd_permutation split_d_mean""".split()
VERDICTS = {"supported", "not_supported", "mixed", "not_applicable"}


def write_model(root, name, n_blocks, n_neurons, weights="pretrained", bimodal=False, seed=0):
    rng = np.random.default_rng(seed)
    n_seq, seq_len = 8, 64
    n = n_seq * seq_len
    length = rng.integers(1, 12, n)
    seq, pos = np.repeat(np.arange(n_seq), seq_len), np.tile(np.arange(seq_len), n_seq)
    special = pos == 0
    length[special] = 0
    nxt = np.r_[length[1:], 0].astype(float)
    nxt[pos == seq_len - 1] = np.nan
    log_freq = -0.2 * length + 0.5 * rng.standard_normal(n)
    d = root / "results" / name
    (d / "activations").mkdir(parents=True)
    pd.DataFrame({"seq": seq, "pos": pos, "token_id": rng.integers(0, 100, n), "text": ["x"] * n,
                  "length": length, "log_freq": log_freq, "freq_count": rng.integers(0, 9, n),
                  "next_length": nxt, "is_special": special}).to_parquet(d / "tokens.parquet")
    for b in range(n_blocks):
        slope = 0.4 if b == 0 else -0.15 * (1 - b / n_blocks)  # block 0 positive, late blocks near 0
        X = slope * (length - 6)[:, None] * rng.random(n_neurons) + rng.standard_normal((n, n_neurons))
        if bimodal:
            X[:, ::2] += 6 * (rng.random((n, 1)) < 0.5)  # two clear modes
        X[special] = 50.0  # special rows must not leak into any statistic
        X[:, 3] = 1.25  # a constant neuron
        np.save(d / "activations" / f"block_{b:02d}.npy", X.astype(np.float16))
    meta = {"model": name, "label": name, "weights": weights, "n_blocks": n_blocks, "n_neurons": n_neurons,
            "site": "pre", "n_tokens": n}
    (d / "activations" / "meta.json").write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def params():
    p = copy.deepcopy(load_params())
    p["stats"].update(split_block=1, split_block_base=0, chunk_neurons=7)
    p["stats"]["nulls"] = {"n_permutations": 30, "n_neurons": 8}
    return p


@pytest.fixture(scope="module")
def root(tmp_path_factory, params):
    root = tmp_path_factory.mktemp("proj")
    write_model(root, "tiny", 4, 24, seed=1)
    write_model(root, "tiny-big", 8, 40, bimodal=True, seed=2)
    write_model(root, "tiny-random", 4, 24, weights="random", seed=3)
    for m in ("tiny", "tiny-big", "tiny-random"):
        stats_stage.run(m, params, root=root, progress=False)
    summary_stage.run(params, root=root, models=["tiny", "tiny-big", "tiny-random"])
    return root


def test_neurons_table(root):
    nt = pd.read_parquet(root / "results/tiny/neurons.parquet")
    assert set(CONTRACT_COLUMNS) <= set(nt.columns)
    assert len(nt) == 4 * 24 and (nt["n"] == 8 * 63).all()  # special rows excluded
    for q in ("pearson_q", "spearman_q", "partial_q_length", "partial_q_freq", "r_next_length_q", "split_q"):
        v = nt[q].dropna()
        assert len(v) == 4 * 23 and v.between(0, 1).all()
    const = nt[nt["neuron"] == 3]
    assert (const["nan_reason"] == "constant activation").all() and const["pearson_r"].isna().all()
    b0 = nt[nt["block"] == 0]["pearson_r"].median()
    assert b0 > 0.3  # the planted positive first block, not swamped by the special rows' 50.0
    assert nt[nt["block"] == 1]["pearson_r"].median() < 0


def test_blocks_metrics_summary(root):
    bl = pd.read_csv(root / "results/tiny/blocks.csv")
    assert set(BLOCK_COLUMNS) <= set(bl.columns) and len(bl) == 4
    metrics = json.loads((root / "results/tiny/metrics.json").read_text(),
                         parse_constant=lambda c: pytest.fail(f"{c} in metrics.json"))
    assert set(metrics["blocks"]) == {"00", "01", "02", "03"}
    s = json.loads((root / "results/tiny/summary.json").read_text())
    assert s["lengths"]["min"] == 1 and s["n_tokens_used"] == 8 * 63
    assert s["split"]["block"] == 1 and "0-based" in s["split"]["block_numbering"]
    assert s["split"]["n_short"] + s["split"]["n_equal"] + s["split"]["n_long"] == 8 * 63
    assert s["r_length_logfreq"] < -0.5
    assert "dip" in s["multimodality"]["name"]
    assert math.isclose(s["null"]["analytic_sd"], 1 / math.sqrt(8 * 63 - 1))


def test_claims(root):
    per_model = json.loads((root / "results/tiny/claims.json").read_text())
    assert set(per_model) == {f"C{i}" for i in range(1, 9)}
    for v in per_model.values():
        assert v["verdict"] in VERDICTS and {"statistic", "threshold", "detail"} <= set(v)
    assert per_model["C4"]["verdict"] == "supported"
    assert per_model["C7"]["verdict"] == "not_applicable"
    allc = json.loads((root / "summary/claims.json").read_text())
    assert set(allc) == {"tiny", "tiny-big", "tiny-random"}
    c7 = allc["tiny"]["C7"]
    assert c7["verdict"] == "supported" and c7["statistic"]["larger"] == "tiny-big"
    assert allc["tiny-random"]["C3"]["role"] == "control"
    assert "tiny-random" in allc["tiny"]["C3"]["control"]
    cmp_ = pd.read_csv(root / "summary/compare.csv")
    assert len(cmp_) == 4 and "tiny-big/share_multimodal" in cmp_


def test_summary_reports_dip_coverage(root, params):
    s = json.loads((root / "results/tiny/summary.json").read_text())["multimodality"]
    nt = pd.read_parquet(root / "results/tiny/neurons.parquet")
    assert s["n_neurons_total"] == len(nt) == 4 * 24
    assert s["n_neurons_tested"] == int(nt["dip_tested"].sum()) == int(nt["dip"].notna().sum())
    if params["stats"].get("dip_neurons") is None:
        assert s["neurons_tested"] == "all" and s["n_neurons_tested"] == 4 * 23  # every non-constant neuron


def test_split_block_numbering():
    assert stats_stage.split_block_index({"split_block": 5, "split_block_base": 1}, 12)[0] == 4
    assert stats_stage.split_block_index({"split_block": 5, "split_block_base": 0}, 12)[0] == 5
    with pytest.raises(ValueError):
        stats_stage.split_block_index({"split_block": 12, "split_block_base": 0}, 12)
