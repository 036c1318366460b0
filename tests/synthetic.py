"""A small fake results/ tree that follows notes/CONTRACTS.md, for testing the assets stage without models.

    >>> from tests.synthetic import make_tree
    >>> params = make_tree(tmp_path, layout="offline")    # writes tmp_path/{results,summary,params.yaml}
    >>> # python -m analysis.stages.assets --params tmp_path/params.yaml --results tmp_path/results ...

layout "offline": one pretrained model + a random-weights control (like `config: *offline`);
layout "paper": two pretrained models of different depth + the control (like `config: *paper`).
Statistics are computed roughly from the fake activations so the figures look like real ones; the exact
definitions belong to the statistics stage and are not tested here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

VERDICTS = ["supported", "not_supported", "mixed", "not_applicable"]
ROOT = Path(__file__).resolve().parent.parent


def _tokens(rng, n_seq: int, seq_len: int) -> pd.DataFrame:
    n = n_seq * seq_len
    vocab = 300
    ids = rng.zipf(1.3, size=n) % vocab
    length = 1 + (np.log1p(ids) * 1.6 + rng.integers(0, 3, size=vocab)[ids]).astype(int).clip(0, 12)
    counts = np.bincount(ids, minlength=vocab) * 40 + 1
    log_freq = np.log10(counts / counts.sum())[ids]
    df = pd.DataFrame({"seq": np.repeat(np.arange(n_seq), seq_len), "pos": np.tile(np.arange(seq_len), n_seq),
                       "token_id": ids.astype(int), "text": [f"t{i}" for i in ids], "length": length.astype(int),
                       "log_freq": log_freq, "freq_count": counts[ids].astype(int)})
    nxt = df.groupby("seq")["length"].shift(-1).astype(float)
    df["next_length"] = nxt
    df["is_special"] = False
    df.loc[df.index[::97], "is_special"] = True
    return df


def _corr(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    az = (a - a.mean(0)) / a.std(0)
    xz = (x - x.mean()) / x.std()
    return (az * xz[:, None]).mean(0)


def _model(root: Path, name: str, rng, n_blocks: int, n_neurons: int, tok: pd.DataFrame, weights: str,
           multimodal: bool) -> None:
    d = root / "results" / name
    (d / "activations").mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(tok, preserve_index=False)
    md = {b"tokenlen": json.dumps({"corpus": "debian-docs", "reference": {"corpus": "debian-docs", "documents": 1500,
                                                                 "tokens": 123456, "smoothing": "add-one"},
                                   "n_reference_tokens": 123456, "count_leading_space": False, "seed": 0}).encode()}
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), **md}), d / "tokens.parquet")
    used = ~tok["is_special"].to_numpy()
    L = tok["length"].to_numpy(float)
    F = tok["log_freq"].to_numpy(float)
    nxt = tok["next_length"].to_numpy(float)
    med = float(np.median(L[used]))
    rows, brows = [], []
    for b in range(n_blocks):
        depth = b / max(n_blocks - 1, 1)
        slope = (0.25 if b == 0 else -0.12 * (1 - depth)) if weights == "pretrained" else 0.02
        w = rng.normal(slope, 0.08, n_neurons)
        a = rng.normal(size=(len(tok), n_neurons)) + np.outer((L - L.mean()) / L.std(), w)
        if multimodal:
            a += 2.5 * (rng.random((len(tok), 1)) < 0.3) * (rng.random(n_neurons) < 0.4)
        a[:, 0] = 1.0  # a constant neuron, as real blocks sometimes have
        np.save(d / "activations" / f"block_{b:02d}.npy", a.astype(np.float16))
        au = a[used]
        with np.errstate(invalid="ignore", divide="ignore"):
            r = _corr(au, L[used])
            rf = _corr(au, F[used])
            rlf = np.corrcoef(L[used], F[used])[0, 1]
            pr = (r - rf * rlf) / np.sqrt((1 - rf**2) * (1 - rlf**2))
            prf = (rf - r * rlf) / np.sqrt((1 - r**2) * (1 - rlf**2))
            ok = used & np.isfinite(nxt)
            rn = _corr(a[ok], nxt[ok])
        n = int(used.sum())
        p = np.exp(-0.5 * (r * np.sqrt(n)) ** 2)
        q = np.minimum(p * 3, 1)
        g = np.where(L[used] < med, 0, np.where(L[used] > med, 2, 1))
        ms = [au[g == k].mean(0) for k in range(3)]
        dip = np.abs(rng.normal(0.01 + 0.02 * multimodal, 0.005, n_neurons))
        df = pd.DataFrame({
            "block": b, "neuron": np.arange(n_neurons), "rel_depth": depth, "n": n,
            "pearson_r": r, "pearson_p": p, "pearson_q": q, "spearman_r": r * 0.95, "spearman_p": p, "spearman_q": q,
            "r_freq": rf, "partial_r_length": pr, "partial_p_length": p, "partial_q_length": np.minimum(q * 2, 1),
            "partial_r_freq": prf, "partial_p_freq": p, "partial_q_freq": q, "r_next_length": rn,
            "r_next_length_q": q, "split_mean_short": ms[0], "split_mean_equal": ms[1], "split_mean_long": ms[2],
            "split_median_short": ms[0], "split_median_equal": ms[1], "split_median_long": ms[2],
            "split_cohens_d": ms[2] - ms[0], "split_cliffs_delta": (ms[2] - ms[0]) / 2, "split_p": p, "split_q": q,
            "dip": dip, "dip_p": np.exp(-dip * 100), "bimodality_coefficient": 0.4 + dip,
            "nan_reason": "",
        })
        df.loc[0, ["pearson_r", "partial_r_length", "r_next_length", "split_cohens_d"]] = np.nan
        df.loc[0, "nan_reason"] = "constant activation"
        rows.append(df)
        rr = df["pearson_r"].dropna()
        prr = df["partial_r_length"].dropna()
        brows.append({
            "block": b, "rel_depth": depth, "n_neurons": n_neurons, "n_valid": len(rr), "r_mean": rr.mean(),
            "r_median": rr.median(), "r_sd": rr.std(), "r_iqr": rr.quantile(.75) - rr.quantile(.25),
            "r_q05": rr.quantile(.05), "r_q95": rr.quantile(.95), "share_negative": (rr < 0).mean(),
            "share_significant": (df["pearson_q"] < 0.05).mean(), "partial_r_mean": prr.mean(),
            "partial_r_median": prr.median(), "partial_r_sd": prr.std(),
            "partial_r_iqr": prr.quantile(.75) - prr.quantile(.25), "partial_share_negative": (prr < 0).mean(),
            "partial_share_significant": (df["partial_q_length"] < 0.05).mean(),
            "partial_freq_mean": df["partial_r_freq"].mean(),
            "partial_freq_share_significant": (df["partial_q_freq"] < 0.05).mean(),
            "r_next_mean": df["r_next_length"].mean(), "r_next_abs_mean": df["r_next_length"].abs().mean(),
            "r_abs_mean": rr.abs().mean(), "share_multimodal": (df["dip_p"] < 0.05).mean(),
            "dip_mean": df["dip"].mean(), "null_sd_analytic": 1 / np.sqrt(n - 1),
            "null_sd_permutation": 1 / np.sqrt(n - 1) * 1.01, "split_d_mean": df["split_cohens_d"].mean(),
        })
    pd.concat(rows).to_parquet(d / "neurons.parquet", index=False)
    pd.DataFrame(brows).to_csv(d / "blocks.csv", index=False)
    split_block = min(1, n_blocks - 1)
    lu = L[used]
    summary = {
        "model": name, "label": name, "weights": weights, "n_tokens": len(tok), "n_blocks": n_blocks,
        "n_neurons": n_neurons, "site": "pre",
        "lengths": {"min": int(lu.min()), "max": int(lu.max()), "median": med, "mean": float(lu.mean()),
                    "share_at_median": float((lu == med).mean()), "share_short": float((lu < med).mean()),
                    "share_long": float((lu > med).mean()), "n_levels": int(len(np.unique(lu))),
                    "histogram": {str(int(k)): int(v) for k, v in zip(*np.unique(lu, return_counts=True))}},
        "r_length_logfreq": float(np.corrcoef(lu, F[used])[0, 1]), "spearman_length_logfreq": -0.5,
        "split": {"block": split_block, "block_numbering": "0-based", "median": med, "n_short": int((lu < med).sum()),
                  "n_equal": int((lu == med).sum()), "n_long": int((lu > med).sum()), "pooled_mean_short": -0.01,
                  "pooled_mean_equal": 0.0, "pooled_mean_long": -0.03, "pooled_median_short": -0.02,
                  "pooled_median_equal": 0.0, "pooled_median_long": -0.04, "pooled_cohens_d": -0.05,
                  "pooled_cliffs_delta": -0.03, "pooled_p": 1e-6, "share_neurons_long_lower": 0.61,
                  "share_neurons_sig": 0.2},
        "aggregates": {"c3_blocks": "all but the first", "share_negative": 0.6, "median_r": -0.05,
                       "share_significant": 0.3, "share_significant_cluster": 0.2, "n_length_significant": 40,
                       "n_length_survives_control": 10, "share_length_survives_control": 0.25,
                       "share_freq_significant_given_length": 0.4, "median_abs_r": 0.08},
        "null": {"analytic_sd": 1 / np.sqrt(len(lu) - 1), "permutation_sd": 1.01 / np.sqrt(len(lu) - 1),
                 "permutation_q95_abs": 1.96 / np.sqrt(len(lu) - 1)},
    }
    (d / "summary.json").write_text(json.dumps(summary, indent=2))
    # statistic/threshold are numbers or dicts in the real stage; both forms appear here
    claims = {f"C{i}": {"verdict": VERDICTS[(i + len(name)) % 4],
                        "statistic": round(float(rng.random()), 4) if i % 2 else {"share": 0.5, "n": 12},
                        "threshold": 0.5 if i % 2 else {"min_share": 0.5, "middle": [0.25, 0.75]},
                        "detail": "synthetic"} for i in range(1, 9)}
    (d / "claims.json").write_text(json.dumps(claims, indent=2))
    meta = {"model": name, "label": name, "weights": weights, "source": "synthetic", "architecture": "fake",
            "site": "pre", "site_module": "model.layers.N.mlp.gate_proj" if weights == "pretrained" else
            "transformer.h.N.mlp.c_fc", "n_blocks": n_blocks, "n_neurons": n_neurons, "n_tokens": len(tok),
            "dtype": "float16", "seconds": 1.5, "device": "cpu (synthetic)", "torch": "0.0", "transformers": "0.0"}
    (d / "activations" / "meta.json").write_text(json.dumps(meta, indent=2))


def make_tree(root: Path, layout: str = "offline", n_neurons: int = 64, n_seq: int = 2, seq_len: int = 256,
              seed: int = 0) -> dict:
    """Write results/, summary/ and params.yaml under `root`; return the params dict."""
    rng = np.random.default_rng(seed)
    real = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    specs = {
        "offline": {"smollm2-135m": (4, "pretrained", False), "gpt-neo-125m-random": (4, "random", False)},
        "paper": {"gpt-neo-125m": (4, "pretrained", False), "gpt-neo-1p3b": (6, "pretrained", True),
                  "gpt-neo-125m-random": (4, "random", False)},
    }[layout]
    tok = _tokens(rng, n_seq, seq_len)
    claims = {}
    for name, (nb, w, mm) in specs.items():
        _model(root, name, rng, nb, n_neurons, tok, w, mm)
        claims[name] = json.loads((root / "results" / name / "claims.json").read_text())
    (root / "summary").mkdir(exist_ok=True)
    (root / "summary" / "claims.json").write_text(json.dumps(claims, indent=2))
    models = {n: real["models"][n] for n in specs}
    params = {k: v for k, v in real.items() if k not in ("configs", "config")}
    params["config"] = {"name": layout, "corpus": "debian-docs" if layout == "offline" else "fineweb", "models": models}
    params["tokens"] = {**real.get("tokens", {}), "n_sequences": n_seq, "seq_len": seq_len}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return params
