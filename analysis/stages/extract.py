"""DVC stage `extract@<model>`: hooked MLP activations of every block for the model's token sample.

    $ python -m analysis.stages.extract --model smollm2-135m

Reads  results/<model>/tokens.parquet, params.yaml (extract, config.models.<model>)
Writes results/<model>/activations/block_NN.npy + meta.json, atomically: the directory appears only when
every block is complete, so an interrupted run leaves nothing that looks finished.
"""

from __future__ import annotations

import sys
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.io import atomic_dir, read_parquet
from analysis.stages import model_stage_main
from analysis.params import ROOT, model_spec


def input_ids_from_tokens(tokens: pd.DataFrame) -> np.ndarray:
    """[n_sequences, seq_len] token ids from the token table (whose row order is seq-major)."""
    for col in ("seq", "pos", "token_id"):
        if col not in tokens:
            raise ValueError(f"tokens.parquet lacks column {col!r}: re-run `dvc repro tokens`")
    n_seq, seq_len = tokens["seq"].nunique(), tokens["pos"].nunique()
    expected_seq = np.repeat(np.arange(n_seq), seq_len)
    expected_pos = np.tile(np.arange(seq_len), n_seq)
    if len(tokens) != n_seq * seq_len or not (
        np.array_equal(tokens["seq"].to_numpy(), expected_seq) and np.array_equal(tokens["pos"].to_numpy(), expected_pos)
    ):
        raise ValueError("tokens.parquet rows are not in (seq, pos) order with full windows: re-run the tokens stage")
    return tokens["token_id"].to_numpy(dtype=np.int64).reshape(n_seq, seq_len)


def extract_activations(model, spec: dict[str, Any], cfg: dict[str, Any], input_ids: np.ndarray, out_dir: Path,
                        progress: bool = True) -> tuple[dict[str, Any], float]:
    """Hooked activations of `model` for `input_ids` into `out_dir` (block_NN.npy + meta.json); returns the
    meta and the seconds taken (kept out of meta.json: identical inputs give identical outputs)."""
    import torch
    import transformers

    from analysis.models.architectures import architecture_of
    from analysis.models.extraction import extract_to_dir, resolve_device
    from analysis.models.loading import describe

    arch = architecture_of(model)
    sites = arch.site_names(model, cfg["site"])
    device = resolve_device(cfg.get("device", "auto"))
    timing = extract_to_dir(model, input_ids, sites, out_dir, retain=arch.retain(cfg["site"]),
                            batch_size=int(cfg["batch_size"]), dtype=cfg["dtype"], device=device,
                            progress=progress, fused=bool(cfg.get("fused", False)),
                            compute=str(cfg.get("compute", "float32")), threads=int(cfg.get("threads", 0)))
    meta = {
        **describe(spec),
        "model": spec["name"],
        "model_type": model.config.model_type,
        "family": arch.family,
        "site": cfg["site"],
        "site_module": arch.site_module(cfg["site"]),
        "site_capture": arch.retain(cfg["site"]),
        "dtype": cfg["dtype"],
        "batch_size": int(cfg["batch_size"]),
        "fused": bool(cfg.get("fused", False)),
        "compute": str(cfg.get("compute", "float32")),
        "n_sequences": int(input_ids.shape[0]),
        "seq_len": int(input_ids.shape[1]),
        **timing,
        "device": str(device),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "machine": platform.machine(),
    }
    seconds = meta.pop("seconds")
    (Path(out_dir) / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta, seconds


def run(model_name: str, params: dict[str, Any], root: Path = ROOT, progress: bool = True) -> Path:
    from analysis.models.loading import load_model

    spec = model_spec(params, model_name)
    cfg = params["extract"]
    out = root / "results" / model_name / "activations"
    tokens_path = root / "results" / model_name / "tokens.parquet"
    input_ids = input_ids_from_tokens(read_parquet(tokens_path, fix=f"run `dvc repro tokens@{model_name}` first",
                                                   columns=["seq", "pos", "token_id"]))
    with atomic_dir(out) as tmp:      # made first: an unwritable folder fails before the model loads
        model = load_model(spec, seq_len=input_ids.shape[1])
        meta, seconds = extract_activations(model, spec, cfg, input_ids, tmp, progress)
    print(f"extract {model_name}: {meta['n_blocks']} blocks x {meta['n_neurons']} neurons x "
          f"{meta['n_tokens']} tokens in {seconds:.1f} s on {meta['device']}")
    return out


def main(argv: list[str] | None = None) -> int:
    return model_stage_main(run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
