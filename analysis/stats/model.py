"""Per-model assembly: q-values over all blocks x neurons, per-block summaries with their nulls, aggregates.

Pure functions on DataFrames/dicts (the stage module does the reading and writing).

    >>> from analysis.stats.model import add_qvalues, block_table, null_table, length_summary
    >>> neurons = add_qvalues(neurons)                       # <stat>_q from the dependence-aware <stat>_p
    >>> blocks = block_table(neurons, results, n_blocks, alpha)   # one row per block (COLUMNS.md)
    >>> nulls = null_table(results)                          # one row per (block, permutation)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .core import bh_qvalues
from .linear import TESTED_NAMES

MULTIMODALITY_MEASURE = {
    "name": "Hartigan's dip test of unimodality",
    "short": "dip test",
    "package": "diptest (C implementation; p-values interpolated from the null table of a uniform)",
    "reference": "Hartigan & Hartigan (1985), The Annals of Statistics 13(1):70-84",
    "rule": "a neuron is multimodal when its dip p-value on jittered values (each value spread uniformly "
            "within +-1/2 of its float16 step, so storage ties cannot make peaks) is below alpha; no FDR "
            "correction, so the share does not depend on how many neurons a model has",
    "companion": "Sarle's bimodality coefficient (bimodality_coefficient > 5/9 suggests bimodality)",
}

SUMMARY_KEYS = ("neg", "med", "ms", "sig")


def add_qvalues(neurons: pd.DataFrame, method: str = "fdr_bh") -> pd.DataFrame:
    """BH q-values per model (all blocks x neurons) of each tested statistic's dependence-aware p."""
    out = neurons.copy()
    for name in TESTED_NAMES:
        if f"{name}_p" in out:
            out[f"{name}_q"] = bh_qvalues(out[f"{name}_p"].to_numpy(), method)
    return out


def _q(x: pd.Series, qs) -> list[float]:
    x = x.dropna()
    return [float(np.quantile(x, q)) if len(x) else np.nan for q in qs]


def _share(mask: pd.Series, valid: pd.Series) -> float:
    v = valid.sum()
    return float((mask & valid).sum() / v) if v else np.nan


def _describe(prefix: str, x: pd.Series) -> dict:
    q25, q50, q75 = _q(x, [0.25, 0.5, 0.75])
    return {f"{prefix}_mean": float(x.mean()), f"{prefix}_median": q50, f"{prefix}_sd": float(x.std(ddof=1)),
            f"{prefix}_iqr": q75 - q25, f"{prefix}_abs_mean": float(x.abs().mean()),
            f"{prefix}_share_negative": _share(x < 0, x.notna())}


def block_table(neurons: pd.DataFrame, results: dict, n_blocks: int, alpha: float,
                bc_threshold: float = 5 / 9) -> pd.DataFrame:
    """One row per block: descriptive summaries, the tested summaries observed, and their null quantiles.

    results: {block: BlockResult} (summaries and nulls of each block)."""
    rows = []
    for b, g in neurons.groupby("block", sort=True):
        b = int(b)
        r = g["pearson_r"]
        row = {"block": b, "rel_depth": float(b / (n_blocks - 1)) if n_blocks > 1 else 0.0,
               "n_neurons": int(len(g)), "n_valid": int(r.notna().sum()),
               "n_constant": int((g["nan_reason"] == "constant activation").sum())}
        # the study's pooled r (descriptive) and the within-sequence statistics (what is tested)
        row.update(_describe("r", r))
        q05, q95 = _q(r, [0.05, 0.95])
        row.update(r_q05=q05, r_q95=q95, share_negative=_share(r < 0, r.notna()))
        for name in TESTED_NAMES:
            row.update(_describe(name, g[name]))
            row[f"{name}_share_significant"] = _share(g[f"{name}_q"] < alpha, g[name].notna())
        row["share_significant_twoway"] = _share(g["pearson_p_twoway"] < alpha, g["pearson_p_twoway"].notna())
        row["share_significant_naive"] = _share(g["pearson_p_naive"] < alpha, r.notna())
        row["spearman_median"] = float(g["spearman_r"].median())
        row["r_freq_median"] = float(g["r_freq"].median())
        row["partial_r_length_spline_median"] = float(g["partial_r_length_spline"].median())
        tested = g["dip_tested"].astype(bool)
        row["n_dip_tested"] = int(tested.sum())
        row["share_multimodal"] = _share(g["dip_p"] < alpha, tested & g["dip_p"].notna())
        row["share_multimodal_short"] = _share(g["dip_short_p"] < alpha, tested & g["dip_short_p"].notna())
        row["dip_mean"] = float(g["dip"].mean())
        row["sd_ulps_median"] = float(g["sd_ulps"].median())
        row["bc_mean"] = float(g["bimodality_coefficient"].mean())
        row["share_bc_bimodal"] = _share(g["bimodality_coefficient"] > bc_threshold, g["bimodality_coefficient"].notna())
        row["split_d_mean"] = float(g["split_cohens_d"].mean())
        row["split_delta_median"] = float(g["split_cliffs_delta"].median())
        row["split_share_long_lower"] = _share(g["split_mean_long"] < g["split_mean_short"], r.notna())
        res = results[b]
        for key, value in res.summaries.items():
            row[key] = value
        for key, values in res.nulls.items():
            row[f"{key}.q025"] = float(np.quantile(values, 0.025))
            row[f"{key}.q975"] = float(np.quantile(values, 0.975))
        for name in TESTED_NAMES:
            if f"{name}.null_ms" in row:
                row[f"{name}.excess"] = row[f"{name}.ms"] - row[f"{name}.null_ms"]
                row[f"{name}.null_scale"] = float(g[f"{name}_null_scale"].median())
        rows.append(row)
    return pd.DataFrame(rows)


