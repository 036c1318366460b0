"""DVC stage `stats@<model>`: per-neuron and per-block statistics of one model, and its claim verdicts.

    $ python -m analysis.stages.stats --model smollm2-135m

Reads  results/<model>/tokens.parquet, results/<model>/activations/{block_NN.npy, meta.json},
       params.yaml (seed, stats)
Writes results/<model>/neurons.parquet, blocks.csv, metrics.json (DVC metrics), summary.json, claims.json,
       each atomically. One block is in memory at a time (in its storage dtype); statistics run in
       float64 on column chunks of `stats.chunk_neurons` neurons. Columns: analysis/stats/COLUMNS.md.
"""

from __future__ import annotations

import sys
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.io import write_csv, write_json, write_parquet
from analysis.stages import model_stage_main
from analysis.params import ROOT
from analysis.stats.block import Covariates, compute_block
from analysis.stats.claims import model_claims
from analysis.stats.model import (MULTIMODALITY_MEASURE, add_qvalues, block_summaries, jsonable,
                                  length_summary, model_aggregates)

METRIC_COLUMNS = ["r_mean", "r_median", "r_sd", "r_iqr", "share_negative", "share_significant",
                  "partial_r_median", "partial_share_significant", "partial_freq_share_significant",
                  "r_next_abs_mean", "share_multimodal", "bc_mean", "null_sd_permutation"]


def split_block_index(cfg: dict, n_blocks: int) -> tuple[int, str]:
    """The 0-based index of the study's split block ("layer 5") and how it was read."""
    base = int(cfg.get("split_block_base", 0))
    if base not in (0, 1):
        raise ValueError("stats.split_block_base must be 0 or 1")
    idx = int(cfg["split_block"]) - base
    if not 0 <= idx < n_blocks:
        raise ValueError(f"stats.split_block {cfg['split_block']} ({base}-based) is outside 0..{n_blocks - 1}")
    return idx, f"{cfg['split_block']} read as {base}-based: block_{idx:02d}, the {idx + 1}th of {n_blocks}"


def load_covariates(tokens: pd.DataFrame) -> tuple[Covariates, np.ndarray]:
    """Covariates of the non-special tokens, and the boolean row mask that selects them."""
    keep = ~tokens["is_special"].to_numpy(dtype=bool)
    t = tokens[keep]
    cov = Covariates.build(t["length"].to_numpy(), t["log_freq"].to_numpy(), t["next_length"].to_numpy(),
                           t["seq"].to_numpy())
    return cov, keep


