"""Verdicts for the study's claims C1-C8, computed from the statistics (never written by hand).

Each verdict is ``{verdict, statistic, threshold, detail}`` with verdict one of supported / not_supported /
mixed / not_applicable; thresholds come from params.yaml (``stats.claims``).

    >>> from analysis.stats.claims import model_claims, c7_cross_model
    >>> claims = model_claims(summary, blocks, th=params["stats"]["claims"], alpha=0.05)
    >>> claims["C3"]["verdict"]
    'supported'
    >>> c7 = c7_cross_model({"small": blocks_a, "large": blocks_b}, sizes, th["C7"], measure="share_multimodal")

Random-weights models (summary["weights"] == "random") get verdicts by the same rules: they say whether the
*architecture and tokenization alone* produce the pattern. Their verdicts are marked ``role: control`` and
the cross-model summary copies them into the trained models' entries (``control``) for the report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SUPPORTED, NOT_SUPPORTED, MIXED, NA = "supported", "not_supported", "mixed", "not_applicable"


def V(verdict: str, statistic, threshold, detail: str) -> dict:
    return {"verdict": verdict, "statistic": statistic, "threshold": threshold, "detail": detail}


def _from_count(n_ok: int, n_all: int) -> str:
    n_ok = int(n_ok)  # callers add flags; numpy bools would add as logical or
    return SUPPORTED if n_ok == n_all else NOT_SUPPORTED if n_ok == 0 else MIXED


def c1_lengths(L: dict, th: dict) -> dict:
    """Token lengths span 1-16, median 4, ~1/8 at the median."""
    rng_ok = L["min"] == th["min_length"] and abs(L["max"] - th["max_length"]) <= th["max_length_tol"]
    med_ok = abs(L["median"] - th["median"]) <= th["median_tol"]
    share_ok = abs(L["share_at_median"] - th["share_at_median"]) <= th["share_tol"]
    stat = {"min": L["min"], "max": L["max"], "median": L["median"], "share_at_median": L["share_at_median"]}
    return V(_from_count(int(rng_ok) + int(med_ok) + int(share_ok), 3), stat, th,
             f"lengths {L['min']}-{L['max']} (study 1-16), median {L['median']:g} (study 4), "
             f"{L['share_at_median']:.3f} of tokens at the median (study ~0.125); "
             f"range {'ok' if rng_ok else 'differs'}, median {'ok' if med_ok else 'differs'}, "
             f"share {'ok' if share_ok else 'differs'}")


def c2_split(S: dict, th: dict, alpha: float) -> dict:
    """At the split block, long tokens shift slightly toward more negative activations; heavy overlap."""
    d = S.get("pooled_cohens_d", np.nan)
    lower = S.get("share_neurons_long_lower", np.nan)
    p_seq = S.get("sequence_p", np.nan)
    stat = {"pooled_cohens_d": d, "share_neurons_long_lower": lower, "sequence_p": p_seq,
            "pooled_p": S.get("pooled_p", np.nan), "pooled_cliffs_delta": S.get("pooled_cliffs_delta", np.nan)}
    thr = {"min_abs_d": th.get("min_abs_d", 0.0), "max_abs_d": th["max_abs_d"], "alpha": alpha,
           "direction": "d < 0 and share long-lower > 0.5"}
    if not np.isfinite(d):
        return V(NA, stat, thr, "no short or long tokens at the split block")
    negative = d < 0 and lower > 0.5
    slight = abs(d) <= th["max_abs_d"]
    sig = np.isfinite(p_seq) and p_seq < alpha
    where = f"block {S['block']} ({S['block_numbering']})"
    desc = (f"{where}: pooled Cohen's d (long - short) {d:+.3f}, {lower:.1%} of neurons lower for long tokens, "
            f"sequence-level Wilcoxon p {p_seq:.2g}")
    if not negative:
        return V(NOT_SUPPORTED, stat, thr, desc + "; long tokens are not shifted negative")
    if abs(d) < th.get("min_abs_d", 0.0):  # a shift this small is not one the histograms could show
        return V(NOT_SUPPORTED, stat, thr, desc + "; the shift is negligible")
    if slight and sig:
        return V(SUPPORTED, stat, thr, desc + "; a slight negative shift with heavy overlap")
    why = "the shift is not slight (groups separate)" if not slight else "the shift is not significant across sequences"
    return V(MIXED, stat, thr, desc + f"; negative, but {why}")


def c3_negative(A: dict, th: dict) -> dict:
    """Most neurons show weak negative r."""
    share, med = A["share_negative"], A["median_r"]
    stat = {"share_negative": share, "median_r": med, "share_significant": A["share_significant"],
            "blocks": A["c3_blocks"]}
    if not np.isfinite(share):
        return V(NA, stat, th, "no neuron with a defined r")
    desc = (f"{share:.1%} of neurons ({A['c3_blocks']} blocks) have r < 0, median r {med:+.3f}, "
            f"{A['share_significant']:.1%} significant after FDR")
    if share <= th["min_share_negative"] or med >= 0:
        return V(NOT_SUPPORTED, stat, th, desc + "; most neurons are not negative")
    if abs(med) <= th["max_abs_median_r"]:
        return V(SUPPORTED, stat, th, desc + "; mostly weak negative")
    return V(MIXED, stat, th, desc + "; negative but not weak")


def c4_first_block(blocks: pd.DataFrame, th: dict) -> dict:
    """Block 0 is the opposite: clearly positive r, above the other blocks."""
    b0 = blocks.iloc[0]
    others = blocks.iloc[1:]
    m0 = float(b0["r_median"])
    mo = float(others["r_median"].max()) if len(others) else np.nan
    stat = {"block0_median_r": m0, "max_other_median_r": mo, "block0_share_positive": 1 - float(b0["share_negative"])}
    if not len(others) or not np.isfinite(m0):
        return V(NA, stat, th, "needs at least two blocks")
    desc = f"block 0 median r {m0:+.3f}; highest median among the other blocks {mo:+.3f}"
    if m0 <= 0:
        return V(NOT_SUPPORTED, stat, th, desc + "; block 0 is not positive")
    if m0 >= th["min_median_r"] and m0 > mo:
        return V(SUPPORTED, stat, th, desc + "; clearly positive and above every other block")
    return V(MIXED, stat, th, desc + "; positive, but " + (
        "not clearly (below the threshold)" if m0 < th["min_median_r"] else "another block is as high"))


def _zones(blocks: pd.DataFrame, th: dict):
    rd = blocks["rel_depth"].to_numpy()
    lo, hi = th["middle"]
    middle = blocks[(rd >= lo) & (rd <= hi)]
    n_last = max(1, int(round(th["last_fraction"] * len(blocks))))
    last = blocks.iloc[-n_last:]
    return middle, last


def c5_late_narrowing(blocks: pd.DataFrame, th: dict) -> dict:
    """The r distribution narrows toward 0 in the last blocks; r with the next token's length rises with depth."""
    if len(blocks) < 3:
        return V(NA, {}, th, "needs at least three blocks")
    middle, last = _zones(blocks, th)
    ratio = float(last["r_sd"].median() / middle["r_sd"].median())
    from scipy.stats import spearmanr

    rho = float(spearmanr(blocks["rel_depth"], blocks["r_next_abs_mean"]).statistic)
    rise = bool(rho > th["min_depth_rho"] and last["r_next_abs_mean"].mean() > middle["r_next_abs_mean"].mean())
    narrow = bool(ratio < th["max_sd_ratio"])
    stat = {"sd_ratio_last_over_middle": ratio, "rho_depth_r_next_abs": rho,
            "r_next_abs_mean_last": float(last["r_next_abs_mean"].mean()),
            "r_next_abs_mean_middle": float(middle["r_next_abs_mean"].mean()),
            "last_blocks": last["block"].astype(int).tolist(), "middle_blocks": middle["block"].astype(int).tolist()}
    desc = (f"SD of r in the last blocks / middle blocks = {ratio:.2f} ({'narrower' if narrow else 'not narrower'}); "
            f"mean |r| with the next token's length vs depth: Spearman {rho:+.2f} "
            f"({'rising' if rise else 'not rising'})")
    return V(_from_count(int(narrow) + int(rise), 2), stat, th, desc)


