"""DVC stage `assets`: figures (one set per language), tables and metadata.yml for the Quarto manuscript.

    python -m analysis.stages.assets                       # reads results/, summary/, params.yaml
    python -m analysis.stages.assets --out /tmp/gen        # elsewhere (the tests use a synthetic results tree)

Reads, per model of the active configuration: results/<m>/{neurons.parquet, blocks.csv, summary.json,
claims.json, tokens.parquet, activations/meta.json, activations/block_NN.npy (the median-split block only)}
and summary/claims.json. Writes report/_generated/:
    metadata.yml                      every number/verdict/name the prose cites (Quarto `metadata-files`)
    figures/<lang>/<name>.{svg,png}   the same figures in every language
    tables/<lang>/<name>.md           pipe tables for `{{< include >}}`

Metadata keys are nested YAML read with dotted paths, e.g. `{{< meta m.primary.c3.share_negative >}}`:
    m.<model>.*          one block per model (model keys of params.yaml; dots in names become "p")
    m.primary.*          the first pretrained model (what the prose talks about), a copy of its m.<model>
    cfg.*, corpus.*, params.*, prov.*    configuration, corpus, parameters, provenance
    say.<topic>_en/_vi   whole sentences whose wording depends on verdicts or on the configuration
A leaf that differs by language ends in `_en` / `_vi`; every other value is the same string in both.
All values are strings, formatted once here (r: 3 decimals, shares: percent with 1 decimal, counts with a
thin-space thousands separator, p: 2 significant digits or "< 0.001").

Determinism: nothing time- or checkout-dependent is written (the render date is Quarto's `date: today`; the
git commit/tag belong to render-time provenance, analysis/provenance.py). Same inputs and environment →
byte-identical outputs, so `dvc repro` stays a no-op.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analysis.figures import plots, style
from analysis.figures import sentences as S
from analysis.figures.data import B, C, CLAIM_IDS, T, ModelResults, load_model
from analysis.figures.i18n import LANGS, WEIGHTS, tr, verdict_word
from analysis.io import atomic_dir
from analysis.params import ROOT, active_config, load_params
from analysis.provenance import package_versions

FIGURES = ("token_lengths", "split_histograms", "r_at_block", "r_density_lines", "r_heatmap", "raw_vs_partial",
           "length_vs_logfreq", "depth_compare", "multimodality", "null_control")
TABLES = ("tokens", "blocks", "claims", "provenance")


# ---------------------------------------------------------------------------------------------- formatting
MINUS = "\u2212"
THIN = "\u2009"


def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fr(x, nd: int = 3) -> str:
    """A correlation-like number: fixed decimals, typographic minus."""
    if not _finite(x):
        return "—"
    s = f"{float(x):.{nd}f}"
    if float(s) == 0:
        s = s.lstrip("-")
    return s.replace("-", MINUS)


def fpct(x, nd: int = 1) -> str:
    return "—" if not _finite(x) else f"{100 * float(x):.{nd}f}%"


def fint(x) -> str:
    if not _finite(x):
        return "—"
    return f"{int(round(float(x))):,}".replace(",", THIN)


def fp(x) -> str:
    if not _finite(x):
        return "—"
    x = float(x)
    return "< 0.001" if x < 0.001 else f"{x:.2g}"


def is_p_value(key: str, value) -> bool:
    return (key == "p" or key.endswith("_p") or key.startswith("p_")) and isinstance(value, (float, np.floating))


def fnum(x) -> str:
    """A statistic of unknown kind (claims.json): integers as counts, others with 3 significant digits."""
    if isinstance(x, bool) or x is None:
        return "—" if x is None else str(x).lower()
    if isinstance(x, (int, np.integer)):
        return fint(x)
    if isinstance(x, (float, np.floating)):
        if not math.isfinite(x):
            return "—"
        return fr(x, 3) if abs(x) < 100 else fint(x)
    if isinstance(x, dict):  # p-values by name: "< 0.001" rather than a rounded 0.000
        return "; ".join(f"{k} = {fp(v) if is_p_value(k, v) else fnum(v)}" for k, v in x.items())
    if isinstance(x, (list, tuple)):
        return ", ".join(fnum(v) for v in x)
    return str(x)


def md_escape(s: str) -> str:
    return str(s).replace("|", "\\|")


def md_table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(md_escape(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def put(tree: dict, dotted: str, value: Any) -> None:
    node = tree
    *path, leaf = dotted.split(".")
    for k in path:
        node = node.setdefault(k, {})
    node[leaf] = value


def meta_key(model: str) -> str:
    # Quarto's `meta` shortcode splits keys on "." so a model key must not contain one.
    return model.replace(".", "p")


# ---------------------------------------------------------------------------------------------- inputs
def model_labels(params: dict, name: str, spec: dict, lang: str, short: bool = False) -> str:
    a = params.get("assets", {})
    table = a.get("short_labels" if short else "labels", {}).get(lang, {}) or {}
    if name in table:
        return table[name]
    if short and name in (a.get("labels", {}).get(lang, {}) or {}):
        return a["labels"][lang][name]
    return spec.get("label", name)


def data_version(root: Path) -> str:
    """The md5 DVC recorded for data/raw (data.dvc), i.e. the data version; '—' before `dvc add`."""
    f = root / "data.dvc"
    if not f.exists():
        return "—"
    try:
        outs = (yaml.safe_load(f.read_text()) or {}).get("outs", [])
        return str(outs[0].get("md5", "—")) if outs else "—"
    except (yaml.YAMLError, AttributeError, IndexError):
        return "—"


def results_digest(results: Path, summary_dir: Path, names: list[str]) -> str:
    """sha256 (first 12 hex) over the small result files the assets read: a fingerprint of the analysis."""
    h = hashlib.sha256()
    files = [results / n / f for n in names for f in ("summary.json", "claims.json", "blocks.csv")]
    files.append(summary_dir / "claims.json")
    for f in files:
        if f.exists():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]




# ---------------------------------------------------------------------------------------------- numbers
def split_groups(mr: ModelResults) -> tuple[np.ndarray, float]:
    tok = mr.tokens
    used = ~tok[T.special].astype(bool).to_numpy()
    lengths = tok[T.length].to_numpy(float)[used]
    med = float(mr.summary.get("split", {}).get("median", np.median(lengths)))
    groups = np.where(lengths < med, "short", np.where(lengths > med, "long", "equal"))
    return groups, med


def used_rows(mr: ModelResults) -> np.ndarray:
    return np.flatnonzero(~mr.tokens[T.special].astype(bool).to_numpy())


def weighted(bl: pd.DataFrame, col: str) -> float:
    if col not in bl:
        return float("nan")
    w = bl[B.n_valid] if B.n_valid in bl else pd.Series(1.0, index=bl.index)
    ok = bl[col].notna()
    return float((bl.loc[ok, col] * w[ok]).sum() / max(w[ok].sum(), 1))


def model_numbers(params: dict, mr: ModelResults, alpha: float) -> dict[str, Any]:
    """The per-model block of metadata (nested dict of strings)."""
    s, nb, bl = mr.summary, mr.neurons, mr.blocks
    L, sp, nl = s.get("lengths", {}), s.get("split", {}), s.get("null", {})
    out: dict[str, Any] = {}
    p = lambda k, v: put(out, k, v)  # noqa: E731
    spec, meta = mr.spec, mr.meta
    for lang in LANGS:
        p(f"label_{lang}", model_labels(params, mr.name, spec, lang))
        p(f"short_{lang}", model_labels(params, mr.name, spec, lang, short=True))
        p(f"weights_{lang}", WEIGHTS.get(mr.weights, {"en": mr.weights, "vi": mr.weights})[lang])
    p("name", mr.name)
    p("source", str(spec.get("source", meta.get("source", "—"))))
    if spec.get("repo_id"):
        p("version", f"{spec['repo_id']} @ {str(spec.get('revision', '—'))[:12]}")
    elif spec.get("package"):
        p("version", f"{spec['package']} {spec.get('version', '')}".strip())
    else:
        p("version", f"{spec.get('architecture', '—')}, init seed {spec.get('init_seed', '—')}")
    n_blocks = mr.n_blocks
    n_used = int(len(used_rows(mr)))
    p("n_blocks", fint(n_blocks))
    p("last_block", fint(n_blocks - 1))
    p("n_neurons", fint(s.get("n_neurons") or meta.get("n_neurons")))
    p("n_neurons_total", fint(len(nb)))
    p("n_tokens", fint(s.get("n_tokens") or meta.get("n_tokens")))
    p("n_used", fint(n_used))
    p("site_module", str(meta.get("site_module", "—")))

    # C1: lengths
    p("c1.len_min", fint(L.get("min")))
    p("c1.len_max", fint(L.get("max")))
    p("c1.len_median", fr(L.get("median"), 1) if not float(L.get("median", 0)).is_integer() else fint(L.get("median")))
    p("c1.len_mean", fr(L.get("mean"), 2))
    p("c1.n_levels", fint(L.get("n_levels")))
    p("c1.share_at_median", fpct(L.get("share_at_median")))
    p("c1.share_short", fpct(L.get("share_short")))
    p("c1.share_long", fpct(L.get("share_long")))

    # C2: median split at the study's block
    b0 = mr.split_block
    p("c2.block", fint(b0))
    p("c2.block_1based", fint(b0 + 1))
    for lang in LANGS:
        p(f"c2.numbering_{lang}", S.numbering_sentence(lang, b0))
    p("c2.median", fint(sp.get("median")) if _finite(sp.get("median")) and float(sp["median"]).is_integer()
      else fr(sp.get("median"), 1))
    for g in ("short", "equal", "long"):
        p(f"c2.n_{g}", fint(sp.get(f"n_{g}")))
        p(f"c2.mean_{g}", fr(sp.get(f"pooled_mean_{g}", sp.get(f"mean_{g}"))))
        p(f"c2.median_{g}", fr(sp.get(f"pooled_median_{g}", sp.get(f"median_{g}"))))
    p("c2.pooled_d", fr(sp.get("pooled_cohens_d")))
    p("c2.pooled_cliff", fr(sp.get("pooled_cliffs_delta")))
    p("c2.pooled_p", fp(sp.get("pooled_p")))
    p("c2.share_long_lower", fpct(sp.get("share_neurons_long_lower")))
    p("c2.share_sig", fpct(sp.get("share_neurons_sig")))
    at = nb[nb[C.block] == b0]
    p("c2.median_d", fr(at[C.d].median()))

    # C3: direction and size of r. The statistics stage's aggregates (the numbers its verdicts used) come
    # first; the fallback recomputes them over all blocks from neurons.parquet.
    A = s.get("aggregates", {})
    r = nb[C.r].to_numpy(float)
    r = r[np.isfinite(r)]
    excl = A.get("c3_blocks", "all") != "all"
    for lang in LANGS:
        p(f"c3.blocks_{lang}", {("en", True): "all blocks but the first", ("en", False): "all blocks",
                                ("vi", True): "mọi khối trừ khối đầu", ("vi", False): "mọi khối"}[(lang, excl)])
    p("c3.share_negative", fpct(A.get("share_negative", np.mean(r < 0) if r.size else np.nan)))
    p("c3.median_r", fr(A.get("median_r", np.median(r) if r.size else np.nan)))
    p("c3.median_abs_r", fr(A.get("median_abs_r", np.median(np.abs(r)) if r.size else np.nan)))
    p("c3.share_significant", fpct(A.get("share_significant", weighted(bl, B.share_significant))))
    p("c3.share_significant_cluster", fpct(A.get("share_significant_cluster")))
    row = bl[bl[B.block] == b0]
    rb = row.iloc[0] if len(row) else pd.Series(dtype=float)
    p("c3.split_share_negative", fpct(rb.get(B.share_negative)))
    p("c3.split_median_r", fr(rb.get(B.r_median)))
    p("c3.split_share_significant", fpct(rb.get(B.share_significant)))
    p("c3.split_sd", fr(rb.get(B.r_sd)))
    p("c3.max_abs_r", fr(np.max(np.abs(r)) if r.size else np.nan))

    # C4: first block against the rest
    first, rest = bl.iloc[0], nb[nb[C.block] != bl.iloc[0][B.block]]
    p("c4.first_median_r", fr(first[B.r_median]))
    p("c4.first_share_positive", fpct(1 - first[B.share_negative]))
    p("c4.rest_median_r", fr(rest[C.r].median()))
    p("c4.rest_share_negative", fpct((rest[C.r] < 0).mean()))

    # C5: spread by depth and the next token
    sd = bl[B.r_sd].to_numpy(float)
    imax = int(np.nanargmax(sd)) if np.isfinite(sd).any() else 0
    p("c5.sd_first", fr(sd[0]))
    p("c5.sd_last", fr(sd[-1]))
    p("c5.sd_max", fr(sd[imax]))
    p("c5.sd_max_block", fint(bl[B.block].iloc[imax]))
    p("c5.iqr_first", fr(bl[B.r_iqr].iloc[0]))
    p("c5.iqr_last", fr(bl[B.r_iqr].iloc[-1]))
    p("c5.iqr_max", fr(bl[B.r_iqr].max()))
    rn = bl[B.r_next_abs_mean].to_numpy(float)
    p("c5.rnext_first", fr(rn[0]))
    p("c5.rnext_last", fr(rn[-1]))
    p("c5.rabs_last", fr(bl[B.r_abs_mean].iloc[-1]))
    p("c5.rabs_first", fr(bl[B.r_abs_mean].iloc[0]))

    # C7: multimodality
    p("c7.share_multimodal", fpct(weighted(bl, B.share_multimodal)))
    p("c7.split_share_multimodal", fpct(rb.get(B.share_multimodal)))
    p("c7.max_share_multimodal", fpct(bl[B.share_multimodal].max()))

    # C8: frequency
    p("c8.r_length_logfreq", fr(s.get("r_length_logfreq")))
    p("c8.spearman_length_logfreq", fr(s.get("spearman_length_logfreq")))
    p("c8.share_sig_raw", fpct(weighted(bl, B.share_significant)))
    p("c8.share_sig_partial", fpct(weighted(bl, B.partial_share_significant)))
    # "kept": significant for length before and after the control, with the same sign (as the verdict counts)
    sig_raw = nb[C.q] < alpha
    keep = sig_raw & (nb[C.partial_q] < alpha) & (np.sign(nb[C.partial_r]) == np.sign(nb[C.r]))
    p("c8.share_sig_freq", fpct(A.get("share_freq_significant_given_length",
                                      weighted(bl, B.partial_freq_share_significant))))
    p("c8.share_kept", fpct(A.get("share_length_survives_control", keep.sum() / sig_raw.sum() if sig_raw.any()
                                  else np.nan)))
    p("c8.n_sig_raw", fint(A.get("n_length_significant", sig_raw.sum())))
    p("c8.n_kept", fint(A.get("n_length_survives_control", keep.sum())))
    pr = nb[C.partial_r].to_numpy(float)
    pr = pr[np.isfinite(pr)]
    p("c8.partial_median_r", fr(np.median(pr) if pr.size else np.nan))
    p("c8.partial_share_negative", fpct(np.mean(pr < 0) if pr.size else np.nan))
    p("c8.split_partial_median_r", fr(rb.get(B.partial_median)))
    p("c8.alpha", fr(alpha, 2))

    # nulls
    n = float(np.nanmedian(nb[C.n])) if C.n in nb else float(n_used)
    p("null.n", fint(n))
    p("null.analytic_sd", fr(1 / math.sqrt(max(n - 1, 1)), 4))
    p("null.band", fr(plots.Z_CHANCE / math.sqrt(max(n - 1, 1)), 4))
    p("null.permutation_sd", fr(nl.get("permutation_sd"), 4))
    p("null.permutation_q95", fr(nl.get("permutation_q95_abs"), 4))
    sd_split = float(at[C.r].std()) if len(at) else np.nan
    p("null.split_sd", fr(sd_split, 4))
    p("null.split_ratio", fr(sd_split * math.sqrt(max(n - 1, 1)), 1))
    band = plots.Z_CHANCE / math.sqrt(max(n - 1, 1))
    p("null.share_outside", fpct(np.mean(np.abs(r) > band) if r.size else np.nan))

    # claims
    for cid in CLAIM_IDS:
        c = mr.claims.get(cid, {}) or {}
        v = c.get("verdict")
        k = cid.lower()
        p(f"{k}.verdict", v or "missing")
        p(f"{k}.statistic", fnum(c.get("statistic")))
        p(f"{k}.threshold", fnum(c.get("threshold")))
        for lang in LANGS:
            p(f"{k}.verdict_{lang}", verdict_word(lang, v))
    return out


def build_metadata(params: dict, models: dict[str, ModelResults], root: Path, results: Path,
                   summary_dir: Path) -> tuple[dict, dict[str, str]]:
    cfg, a = active_config(params), params.get("assets", {})
    alpha = float(params.get("stats", {}).get("alpha", 0.05))  # the stats stage's level
    names = list(models)
    pretrained = [n for n in names if models[n].weights != "random"]
    controls = [n for n in names if models[n].weights == "random"]
    roles = {"primary": (pretrained or names)[0]}
    if controls:
        roles["control"] = controls[0]
    if len(pretrained) > 1:
        roles["secondary"] = pretrained[1]

    tree: dict[str, Any] = {}
    per = {n: model_numbers(params, models[n], alpha) for n in names}
    for n in names:
        put(tree, f"m.{meta_key(n)}", per[n])
    for role, n in roles.items():
        put(tree, f"m.{role}", per[n])

    prim = models[roles["primary"]]
    corpus_name = cfg.get("corpus", "—")
    corpus = params.get("corpora", {}).get(corpus_name, {})
    put(tree, "cfg.name", str(cfg.get("name", "—")))
    put(tree, "cfg.n_models", str(len(names)))
    put(tree, "cfg.n_pretrained", str(len(pretrained)))
    put(tree, "corpus.name", str(corpus_name))
    put(tree, "corpus.kind", str(corpus.get("kind", "—")))
    if corpus.get("repo_id"):
        desc = f"{corpus['repo_id']}, {corpus.get('filename', '')} @ {str(corpus.get('revision', ''))[:12]}"
    elif corpus.get("packages"):
        desc = ", ".join(f"{k} {v.get('version', '') if isinstance(v, dict) else v}".strip()
                         for k, v in corpus["packages"].items())
    else:
        desc = str(corpus_name)
    put(tree, "corpus.source", desc)
    tm = prim.tokens_meta
    ref = tm.get("reference", {})
    if isinstance(ref, dict):  # tokens.parquet metadata: the reference pool of the same corpus
        docs = fint(ref["documents"]) if "documents" in ref else "—"
        put(tree, "corpus.reference_en", f"{ref.get('corpus', '—')}, {docs} documents not in the sample")
        put(tree, "corpus.reference_vi", f"{ref.get('corpus', '—')}, {docs} văn bản không thuộc mẫu")
    else:
        put(tree, "corpus.reference_en", str(ref or "—"))
        put(tree, "corpus.reference_vi", str(ref or "—"))
    put(tree, "corpus.n_reference_tokens", fint(tm.get("n_reference_tokens")))

    tp = params.get("tokens", {})
    put(tree, "params.n_sequences", fint(tp.get("n_sequences")))
    put(tree, "params.seq_len", fint(tp.get("seq_len")))
    put(tree, "params.n_tokens", fint((tp.get("n_sequences") or 0) * (tp.get("seq_len") or 0)))
    counted = bool(tm.get("count_leading_space", tp.get("count_leading_space", False)))
    put(tree, "params.count_leading_space", str(counted).lower())
    put(tree, "params.z", "1.96")
    put(tree, "params.alpha", fr(alpha, 2))
    put(tree, "params.example_neurons", str(int(a.get("example_neurons", 3))))
    put(tree, "params.seed", str(params.get("seed", "—")))
    site = str(prim.meta.get("site", params.get("extract", {}).get("site", "pre")))
    put(tree, "params.site", site)
    put(tree, "params.dtype", str(params.get("extract", {}).get("dtype", "—")))

    # No git commit here: the commit that will record these outputs does not exist yet when the stage runs,
    # and a cached output must not change with every commit. The checkout (commit, tag, dirty) is render-time
    # provenance: analysis/provenance.py (`render.*` keys, a Quarto pre-render script).
    put(tree, "prov.data_md5", data_version(root))
    put(tree, "prov.results_digest", results_digest(results, summary_dir, names))

    ctrl = models.get(roles.get("control", ""), None)
    for lang in LANGS:
        lab = lambda n: per[n][f"label_{lang}"]  # noqa: E731
        rows = [{"label": lab(n), "n_blocks": per[n]["n_blocks"], "n_neurons": per[n]["n_neurons"],
                 "weights": per[n][f"weights_{lang}"]} for n in names]
        put(tree, f"say.models_{lang}", S.models_sentence(lang, rows))
        put(tree, f"say.scale_{lang}", S.scale_sentence(lang, [lab(n) for n in pretrained]))
        put(tree, f"say.control_{lang}", S.control_sentence(
            lang, lab(roles["control"]) if ctrl is not None else None, lab(roles["primary"]),
            per[roles["primary"]]["null"]["split_sd"],
            per[roles["control"]]["null"]["split_sd"] if ctrl is not None else "—",
            per[roles["primary"]]["null"]["analytic_sd"]))
        put(tree, f"say.leading_space_{lang}", S.leading_space_sentence(lang, counted))
        put(tree, f"say.site_{lang}", S.site_sentence(lang, site, [models[n].meta.get("site_module", "—")
                                                                    for n in names]))
        for cid in CLAIM_IDS:
            k = cid.lower()
            sent = [S.claim_sentence(lang, cid, per[n][k]["verdict"], lab(n), per[n][k]["statistic"],
                                     per[n][k]["threshold"]) for n in names]
            put(tree, f"say.{k}_{lang}", " ".join(sent))
        put(tree, f"say.tally_{lang}", " ".join(
            S.tally_sentence(lang, lab(n), {cid: per[n][cid.lower()]["verdict"] for cid in CLAIM_IDS}) for n in names))
    return tree, roles


# ---------------------------------------------------------------------------------------------- tables
def table_tokens(lang: str, models: dict[str, ModelResults], per: dict[str, dict]) -> str:
    names = list(models)
    q = {
        "en": ["Tokens in the sample", "Tokens used (specials excluded)", "Distinct token ids", "Shortest length",
               "Longest length", "Median length", "Mean length", "Share at the median", "Share shorter",
               "Share longer", "r(length, log frequency)", "Spearman ρ(length, log frequency)"],
        "vi": ["Số token trong mẫu", "Số token được dùng (bỏ token đặc biệt)", "Số mã token khác nhau",
               "Độ dài nhỏ nhất", "Độ dài lớn nhất", "Độ dài trung vị", "Độ dài trung bình", "Tỉ lệ bằng trung vị",
               "Tỉ lệ ngắn hơn", "Tỉ lệ dài hơn", "r(độ dài, log tần suất)", "ρ Spearman(độ dài, log tần suất)"],
    }[lang]
    cols = []
    for n in names:
        m, mr = per[n], models[n]
        distinct = mr.used_tokens()[T.token_id].nunique()
        cols.append([m["n_tokens"], m["n_used"], fint(distinct), m["c1"]["len_min"], m["c1"]["len_max"],
                     m["c1"]["len_median"], m["c1"]["len_mean"], m["c1"]["share_at_median"], m["c1"]["share_short"],
                     m["c1"]["share_long"], m["c8"]["r_length_logfreq"], m["c8"]["spearman_length_logfreq"]])
    rows = [[q[i]] + [c[i] for c in cols] for i in range(len(q))]
    return md_table([tr(lang, "quantity")] + [per[n][f"short_{lang}"] for n in names], rows)


def table_blocks(lang: str, models: dict[str, ModelResults], per: dict[str, dict]) -> str:
    head = {"en": ["Model", "Block", "Depth", "Median r", "SD r", "r < 0", "Sig. r", "Median partial r",
                   "Sig. partial r", "Mean abs r next", "Multimodal"],
            "vi": ["Mô hình", "Khối", "Độ sâu", "Trung vị r", "ĐLC r", "r < 0", "r có ý nghĩa", "Trung vị r riêng phần",
                   "r riêng phần có ý nghĩa", "TB abs r kế tiếp", "Đa đỉnh"]}[lang]
    rows = []
    for n, mr in models.items():
        for _, b in mr.blocks.iterrows():
            rows.append([per[n][f"short_{lang}"], fint(b[B.block]), fr(b[B.rel_depth], 2), fr(b[B.r_median]),
                         fr(b[B.r_sd]), fpct(b[B.share_negative]), fpct(b[B.share_significant]),
                         fr(b[B.partial_median]), fpct(b[B.partial_share_significant]), fr(b[B.r_next_abs_mean]),
                         fpct(b[B.share_multimodal])])
    return md_table(head, rows)


def table_claims(lang: str, models: dict[str, ModelResults], per: dict[str, dict]) -> str:
    rows = []
    for cid in CLAIM_IDS:
        for n in models:
            c = per[n][cid.lower()]
            rows.append([cid, S.SHORT[cid][lang], per[n][f"short_{lang}"], f"**{c[f'verdict_{lang}']}**",
                         c["statistic"], c["threshold"]])
    head = [tr(lang, "claim"), "", tr(lang, "model"), tr(lang, "verdict"), tr(lang, "statistic"),
            tr(lang, "threshold")]
    head[1] = {"en": "Statement", "vi": "Nội dung"}[lang]
    return md_table(head, rows, align="lllllr")


def table_provenance(lang: str, params: dict, models: dict[str, ModelResults], per: dict[str, dict],
                     tree: dict) -> str:
    L = {"en": {"config": "Configuration", "corpus": "Corpus", "ref": "Frequency reference", "model": "Model",
                "weights": "weights", "device": "Extraction hardware", "seconds": "s", "site": "Hook site",
                "tokens": "Token sample", "commit": "Git commit (assets generated)", "describe": "Git describe",
                "data": "Data version (data.dvc md5)", "digest": "Results digest (sha256)",
                "packages": "Packages (assets stage)", "extract_pk": "Packages (extraction)",
                "params": "Parameters", "python": "Python"},
         "vi": {"config": "Cấu hình", "corpus": "Kho văn bản", "ref": "Kho tham chiếu tần suất", "model": "Mô hình",
                "weights": "trọng số", "device": "Phần cứng trích xuất", "seconds": "giây", "site": "Vị trí hook",
                "tokens": "Mẫu token", "commit": "Commit git (lúc tạo tài sản)", "describe": "Git describe",
                "data": "Phiên bản dữ liệu (md5 của data.dvc)", "digest": "Dấu vân kết quả (sha256)",
                "packages": "Gói (bước tạo tài sản)", "extract_pk": "Gói (bước trích xuất)",
                "params": "Tham số", "python": "Python"}}[lang]
    rows = [[L["config"], f"`{tree['cfg']['name']}`"],
            [L["corpus"], f"{tree['corpus']['name']} ({tree['corpus']['kind']}): {tree['corpus']['source']}"],
            [L["ref"], f"{tree['corpus'][f'reference_{lang}']} ({tree['corpus']['n_reference_tokens']})"]]
    for n, mr in models.items():
        m = per[n]
        rows.append([f"{L['model']}: {m[f'short_{lang}']}",
                     f"`{n}`, {m['source']}: {m['version']}; {L['weights']} {m[f'weights_{lang}']}"])
        dev = mr.meta.get("device", "—")
        secs = mr.meta.get("seconds")
        rows.append([f"{L['device']}: {m[f'short_{lang}']}",
                     f"{dev}" + (f", {fr(secs, 1)} {L['seconds']}" if _finite(secs) else "")])
        rows.append([f"{L['site']}: {m[f'short_{lang}']}", f"`{m['site_module']}` ({tree['params']['site']})"])
    rows.append([L["tokens"], f"{tree['params']['n_sequences']} × {tree['params']['seq_len']}"])
    sections = params.get("assets", {}).get("provenance_params", ["seed", "tokens", "extract"])
    for sec in sections:
        if sec in params:
            v = params[sec]
            txt = ", ".join(f"{k}={v2}" for k, v2 in v.items() if not isinstance(v2, dict)) if isinstance(v, dict) \
                else str(v)
            rows.append([f"{L['params']}: `{sec}`", txt])
    prim = next(iter(models.values()))
    ex = ", ".join(f"{k} {prim.meta[k]}" for k in ("torch", "transformers") if prim.meta.get(k))
    if ex:
        rows.append([L["extract_pk"], ex])
    pk = package_versions(["numpy", "pandas", "matplotlib", "pyarrow", "PyYAML"], missing="—")
    rows.append([L["packages"], ", ".join(f"{k} {v}" for k, v in pk.items())])
    rows.append([L["python"], platform.python_version()])
    rows += [[L["data"], f"`{tree['prov']['data_md5']}`"], [L["digest"], f"`{tree['prov']['results_digest']}`"]]
    return md_table([tr(lang, "item"), tr(lang, "value")], rows, align="ll")


# ---------------------------------------------------------------------------------------------- figures
def example_neurons(mr: ModelResults, k: int) -> list[int]:
    """Deterministic examples at the split block: most negative r, the median r, most positive r (k ≥ 3)."""
    at = mr.neurons[mr.neurons[C.block] == mr.split_block].dropna(subset=[C.r]).sort_values([C.r, C.neuron])
    if at.empty or k <= 0:
        return []
    idx = np.unique(np.linspace(0, len(at) - 1, k).round().astype(int))
    return [int(at.iloc[i][C.neuron]) for i in idx]


def matched_block(mr: ModelResults, depth: float) -> int:
    d = mr.blocks[B.rel_depth].to_numpy(float)
    return int(mr.blocks[B.block].iloc[int(np.argmin(np.abs(d - depth)))])


def make_figures(out: Path, lang: str, models: dict[str, ModelResults], per: dict[str, dict], roles: dict,
                 a: dict) -> None:
    fig_dir = out / "figures" / lang
    fig_dir.mkdir(parents=True, exist_ok=True)
    fmts = tuple(a.get("figure_formats", ["svg", "png"]))
    dpi = int(a.get("dpi", 300))
    names = list(models)
    labels = {n: per[n][f"short_{lang}"] for n in names}
    colors = style.model_colors(names, [models[n].weights for n in names])
    prim = models[roles["primary"]]

    def save(fig, name):
        style.save(fig, fig_dir / name, formats=fmts, dpi=dpi)

    lengths = {n: models[n].used_tokens()[T.length].to_numpy() for n in names}
    medians = {n: float(np.median(v)) for n, v in lengths.items()}
    save(plots.token_lengths(lengths, medians, labels, colors, lang, max_len=a.get("max_length_shown")),
         "token_lengths")

    groups, _ = split_groups(prim)
    acts = prim.acts[used_rows(prim)] if prim.acts is not None else None
    if acts is not None:
        ex = example_neurons(prim, int(a.get("example_neurons", 3)))
        title = f"{labels[prim.name]}, {tr(lang, 'block_title')} {prim.split_block}"
        save(plots.split_histograms(acts, groups, ex, lang, title), "split_histograms")

    depth = float(prim.blocks.loc[prim.blocks[B.block] == prim.split_block, B.rel_depth].iloc[0])
    r_at = {n: models[n].neurons.loc[models[n].neurons[C.block] == matched_block(models[n], depth), C.r].to_numpy(float)
            for n in names}
    save(plots.r_at_block(r_at, len(used_rows(prim)), labels, colors, lang,
                          f"{tr(lang, 'at_block')} ({tr(lang, 'rel_depth').split(' (')[0].lower()} {depth:.2f})"),
         "r_at_block")
    neurons = {n: models[n].neurons for n in names}
    save(plots.r_density_lines(neurons, labels, lang), "r_density_lines")
    save(plots.r_heatmap(neurons, labels, lang), "r_heatmap")
    save(plots.raw_vs_partial(neurons, labels, lang), "raw_vs_partial")
    toks = {n: models[n].used_tokens() for n in names}
    save(plots.length_vs_logfreq(toks, {n: per[n]["c8"]["r_length_logfreq"] for n in names}, labels, colors, lang),
         "length_vs_logfreq")
    save(plots.depth_compare(neurons, labels, colors, lang), "depth_compare")
    dips = {n: models[n].neurons.loc[models[n].neurons[C.block] == matched_block(models[n], depth), C.dip].to_numpy(float)
            for n in names}
    save(plots.multimodality({n: models[n].blocks for n in names}, dips, labels, colors, lang), "multimodality")
    save(plots.null_control(neurons, {n: models[n].blocks for n in names}, labels, colors, lang), "null_control")


# ---------------------------------------------------------------------------------------------- stage
def _plain(obj):
    """Nested dict with str keys and str values only (yaml.safe_dump of numpy scalars would fail)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    return str(obj)


