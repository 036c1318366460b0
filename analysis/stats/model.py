"""Per-model assembly: q-values over all blocks x neurons, per-block summaries, the per-model summary.

Pure functions on DataFrames/dicts (the stage module does the reading and writing).

    >>> from analysis.stats.model import add_qvalues, block_summaries, length_summary
    >>> neurons = add_qvalues(neurons, method="fdr_bh")          # pearson_q, spearman_q, ...
    >>> blocks = block_summaries(neurons, null_by_block, n_blocks=12, alpha=0.05)
    >>> lengths = length_summary(token_lengths)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .core import bh_qvalues

# p column -> q column (BH within the model, across all blocks x neurons)
Q_COLUMNS = {
    "pearson_p": "pearson_q",
    "pearson_p_cluster": "pearson_q_cluster",
    "spearman_p": "spearman_q",
    "partial_p_length": "partial_q_length",
    "partial_p_freq": "partial_q_freq",
    "r_next_length_p": "r_next_length_q",
    "split_p": "split_q",
    "dip_p": "dip_q",
}

MULTIMODALITY_MEASURE = {
    "name": "Hartigan's dip test of unimodality",
    "short": "dip test",
    "package": "diptest (C implementation; p-values interpolated from the null table of a uniform)",
    "reference": "Hartigan & Hartigan (1985), The Annals of Statistics 13(1):70-84",
    "rule": "a neuron is multimodal when its BH q-value (dip_q, per model) is below alpha",
    "companion": "Sarle's bimodality coefficient (bimodality_coefficient > 5/9 suggests bimodality)",
}


def add_qvalues(neurons: pd.DataFrame, method: str = "fdr_bh") -> pd.DataFrame:
    out = neurons.copy()
    for p, q in Q_COLUMNS.items():
        if p in out:
            out[q] = bh_qvalues(out[p].to_numpy(), method)
    return out


def _q(x: pd.Series, qs) -> list[float]:
    x = x.dropna()
    return [float(np.quantile(x, q)) if len(x) else np.nan for q in qs]


def _share(mask: pd.Series, valid: pd.Series) -> float:
    v = valid.sum()
    return float((mask & valid).sum() / v) if v else np.nan


def block_summaries(neurons: pd.DataFrame, null_by_block: dict[int, dict], n_blocks: int, alpha: float,
                    bc_threshold: float = 5 / 9) -> pd.DataFrame:
    """One row per block (columns in COLUMNS.md). Shares are over neurons with a finite statistic."""
    rows = []
    for b, g in neurons.groupby("block", sort=True):
        r, pr, pf, rn = g["pearson_r"], g["partial_r_length"], g["partial_r_freq"], g["r_next_length"]
        q05, q25, q50, q75, q95 = _q(r, [0.05, 0.25, 0.5, 0.75, 0.95])
        pq25, pq50, pq75 = _q(pr, [0.25, 0.5, 0.75])
        vr, vp, vf = r.notna(), pr.notna(), pf.notna()
        tested = g["dip_q"].notna()
        row = {
            "block": int(b),
            "rel_depth": float(b / (n_blocks - 1)) if n_blocks > 1 else 0.0,
            "n_neurons": int(len(g)),
            "n_valid": int(vr.sum()),
            "n_constant": int((g["nan_reason"] == "constant activation").sum()),
            "r_mean": float(r.mean()),
            "r_median": q50,
            "r_sd": float(r.std(ddof=1)),
            "r_iqr": q75 - q25,
            "r_q05": q05,
            "r_q95": q95,
            "r_abs_mean": float(r.abs().mean()),
            "share_negative": _share(r < 0, vr),
            "share_significant": _share(g["pearson_q"] < alpha, vr),
            "share_significant_cluster": _share(g["pearson_q_cluster"] < alpha, g["pearson_q_cluster"].notna()),
            "spearman_median": float(g["spearman_r"].median()),
            "r_freq_median": float(g["r_freq"].median()),
            "partial_r_mean": float(pr.mean()),
            "partial_r_median": pq50,
            "partial_r_sd": float(pr.std(ddof=1)),
            "partial_r_iqr": pq75 - pq25,
            "partial_share_negative": _share(pr < 0, vp),
            "partial_share_significant": _share(g["partial_q_length"] < alpha, vp),
            "partial_freq_mean": float(pf.mean()),
            "partial_freq_median": float(pf.median()),
            "partial_freq_share_significant": _share(g["partial_q_freq"] < alpha, vf),
            "r_next_mean": float(rn.mean()),
            "r_next_median": float(rn.median()),
            "r_next_sd": float(rn.std(ddof=1)),
            "r_next_abs_mean": float(rn.abs().mean()),
            "r_next_share_significant": _share(g["r_next_length_q"] < alpha, rn.notna()),
            "share_multimodal": _share(g["dip_q"] < alpha, tested),
            "n_dip_tested": int(tested.sum()),
            "dip_mean": float(g["dip"].mean()),
            "bc_mean": float(g["bimodality_coefficient"].mean()),
            "share_bc_bimodal": _share(g["bimodality_coefficient"] > bc_threshold, g["bimodality_coefficient"].notna()),
            "split_d_mean": float(g["split_cohens_d"].mean()),
            "split_delta_median": float(g["split_cliffs_delta"].median()),
            "split_share_long_lower": _share(g["split_mean_long"] < g["split_mean_short"], vr),
            "split_share_significant": _share(g["split_q"] < alpha, g["split_q"].notna()),
        }
        nb = null_by_block.get(int(b), {})
        row["null_sd_analytic"] = nb.get("null_sd_analytic", np.nan)
        row["null_sd_permutation"] = nb.get("null_sd_permutation", np.nan)
        row["null_q95_abs_permutation"] = nb.get("null_q95_abs_permutation", np.nan)
        row["null_sd_shift"] = nb.get("null_sd_shift", np.nan)
        row["null_q95_abs_shift"] = nb.get("null_q95_abs_shift", np.nan)
        sub = g["null_subset"] & vr
        row["share_sig_perm_subset"] = _share(g["perm_p"] < alpha, sub)
        row["share_sig_shift_subset"] = _share(g["shift_p"] < alpha, sub)
        rows.append(row)
    return pd.DataFrame(rows)


def length_summary(length: np.ndarray) -> dict:
    """C1's descriptive numbers of the token lengths used (non-special tokens)."""
    L = np.asarray(length)
    med = float(np.median(L))
    vals, counts = np.unique(L, return_counts=True)
    return {
        "n": int(L.size),
        "min": int(L.min()),
        "max": int(L.max()),
        "median": med,
        "mean": float(L.mean()),
        "share_at_median": float((L == med).mean()),
        "share_short": float((L < med).mean()),
        "share_long": float((L > med).mean()),
        "n_levels": int(vals.size),
        "histogram": {str(int(v)): int(c) for v, c in zip(vals, counts)},
    }


