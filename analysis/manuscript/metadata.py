"""Every number, verdict and model name the manuscript prints, as one nested dict of strings.

    >>> from analysis.manuscript.metadata import build_metadata
    >>> tree, roles = build_metadata(params, models, root, results, summary_dir)
    >>> tree["m"]["primary"]["c3"]["share_negative"], tree["say"]["c3_en"]

Keys (read with `{{< meta ... >}}`; dotted paths; none of the top-level keys is a Quarto option name):
    m.<model>.*    one block per model (model keys of params.yaml; dots become "p"); m.primary / m.secondary /
                   m.control are copies for the first trained, second trained and first control model
    cfg.*, corpus.*, par.*, prov.*    configuration, corpus, parameters, data provenance
    say.<topic>_en / _vi              whole sentences whose wording depends on verdicts or on the configuration
A leaf that differs by language ends in `_en` / `_vi`; every other value is the same string in both.
Formatting: analysis.manuscript.format. Render-time provenance (the checkout) is not here: it is written
at render time under `checkout.*` (analysis/provenance.py).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analysis.figures.data import B, C, CLAIM_IDS, T, ModelResults
from analysis.figures.i18n import LANGS, WEIGHTS, verdict_word
from analysis.manuscript import sentences as S
from analysis.manuscript.format import DASH, fint, fp, fpct, fr, fsigned, meta_key, put
from analysis.params import active_config

NULL_WORDS = {
    "en": "a type-level permutation null (lengths permuted among token types, one permutation for every neuron "
          "and block), widened to the sequence- and type-clustered variance",
    "vi": "phân phối ngẫu nhiên theo hoán vị loại token (hoán vị độ dài giữa các loại token, cùng một hoán vị cho "
          "mọi nơ-ron và mọi khối), được nới rộng theo phương sai cụm theo chuỗi và theo loại token",
}


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
        return DASH
    try:
        outs = (yaml.safe_load(f.read_text()) or {}).get("outs", [])
        return str(outs[0].get("md5", DASH)) if outs else DASH
    except (yaml.YAMLError, AttributeError, IndexError):
        return DASH


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


def format_value(kind: str, v) -> str:
    """A null-test component's value as the tables print it."""
    if kind == "share":
        return fpct(v)
    if kind == "fraction":
        return fpct(v, 0)
    if kind == "ms":
        return fr(v, 4)
    return fr(v)


def _test(c: dict, key: str) -> dict:
    return next((t for t in c.get("tests", []) if t.get("key") == key), {})


def _rms(x) -> float:
    return math.sqrt(max(float(x), 0.0)) if x is not None and np.isfinite(x) else float("nan")


