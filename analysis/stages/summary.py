"""DVC stage `summary`: cross-model verdicts, the controls' distributions, stability across samples.

    $ python -m analysis.stages.summary

Reads  for every model of the active configuration: results/<model>/{summary.json, blocks.csv, claims.json}
       and results/<model>/replicates/{index.json, <id>/claims.json, <id>/blocks.csv};
       params.yaml (stats.claims, stats.stability, stats.alpha, config.models)
Writes summary/claims.json  {model: {C1..C8: {verdict, statistic, threshold, detail, tests, null,
                            stability, control?}}} (the headline verdicts, with their stability and, for
                            trained models, the random-weights controls' verdicts over initialisations),
       summary/verdicts.csv one row per (model, replicate, claim): every verdict of every sample / init,
       summary/compare.csv  models at matched relative depth.
Only under summary/: DVC forbids writing inside a dependency (results/).

C7 is decided here (larger vs smaller pretrained model), on the headline sample and on every further sample
that both models have.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.io import read_json, write_csv, write_json
from analysis.params import ROOT, active_config, load_params
from analysis.stats.claims import c7_cross_model, matched_depth
from analysis.stats.model import jsonable
from analysis.stats.stability import control_distribution, stability

COMPARE_COLUMNS = ["r_median", "r_within_median", "r_within_sd", "r_within_iqr", "r_within_share_negative",
                   "r_within_share_significant", "partial_r_length_median", "partial_r_length_share_significant",
                   "partial_r_next.excess", "r_within.excess", "share_multimodal", "share_multimodal_short",
                   "bc_mean", "dip_mean"]


def read_model(root: Path, m: str) -> dict[str, Any]:
    d = Path(root) / "results" / m
    fix = f"run `dvc repro stats@{m}` first"
    out = {"summary": read_json(d / "summary.json", fix), "claims": read_json(d / "claims.json", fix),
           "blocks": _csv(d / "blocks.csv", fix), "replicates": []}
    rep = d / "replicates"
    if (rep / "index.json").exists():
        for r in read_json(rep / "index.json", f"run `dvc repro replicates@{m}`")["replicates"]:
            out["replicates"].append({**r, "claims": read_json(rep / r["id"] / "claims.json", "re-run replicates"),
                                      "blocks": _csv(rep / r["id"] / "blocks.csv", "re-run replicates")})
    return out


def _csv(path: Path, fix: str) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: {fix}")
    return pd.read_csv(path)


def cross_model(models: dict[str, dict], th: dict, alpha: float, min_agree: float) -> dict:
    trained = [m for m in models if models[m]["summary"].get("weights") != "random"]
    controls = [m for m in models if models[m]["summary"].get("weights") == "random"]
    sizes = {m: models[m]["summary"]["n_blocks"] * models[m]["summary"]["n_neurons"] for m in models}
    claims = {m: {k: dict(v) for k, v in models[m]["claims"].items()} for m in models}
    # C7 on each sample both trained models have (0 = headline)
    def c7_for(sample: int) -> dict:
        blocks = {}
        for m in trained:
            if sample == 0:
                blocks[m] = models[m]["blocks"]
            else:
                reps = [r for r in models[m]["replicates"] if r.get("sample") == sample and r["id"].startswith("sample")]
                if not reps:
                    return {}
                blocks[m] = reps[0]["blocks"]
        return c7_cross_model(blocks, sizes, th["C7"], alpha)

    c7 = c7_for(0)
    for m in trained:
        claims[m]["C7"] = c7
    for m in controls:
        claims[m]["C7"] = {**c7_cross_model({}, sizes, th["C7"], alpha), "role": "control"}
    # stability over samples: the headline and each sample replicate
    for m in models:
        samples = sorted({r["sample"] for r in models[m]["replicates"] if r["id"].startswith("sample")})
        per_sample = [claims[m]]
        for k in samples:
            rc = {cid: dict(v) for cid, v in
                  next(r for r in models[m]["replicates"] if r["id"] == f"sample{k}")["claims"].items()}
            if m in trained:
                rc["C7"] = c7_for(k) or rc.get("C7", {"verdict": "not_applicable", "tests": []})
            else:
                rc["C7"] = claims[m]["C7"]
            per_sample.append(rc)
        st = stability(per_sample, min_agree)
        for cid in claims[m]:
            claims[m][cid]["stability"] = st.get(cid, {})
    # the controls over their weight initialisations (headline sample), beside each trained model's verdict
    dists = {}
    for c in controls:
        inits = [claims[c]] + [r["claims"] for r in models[c]["replicates"] if r["id"].startswith("init")]
        dists[c] = control_distribution(inits)
    for m in trained:
        for cid, v in claims[m].items():
            if controls and cid != "C7":
                v["control"] = {c: {"verdict": claims[c][cid]["verdict"], **dists[c].get(cid, {})} for c in controls}
    return claims


def verdict_rows(models: dict[str, dict], claims: dict) -> pd.DataFrame:
    rows = []
    for m, mod in models.items():
        for cid, v in claims[m].items():
            rows.append({"model": m, "replicate": "headline", "sample": 0, "claim": cid, "verdict": v["verdict"]})
        for r in mod["replicates"]:
            for cid, v in r["claims"].items():
                verdict = v["verdict"]
                if cid == "C7":
                    st = claims[m]["C7"].get("stability", {})
                    k = r.get("sample", 0)
                    if r["id"].startswith("sample") and st.get("verdicts") and k < len(st["verdicts"]):
                        verdict = st["verdicts"][k]
                rows.append({"model": m, "replicate": r["id"], "sample": r.get("sample", 0), "claim": cid,
                             "verdict": verdict})
    return pd.DataFrame(rows, columns=["model", "replicate", "sample", "claim", "verdict"])


def run(params: dict[str, Any], root: Path = ROOT, models: list[str] | None = None) -> Path:
    names = models or list(active_config(params)["models"])
    cfg = params["stats"]
    loaded = {m: read_model(root, m) for m in names}
    claims = cross_model(loaded, cfg["claims"], float(cfg["alpha"]),
                         float(cfg.get("stability", {}).get("min_agree", 0.8)))
    out = Path(root) / "summary"
    write_json(out / "claims.json", jsonable(claims))
    write_csv(out / "verdicts.csv", verdict_rows(loaded, claims))
    write_csv(out / "compare.csv", matched_depth({m: loaded[m]["blocks"] for m in names}, COMPARE_COLUMNS))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    try:
        from analysis.config import check_synced

        check_synced()        # dvc.yaml must list exactly the models this stage reads
        run(load_params())
    except Exception as exc:  # one line, whatever the type (the traceback: TOKENLEN_DEBUG=1)
        from analysis.stages import report_error

        return report_error(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