def c6_zones(blocks: pd.DataFrame, th: dict, c5th: dict) -> dict:
    """The density/heatmap figures show three zones: positive first block, negative middle, narrow end.
    Decided from the block summaries the figures are drawn from."""
    if len(blocks) < 3:
        return V(NA, {}, th, "needs at least three blocks")
    middle, last = _zones(blocks, c5th)
    first_pos = float(blocks.iloc[0]["r_median"]) > 0
    mid_neg = float(middle["r_median"].median()) < 0
    late_narrow = float(last["r_sd"].median()) < c5th["max_sd_ratio"] * float(middle["r_sd"].median())
    stat = {"first_block_positive": bool(first_pos), "middle_negative": bool(mid_neg), "last_narrower": bool(late_narrow)}
    n = int(first_pos) + int(mid_neg) + int(late_narrow)
    return V(_from_count(n, 3), stat, {"zones": 3, **c5th},
             f"{n} of 3 zones visible in the block summaries (first block positive: {first_pos}, "
             f"middle negative: {mid_neg}, last blocks narrower: {late_narrow})")


def c8_frequency(summary: dict, A: dict, th: dict) -> dict:
    """Frequency confound: the length effect is largely the frequency effect."""
    r_lf = summary["r_length_logfreq"]
    surv = A["share_length_survives_control"]
    stat = {"r_length_logfreq": r_lf, "share_length_survives_control": surv,
            "n_length_significant": A["n_length_significant"],
            "median_abs_r": A["median_abs_r"], "median_abs_partial_r_length": A["median_abs_partial_r_length"],
            "median_abs_partial_r_freq": A["median_abs_partial_r_freq"]}
    desc = (f"r(length, log frequency) = {r_lf:+.3f}; of {A['n_length_significant']} neurons with a significant "
            f"length r, {surv if np.isfinite(surv) else float('nan'):.1%} keep it (same sign, q < alpha) when log "
            f"frequency is controlled; median |partial r| length {A['median_abs_partial_r_length']:.3f} vs "
            f"frequency {A['median_abs_partial_r_freq']:.3f}")
    confound = np.isfinite(r_lf) and r_lf <= th["max_r_length_freq"]
    if not confound:
        return V(NOT_SUPPORTED, stat, th, desc + "; length and frequency are not strongly (negatively) correlated")
    if not np.isfinite(surv):
        return V(NA, stat, th, desc + "; no neuron has a significant length effect to explain")
    if surv <= th["vanish_max_share"]:
        return V(SUPPORTED, stat, th, desc + "; the length effect mostly vanishes")
    if surv >= th["survive_min_share"]:
        return V(NOT_SUPPORTED, stat, th, desc + "; the length effect survives the control")
    return V(MIXED, stat, th, desc + "; the length effect partly survives")


