"""Claim verdicts on block summaries and nulls built to make each claim supported, mixed and not supported."""

import numpy as np
import pandas as pd
import pytest

from analysis.params import load_params
from analysis.stats import claims as C

TH = load_params()["stats"]["claims"]
RNG = np.random.default_rng(0)
P = 400


def joint(n_blocks=10, **cols):
    """Observed block summaries and their nulls: cols maps a summary column to (observed [B], null mean [B],
    null sd); the nulls are normal draws around the null mean, strongly correlated across blocks, one row
    per (block, permutation)."""
    blocks = pd.DataFrame({"block": range(n_blocks), "rel_depth": np.arange(n_blocks) / (n_blocks - 1),
                           "share_multimodal": 0.0})
    nulls = pd.DataFrame({"block": np.repeat(np.arange(n_blocks), P), "perm": np.tile(np.arange(P), n_blocks)})
    for col, (obs, mu, sd) in cols.items():
        blocks[col] = np.broadcast_to(np.asarray(obs, float), n_blocks)
        mu = np.broadcast_to(np.asarray(mu, float), n_blocks)
        common = RNG.standard_normal((P, 1))   # one permutation moves every block (as the joint null does)
        nulls[col] = (mu[None, :] + sd * (0.9 * common + 0.3 * RNG.standard_normal((P, n_blocks)))).T.ravel()
    for name in ("r_within", "partial_r_next"):
        if f"{name}.ms" in cols and f"{name}.null_ms" not in cols:
            blocks[f"{name}.null_ms"] = np.broadcast_to(np.asarray(cols[f"{name}.ms"][1], float), n_blocks)
    return C.Joint(blocks, nulls)


def test_null_test_quantiles():
    null = np.linspace(0, 1, 1001)
    t = C.null_test("x", 0.99, null, "greater")
    assert t["passed"] and t["q975"] == pytest.approx(0.975) and t["p"] == pytest.approx(12 / 1002)
    assert not C.null_test("x", 0.97, null, "greater")["passed"]
    assert C.null_test("x", 0.01, null, "less")["passed"]
    assert not C.null_test("x", np.nan, null, "less")["passed"]


def test_c3():
    sup = joint(**{"r_within.neg": (0.7, 0.5, 0.02), "r_within.med": (-0.05, 0.0, 0.005)})
    assert C.c3_negative(sup, TH["C3"])["verdict"] == "supported"
    chance = joint(**{"r_within.neg": (0.52, 0.5, 0.02), "r_within.med": (-0.001, 0.0, 0.005)})
    assert C.c3_negative(chance, TH["C3"])["verdict"] == "not_supported"
    half = joint(**{"r_within.neg": (0.7, 0.5, 0.02), "r_within.med": (-0.001, 0.0, 0.005)})
    assert C.c3_negative(half, TH["C3"])["verdict"] == "mixed"
    strong = joint(**{"r_within.neg": (0.9, 0.5, 0.02), "r_within.med": (-0.5, 0.0, 0.005)})
    assert C.c3_negative(strong, TH["C3"])["verdict"] == "mixed"  # beyond chance, but not weak


def test_c4():
    med = np.r_[0.3, np.full(9, -0.03)]
    sup = joint(**{"r_within.med": (med, 0.0, 0.01), "r_within.neg": (np.r_[0.2, np.full(9, 0.6)], 0.5, 0.02)})
    assert C.c4_first_block(sup, TH["C4"])["verdict"] == "supported"
    weak = joint(**{"r_within.med": (np.r_[0.02, np.full(9, -0.03)], 0.0, 0.005), "r_within.neg": (0.5, 0.5, 0.02)})
    assert C.c4_first_block(weak, TH["C4"])["verdict"] == "mixed"  # beyond chance but below min_median_r
    none = joint(**{"r_within.med": (np.r_[0.001, np.full(9, -0.03)], 0.0, 0.01), "r_within.neg": (0.5, 0.5, 0.02)})
    assert C.c4_first_block(none, TH["C4"])["verdict"] == "not_supported"


def _c5(ms, ms_next):
    return joint(**{"r_within.ms": (ms, 0.001, 0.0002), "partial_r_next.ms": (ms_next, 0.001, 0.0002)})