def build(params: dict, results: Path, summary_dir: Path, out: Path, root: Path) -> dict:
    """Write every asset under `out` (replaced atomically). Returns the metadata tree."""
    cfg = active_config(params)
    a = params.get("assets", {})
    langs = [l for l in a.get("languages", list(LANGS))]
    models = {n: load_model(results, n, {"name": n, **spec}, summary_dir) for n, spec in cfg["models"].items()}
    tree, roles = build_metadata(params, models, root, results, summary_dir)
    per = {n: tree["m"][meta_key(n)] for n in models}
    with atomic_dir(out) as tmp:
        for lang in langs:
            make_figures(tmp, lang, models, per, roles, a)
            tdir = tmp / "tables" / lang
            tdir.mkdir(parents=True, exist_ok=True)
            (tdir / "tokens.md").write_text(table_tokens(lang, models, per), encoding="utf-8")
            (tdir / "blocks.md").write_text(table_blocks(lang, models, per), encoding="utf-8")
            (tdir / "claims.md").write_text(table_claims(lang, models, per), encoding="utf-8")
            (tdir / "provenance.md").write_text(table_provenance(lang, params, models, per, tree), encoding="utf-8")
        header = "# Generated by `python -m analysis.stages.assets` (DVC stage `assets`). Do not edit.\n"
        (tmp / "metadata.yml").write_text(
            header + yaml.safe_dump(_plain(tree), sort_keys=True, allow_unicode=True, width=1000), encoding="utf-8")
    return tree


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--results", default=str(ROOT / "results"))
    ap.add_argument("--summary", default=str(ROOT / "summary"))
    ap.add_argument("--out", default=str(ROOT / "report" / "_generated"))
    ap.add_argument("--root", default=str(ROOT), help="git/DVC root for provenance")
    args = ap.parse_args(argv)
    build(load_params(args.params), Path(args.results), Path(args.summary), Path(args.out), Path(args.root))
    print(f"assets: wrote {args.out}")


if __name__ == "__main__":
    main()
