"""Synthetic token streams and activations for calibration tests: what chance produces, and planted effects.

    >>> from analysis.stats.simulate import zipf_stream, activations, write_model
    >>> tokens = zipf_stream(seed=3)                         # a tokens.parquet-like table (16 x 256 tokens)
    >>> X = activations(tokens, "typefun", n_blocks=6, n_neurons=48, seed=3)   # [blocks] of [n, m] float16
    >>> write_model(root, "m", tokens, X, weights="pretrained")

The stream imitates GPT-2 BPE on English prose where it matters for inference: Zipf-distributed types
(a few frequent types carry a large share of the tokens), frequent types are short (Zipf's law of
abbreviation: length falls with log frequency), log frequency measured on a separate reference draw,
documents with their own topical vocabulary (types cluster within sequences), separators between
documents. Scenarios of activations with no relation to length or frequency:

    iid         independent standard normal values
    factors_ar  three factors shared by all neurons, AR(1) in time (rho 0.8) within each sequence, plus
                each neuron's own AR(1) noise
    typefun     a random function of token identity (the same type always adds the same value, with two
                factors shared across neurons), plus noise: the case where tokens-as-units tests fail most

Planted effects (`planted=`): "study" (block 0 positive, middle blocks weakly negative, last blocks
narrower with a rising next-token effect), "frequency" (activations driven by log frequency only, so
length correlates only through the confound), "length" (length only).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SEP = 0  # token id of the document separator


def zipf_stream(seed: int, n_seq: int = 16, seq_len: int = 256, vocab: int = 3000, doc_len: int = 200,
                topic_types: int = 60, topic_boost: float = 8.0) -> pd.DataFrame:
    rng = np.random.default_rng([seed, 11])
    ranks = np.arange(1, vocab)
    p = 1.0 / (ranks + 2.7) ** 1.07
    p /= p.sum()
    # law of abbreviation: length grows with log rank, with noise; 1..16 characters
    length = np.clip(np.round(1.2 + 1.35 * np.log(ranks) + rng.normal(0, 1.1, len(ranks))), 1, 16).astype(int)
    ref = rng.multinomial(400_000, p)
    log_freq = np.log10((ref + 1.0) / (ref.sum() + len(ref)))
    n = n_seq * seq_len
    ids = np.empty(n, dtype=np.int64)
    i = 0
    while i < n:
        topic = rng.choice(len(ranks), topic_types, replace=False)
        q = p.copy()
        q[topic] *= topic_boost
        q /= q.sum()
        k = min(int(rng.integers(doc_len // 2, doc_len * 2)), n - i)
        ids[i: i + k] = 1 + rng.choice(len(ranks), k, p=q)
        i += k
        if i < n:
            ids[i] = SEP
            i += 1
    special = ids == SEP
    L = np.where(special, 13, length[np.maximum(ids - 1, 0)])
    F = np.where(special, 0.0, log_freq[np.maximum(ids - 1, 0)])
    seq = np.repeat(np.arange(n_seq), seq_len)
    pos = np.tile(np.arange(seq_len), n_seq)
    nxt = np.r_[L[1:], np.nan].astype(float)
    nxt[pos == seq_len - 1] = np.nan
    nxt[np.r_[special[1:], True]] = np.nan
    counts = np.r_[0, ref][ids]
    return pd.DataFrame({"seq": seq, "pos": pos, "token_id": ids, "text": [f"t{t}" for t in ids],
                         "length": L.astype(np.int64), "log_freq": F, "freq_count": counts.astype(np.int64),
                         "next_length": nxt, "is_special": special})


def _ar(rng, seq: np.ndarray, m: int, rho: float) -> np.ndarray:
    e = rng.standard_normal((len(seq), m))
    out = np.empty_like(e)
    for g in np.unique(seq):
        idx = np.flatnonzero(seq == g)
        z = e[idx[0]].copy()
        for i in idx:
            z = rho * z + np.sqrt(1 - rho * rho) * e[i]
            out[i] = z
    return out


def _z(v: np.ndarray) -> np.ndarray:
    return (v - v.mean()) / v.std()


def activations(tokens: pd.DataFrame, scenario: str, n_blocks: int = 6, n_neurons: int = 48, seed: int = 0,
                planted: str | None = None, scale: float = 1.0, offset_neurons: int = 0) -> list[np.ndarray]:
    """[n_blocks] float16 arrays [n_tokens, n_neurons] (special rows included, with their own values).
    offset_neurons: that many narrow neurons far from zero (SD of a few float16 steps at their mean), the
    case that fakes multimodality when storage ties are not broken."""
    rng = np.random.default_rng([seed, 23, n_blocks, n_neurons])
    n = len(tokens)
    seq = tokens["seq"].to_numpy()
    ids = tokens["token_id"].to_numpy()
    y = _z(tokens["length"].to_numpy(float))
    f = _z(tokens["log_freq"].to_numpy(float))
    nl = tokens["next_length"].to_numpy(float)
    nl = np.where(np.isfinite(nl), (nl - np.nanmean(nl)) / np.nanstd(nl), 0.0)
    uniq, inv = np.unique(ids, return_inverse=True)
    out = []
    for b in range(n_blocks):
        depth = b / max(n_blocks - 1, 1)
        if scenario == "iid":
            X = rng.standard_normal((n, n_neurons))
        elif scenario == "factors_ar":
            F = _ar(rng, seq, 3, 0.8)
            X = F @ rng.standard_normal((3, n_neurons)) + _ar(rng, seq, n_neurons, 0.5)
        elif scenario == "typefun":
            U = rng.standard_normal((len(uniq), 2)) @ rng.standard_normal((2, n_neurons)) + rng.standard_normal(
                (len(uniq), n_neurons))
            X = U[inv] + 0.5 * rng.standard_normal((n, n_neurons))
        else:
            raise ValueError(f"unknown scenario {scenario!r}")
        if planted == "study":
            slope = 0.45 if b == 0 else -0.12 * (1 - 0.7 * depth)
            w = rng.normal(slope, 0.05, n_neurons)
            X = X + np.outer(y, w) + np.outer(nl, rng.normal(0.02 + 0.2 * depth**2, 0.02, n_neurons))
        elif planted == "frequency":
            X = X + np.outer(f, rng.normal(0.25, 0.05, n_neurons))
        elif planted == "length":
            X = X + np.outer(y, rng.normal(-0.2, 0.05, n_neurons))
        X = scale * X
        if offset_neurons:
            X[:, :offset_neurons] = 6.0 + 0.004 * rng.standard_normal((n, offset_neurons))
        out.append(X.astype(np.float16))
    return out


def write_model(root: Path, name: str, tokens: pd.DataFrame, blocks: list[np.ndarray], weights: str = "pretrained"
                ) -> None:
    d = Path(root) / "results" / name
    (d / "activations").mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(tokens, preserve_index=False)
    pq.write_table(table, d / "tokens.parquet")
    for b, X in enumerate(blocks):
        np.save(d / "activations" / f"block_{b:02d}.npy", X)
    meta = {"model": name, "label": name, "weights": weights, "n_blocks": len(blocks),
            "n_neurons": int(blocks[0].shape[1]), "site": "pre", "n_tokens": len(tokens), "dtype": "float16"}
    (d / "activations" / "meta.json").write_text(json.dumps(meta))


def small_sample(n_seq: int = 8, seq_len: int = 90, m: int = 10, seed: int = 1, dtype=np.float16,
                 vocab: int = 70):
    """A small sample with recurring types, for reference checks of every statistic: returns
    (X [n, m] in row order, a dict of token covariates in row order, and the design's inputs).
    Neurons: 1 a length neuron, 2 a frequency neuron, 3 heavy ties, 4 constant, 5 bimodal."""
    rng = np.random.default_rng(seed)
    n = n_seq * seq_len
    tid = 1 + (rng.zipf(1.4, n) % vocab)
    length_t = 1 + (np.log1p(np.arange(vocab + 2)) * 1.4).astype(int) + rng.integers(0, 3, vocab + 2)
    logf_t = -np.log1p(np.arange(vocab + 2)) + 0.4 * rng.standard_normal(vocab + 2)
    length = length_t[tid].astype(float)
    log_freq = logf_t[tid]
    seq = np.repeat(np.arange(n_seq), seq_len)
    nxt = np.r_[tid[1:], -1]
    nxt[seq_len - 1:: seq_len] = -1
    nxt[[7, 100]] = -1   # a few tokens whose next token is special
    X = rng.standard_normal((n, m)) + 0.2 * rng.standard_normal((n_seq, m))[seq]
    X[:, 1] += -0.3 * length
    X[:, 2] = 0.5 * log_freq + rng.standard_normal(n)
    X[:, 3] = rng.integers(0, 4, n)
    X[:, 4] = 2.5
    X[:, 5] = np.where(rng.random(n) < 0.5, -2, 2) + 0.3 * rng.standard_normal(n)
    nl = np.where(nxt >= 0, length_t[np.maximum(nxt, 0)], np.nan)
    cov = {"token_id": tid, "length": length, "log_freq": log_freq, "seq": seq, "next_token_id": nxt,
           "next_length": nl}
    return X.astype(dtype), cov