def test_c5_and_c6():
    depth = np.arange(10) / 9
    ms = np.where(depth > 0.75, 0.004, 0.02)           # spread beyond chance shrinks in the last blocks
    ms_next = 0.001 + 0.01 * depth**2                  # next-token effect rises
    assert C.c5_late_narrowing(_c5(ms, ms_next), TH["C5"])["verdict"] == "supported"
    assert C.c5_late_narrowing(_c5(ms, np.full(10, 0.001)), TH["C5"])["verdict"] == "mixed"
    assert C.c5_late_narrowing(_c5(np.full(10, 0.001), np.full(10, 0.001)), TH["C5"])["verdict"] == "not_supported"
    J = joint(**{"r_within.ms": (ms, 0.001, 0.0002), "r_within.med": (np.r_[0.3, np.full(9, -0.05)], 0.0, 0.005)})
    assert C.c6_zones(J, {}, TH["C5"], TH["C4"])["verdict"] == "supported"
    J = joint(**{"r_within.ms": (np.full(10, 0.001), 0.001, 0.0002), "r_within.med": (0.0, 0.0, 0.005)})
    assert C.c6_zones(J, {}, TH["C5"], TH["C4"])["verdict"] == "not_supported"
    # every zone beyond chance, but the first block only barely positive: the zones C4 asks for do not hold
    J = joint(**{"r_within.ms": (ms, 0.001, 0.0002), "r_within.med": (np.r_[0.008, np.full(9, -0.05)], 0.0, 0.001),
                 "r_within.neg": (0.5, 0.5, 0.02)})
    assert C.c4_first_block(J, TH["C4"])["verdict"] == "mixed"
    assert C.c6_zones(J, {}, TH["C5"], TH["C4"])["verdict"] == "mixed"


def test_c8():
    tuned = joint(**{"r_within.sig": (0.6, 0.05, 0.01), "partial_r_freq.sig": (0.4, 0.05, 0.01)})
    base = {"r_length_logfreq": -0.6}
    F = lambda att: {"relative_attenuation": att, "attenuation": att * 0.8, "attenuation_spline": att,  # noqa: E731
                     "attenuation_length_only": 0.8, "n_length_tuned": 100,
                     "unique_length_share": 0.3, "shared_share": 0.7, "share_length_tuned": 0.6}
    assert C.c8_frequency(base, tuned, F(0.3), TH["C8"])["verdict"] == "supported"
    assert C.c8_frequency(base, tuned, F(0.65), TH["C8"])["verdict"] == "mixed"
    assert C.c8_frequency(base, tuned, F(0.95), TH["C8"])["verdict"] == "not_supported"
    assert C.c8_frequency({"r_length_logfreq": -0.1}, tuned, F(0.3), TH["C8"])["verdict"] == "not_supported"
    chance = joint(**{"r_within.sig": (0.05, 0.05, 0.01), "partial_r_freq.sig": (0.05, 0.05, 0.01)})
    assert C.c8_frequency(base, chance, F(0.3), TH["C8"])["verdict"] == "not_applicable"
    no_freq = joint(**{"r_within.sig": (0.6, 0.05, 0.01), "partial_r_freq.sig": (0.05, 0.05, 0.01)})
    assert C.c8_frequency(base, no_freq, F(0.3), TH["C8"])["verdict"] == "not_supported"


def test_c2():
    base = {"block": 5, "block_numbering": "0-based", "token_score_diff": -0.1}
    sup = {**base, "pooled_cohens_d": -0.1, "p": 0.001, "p_type": 0.001, "p_seq": 0.0005}
    assert C.c2_split(sup, TH["C2"], 0.05)["verdict"] == "supported"
    assert C.c2_split({**sup, "p": 0.2}, TH["C2"], 0.05)["verdict"] == "not_supported"
    assert C.c2_split({**sup, "pooled_cohens_d": -0.9}, TH["C2"], 0.05)["verdict"] == "mixed"
    assert C.c2_split({**sup, "pooled_cohens_d": -0.01}, TH["C2"], 0.05)["verdict"] == "mixed"
    assert C.c2_split({**sup, "p": 0.03}, TH["C2"], 0.05)["verdict"] == "not_supported"  # one-sided at alpha / 2


def test_c7_cross_model():
    def bl(n, share, short):
        return pd.DataFrame({"block": range(n), "rel_depth": np.arange(n) / (n - 1),
                             "share_multimodal": share, "share_multimodal_short": short})
    sizes = {"small": 12 * 10, "large": 24 * 10}
    sup = C.c7_cross_model({"small": bl(12, 0.01, 0.01), "large": bl(24, 0.4, 0.5)}, sizes, TH["C7"])
    assert sup["verdict"] == "supported" and sup["statistic"]["larger"] == "large"
    mixed = C.c7_cross_model({"small": bl(12, 0.01, 0.01), "large": bl(24, 0.4, 0.01)}, sizes, TH["C7"])
    assert mixed["verdict"] == "mixed"
    none = C.c7_cross_model({"small": bl(12, 0.02, 0.01), "large": bl(24, 0.03, 0.02)}, sizes, TH["C7"])
    assert none["verdict"] == "not_supported"
    assert C.c7_cross_model({"small": bl(12, 0.01, 0.01)}, sizes, TH["C7"])["verdict"] == "not_applicable"


@pytest.mark.parametrize("cid", [f"C{i}" for i in range(1, 9)])
def test_every_claim_has_thresholds(cid):
    assert cid in TH
