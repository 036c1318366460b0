"""Stability across samples (tokens.sample_seeds): an effect planted in every sample is called stable, one
planted in the headline sample only is not, through the real stats and summary stages (issue 13)."""

import copy
import json

import pytest

from analysis.params import load_params
from analysis.stages import stats as stats_stage
from analysis.stages import summary as summary_stage
from analysis.stats.simulate import activations, write_model, zipf_stream
from tests.test_stats_stage import add_replicates


@pytest.fixture(scope="module")
def claims(tmp_path_factory):
    params = copy.deepcopy(load_params())
    params["stats"].update(split_block=1, chunk_neurons=20, dip_neurons=None, rank_neurons=None)
    params["stats"]["nulls"].update(n_permutations=120)
    root = tmp_path_factory.mktemp("stability")
    tok = zipf_stream(0)
    for name in ("everywhere", "once"):
        write_model(root, name, tok, activations(tok, "iid", 6, 40, 1, planted="study"))
        stats_stage.run(name, params, root=root, progress=False)
    # four further samples each: the planted pattern again, or none at all
    add_replicates(root, "everywhere", params, "sample", [1, 2, 3, 4], "iid", 6, 40, "pretrained", planted="study")
    add_replicates(root, "once", params, "sample", [1, 2, 3, 4], "iid", 6, 40, "pretrained", planted=None)
    summary_stage.run(params, root=root, models=["everywhere", "once"])
    return json.loads((root / "summary/claims.json").read_text()), params


@pytest.mark.parametrize("claim", ["C4", "C3"])
def test_planted_everywhere_is_stable_planted_once_is_not(claims, claim):
    allc, params = claims
    every, once = allc["everywhere"][claim], allc["once"][claim]
    # the headline samples are the same data: both supported
    assert every["verdict"] == once["verdict"] == "supported", (every["detail"], once["detail"])
    need = params["stats"]["stability"]["min_agree"]
    se, so = every["stability"], once["stability"]
    assert se["n"] == so["n"] == 5
    assert se["stable"] and se["share_agree"] >= need and se["verdicts"].count("supported") >= 4
    assert not so["stable"] and so["verdicts"][0] == "supported" and so["verdicts"][1:].count("supported") <= 1
    # the spread of the deciding statistic across samples is reported beside the verdicts
    assert se["spread"] and all(v["n"] == 5 for v in se["spread"].values())