def model_numbers(params: dict, mr: ModelResults, alpha: float) -> dict[str, Any]:
    """The per-model block of metadata (nested dict of strings)."""
    s, nb, bl = mr.summary, mr.neurons, mr.blocks
    L, sp, nl, F = s.get("lengths", {}), s.get("split", {}), s.get("null", {}), s.get("frequency", {})
    A, Dz = s.get("aggregates", {}), s.get("design", {})
    out: dict[str, Any] = {}
    p = lambda k, v: put(out, k, v)  # noqa: E731
    spec, meta = mr.spec, mr.meta
    for lang in LANGS:
        p(f"label_{lang}", model_labels(params, mr.name, spec, lang))
        p(f"short_{lang}", model_labels(params, mr.name, spec, lang, short=True))
        p(f"weights_{lang}", WEIGHTS.get(mr.weights, {"en": mr.weights, "vi": mr.weights})[lang])
    p("name", mr.name)
    p("source", str(spec.get("source", meta.get("source", DASH))))
    if spec.get("repo_id"):
        p("version", f"{spec['repo_id']} @ {str(spec.get('revision', DASH))[:12]}")
    elif spec.get("package"):
        p("version", f"{spec['package']} {spec.get('version', '')}".strip())
    else:
        seeds = spec.get("init_seeds") or [spec.get("init_seed", 0)]
        listed = ", ".join(str(x) for x in seeds)
        p("version", f"{spec.get('architecture', DASH)}, init seeds {listed}")
        p("version_vi", f"{spec.get('architecture', DASH)}, hạt giống khởi tạo {listed}")
    p("n_blocks", fint(mr.n_blocks))
    p("last_block", fint(mr.n_blocks - 1))
    p("n_neurons", fint(s.get("n_neurons") or meta.get("n_neurons")))
    p("n_neurons_total", fint(len(nb)))
    p("n_tokens", fint(s.get("n_tokens") or meta.get("n_tokens")))
    p("n_used", fint(s.get("n_tokens_used")))
    p("site_module", str(meta.get("site_module", DASH)))
    p("n_types", fint(Dz.get("n_types")))
    p("effective_types", fint(Dz.get("effective_types")))
    p("n_sequences", fint(Dz.get("n_sequences")))
    p("n_documents", fint(len(mr.tokens_meta.get("sample_documents", [])) or None))

    # C1: lengths
    p("c1.len_min", fint(L.get("min")))
    p("c1.len_max", fint(L.get("max")))
    med = L.get("median")
    p("c1.len_median", fint(med) if med is not None and float(med).is_integer() else fr(med, 1))
    p("c1.len_mean", fr(L.get("mean"), 2))
    p("c1.n_levels", fint(L.get("n_levels")))
    for k in ("share_at_median", "share_short", "share_long"):
        p(f"c1.{k}", fpct(L.get(k)))

    # C2: the median split at the study's block
    p("c2.block", fint(mr.split_block))
    p("c2.block_1based", fint(mr.split_block + 1))
    for lang in LANGS:
        p(f"c2.numbering_{lang}", S.numbering_sentence(lang, mr.split_block))
    m2 = sp.get("median")
    p("c2.median", fint(m2) if m2 is not None and float(m2).is_integer() else fr(m2, 1))
    for g in ("short", "equal", "long"):
        p(f"c2.n_{g}", fint(sp.get(f"n_{g}")))
        p(f"c2.mean_{g}", fr(sp.get(f"pooled_mean_{g}")))
        p(f"c2.median_{g}", fr(sp.get(f"pooled_median_{g}")))
    p("c2.pooled_d", fr(sp.get("pooled_cohens_d")))
    p("c2.token_diff", fr(sp.get("token_score_diff")))
    p("c2.p_type", fp(sp.get("p_type")))
    p("c2.p_seq", fp(sp.get("p_seq")))
    p("c2.p", fp(sp.get("p")))
    p("c2.share_long_lower", fpct(sp.get("share_neurons_long_lower")))
    p("c2.sequence_share_long_lower", fpct(sp.get("sequence_share_long_lower")))

    # C3-C6 from the verdicts' own statistics (the numbers that were tested)
    cl = mr.claims
    c3, c4, c5, c6, c8 = (cl.get(c, {}) for c in ("C3", "C4", "C5", "C6", "C8"))
    t = _test(c3, "share_negative")
    p("c3.share_negative", fpct(t.get("observed")))
    p("c3.share_negative_q975", fpct(t.get("q975")))
    t = _test(c3, "median_r")
    p("c3.median_r", fr(t.get("observed")))
    p("c3.median_r_q025", fr(t.get("q025")))
    for lang in LANGS:
        excl = "but" in str((c3.get("statistic") or {}).get("blocks", "all blocks"))
        p(f"c3.blocks_{lang}", {("en", True): "all blocks but the first", ("en", False): "all blocks",
                                ("vi", True): "mọi khối trừ khối đầu", ("vi", False): "mọi khối"}[(lang, excl)])
    p("c3.pooled_share_negative", fpct(A.get("share_negative_pooled_r")))
    p("c3.pooled_median_r", fr(A.get("median_pooled_r")))
    p("c3.max_pooled_minus_within", fr(A.get("max_abs_r_pooled_minus_within")))
    p("c3.share_significant", fpct(A.get("share_significant")))
    p("c3.share_significant_naive", fpct(A.get("share_significant_naive")))
    p("c3.share_significant_twoway", fpct(A.get("share_significant_twoway")))
    r = nb[C.r].to_numpy(float)
    r = r[np.isfinite(r)]
    p("c3.median_abs_r", fr(np.median(np.abs(r)) if r.size else np.nan))
    row = bl[bl[B.block] == mr.split_block]
    rb = row.iloc[0] if len(row) else pd.Series(dtype=float)
    p("c3.split_share_negative", fpct(rb.get(B.share_negative)))
    p("c3.split_median_r", fr(rb.get(B.r_median)))

    t = _test(c4, "block0_median")
    p("c4.first_median_r", fr(t.get("observed")))
    p("c4.first_q975", fr(t.get("q975")))
    p("c4.first_share_positive", fpct(1 - float(bl.iloc[0][B.share_negative])))
    p("c4.max_other_median_r", fr((c4.get("statistic") or {}).get("max_other_median_r")))

    st5 = c5.get("statistic") or {}
    p("c5.rms_middle", fr(st5.get("rms_excess_r_middle")))
    p("c5.rms_last", fr(st5.get("rms_excess_r_last")))
    p("c5.ratio", fr(st5.get("ratio_last_over_middle"), 2))
    p("c5.next_middle", fr(st5.get("rms_excess_next_middle")))
    p("c5.next_last", fr(st5.get("rms_excess_next_last")))
    p("c5.rho", fr(st5.get("rho_depth_next"), 2))
    p("c6.n_zones", fint(sum(bool(t.get("passed")) for t in c6.get("tests", []))))

    # C7: multimodality (jittered dip test, no FDR)
    p("c7.share_multimodal", fpct(bl[B.share_multimodal].mean()))
    p("c7.max_share_multimodal", fpct(bl[B.share_multimodal].max()))
    p("c7.share_multimodal_short", fpct(bl[B.share_multimodal_short].mean()))
    p("c7.sd_ulps_median", fint(s.get("multimodality", {}).get("sd_ulps_median")))

    # C8: frequency
    p("c8.r_length_logfreq", fr(s.get("r_length_logfreq")))
    p("c8.spearman_length_logfreq", fr(s.get("spearman_length_logfreq")))
    p("c8.attenuation", fpct(F.get("attenuation"), 0))
    p("c8.relative_attenuation", fpct(F.get("relative_attenuation"), 0))
    p("c8.attenuation_length_only", fpct(F.get("attenuation_length_only"), 0))
    p("c8.attenuation_spline", fpct(F.get("attenuation_spline"), 0))
    p("c8.unique_length_share", fpct(F.get("unique_length_share"), 0))
    p("c8.shared_share", fpct(F.get("shared_share"), 0))
    p("c8.n_tuned", fint(F.get("n_length_tuned")))
    p("c8.share_tuned", fpct(F.get("share_length_tuned")))
    p("c8.n_partial_length", fint(F.get("n_partial_length_significant")))
    p("c8.n_partial_freq", fint(F.get("n_partial_freq_significant")))
    for k, key in (("length_sig", "length_beyond_chance"), ("freq_sig", "freq_beyond_chance")):
        t = _test(c8, key)
        p(f"c8.{k}", fpct(t.get("observed")))
        p(f"c8.{k}_q975", fpct(t.get("q975")))
    p("c8.alpha", fr(alpha, 2))

    # nulls
    n = float(s.get("n_tokens_used") or np.nan)
    p("null.n", fint(n))
    p("null.analytic_sd", fr(1 / math.sqrt(max(n - 1, 1)), 4) if np.isfinite(n) else DASH)
    sd_null = bl["r_within.null_ms"].map(_rms) if "r_within.null_ms" in bl else pd.Series(dtype=float)
    p("null.sd", fr(sd_null.median(), 4))
    p("null.sd_ratio", fr(sd_null.median() * math.sqrt(max(n - 1, 1)), 1) if np.isfinite(n) else DASH)
    p("null.split_sd", fr(rb.get(B.r_sd), 4))
    p("null.split_null_sd", fr(_rms(rb.get("r_within.null_ms")), 4))
    p("null.widen", fr(bl.get("r_within.null_scale", pd.Series([np.nan])).median(), 2))
    p("null.n_permutations", fint(nl.get("n_permutations")))

    # claims: verdicts, stability, controls
    for cid in CLAIM_IDS:
        c = cl.get(cid, {}) or {}
        k = cid.lower()
        v = c.get("verdict")
        st = c.get("stability") or {}
        p(f"{k}.verdict", v or "missing")
        p(f"{k}.n_agree", fint(st.get("n_agree", 1)))
        p(f"{k}.n_samples", fint(st.get("n", 1)))
        for lang in LANGS:
            p(f"{k}.verdict_{lang}", verdict_word(lang, v))
            p(f"{k}.agree_{lang}", S.agreement(lang, int(st.get("n_agree", 1)), int(st.get("n", 1)),
                                               bool(st.get("stable"))))
    return out


