"""One model's statistics from its token table and its blocks: what the `stats` (and `replicates`) stages run.

    >>> from analysis.stats.pipeline import design_from_tokens, analyse
    >>> design, keep = design_from_tokens(tokens, params["stats"], seed=0)
    >>> out = analyse(((b, X_b) for b, X_b in blocks), design, keep, params["stats"], seed=0, meta=meta)
    >>> out.neurons, out.blocks, out.nulls, out.summary, out.claims, out.metrics

No file I/O: `blocks` yields (block index, [n_tokens, n_neurons] array) in block order, rows aligned with
the token table (special rows included; `keep` drops them). Randomness comes from the top-level seed:
the permutations from default_rng([seed]), the dip subset and jitter from default_rng([seed, block]).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .block import compute_block
from .claims import model_claims
from .design import Design
from .engine import Engine
from .model import (MULTIMODALITY_MEASURE, add_qvalues, block_table, frequency_aggregates, jsonable,
                    length_summary, null_table)

METRIC_COLUMNS = ["r_median", "r_within_median", "r_within_sd", "r_within_share_negative",
                  "r_within_share_significant", "r_within.excess", "partial_r_length_median",
                  "partial_r_length_share_significant", "partial_r_freq_share_significant",
                  "partial_r_next.excess", "share_multimodal", "bc_mean"]


class StatsInputError(ValueError):
    """Activations or tokens that the statistics cannot use (the message names the file and the fix)."""


@dataclass
class ModelStats:
    neurons: pd.DataFrame
    blocks: pd.DataFrame
    nulls: pd.DataFrame
    summary: dict
    claims: dict
    metrics: dict


def next_token_ids(tokens: pd.DataFrame) -> np.ndarray:
    """Token id of the next token in the same sequence, -1 at the last position and where it is special."""
    tid = tokens["token_id"].to_numpy(np.int64)
    seq = tokens["seq"].to_numpy()
    special = tokens["is_special"].to_numpy(bool)
    nxt = np.r_[tid[1:], -1]
    ends = np.r_[seq[1:] != seq[:-1], True] | np.r_[special[1:], True]
    return np.where(ends, -1, nxt)


def split_block_index(cfg: dict, n_blocks: int) -> tuple[int, str]:
    """The 0-based index of the study's split block ("layer 5") and how it was read."""
    base = int(cfg.get("split_block_base", 0))
    if base not in (0, 1):
        raise StatsInputError("stats.split_block_base must be 0 or 1")
    idx = int(cfg["split_block"]) - base
    if not 0 <= idx < n_blocks:
        raise StatsInputError(f"stats.split_block {cfg['split_block']} ({base}-based) is outside 0..{n_blocks - 1}: "
                              f"the model has {n_blocks} blocks; edit stats.split_block in params.yaml")
    return idx, f"{cfg['split_block']} read as {base}-based: block_{idx:02d}, the {idx + 1}th of {n_blocks}"


def design_from_tokens(tokens: pd.DataFrame, cfg: dict, seed: int) -> tuple[Design, np.ndarray]:
    """The design of the non-special tokens, and the boolean row mask that selects them."""
    keep = ~tokens["is_special"].to_numpy(dtype=bool)
    nxt = next_token_ids(tokens)[keep]
    t = tokens[keep]
    nulls = cfg.get("nulls", {})
    d = Design.build(t["token_id"].to_numpy(), t["length"].to_numpy(), t["log_freq"].to_numpy(),
                     t["seq"].to_numpy(), nxt, n_permutations=int(nulls.get("n_permutations", 500)),
                     seed=(int(seed),), strata_min_types=int(nulls.get("strata_min_types", 5)),
                     spline_knots=int(cfg.get("spline_knots", 5)))
    return d, keep


def check_finite(X: np.ndarray, where: str) -> None:
    """Non-finite activations are an error that names the block and how many values (never 'constant')."""
    if X.dtype == np.float16:   # exponent bits all set: inf or NaN (np.isfinite on float16 is ~3x slower)
        bad = (X.view(np.uint16) & np.uint16(0x7C00)) == np.uint16(0x7C00)
    else:
        bad = ~np.isfinite(X)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise StatsInputError(f"{where}: {int(bad.sum())} non-finite values (NaN/inf) in {len(rows)} token rows "
                              f"(first row {int(rows[0])}); the file is corrupt or the extraction overflowed: "
                              "re-run `dvc repro -f extract@<model>` (extract.dtype: float32 if it overflows)")


