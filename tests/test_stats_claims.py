"""Claim verdicts on synthetic statistics built to make each claim supported and not supported."""

import numpy as np
import pandas as pd
import pytest

from analysis.params import load_params
from analysis.stats import claims as C

TH = load_params()["stats"]["claims"]


def blocks(medians, sds, r_next_abs, mult=None):
    n = len(medians)
    return pd.DataFrame({"block": range(n), "rel_depth": np.arange(n) / (n - 1), "r_median": medians,
                         "r_sd": sds, "r_next_abs_mean": r_next_abs,
                         "share_negative": [0.3 if m > 0 else 0.7 for m in medians],
                         "share_multimodal": mult if mult is not None else [0.0] * n})


STUDY_LIKE = blocks([0.2, -0.05, -0.06, -0.05, -0.04, -0.05, -0.06, -0.05, -0.02, -0.01],
                    [0.2, 0.15, 0.15, 0.16, 0.15, 0.15, 0.14, 0.15, 0.06, 0.04],
                    [0.01, 0.01, 0.01, 0.02, 0.02, 0.03, 0.03, 0.04, 0.06, 0.08])
OPPOSITE = blocks([-0.1, 0.05, 0.06, 0.05, 0.04, 0.05, 0.06, 0.05, 0.1, 0.2],
                  [0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.3],
                  [0.08, 0.07, 0.06, 0.05, 0.04, 0.03, 0.03, 0.02, 0.01, 0.01])


def test_c1():
    ok = {"min": 1, "max": 16, "median": 4.0, "share_at_median": 0.13}
    bad = {"min": 2, "max": 40, "median": 7.0, "share_at_median": 0.3}
    assert C.c1_lengths(ok, TH["C1"])["verdict"] == "supported"
    assert C.c1_lengths(bad, TH["C1"])["verdict"] == "not_supported"
    assert C.c1_lengths({**ok, "median": 3.0}, TH["C1"])["verdict"] == "mixed"


def test_c2():
    base = {"block": 5, "block_numbering": "0-based", "pooled_p": 1e-5, "pooled_cliffs_delta": -0.05}
    sup = {**base, "pooled_cohens_d": -0.1, "share_neurons_long_lower": 0.7, "sequence_p": 0.001}
    assert C.c2_split(sup, TH["C2"], 0.05)["verdict"] == "supported"
    assert C.c2_split({**sup, "pooled_cohens_d": 0.1, "share_neurons_long_lower": 0.3}, TH["C2"], 0.05)["verdict"] == "not_supported"
    assert C.c2_split({**sup, "pooled_cohens_d": -1.2}, TH["C2"], 0.05)["verdict"] == "mixed"
    assert C.c2_split({**sup, "sequence_p": 0.4}, TH["C2"], 0.05)["verdict"] == "mixed"
    # a negligible shift (the random-weights control's d is about -0.001) is no shift at all
    negligible = C.c2_split({**sup, "pooled_cohens_d": -0.001}, TH["C2"], 0.05)
    assert negligible["verdict"] == "not_supported" and "negligible" in negligible["detail"]


def test_c3():
    A = {"share_negative": 0.8, "median_r": -0.04, "share_significant": 0.3, "c3_blocks": "all but the first"}
    assert C.c3_negative(A, TH["C3"])["verdict"] == "supported"
    assert C.c3_negative({**A, "share_negative": 0.4, "median_r": 0.02}, TH["C3"])["verdict"] == "not_supported"
    assert C.c3_negative({**A, "median_r": -0.5}, TH["C3"])["verdict"] == "mixed"


def test_c4_c5_c6():
    assert C.c4_first_block(STUDY_LIKE, TH["C4"])["verdict"] == "supported"
    assert C.c4_first_block(OPPOSITE, TH["C4"])["verdict"] == "not_supported"
    assert C.c5_late_narrowing(STUDY_LIKE, TH["C5"])["verdict"] == "supported"
    assert C.c5_late_narrowing(OPPOSITE, TH["C5"])["verdict"] == "not_supported"
    assert C.c6_zones(STUDY_LIKE, TH["C6"], TH["C5"])["verdict"] == "supported"
    assert C.c6_zones(OPPOSITE, TH["C6"], TH["C5"])["verdict"] == "not_supported"
    assert C.c5_late_narrowing(STUDY_LIKE.iloc[:2], TH["C5"])["verdict"] == "not_applicable"


def test_c7_cross_model():
    small = blocks([0] * 12, [0.1] * 12, [0] * 12, mult=[0.02] * 12)
    large_multi = blocks([0] * 24, [0.1] * 24, [0] * 24, mult=[0.4] * 24)
    large_flat = blocks([0] * 24, [0.1] * 24, [0] * 24, mult=[0.01] * 24)
    sizes = {"s": 12 * 3072, "l": 24 * 8192}
    assert C.c7_cross_model({"s": small, "l": large_multi}, sizes, TH["C7"])["verdict"] == "supported"
    v = C.c7_cross_model({"s": small, "l": large_flat}, sizes, TH["C7"])
    assert v["verdict"] == "not_supported" and v["statistic"]["larger"] == "l"
    assert C.c7_cross_model({"s": small}, sizes, TH["C7"])["verdict"] == "not_applicable"
    cmp_ = C.matched_depth({"s": small, "l": large_multi}, ["share_multimodal"])
    assert len(cmp_) == 12 and cmp_["l/block"].iloc[-1] == 23 and cmp_["l/block"].iloc[0] == 0


def test_c8():
    A = {"share_length_survives_control": 0.2, "n_length_significant": 500, "median_abs_r": 0.05,
         "median_abs_partial_r_length": 0.01, "median_abs_partial_r_freq": 0.04}
    assert C.c8_frequency({"r_length_logfreq": -0.6}, A, TH["C8"])["verdict"] == "supported"
    assert C.c8_frequency({"r_length_logfreq": -0.6}, {**A, "share_length_survives_control": 0.95},
                          TH["C8"])["verdict"] == "not_supported"
    assert C.c8_frequency({"r_length_logfreq": -0.05}, A, TH["C8"])["verdict"] == "not_supported"
    assert C.c8_frequency({"r_length_logfreq": -0.6}, {**A, "share_length_survives_control": 0.6},
                          TH["C8"])["verdict"] == "mixed"


@pytest.mark.parametrize("cid", ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8"])
def test_every_claim_has_thresholds(cid):
    assert cid in TH
