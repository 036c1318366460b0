"""The manuscript's tables as pipe tables (strings), in each language; cells stay short enough for print.

    >>> from analysis.manuscript.tables import verdict_matrix, claims_detail, TABLES
    >>> md = verdict_matrix("en", models, per, roles)       # claims x models, the body of the paper

Tables (report/_generated/tables/<lang>/<name>.md):
    verdicts    claims x models: each trained model's verdict with its agreement over samples, the
                random-weights control's verdict with how often it is supported over initialisations
    claims      appendix: every null-tested component of every verdict, observed value against chance
    tokens      the sampled tokens (counts, lengths, types, the length-frequency correlation)
    blocks      per-block summaries of every model (a long table: it breaks across pages)
    provenance  configuration, corpus, models, parameters, packages, data version
A cell holds at most MAX_CELL characters (tests/test_manuscript.py checks every table).
"""

from __future__ import annotations

import platform

from analysis.figures.data import B, CLAIM_IDS, T, ModelResults
from analysis.figures.i18n import tr, verdict_word
from analysis.manuscript import sentences as S
from analysis.manuscript.format import DASH, fint, fpct, fr, md_table
from analysis.manuscript.metadata import control_agreement, format_value
from analysis.provenance import package_versions

TABLES = ("verdicts", "claims", "tokens", "blocks", "provenance")
MAX_CELL = 48


def _verdict_cell(lang: str, c: dict) -> str:
    v = verdict_word(lang, c.get("verdict"))
    st = c.get("stability") or {}
    if int(st.get("n", 1)) > 1:
        return f"{v} ({st.get('n_agree')}/{st.get('n')})"
    return v


def _control_cell(lang: str, d: dict) -> str:
    """The control's headline verdict and in how many of its weight initialisations it came out (as the
    trained models' cells count samples)."""
    v = verdict_word(lang, d.get("verdict"))
    n = int(d.get("n", 1))
    return f"{v} ({control_agreement(d)}/{n})" if n > 1 else v


def verdict_matrix(lang: str, models: dict[str, ModelResults], per: dict[str, dict], roles: dict) -> str:
    """Rows: claims; columns: each trained model, then each control (its own verdicts)."""
    trained = [n for n, m in models.items() if m.weights != "random"]
    controls = [n for n, m in models.items() if m.weights == "random"]
    head = [tr(lang, "claim"), {"en": "Statement", "vi": "Nội dung"}[lang]]
    head += [per[n][f"short_{lang}"] for n in trained] + [per[n][f"short_{lang}"] for n in controls]
    rows = []
    for cid in CLAIM_IDS:
        row = [cid, S.SHORT[cid][lang]]
        row += [_verdict_cell(lang, models[n].claims.get(cid, {}) or {}) for n in trained]
        for c in controls:
            d = {}
            for n in trained:  # the distribution over initialisations is attached to the trained models' entries
                d = ((models[n].claims.get(cid, {}) or {}).get("control") or {}).get(c, {}) or d
            row.append(_control_cell(lang, d or {"verdict": (models[c].claims.get(cid, {}) or {}).get("verdict")}))
        rows.append(row)
    return md_table(head, rows, align="l" * len(head))


def claims_detail(lang: str, models: dict[str, ModelResults], per: dict[str, dict]) -> str:
    """One row per null-tested component of each verdict: observed, the chance bound, beyond chance,
    and in how many samples it was beyond chance."""
    head = {"en": ["Claim", "Model", "Component", "Observed", "Chance", "Beyond", "Beyond in samples"],
            "vi": ["Nhận định", "Mô hình", "Thành phần", "Quan sát", "Ngẫu nhiên", "Vượt", "Số mẫu vượt"]}[lang]
    yes_no = {"en": ("yes", "no"), "vi": ("có", "không")}[lang]
    rows = []
    for cid in CLAIM_IDS:
        for n, mr in models.items():
            c = mr.claims.get(cid, {}) or {}
            st = c.get("stability") or {}
            for t in c.get("tests", []):
                key = t.get("key", "")
                comp = S.COMPONENTS.get(key, {}).get(lang, t.get("component", ""))
                kind = t.get("kind", "r")
                bound = t.get("q975") if t.get("direction") == "greater" else t.get("q025")
                sign = "≤" if t.get("direction") == "greater" else "≥"
                chance = f"{sign} {format_value(kind, bound)}" if key not in ("multimodal_all", "multimodal_short") \
                    else f"≥ {format_value(kind, bound)}"
                sp = (st.get("spread") or {}).get(t.get("component"), {})
                samples = f"{sp.get('n_beyond_chance')}/{st.get('n')}" if int(st.get("n", 1)) > 1 and sp else DASH
                rows.append([cid, per[n][f"short_{lang}"], comp, format_value(kind, t.get("observed")), chance,
                             yes_no[0] if t.get("passed") else yes_no[1], samples])
    return md_table(head, rows, align="lllrrlr")