def control_agreement(d: dict) -> int:
    """How many of a control's weight initialisations gave its headline verdict (stability.control_distribution)."""
    return int((d.get("counts") or {}).get(d.get("verdict"), 0))


def _control_text(lang: str, per: dict, c: dict, cid: str) -> str:
    ctl = c.get("control") or {}
    parts = []
    for name, d in ctl.items():
        label = per[name][f"short_{lang}"]
        parts.append(S.control_phrase(lang, label, verdict_word(lang, d.get("verdict")), control_agreement(d),
                                      int(d.get("n", 1))))
    return "; ".join(parts)


def _same_architecture(a: ModelResults, b: ModelResults) -> bool:
    """Same model type, hooked module, number of blocks and of neurons (as the extraction metadata say)."""
    keys = ("site_module", "n_blocks", "n_neurons", "model_type")
    return all(a.meta.get(k) == b.meta.get(k) for k in keys) and a.meta.get("site_module") is not None


def build_metadata(params: dict, models: dict[str, ModelResults], root: Path, results: Path,
                   summary_dir: Path) -> tuple[dict, dict[str, str]]:
    cfg = active_config(params)
    alpha = float(params.get("stats", {}).get("alpha", 0.05))
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
    corpus_name = cfg.get("corpus", DASH)
    corpus = params.get("corpora", {}).get(corpus_name, {})
    put(tree, "cfg.name", str(cfg.get("name", DASH)))
    put(tree, "cfg.n_models", str(len(names)))
    put(tree, "cfg.n_pretrained", str(len(pretrained)))
    put(tree, "corpus.name", str(corpus_name))
    put(tree, "corpus.kind", str(corpus.get("kind", DASH)))
    if corpus.get("repo_id"):
        desc = f"{corpus['repo_id']}, {corpus.get('filename', '')} @ {str(corpus.get('revision', ''))[:12]}"
    elif corpus.get("packages"):
        desc = ", ".join(f"{k} {v.get('version', '') if isinstance(v, dict) else v}".strip()
                         for k, v in corpus["packages"].items())
    else:
        desc = str(corpus_name)
    put(tree, "corpus.source", desc)
    tm = prim.tokens_meta
    ref = tm.get("reference", {}) if isinstance(tm.get("reference"), dict) else {}
    docs = fint(ref["documents"]) if "documents" in ref else DASH
    put(tree, "corpus.reference_en", f"{ref.get('corpus', DASH)}, {docs} documents in no sample")
    put(tree, "corpus.reference_vi", f"{ref.get('corpus', DASH)}, {docs} văn bản không thuộc mẫu nào")
    put(tree, "corpus.n_reference_tokens", fint(tm.get("n_reference_tokens")))

    tp = params.get("tokens", {})
    st = params.get("stats", {})
    put(tree, "par.n_sequences", fint(tp.get("n_sequences")))
    put(tree, "par.seq_len", fint(tp.get("seq_len")))
    put(tree, "par.n_tokens", fint((tp.get("n_sequences") or 0) * (tp.get("seq_len") or 0)))
    put(tree, "par.max_tokens_per_document", fint(tp.get("max_tokens_per_document")))
    put(tree, "par.n_samples", fint(len(tp.get("sample_seeds") or [0])))
    counted = bool(tm.get("count_leading_space", tp.get("count_leading_space", False)))
    put(tree, "par.count_leading_space", str(counted).lower())
    put(tree, "par.alpha", fr(alpha, 2))
    put(tree, "par.n_permutations", fint(st.get("nulls", {}).get("n_permutations")))
    put(tree, "par.strata_min_types", fint(st.get("nulls", {}).get("strata_min_types")))
    put(tree, "par.min_agree", fpct(st.get("stability", {}).get("min_agree"), 0))
    from analysis.stats.claims import LEVEL

    put(tree, "par.component_level", fr(LEVEL, 3))
    c8th = st.get("claims", {}).get("C8", {})
    put(tree, "par.c8_vanish", fpct(c8th.get("vanish_max_share"), 0))
    put(tree, "par.c8_survive", fpct(c8th.get("survive_min_share"), 0))
    put(tree, "par.dip_neurons", fint(st.get("dip_neurons")) if st.get("dip_neurons") else "all")
    put(tree, "par.example_neurons", str(int(params.get("assets", {}).get("example_neurons", 3))))
    put(tree, "par.seed", str(params.get("seed", DASH)))
    site = str(prim.meta.get("site", params.get("extract", {}).get("site", "pre")))
    put(tree, "par.site", site)
    put(tree, "par.dtype", str(params.get("extract", {}).get("dtype", DASH)))
    init_seeds = (models[roles["control"]].spec.get("init_seeds") or [0]) if controls else []
    put(tree, "par.n_init", fint(len(init_seeds)) if controls else DASH)
    put(tree, "prov.data_md5", data_version(root))
    put(tree, "prov.results_digest", results_digest(results, summary_dir, names))

    ctrl = roles.get("control")
    for lang in LANGS:
        lab = lambda n: per[n][f"label_{lang}"]  # noqa: E731
        rows = [{"label": lab(n), "n_blocks": per[n]["n_blocks"], "n_neurons": per[n]["n_neurons"],
                 "weights": per[n][f"weights_{lang}"]} for n in names]
        put(tree, f"say.models_{lang}", S.models_sentence(lang, rows))
        put(tree, f"say.scale_{lang}", S.scale_sentence(lang, [lab(n) for n in pretrained], len(names)))
        put(tree, f"say.control_{lang}", S.control_sentence(
            lang, lab(ctrl) if ctrl else None, fint(len(init_seeds)), per[roles["primary"]][f"short_{lang}"],
            bool(ctrl) and _same_architecture(models[roles["primary"]], models[ctrl]),
            per[ctrl]["null"]["split_sd"] if ctrl else DASH, per[ctrl]["null"]["split_null_sd"] if ctrl else DASH))
        put(tree, f"say.leading_space_{lang}", S.leading_space_sentence(lang, counted))
        put(tree, f"say.site_{lang}", S.site_sentence(lang, site, [models[n].meta.get("site_module", DASH)
                                                                    for n in names],
                                                       [per[n][f"short_{lang}"] for n in names]))
        put(tree, f"say.null_{lang}", NULL_WORDS[lang])
        for cid in CLAIM_IDS:
            k = cid.lower()
            sent = []
            for n in (pretrained or names):
                c = models[n].claims.get(cid, {}) or {}
                sent.append(S.claim_sentence(lang, cid, per[n][k]["verdict"], lab(n), per[n][k][f"agree_{lang}"],
                                             _control_text(lang, per, c, cid)))
            put(tree, f"say.{k}_{lang}", " ".join(sent))
        put(tree, f"say.tally_{lang}", " ".join(
            S.tally_sentence(lang, lab(n), {cid: per[n][cid.lower()]["verdict"] for cid in CLAIM_IDS}) for n in names))
        stab = []
        for n in (pretrained or names):
            sts = {cid: (models[n].claims.get(cid, {}) or {}).get("stability") or {} for cid in CLAIM_IDS}
            n_s = max((int(x.get("n", 1)) for x in sts.values()), default=1)
            stab.append(S.stability_sentence(lang, lab(n), n_s, [c for c in CLAIM_IDS if sts[c].get("stable")],
                                             [c for c in CLAIM_IDS if not sts[c].get("stable")]))
        put(tree, f"say.stability_{lang}", " ".join(stab))
    return tree, roles
