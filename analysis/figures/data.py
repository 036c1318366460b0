"""Reading the statistics stage's outputs: the ONE place that knows file names and column names.

    >>> from analysis.figures.data import load_model, C
    >>> mr = load_model("results", "smollm2-135m", spec)       # spec: params' model spec (label, weights, ...)
    >>> mr.neurons[C.r].median()                               # a late column rename is a one-line fix in C

Everything downstream (plots, metadata, tables) reaches columns only through `C`, `B`, `T`.
Contract: notes/CONTRACTS.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


class C:
    """Columns of results/<model>/neurons.parquet. `r` is the within-sequence correlation with length (what
    the verdicts test); `r_pooled` the study's pooled Pearson r."""
    block = "block"
    neuron = "neuron"
    rel_depth = "rel_depth"
    n = "n"
    r = "r_within"
    q = "r_within_q"
    r_pooled = "pearson_r"
    spearman = "spearman_r"
    r_freq = "r_freq"
    partial_r = "partial_r_length"
    partial_q = "partial_r_length_q"
    partial_spline = "partial_r_length_spline"
    partial_freq_r = "partial_r_freq"
    partial_freq_q = "partial_r_freq_q"
    r_next = "partial_r_next"
    d = "split_cohens_d"
    cliff = "split_cliffs_delta"
    dip = "dip"
    dip_p = "dip_p"
    bc = "bimodality_coefficient"


class B:
    """Columns of results/<model>/blocks.csv."""
    block = "block"
    rel_depth = "rel_depth"
    n_neurons = "n_neurons"
    n_valid = "n_valid"
    r_mean = "r_within_mean"
    r_median = "r_within_median"
    r_sd = "r_within_sd"
    r_iqr = "r_within_iqr"
    r_abs_mean = "r_within_abs_mean"
    share_negative = "r_within_share_negative"
    share_significant = "r_within_share_significant"
    pooled_median = "r_median"
    pooled_share_negative = "share_negative"
    partial_median = "partial_r_length_median"
    partial_sd = "partial_r_length_sd"
    partial_share_negative = "partial_r_length_share_negative"
    partial_share_significant = "partial_r_length_share_significant"
    partial_freq_share_significant = "partial_r_freq_share_significant"
    r_next_median = "partial_r_next_median"
    r_next_abs_mean = "partial_r_next_abs_mean"
    share_multimodal = "share_multimodal"
    share_multimodal_short = "share_multimodal_short"
    split_d_mean = "split_d_mean"
    # the tested summaries and their nulls: "<stat>.<neg|med|ms|sig>[.q025|.q975]", "<stat>.null_ms"
    @staticmethod
    def null(stat: str, key: str, q: str | None = None) -> str:
        return f"{stat}.{key}" + (f".{q}" if q else "")


class T:
    """Columns of results/<model>/tokens.parquet."""
    token_id = "token_id"
    text = "text"
    length = "length"
    log_freq = "log_freq"
    next_length = "next_length"
    special = "is_special"


CLAIM_IDS = tuple(f"C{i}" for i in range(1, 9))


@dataclass
class ModelResults:
    """What the assets stage needs from one model; `acts` is the median-split block only."""
    name: str
    spec: dict[str, Any]
    neurons: pd.DataFrame
    blocks: pd.DataFrame
    summary: dict[str, Any]
    tokens: pd.DataFrame
    meta: dict[str, Any]
    claims: dict[str, Any] = field(default_factory=dict)
    tokens_meta: dict[str, Any] = field(default_factory=dict)
    acts: np.ndarray | None = None
    replicates: list[dict[str, Any]] = field(default_factory=list)   # {id, sample, blocks, claims}

    def sample_blocks(self) -> list[pd.DataFrame]:
        """Block tables of every sample, the headline first (the stability bands)."""
        return [self.blocks] + [r["blocks"] for r in self.replicates if r["id"].startswith("sample")]

    @property
    def weights(self) -> str:
        return self.meta.get("weights") or self.spec.get("weights", "pretrained")

    @property
    def split_block(self) -> int:
        return int(self.summary["split"]["block"])

    @property
    def n_blocks(self) -> int:
        return int(self.summary.get("n_blocks") or self.meta["n_blocks"])

    def used_tokens(self) -> pd.DataFrame:
        """Tokens the statistics used (specials excluded), in activation row order."""
        return self.tokens[~self.tokens[T.special].astype(bool)]


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def read_claims(results: Path, summary_dir: Path, name: str) -> dict[str, Any]:
    """Claims of one model: summary/claims.json ({model: {C1: ...}}) first, else results/<model>/claims.json."""
    cross = summary_dir / "claims.json"
    if cross.exists():
        data = _read_json(cross)
        if name in data:
            return data[name]
    own = results / name / "claims.json"
    if own.exists():
        data = _read_json(own)
        return data.get(name, data) if isinstance(data, dict) else {}
    return {}


def load_model(results: str | Path, name: str, spec: dict[str, Any], summary_dir: str | Path = "summary",
               with_activations: bool = True) -> ModelResults:
    """Load one model's outputs; the activations of the split block only, memory-mapped."""
    import pyarrow.parquet as pq

    results, summary_dir = Path(results), Path(summary_dir)
    d = results / name
    tok_path = d / "tokens.parquet"
    kv = pq.read_schema(tok_path).metadata or {}
    tokens_meta = json.loads(kv[b"tokenlen"]) if b"tokenlen" in kv else {}
    mr = ModelResults(
        name=name,
        spec=spec,
        neurons=pd.read_parquet(d / "neurons.parquet"),
        blocks=pd.read_csv(d / "blocks.csv").sort_values(B.block).reset_index(drop=True),
        summary=_read_json(d / "summary.json"),
        tokens=pd.read_parquet(tok_path),
        meta=_read_json(d / "activations" / "meta.json"),
        claims=read_claims(results, summary_dir, name),
        tokens_meta=tokens_meta,
    )
    rep = d / "replicates"
    if (rep / "index.json").exists():
        for r in _read_json(rep / "index.json")["replicates"]:
            mr.replicates.append({**r, "blocks": pd.read_csv(rep / r["id"] / "blocks.csv").sort_values(B.block)
                                  .reset_index(drop=True), "claims": _read_json(rep / r["id"] / "claims.json")})
    if with_activations:
        path = d / "activations" / f"block_{mr.split_block:02d}.npy"
        mr.acts = np.load(path, mmap_mode="r")
    return mr