def run(model_name: str, params: dict[str, Any], root: Path = ROOT, progress: bool = True) -> Path:
    from tqdm import tqdm

    cfg = params["stats"]
    seed = int(params.get("seed", 0))
    res = Path(root) / "results" / model_name
    act = res / "activations"
    meta_path = act / "meta.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path} is missing: run `dvc repro extract@{model_name}` first")
    meta = json.loads(meta_path.read_text())
    tokens = pd.read_parquet(res / "tokens.parquet")
    cov, keep = load_covariates(tokens)
    files = sorted(act.glob("block_*.npy"))
    n_blocks = len(files)
    if n_blocks == 0 or n_blocks != int(meta.get("n_blocks", n_blocks)):
        raise ValueError(f"{act}: found {n_blocks} block files, meta.json says {meta.get('n_blocks')}")
    split_idx, split_desc = split_block_index(cfg, n_blocks)

    frames, null_by_block, pooled = [], {}, None
    for b, path in enumerate(tqdm(files, desc=f"stats {model_name}", unit="block", disable=not progress)):
        X = np.load(path, mmap_mode="r")
        if X.shape[0] != len(tokens):
            raise ValueError(f"{path.name} has {X.shape[0]} rows, tokens.parquet {len(tokens)}")
        Xv = np.asarray(X[keep])  # one block in memory, storage dtype
        out = compute_block(Xv, cov, seed=(seed, b), chunk=int(cfg.get("chunk_neurons", 512)),
                            dip_neurons=cfg.get("dip_neurons"), n_perm=int(cfg["nulls"]["n_permutations"]),
                            null_neurons=int(cfg["nulls"]["n_neurons"]), pooled=(b == split_idx))
        df = pd.DataFrame(out.neurons)
        df.insert(0, "block", b)
        df.insert(1, "neuron", np.arange(Xv.shape[1]))
        df.insert(2, "rel_depth", b / (n_blocks - 1) if n_blocks > 1 else 0.0)
        df.insert(3, "n", cov.n)
        frames.append(df)
        null_by_block[b] = out.null
        if out.pooled is not None:
            pooled = out.pooled
        del X, Xv, out

    alpha = float(cfg["alpha"])
    neurons = add_qvalues(pd.concat(frames, ignore_index=True), cfg.get("fdr_method", "fdr_bh"))
    blocks = block_summaries(neurons, null_by_block, n_blocks, alpha, float(cfg["multimodal"]["bc_threshold"]))
    sb = neurons[neurons["block"] == split_idx]
    split = {
        "block": split_idx, "block_numbering": split_desc, "median": cov.median,
        "n_short": int((cov.length < cov.median).sum()), "n_equal": int((cov.length == cov.median).sum()),
        "n_long": int((cov.length > cov.median).sum()),
        **(pooled or {}),
        "share_neurons_long_lower": float((sb["split_mean_long"] < sb["split_mean_short"]).sum()
                                          / max(sb["pearson_r"].notna().sum(), 1)),
        "share_neurons_sig": float((sb["split_q"] < alpha).sum() / max(sb["split_q"].notna().sum(), 1)),
        "median_neuron_cohens_d": float(sb["split_cohens_d"].median()),
        "median_neuron_cliffs_delta": float(sb["split_cliffs_delta"].median()),
    }
    from scipy.stats import spearmanr

    summary = {
        "model": model_name, "label": meta.get("label", model_name), "weights": meta.get("weights"),
        "site": meta.get("site"), "n_tokens": int(len(tokens)), "n_tokens_used": cov.n,
        "n_special_excluded": int((~keep).sum()), "n_blocks": n_blocks, "n_neurons": int(frames[0].shape[0]),
        "lengths": length_summary(cov.length),
        "r_length_logfreq": float(cov.d["r_length_logfreq"]),
        "spearman_length_logfreq": float(spearmanr(cov.length, cov.log_freq).statistic),
        "n_clusters": int(cov.d["n_clusters"]),
        "split": split,
        "null": {
            "analytic_sd": 1 / np.sqrt(cov.n - 1),
            "permutation_sd": float(blocks["null_sd_permutation"].median()),
            "permutation_q95_abs": float(blocks["null_q95_abs_permutation"].median()),
            "shift_sd": float(blocks["null_sd_shift"].median()),
            "shift_q95_abs": float(blocks["null_q95_abs_shift"].median()),
            "n_permutations": int(cfg["nulls"]["n_permutations"]), "n_neurons_per_block": int(cfg["nulls"]["n_neurons"]),
            "note": "permutation: lengths shuffled over all tokens; shift: lengths circularly shifted within each "
                    "sequence (keeps serial dependence); SDs are medians over blocks",
        },
        "multimodality": {**MULTIMODALITY_MEASURE,
                          "neurons_tested": "all" if cfg.get("dip_neurons") is None
                          else f"seeded random subset of {cfg['dip_neurons']} per block",
                          # how many (block, neuron) pairs the dip test actually covered (constant ones skip it)
                          "n_neurons_tested": int(neurons["dip_tested"].sum()), "n_neurons_total": int(len(neurons))},
        "alpha": alpha, "fdr_method": cfg.get("fdr_method", "fdr_bh"), "fdr_scope": "per model, all blocks x neurons",
        "aggregates": model_aggregates(neurons, alpha, cfg["claims"]["C3"].get("exclude_first_block", True)),
    }
    claims = model_claims(summary, blocks, cfg["claims"], alpha)
    metrics = {
        "blocks": {f"{int(r.block):02d}": {c: r[c] for c in METRIC_COLUMNS} for _, r in blocks.iterrows()},
        "model": {"r_length_logfreq": summary["r_length_logfreq"],
                  "split_pooled_cohens_d": split.get("pooled_cohens_d"),
                  "share_length_survives_control": summary["aggregates"]["share_length_survives_control"]},
    }
    write_parquet(res / "neurons.parquet", neurons)
    write_csv(res / "blocks.csv", blocks)
    write_json(res / "metrics.json", jsonable(metrics))
    write_json(res / "summary.json", jsonable(summary))
    write_json(res / "claims.json", jsonable(claims))
    if progress:
        print(f"stats {model_name}: " + ", ".join(f"{k} {v['verdict']}" for k, v in claims.items()))
    return res


def main(argv: list[str] | None = None) -> int:
    return model_stage_main(run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