def analyse(blocks: Iterable[tuple[int, np.ndarray]], design: Design, keep: np.ndarray, cfg: dict, seed: int,
            meta: dict, n_blocks: int, n_tokens: int, progress=None, ranks: bool = True,
            dip: bool = True, source: str | Path = "") -> ModelStats:
    """Statistics, nulls, summaries and verdicts of one model on one sample. ranks / dip: the rank-based
    and shape statistics (descriptive; C7 needs the dip test), off for replicates; source: the folder of
    the block files, for messages."""
    alpha = float(cfg["alpha"])
    split_idx, split_desc = split_block_index(cfg, n_blocks)
    n_shards = int(cfg.get("shards", 0) or 0)
    engine = Engine(cfg.get("engine", "inprocess"), workers=int(cfg.get("engine_workers", 2)),
                    address=cfg.get("engine_address")) if n_shards else None
    frames, results, pooled = [], {}, None
    with engine if engine is not None else contextlib.nullcontext():   # a Dask cluster lives for the model
        for b, X in blocks:
            if X.shape[0] != len(keep):
                raise StatsInputError(f"block_{b:02d}.npy has {X.shape[0]} rows, tokens.parquet {len(keep)}: "
                                      "re-run `dvc repro` (the activations and the token table are out of step)")
            name = str(Path(source) / f"block_{b:02d}.npy") if source else f"block_{b:02d}.npy"
            check_finite(X, name)          # every row, separators included: a corrupt file is corrupt anywhere
            Xv = np.asarray(X[keep])
            out = compute_block(Xv, design, seed=(seed, b), chunk=int(cfg.get("chunk_neurons", 256)), alpha=alpha,
                                dip_neurons=cfg.get("dip_neurons"), rank_neurons=cfg.get("rank_neurons"),
                                widen_neurons=cfg.get("nulls", {}).get("widen_neurons", 512), pooled=(b == split_idx),
                                ranks=ranks, dip=dip, workers=int(cfg.get("workers", 1)), shards=n_shards,
                                shard_batch=int(cfg.get("shard_batch", 8)), engine=engine)
            df = pd.DataFrame(out.neurons)
            df.insert(0, "block", b)
            df.insert(1, "neuron", np.arange(Xv.shape[1]))
            df.insert(2, "rel_depth", b / (n_blocks - 1) if n_blocks > 1 else 0.0)
            df.insert(3, "n", design.n)
            frames.append(df)
            results[b] = out
            if out.pooled is not None:
                pooled = out.pooled
            if progress is not None:
                progress()
    neurons = add_qvalues(pd.concat(frames, ignore_index=True), cfg.get("fdr_method", "fdr_bh"))
    blocks_df = block_table(neurons, results, n_blocks, alpha, float(cfg["multimodal"]["bc_threshold"]))
    nulls = null_table(results)
    summary = _summary(neurons, blocks_df, design, keep, pooled or {}, split_idx, split_desc, cfg, meta, n_blocks,
                       n_tokens, results)
    claims = model_claims(summary, blocks_df, nulls, cfg["claims"], alpha)
    metrics = {"blocks": {f"{int(r.block):02d}": {c: r[c] for c in METRIC_COLUMNS if c in r}
                          for _, r in blocks_df.iterrows()},
               "model": {"r_length_logfreq": summary["r_length_logfreq"],
                         "split_pooled_cohens_d": summary["split"].get("pooled_cohens_d"),
                         "attenuation": summary["frequency"].get("attenuation"),
                         **{f"verdict_{k}": v["verdict"] for k, v in claims.items()}}}
    return ModelStats(neurons, blocks_df, nulls, jsonable(summary), jsonable(claims), jsonable(metrics))


