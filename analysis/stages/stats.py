"""DVC stage `stats@<model>`: per-neuron and per-block statistics of one model, their nulls and its verdicts.

    $ python -m analysis.stages.stats --model smollm2-135m

Reads  results/<model>/tokens.parquet, results/<model>/activations/{block_NN.npy, meta.json},
       params.yaml (seed, stats)
Writes results/<model>/neurons.parquet, blocks.csv, nulls.parquet, metrics.json (DVC metrics),
       summary.json, claims.json, each atomically. One block is in memory at a time (in its storage
       dtype); statistics run in float64 on chunks of `stats.chunk_neurons` neurons (analysis/stats/).
       Columns: analysis/stats/COLUMNS.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from analysis.io import read_json, read_parquet, write_csv, write_json, write_parquet
from analysis.params import ROOT
from analysis.stages import model_stage_main
from analysis.stats.pipeline import StatsInputError, analyse, design_from_tokens, split_block_index  # noqa: F401


def open_block(path: Path, n_rows: int) -> np.ndarray:
    """A block file, memory-mapped, with a message that names it when it is truncated or not a .npy."""
    try:
        X = np.load(path, mmap_mode="r")
    except (ValueError, OSError) as exc:
        raise StatsInputError(f"{path}: not a readable .npy file ({exc}); re-run `dvc repro -f extract@<model>` "
                              "or `dvc checkout` to restore it") from exc
    if X.ndim != 2 or X.shape[0] != n_rows:
        raise StatsInputError(f"{path}: shape {X.shape}, expected {n_rows} rows (one per token of tokens.parquet); "
                              "re-run `dvc repro extract@<model>`")
    return X


def block_files(act: Path, meta: dict) -> list[Path]:
    files = sorted(act.glob("block_*.npy"))
    n = int(meta.get("n_blocks", len(files)))
    if not files or len(files) != n:
        raise StatsInputError(f"{act}: found {len(files)} block files, meta.json says {n}: "
                              f"re-run `dvc repro extract@<model>`")
    return files


def run(model_name: str, params: dict[str, Any], root: Path = ROOT, progress: bool = True) -> Path:
    from tqdm import tqdm

    cfg = params["stats"]
    seed = int(params.get("seed", 0))
    res = Path(root) / "results" / model_name
    act = res / "activations"
    meta = read_json(act / "meta.json", fix=f"run `dvc repro extract@{model_name}` first")
    tokens = read_parquet(res / "tokens.parquet", fix=f"run `dvc repro tokens@{model_name}`")
    design, keep = design_from_tokens(tokens, cfg, seed)
    files = block_files(act, meta)
    bar = tqdm(total=len(files), desc=f"stats {model_name}", unit="block", disable=not progress)
    blocks = ((b, open_block(path, len(tokens))) for b, path in enumerate(files))
    try:
        out = analyse(blocks, design, keep, cfg, seed, {**meta, "model": model_name}, len(files), len(tokens),
                      progress=bar.update, source=act)
    finally:
        bar.close()
    write_parquet(res / "neurons.parquet", out.neurons)
    write_csv(res / "blocks.csv", out.blocks)
    write_parquet(res / "nulls.parquet", out.nulls)
    write_json(res / "metrics.json", out.metrics)
    write_json(res / "summary.json", out.summary)
    write_json(res / "claims.json", out.claims)
    if progress:
        print(f"stats {model_name}: " + ", ".join(f"{k} {v['verdict']}" for k, v in out.claims.items()))
    return res


def main(argv: list[str] | None = None) -> int:
    return model_stage_main(run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