def tokens_table(lang: str, models: dict[str, ModelResults], per: dict[str, dict]) -> str:
    names = list(models)
    q = {
        "en": ["Tokens in the sample", "Tokens used (specials excluded)", "Token types", "Effective types",
               "Sequences", "Documents", "Shortest length", "Longest length", "Median length", "Mean length",
               "Share at the median", "Share shorter", "Share longer", "r(length, log frequency)",
               "Spearman ρ(length, log frequency)"],
        "vi": ["Số token trong mẫu", "Số token được dùng", "Số loại token", "Số loại hiệu dụng", "Số chuỗi",
               "Số văn bản", "Độ dài nhỏ nhất", "Độ dài lớn nhất", "Độ dài trung vị", "Độ dài trung bình",
               "Tỉ lệ bằng trung vị", "Tỉ lệ ngắn hơn", "Tỉ lệ dài hơn", "r(độ dài, log tần suất)",
               "ρ Spearman(độ dài, log tần suất)"],
    }[lang]
    cols = []
    for n in names:
        m = per[n]
        cols.append([m["n_tokens"], m["n_used"], m["n_types"], m["effective_types"], m["n_sequences"],
                     m["n_documents"], m["c1"]["len_min"], m["c1"]["len_max"], m["c1"]["len_median"],
                     m["c1"]["len_mean"], m["c1"]["share_at_median"], m["c1"]["share_short"], m["c1"]["share_long"],
                     m["c8"]["r_length_logfreq"], m["c8"]["spearman_length_logfreq"]])
    rows = [[q[i]] + [c[i] for c in cols] for i in range(len(q))]
    return md_table([tr(lang, "quantity")] + [per[n][f"short_{lang}"] for n in names], rows)


def blocks_table(lang: str, models: dict[str, ModelResults], per: dict[str, dict]) -> str:
    """One row per block; each model opens with a row holding only its name (a column of repeated model
    names would cost the printed page a fifth of its width)."""
    head = {"en": ["Block", "Depth", "Med. r", "SD r", "Chance SD", "r < 0", "Sig.", "Med. partial r",
                   "Sig. partial", "Next r", "Multimodal"],
            "vi": ["Khối", "Độ sâu", "TV r", "ĐLC r", "ĐLC do ngẫu nhiên", "r < 0", "Ý nghĩa", "TV r riêng",
                   "Ý nghĩa riêng", "r kế tiếp", "Đa đỉnh"]}[lang]
    rows = []
    for n, mr in models.items():
        rows.append([f"**{per[n][f'short_{lang}']}**"] + [""] * (len(head) - 1))
        for _, b in mr.blocks.iterrows():
            null_sd = b.get("r_within.null_ms")
            rows.append([fint(b[B.block]), fr(b[B.rel_depth], 2), fr(b[B.r_median]),
                         fr(b[B.r_sd]), fr(null_sd ** 0.5 if null_sd is not None and null_sd == null_sd else None),
                         fpct(b[B.share_negative]), fpct(b[B.share_significant]), fr(b[B.partial_median]),
                         fpct(b[B.partial_share_significant]), fr(b[B.r_next_median]), fpct(b[B.share_multimodal])])
    return md_table(head, rows)


