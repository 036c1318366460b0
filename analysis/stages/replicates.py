"""DVC stage `replicates@<model>`: the model's verdicts on every further sample and, for a random-weights
control, for every further weight initialisation.

    $ python -m analysis.stages.replicates --model smollm2-135m

Reads  results/<model>/tokens.parquet (headline sample), results/<model>/samples.parquet (the other
       samples of tokens.sample_seeds), params.yaml (seed, stats, extract, config.models.<model>)
Writes results/<model>/replicates/<id>/{blocks.csv, nulls.parquet, summary.json, claims.json} and
       results/<model>/replicates/index.json, the whole folder atomically.

Replicates: `sample<k>` for each sample k >= 1 (same model; for a control, its headline initialisation),
and, for a random-weights model with `init_seeds: [s0, s1, ...]`, `init<s>` for each s after the first on
the headline sample. Each runs the same code as the extract and stats stages (one model load per weight
initialisation): activations go to a temporary folder that is deleted after its statistics, so disk holds
one sample's activations at a time. Rank statistics are skipped (no verdict uses them); the dip test runs
only where C7 can be decided (two pretrained models in the configuration).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from analysis.io import atomic_dir, read_parquet, write_csv, write_json, write_parquet
from analysis.params import ROOT, active_config, model_spec
from analysis.stages import model_stage_main
from analysis.stages.extract import extract_activations, input_ids_from_tokens
from analysis.stats.pipeline import analyse, design_from_tokens


def replicate_list(spec: dict[str, Any], n_samples: int) -> list[dict[str, Any]]:
    """[{id, sample, init_seed}] of the replicates of a model (the headline is not one of them)."""
    from analysis.models.loading import init_seed

    reps = [{"id": f"sample{k}", "sample": k, "init_seed": init_seed(spec) if spec.get("source") == "random"
             else None} for k in range(1, n_samples)]
    if spec.get("source") == "random":
        for s in (spec.get("init_seeds") or [])[1:]:
            reps.append({"id": f"init{int(s)}", "sample": 0, "init_seed": int(s)})
    return reps


def _blocks(folder: Path, n_rows: int):
    from analysis.stages.stats import block_files, open_block
    import json

    meta = json.loads((folder / "meta.json").read_text())
    files = block_files(folder, meta)
    return meta, len(files), ((b, open_block(p, n_rows)) for b, p in enumerate(files))


def run(model_name: str, params: dict[str, Any], root: Path = ROOT, progress: bool = True) -> Path:
    from analysis.models.loading import load_model

    spec = model_spec(params, model_name)
    res = Path(root) / "results" / model_name
    tokens0 = read_parquet(res / "tokens.parquet", fix=f"run `dvc repro tokens@{model_name}`")
    samples = read_parquet(res / "samples.parquet", fix=f"run `dvc repro tokens@{model_name}`")
    n_samples = 1 + (int(samples["sample"].max()) if len(samples) else 0)
    reps = replicate_list(spec, n_samples)
    cfg, seed = params["stats"], int(params.get("seed", 0))
    pretrained = [n for n, s in active_config(params)["models"].items() if s.get("weights") != "random"]
    dip = len(pretrained) >= 2 and spec.get("weights") != "random"
    loaded: dict[Any, Any] = {}
    index = []
    with atomic_dir(res / "replicates") as out, tempfile.TemporaryDirectory(prefix="tokenlen-rep-") as scratch:
        for rep in reps:
            t0 = time.perf_counter()
            tokens = tokens0 if rep["sample"] == 0 else (
                samples[samples["sample"] == rep["sample"]].drop(columns="sample").reset_index(drop=True))
            key = rep["init_seed"]
            if key not in loaded:
                loaded.clear()  # one model in memory at a time
                loaded[key] = load_model({**spec, "init_seed": key} if key is not None else spec,
                                         seq_len=int(tokens0["pos"].nunique()))
            act = Path(scratch) / rep["id"]
            act.mkdir()
            rspec = {**spec, "init_seed": key} if key is not None else spec
            extract_activations(loaded[key], rspec, params["extract"], input_ids_from_tokens(tokens), act,
                                progress=False)
            meta, n_blocks, blocks = _blocks(act, len(tokens))
            design, keep = design_from_tokens(tokens, cfg, seed)
            st = analyse(blocks, design, keep, cfg, seed, {**meta, "model": model_name}, n_blocks, len(tokens),
                         ranks=False, dip=dip)
            shutil.rmtree(act)
            d = out / rep["id"]
            d.mkdir()
            write_csv(d / "blocks.csv", st.blocks)
            write_parquet(d / "nulls.parquet", st.nulls)
            write_json(d / "summary.json", st.summary)
            write_json(d / "claims.json", st.claims)
            index.append({**rep, "verdicts": {k: v["verdict"] for k, v in st.claims.items()}})
            if progress:
                print(f"replicates {model_name}: {rep['id']} in {time.perf_counter() - t0:.0f} s: "
                      + ", ".join(f"{k} {v['verdict']}" for k, v in st.claims.items()), flush=True)
        write_json(out / "index.json", {"model": model_name, "replicates": index})
    return res / "replicates"


def main(argv: list[str] | None = None) -> int:
    return model_stage_main(run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
