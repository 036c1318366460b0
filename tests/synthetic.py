"""A small results/ + summary/ tree made by the real stats and summary stages on simulated activations, for
testing the assets stage and the manuscript without models.

    >>> from tests.synthetic import make_tree
    >>> params = make_tree(tmp_path, layout="offline")    # writes tmp_path/{results,summary,params.yaml}

layout "offline": one pretrained model + a random-weights control with three initialisations (like
`config: *offline`); layout "paper": two pretrained models of different depth + the control (like
`config: *paper`). Every trained model has two further samples (replicates) for the stability tables.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import yaml

from analysis.stats.pipeline import analyse, design_from_tokens
from analysis.stats.simulate import activations, write_model, zipf_stream

ROOT = Path(__file__).resolve().parent.parent


def _replicates(root: Path, name: str, params: dict, kinds: list[tuple[str, int, int]], n_blocks: int, m: int,
                weights: str, planted: str | None) -> None:
    rep = root / "results" / name / "replicates"
    rep.mkdir(parents=True, exist_ok=True)
    index = []
    for rid, sample, seed in kinds:
        tok = zipf_stream(seed if sample else 0, n_seq=8, seq_len=128)
        X = activations(tok, "iid", n_blocks, m, 500 + seed, planted=planted)
        d, keep = design_from_tokens(tok, params["stats"], 0)
        st = analyse(enumerate(X), d, keep, params["stats"], 0, {"model": name, "weights": weights}, n_blocks,
                     len(tok), ranks=False, dip=True)
        (rep / rid).mkdir()
        st.blocks.to_csv(rep / rid / "blocks.csv", index=False)
        st.nulls.to_parquet(rep / rid / "nulls.parquet")
        (rep / rid / "summary.json").write_text(json.dumps(st.summary))
        (rep / rid / "claims.json").write_text(json.dumps(st.claims))
        index.append({"id": rid, "sample": sample, "init_seed": None})
    (rep / "index.json").write_text(json.dumps({"model": name, "replicates": index}))


def make_tree(root: Path, layout: str = "offline", n_neurons: int = 32, seed: int = 0) -> dict:
    """Write results/, summary/ and params.yaml under `root`; return the params dict."""
    from analysis.stages import stats as stats_stage
    from analysis.stages import summary as summary_stage

    real = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    specs = {
        "offline": {"smollm2-135m": (6, "pretrained", "study"), "gpt-neo-125m-random": (4, "random", None)},
        "paper": {"gpt-neo-125m": (4, "pretrained", "study"), "gpt-neo-1p3b": (6, "pretrained", "study"),
                  "gpt-neo-125m-random": (4, "random", None)},
    }[layout]
    params = copy.deepcopy({k: v for k, v in real.items() if k not in ("configs", "config")})
    params["config"] = {"name": layout, "corpus": "debian-docs" if layout == "offline" else "fineweb",
                        "models": {n: real["models"][n] for n in specs}}
    params["tokens"] = {**real.get("tokens", {}), "n_sequences": 8, "seq_len": 128, "sample_seeds": [0, 1, 2]}
    params["stats"].update(split_block=1, chunk_neurons=32, dip_neurons=None, rank_neurons=None)
    params["stats"]["nulls"].update(n_permutations=60)
    tok = zipf_stream(seed, n_seq=8, seq_len=128)
    for i, (name, (nb, w, planted)) in enumerate(specs.items()):
        X = activations(tok, "iid", nb, n_neurons, seed + i, planted=planted)
        X[1][:, 0] = 1.0  # a constant neuron, as real blocks sometimes have
        write_model(root, name, tok, X, weights=w)
        md = {"corpus": "debian-docs", "reference": {"corpus": "debian-docs", "documents": 1500, "tokens": 123456,
                                                     "smoothing": "add-one"},
              "n_reference_tokens": 123456, "count_leading_space": True, "seed": 0,
              "sample_documents": [f"doc{k}" for k in range(18)]}
        _with_token_meta(root / "results" / name / "tokens.parquet", md)
        meta_path = root / "results" / name / "activations" / "meta.json"
        meta = json.loads(meta_path.read_text())
        meta.update(source="synthetic", site_module="model.layers.N.mlp.gate_proj" if w == "pretrained"
                    else "transformer.h.N.mlp.c_fc", device="cpu (synthetic)", torch="0.0", transformers="0.0")
        meta_path.write_text(json.dumps(meta))
        stats_stage.run(name, params, root=root, progress=False)
        if w == "pretrained":
            _replicates(root, name, params, [("sample1", 1, 11), ("sample2", 2, 12)], nb, n_neurons, w, planted)
        else:
            _replicates(root, name, params, [("init1", 0, 21), ("init2", 0, 22)], nb, n_neurons, w, planted)
    summary_stage.run(params, root=root, models=list(specs))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return params


def _with_token_meta(path: Path, md: dict) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}),
                                                  b"tokenlen": json.dumps(md).encode()}), path)


__all__ = ["make_tree"]