def provenance_table(lang: str, params: dict, models: dict[str, ModelResults], per: dict[str, dict],
                     tree: dict) -> str:
    L = {"en": {"config": "Configuration", "corpus": "Corpus", "ref": "Frequency reference", "model": "Model",
                "weights": "weights", "device": "Extraction hardware", "site": "Hook site", "tokens": "Token sample",
                "samples": "Samples (seeds)", "data": "Data version (data.dvc md5)", "digest": "Results digest",
                "packages": "Packages (assets stage)", "extract_pk": "Packages (extraction)",
                "params": "Parameter", "python": "Python", "perm": "Permutations"},
         "vi": {"config": "Cấu hình", "corpus": "Kho văn bản", "ref": "Kho tham chiếu tần suất", "model": "Mô hình",
                "weights": "trọng số", "device": "Phần cứng trích xuất", "site": "Vị trí hook", "tokens": "Mẫu token",
                "samples": "Số mẫu (hạt giống)", "data": "Phiên bản dữ liệu (md5 của data.dvc)",
                "digest": "Dấu vân kết quả", "packages": "Gói (bước tạo tài sản)",
                "extract_pk": "Gói (bước trích xuất)", "params": "Tham số", "python": "Python",
                "perm": "Số hoán vị"}}[lang]
    rows = [[L["config"], f"`{tree['cfg']['name']}`"], [L["corpus"], tree["corpus"]["name"]]]
    for part in tree["corpus"]["source"].split(", "):
        rows.append(["", part])
    rows.append([L["ref"], f"{tree['corpus'][f'reference_{lang}']}"])
    for n, mr in models.items():
        m = per[n]
        rows.append([f"{L['model']}: {m[f'short_{lang}']}", f"`{n}`"])
        rows.append(["", f"{m['source']}: {m.get(f'version_{lang}', m['version'])}"])
        rows.append(["", f"{L['weights']} {m[f'weights_{lang}']}"])
        rows.append([f"{L['site']}", f"`{m['site_module']}` ({tree['par']['site']})"])
        rows.append([f"{L['device']}", str(mr.meta.get("device", DASH))])
    rows.append([L["tokens"], f"{tree['par']['n_sequences']} × {tree['par']['seq_len']}"])
    seeds = params.get("tokens", {}).get("sample_seeds") or [params.get("seed", 0)]
    rows.append([L["samples"], f"{len(seeds)} ({', '.join(str(s) for s in seeds)})"])
    rows.append([L["perm"], tree["par"]["n_permutations"]])
    for sec in params.get("assets", {}).get("provenance_params", ["seed", "tokens", "extract"]):
        v = params.get(sec)
        if isinstance(v, dict):
            for k, v2 in v.items():
                if not isinstance(v2, (dict, list)):
                    rows.append([f"{L['params']}: `{sec}`", f"{k} = {v2}"])
        elif v is not None:
            rows.append([f"{L['params']}: `{sec}`", str(v)])
    prim = next(iter(models.values()))
    for k in ("torch", "transformers"):
        if prim.meta.get(k):
            rows.append([L["extract_pk"], f"{k} {prim.meta[k]}"])
    for k, v in package_versions(["numpy", "scipy", "statsmodels", "pandas", "matplotlib"], missing=DASH).items():
        rows.append([L["packages"], f"{k} {v}"])
    rows.append([L["python"], platform.python_version()])
    rows += [[L["data"], f"`{tree['prov']['data_md5'][:20]}`"], [L["digest"], f"`{tree['prov']['results_digest']}`"]]
    return md_table([tr(lang, "item"), tr(lang, "value")], rows, align="ll")


def write_tables(out_dir, lang: str, params: dict, models: dict[str, ModelResults], per: dict[str, dict],
                 roles: dict, tree: dict) -> None:
    tdir = out_dir / "tables" / lang
    tdir.mkdir(parents=True, exist_ok=True)
    texts = {"verdicts": verdict_matrix(lang, models, per, roles), "claims": claims_detail(lang, models, per),
             "tokens": tokens_table(lang, models, per), "blocks": blocks_table(lang, models, per),
             "provenance": provenance_table(lang, params, models, per, tree)}
    for name, text in texts.items():
        (tdir / f"{name}.md").write_text(text, encoding="utf-8")