def model_aggregates(neurons: pd.DataFrame, alpha: float, exclude_first_block: bool = True) -> dict:
    """Neuron-level aggregates the verdicts need (all blocks, or without block 0 where noted)."""
    rest = neurons[neurons["block"] != neurons["block"].min()] if exclude_first_block else neurons
    r = rest["pearson_r"].dropna()
    sig_len = neurons["pearson_q"] < alpha
    keep = sig_len & (neurons["partial_q_length"] < alpha) & (
        np.sign(neurons["partial_r_length"]) == np.sign(neurons["pearson_r"]))
    n_sig = int(sig_len.sum())
    return {
        "c3_blocks": "all but the first" if exclude_first_block else "all",
        "share_negative": float((r < 0).mean()) if len(r) else np.nan,
        "median_r": float(r.median()) if len(r) else np.nan,
        "share_significant": float((rest["pearson_q"] < alpha).sum() / max(len(r), 1)),
        "share_significant_cluster": float((rest["pearson_q_cluster"] < alpha).sum() / max(len(r), 1)),
        "n_length_significant": n_sig,
        "n_length_survives_control": int(keep.sum()),
        "share_length_survives_control": float(keep.sum() / n_sig) if n_sig else np.nan,
        "share_freq_significant_given_length": float((neurons["partial_q_freq"] < alpha).sum()
                                                     / max(neurons["partial_q_freq"].notna().sum(), 1)),
        "median_abs_r": float(neurons["pearson_r"].abs().median()),
        "median_abs_partial_r_length": float(neurons["partial_r_length"].abs().median()),
        "median_abs_partial_r_freq": float(neurons["partial_r_freq"].abs().median()),
        "n_constant": int((neurons["nan_reason"] == "constant activation").sum()),
    }


def jsonable(x):
    """NaN/inf -> None, numpy scalars -> Python (DVC metrics and strict JSON readers)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if np.isfinite(x) else None
    return x