def null_table(results: dict) -> pd.DataFrame:
    """One row per (block, permutation): each tested summary under that permutation (the same
    permutation in every block, so model-level statistics of several blocks have a joint null)."""
    frames = []
    for b, res in sorted(results.items()):
        if not res.nulls:
            continue
        P = len(next(iter(res.nulls.values())))
        df = pd.DataFrame({"block": np.full(P, b, dtype=np.int64), "perm": np.arange(P, dtype=np.int64),
                           **{k: np.asarray(v, dtype=np.float64) for k, v in sorted(res.nulls.items())}})
        for name in TESTED_NAMES:
            if f"{name}.null_ms" in res.summaries:
                df[f"{name}.null_ms"] = res.summaries[f"{name}.null_ms"]
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"block": [], "perm": []})


def length_summary(length: np.ndarray) -> dict:
    """C1's descriptive numbers of the token lengths used (non-special tokens)."""
    L = np.asarray(length)
    med = float(np.median(L))
    vals, counts = np.unique(L, return_counts=True)
    return {
        "n": int(L.size), "min": int(L.min()), "max": int(L.max()), "median": med, "mean": float(L.mean()),
        "share_at_median": float((L == med).mean()), "share_short": float((L < med).mean()),
        "share_long": float((L > med).mean()), "n_levels": int(vals.size),
        "histogram": {str(int(v)): int(c) for v, c in zip(vals, counts)},
    }


def frequency_aggregates(neurons: pd.DataFrame, alpha: float, r_length_freq: float) -> dict:
    """C8's effect sizes over the length-tuned neurons (r_within_q < alpha): attenuation of the length
    correlation by the frequency control (median |partial r| / |r|, linear and spline control), and the same
    relative to what a neuron that responds to length alone would show, sqrt(1 - r(length, freq)^2): 1 for
    length alone, 0 for frequency alone; and the commonality split of the joint R^2 (median shares of the
    length R^2 that are unique / shared). r_length_freq: within sequences, over the tokens."""
    tuned = neurons[(neurons["r_within_q"] < alpha) & neurons["r_within"].notna()]
    expected = float(np.sqrt(max(1.0 - r_length_freq**2, 1e-12)))
    out = {"n_length_tuned": int(len(tuned)), "attenuation_length_only": expected,
           "share_length_tuned": float(len(tuned) / max(neurons["r_within"].notna().sum(), 1))}
    if len(tuned):
        r = tuned["r_within"].abs()
        att = float((tuned["partial_r_length"].abs() / r).median())
        out.update(
            attenuation=att,
            relative_attenuation=att / expected,
            attenuation_spline=float((tuned["partial_r_length_spline"].abs() / r).median()),
            share_same_sign=float((np.sign(tuned["partial_r_length"]) == np.sign(tuned["r_within"])).mean()),
            unique_length_share=float((tuned["unique_length"] / tuned["r2_length"]).median()),
            shared_share=float((tuned["shared"] / tuned["r2_length"]).median()),
            median_abs_r=float(r.median()),
            median_abs_partial_r_length=float(tuned["partial_r_length"].abs().median()),
            median_abs_partial_r_freq=float(tuned["partial_r_freq"].abs().median()),
            n_partial_length_significant=int((tuned["partial_r_length_q"] < alpha).sum()),
            n_partial_freq_significant=int((tuned["partial_r_freq_q"] < alpha).sum()))
    else:
        out.update({k: np.nan for k in ("attenuation", "relative_attenuation", "attenuation_spline", "share_same_sign",
                                         "unique_length_share", "shared_share", "median_abs_r",
                                         "median_abs_partial_r_length", "median_abs_partial_r_freq")})
        out.update(n_partial_length_significant=0, n_partial_freq_significant=0)
    return out


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
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    return x