def _within_r_yf(d: Design) -> float:
    sp = d.spaces["all"]
    iy, i_f = sp.col("length"), sp.col("logfreq")
    return float(sp.gram[iy, i_f] / np.sqrt(sp.gram[iy, iy] * sp.gram[i_f, i_f]))


def _summary(neurons, blocks_df, d: Design, keep, pooled, split_idx, split_desc, cfg, meta, n_blocks, n_tokens,
             results) -> dict:
    from scipy.stats import spearmanr

    alpha = float(cfg["alpha"])
    tc = d.token_covariates()
    y, f = tc["length"], tc["log_freq"]
    sb = neurons[neurons["block"] == split_idx]
    split = {"block": split_idx, "block_numbering": split_desc, "median": d.median,
             "n_short": d.group_sizes[0], "n_equal": d.group_sizes[1], "n_long": d.group_sizes[2],
             **{k: v for k, v in pooled.items() if k != "null_diff"},
             "share_neurons_long_lower": float((sb["split_mean_long"] < sb["split_mean_short"]).sum()
                                               / max(sb["pearson_r"].notna().sum(), 1)),
             "median_neuron_cohens_d": float(sb["split_cohens_d"].median()),
             "median_neuron_cliffs_delta": float(sb["split_cliffs_delta"].median())}
    first = next(iter(results.values()))
    null_sd = {name.split(".")[0]: v for name, v in first.extra.items() if name.endswith(".null_sd")}
    rest = neurons[neurons["block"] != neurons["block"].min()]
    return {
        "model": meta.get("model"), "label": meta.get("label", meta.get("model")), "weights": meta.get("weights"),
        "site": meta.get("site"), "n_tokens": int(n_tokens), "n_tokens_used": int(d.n),
        "n_special_excluded": int((~keep).sum()), "n_blocks": int(n_blocks),
        "n_neurons": int((neurons["block"] == 0).sum()),
        "lengths": length_summary(y),
        "r_length_logfreq": float(np.corrcoef(y, f)[0, 1]),
        "spearman_length_logfreq": float(spearmanr(y, f).statistic),
        "design": d.describe(),
        "split": split,
        "null": {"analytic_sd": 1 / np.sqrt(d.n - 1),
                 "permutation_sd_block0": null_sd,
                 "widen_factor_median": {n: float(blocks_df[f"{n}.null_scale"].median())
                                         for n in null_sd if f"{n}.null_scale" in blocks_df},
                 "n_permutations": d.n_perm, "strata_min_types": int(cfg.get("nulls", {}).get("strata_min_types", 5)),
                 "description": "token lengths (or covariates residualised on the controls) permuted among token "
                                "types within frequency strata, one permutation for every neuron and block; "
                                "each block's null widened to the larger of the sequence- and type-clustered "
                                "variances where those exceed the permutation's"},
        "multimodality": {**MULTIMODALITY_MEASURE,
                          "neurons_tested": "all" if cfg.get("dip_neurons") is None
                          else f"seeded random subset of {cfg['dip_neurons']} per block",
                          "n_neurons_tested": int(neurons["dip_tested"].sum()), "n_neurons_total": int(len(neurons)),
                          "rank_neurons": "all" if cfg.get("rank_neurons") is None
                          else f"seeded random subset of {cfg['rank_neurons']} per block",
                          "sd_ulps_median": float(neurons["sd_ulps"].median())},
        "alpha": alpha, "fdr_method": cfg.get("fdr_method", "fdr_bh"), "fdr_scope": "per model, all blocks x neurons",
        "aggregates": {
            "share_negative_pooled_r": float((rest["pearson_r"] < 0).mean()),
            "median_pooled_r": float(rest["pearson_r"].median()),
            "max_abs_r_pooled_minus_within": float((neurons["pearson_r"] - neurons["r_within"]).abs().max()),
            "share_significant": float((neurons["r_within_q"] < alpha).mean()),
            "share_significant_naive": float((neurons["pearson_p_naive"] < alpha).mean()),
            "share_significant_twoway": float((neurons["pearson_p_twoway"] < alpha).mean()),
            "n_constant": int((neurons["nan_reason"] == "constant activation").sum()),
        },
        "frequency": frequency_aggregates(neurons, alpha, _within_r_yf(d)),
    }
