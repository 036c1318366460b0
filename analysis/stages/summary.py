"""DVC stage `summary`: cross-model verdicts and the matched-relative-depth comparison.

    $ python -m analysis.stages.summary

Reads  results/<model>/{summary.json, blocks.csv, claims.json} for every model of the active configuration,
       params.yaml (stats.claims, config.models)
Writes summary/claims.json ({model: {C1..C8: {verdict, statistic, threshold, detail[, role, control]}}}) and
       summary/compare.csv (one row per block of the model with the fewest blocks; every model's nearest
       block in relative depth). Only under summary/: DVC forbids writing inside a dependency (results/).

C7 is decided here (larger vs smaller pretrained model) and written into each pretrained model's entry.
Random-weights models are controls: each trained model's verdict gets `control` = the control's verdict
and statistic for the same claim, and the detail says what the control shows.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.io import write_csv, write_json
from analysis.params import ROOT, active_config, load_params
from analysis.stats.claims import c7_cross_model, matched_depth
from analysis.stats.model import jsonable

COMPARE_COLUMNS = ["r_median", "r_sd", "r_iqr", "share_negative", "share_significant", "partial_r_median",
                   "partial_share_significant", "r_next_abs_mean", "share_multimodal", "bc_mean", "dip_mean"]


def run(params: dict[str, Any], root: Path = ROOT, models: list[str] | None = None) -> Path:
    models = models or list(active_config(params)["models"])
    th = params["stats"]["claims"]
    summaries, blocks, claims = {}, {}, {}
    for m in models:
        d = Path(root) / "results" / m
        for f in ("summary.json", "blocks.csv", "claims.json"):
            if not (d / f).exists():
                raise FileNotFoundError(f"{d / f} is missing: run `dvc repro stats@{m}` first")
        summaries[m] = json.loads((d / "summary.json").read_text())
        blocks[m] = pd.read_csv(d / "blocks.csv")
        claims[m] = json.loads((d / "claims.json").read_text())

    trained = [m for m in models if summaries[m].get("weights") != "random"]
    controls = [m for m in models if summaries[m].get("weights") == "random"]
    sizes = {m: summaries[m]["n_blocks"] * summaries[m]["n_neurons"] for m in models}
    c7 = c7_cross_model({m: blocks[m] for m in trained}, sizes, th["C7"])
    for m in trained:
        claims[m]["C7"] = c7
    for m in controls:
        claims[m]["C7"] = {**c7_cross_model({}, sizes, th["C7"]), "role": "control",
                           "detail": "random-weights control: C7 compares pretrained models only"}
    for m in trained:
        for cid, v in claims[m].items():
            if controls and cid != "C7":
                cv = {c: {"verdict": claims[c][cid]["verdict"], "statistic": claims[c][cid]["statistic"]}
                      for c in controls}
                v["control"] = cv
                v["detail"] += "; control " + "; ".join(
                    f"{c} ({claims[c][cid]['verdict'].replace('_', ' ')})" for c in controls)

    out = Path(root) / "summary"
    write_json(out / "claims.json", jsonable(claims))
    write_csv(out / "compare.csv", matched_depth(blocks, COMPARE_COLUMNS))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    run(load_params())


if __name__ == "__main__":
    main()