def model_claims(summary: dict, blocks: pd.DataFrame, th: dict, alpha: float) -> dict:
    """All per-model verdicts. C7 is cross-model (see c7_cross_model); here it is not_applicable."""
    A = summary["aggregates"]
    out = {
        "C1": c1_lengths(summary["lengths"], th["C1"]),
        "C2": c2_split(summary["split"], th["C2"], alpha),
        "C3": c3_negative(A, th["C3"]),
        "C4": c4_first_block(blocks, th["C4"]),
        "C5": c5_late_narrowing(blocks, th["C5"]),
        "C6": c6_zones(blocks, th.get("C6", {}), th["C5"]),
        "C7": V(NA, {"median_share_multimodal": float(blocks["share_multimodal"].median())}, th["C7"],
                "cross-model claim: decided in summary/claims.json"),
        "C8": c8_frequency(summary, A, th["C8"]),
    }
    if summary.get("weights") == "random":
        for v in out.values():
            v["role"] = "control"
            v["detail"] = "random-weights control: " + v["detail"]
    return out


def matched_depth(blocks_by_model: dict[str, pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """Models compared at matched relative depth: for each block of the model with the fewest blocks,
    each model's block nearest in relative depth (block / (n_blocks - 1))."""
    ref = min(blocks_by_model, key=lambda k: len(blocks_by_model[k]))
    rows = []
    for rd in blocks_by_model[ref]["rel_depth"]:
        row = {"rel_depth": float(rd)}
        for name, b in blocks_by_model.items():
            i = int(np.argmin(np.abs(b["rel_depth"].to_numpy() - rd)))
            row[f"{name}/block"] = int(b.iloc[i]["block"])
            for c in columns:
                row[f"{name}/{c}"] = float(b.iloc[i][c])
        rows.append(row)
    return pd.DataFrame(rows)


def c7_cross_model(blocks_by_model: dict[str, pd.DataFrame], sizes: dict[str, int], th: dict) -> dict:
    """The larger pretrained model is more multimodal than the smaller at matched relative depth.

    blocks_by_model: pretrained models only. sizes: a size proxy per model (n_blocks x n_neurons)."""
    measure = th.get("measure", "share_multimodal")
    if len(blocks_by_model) < 2:
        return V(NA, {}, th, "needs two pretrained models of different size; the configuration has "
                 f"{len(blocks_by_model)} ({', '.join(blocks_by_model) or 'none'})")
    names = sorted(blocks_by_model, key=lambda k: sizes[k])
    small, large = names[0], names[-1]
    cmp_ = matched_depth({small: blocks_by_model[small], large: blocks_by_model[large]}, [measure])
    diff = cmp_[f"{large}/{measure}"] - cmp_[f"{small}/{measure}"]
    frac_more = float((diff >= th["min_share_diff"]).mean())
    frac_less = float((diff <= 0).mean())
    stat = {"larger": large, "smaller": small, "measure": measure,
            "median_larger": float(cmp_[f"{large}/{measure}"].median()),
            "median_smaller": float(cmp_[f"{small}/{measure}"].median()),
            "share_depths_larger_more": frac_more, "n_depths": int(len(cmp_))}
    desc = (f"{measure}: {large} median {stat['median_larger']:.2f} vs {small} {stat['median_smaller']:.2f}; "
            f"{large} exceeds {small} by >= {th['min_share_diff']} at {frac_more:.0%} of {len(cmp_)} matched depths")
    if frac_more >= th["min_depth_fraction"]:
        return V(SUPPORTED, stat, th, desc)
    if frac_less >= th["min_depth_fraction"]:
        return V(NOT_SUPPORTED, stat, th, desc + f"; {large} is not more multimodal")
    return V(MIXED, stat, th, desc)
