"""Whole sentences whose wording depends on verdicts or on the configuration, in English and Vietnamese.

    >>> from analysis.manuscript.sentences import claim_sentence
    >>> claim_sentence("en", "C3", "supported", "SmolLM2 135M", "4 of 5 samples", "beyond chance")
    'For SmolLM2 135M, the data support the claim that most neurons correlate weakly and negatively ...'

The manuscript reads them as metadata (`say.<topic>_en` / `say.<topic>_vi`), so a paragraph stays true
whether the run has one trained model or two, a control or none, and whatever each verdict turned out.
Component names of the null tests (analysis.stats.claims, key) are translated here too.
"""

from __future__ import annotations

from typing import Sequence

CLAIMS = {
    "C1": {"en": "token lengths span 1 to 16 characters, with a median of 4 and about one token in eight exactly "
                 "at the median",
           "vi": "độ dài token trải từ 1 đến 16 ký tự, trung vị là 4 và khoảng một phần tám số token nằm đúng tại "
                 "trung vị"},
    "C2": {"en": "in the median split the three groups overlap heavily and long tokens sit slightly toward more "
                 "negative activations",
           "vi": "khi chia theo trung vị, ba nhóm chồng lấn nhiều và nhóm token dài lệch nhẹ về phía hoạt hóa âm hơn"},
    "C3": {"en": "most neurons correlate weakly and negatively with token length",
           "vi": "phần lớn nơ-ron có tương quan âm yếu với độ dài token"},
    "C4": {"en": "the first block behaves the other way, with clearly positive correlations",
           "vi": "khối đầu tiên đi theo chiều ngược lại, với tương quan dương rõ rệt"},
    "C5": {"en": "the distribution of r narrows toward zero in the last blocks, as their focus moves to the next "
                 "token",
           "vi": "phân phối của r co hẹp về gần 0 ở các khối cuối, khi trọng tâm chuyển sang token kế tiếp"},
    "C6": {"en": "density curves and heatmaps of r by block show these depth zones",
           "vi": "các đường mật độ và bản đồ nhiệt của r theo khối cho thấy rõ các vùng độ sâu này"},
    "C7": {"en": "activations become multimodal with scale, where those of a smaller model look Gaussian",
           "vi": "hoạt hóa trở nên đa đỉnh khi mô hình lớn hơn, trong khi ở mô hình nhỏ chúng gần với phân phối chuẩn"},
    "C8": {"en": "token frequency confounds the length effect, because short tokens are also frequent tokens",
           "vi": "tần suất token gây nhiễu cho hiệu ứng độ dài, vì token ngắn cũng là token xuất hiện nhiều"},
}

SHORT = {
    "C1": {"en": "Length distribution", "vi": "Phân phối độ dài"},
    "C2": {"en": "Median split", "vi": "Phân nhóm theo trung vị"},
    "C3": {"en": "Weak negative r", "vi": "r âm và yếu"},
    "C4": {"en": "First block positive", "vi": "Khối đầu có r dương"},
    "C5": {"en": "Late blocks narrow", "vi": "Khối cuối co hẹp"},
    "C6": {"en": "Depth zones", "vi": "Các vùng độ sâu"},
    "C7": {"en": "Multimodality with scale", "vi": "Đa đỉnh theo quy mô"},
    "C8": {"en": "Frequency confound", "vi": "Nhiễu do tần suất"},
}

# the null-tested components of each claim (keys of analysis.stats.claims tests)
COMPONENTS = {
    "shift": {"en": "long tokens lower (token score)", "vi": "token dài thấp hơn (điểm token)"},
    "share_negative": {"en": "share of r < 0", "vi": "tỉ lệ r < 0"},
    "median_r": {"en": "median r", "vi": "trung vị r"},
    "block0_median": {"en": "block 0 median r", "vi": "trung vị r khối 0"},
    "narrowing": {"en": "spread of r: middle minus last", "vi": "độ phân tán r: giữa trừ cuối"},
    "next_rising": {"en": "next-token r: last minus middle", "vi": "r token kế: cuối trừ giữa"},
    "first_positive": {"en": "first block positive", "vi": "khối đầu dương"},
    "middle_negative": {"en": "middle blocks negative", "vi": "khối giữa âm"},
    "last_narrower": {"en": "last blocks narrower", "vi": "khối cuối hẹp hơn"},
    "multimodal_all": {"en": "more multimodal (all tokens)", "vi": "đa đỉnh hơn (mọi token)"},
    "multimodal_short": {"en": "more multimodal (short tokens)", "vi": "đa đỉnh hơn (token ngắn)"},
    "length_beyond_chance": {"en": "neurons with a length effect", "vi": "nơ-ron có hiệu ứng độ dài"},
    "freq_beyond_chance": {"en": "neurons with a frequency effect", "vi": "nơ-ron có hiệu ứng tần suất"},
}

FRAMES = {
    "en": {
        "supported": "For {label}, the data support the claim that {claim}{extra}.",
        "not_supported": "For {label}, the data do not support the claim that {claim}{extra}.",
        "mixed": "For {label}, the evidence is mixed on the claim that {claim}{extra}.",
        "not_applicable": "For {label}, this configuration cannot test the claim that {claim}{extra}.",
        "missing": "For {label}, no verdict was computed for the claim that {claim}.",
    },
    "vi": {
        "supported": "Với {label}, dữ liệu ủng hộ nhận định rằng {claim}{extra}.",
        "not_supported": "Với {label}, dữ liệu không ủng hộ nhận định rằng {claim}{extra}.",
        "mixed": "Với {label}, bằng chứng không nhất quán về nhận định rằng {claim}{extra}.",
        "not_applicable": "Với {label}, cấu hình này không kiểm định được nhận định rằng {claim}{extra}.",
        "missing": "Với {label}, chưa có kết luận cho nhận định rằng {claim}.",
    },
}


def join_list(lang: str, items: Sequence[str]) -> str:
    """'a, b and c' / 'a, b và c'."""
    items = list(items)
    word = {"en": "and", "vi": "và"}[lang]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {word} " + items[-1]


def agreement(lang: str, n_agree: int, n: int, stable: bool) -> str:
    """'in 4 of 5 samples, a stable verdict' / 'trong 4 trên 5 mẫu, ...'; '' for a single sample."""
    if n <= 1:
        return ""
    return {"en": f"in {n_agree} of {n} samples" + (", a stable verdict" if stable else ", not a stable verdict"),
            "vi": f"ở {n_agree} trên {n} mẫu" + (", một kết luận ổn định" if stable else ", chưa phải kết luận ổn định")
            }[lang]


def control_phrase(lang: str, label: str, verdict_word_: str, n_same: int, n: int) -> str:
    """'Random-weight control: not supported in 3 of 3 weight initialisations' (the headline verdict and how
    many initialisations gave it, as the verdict table counts them)."""
    if n <= 1:
        return {"en": f"{label}: {verdict_word_}", "vi": f"{label}: {verdict_word_}"}[lang]
    return {"en": f"{label}: {verdict_word_} in {n_same} of {n} weight initialisations",
            "vi": f"{label}: {verdict_word_} ở {n_same} trên {n} lần khởi tạo trọng số"}[lang]


def claim_sentence(lang: str, cid: str, verdict: str | None, label: str, agree: str = "", control: str = "") -> str:
    f = FRAMES[lang]
    parts = [p for p in (agree, control) if p]
    extra = f" ({'; '.join(parts)})" if parts else ""
    return f.get(verdict or "missing", f["missing"]).format(label=label, claim=CLAIMS[cid][lang], extra=extra)


def models_sentence(lang: str, rows: Sequence[dict]) -> str:
    """rows: {label, n_blocks, n_neurons, weights} with strings already in `lang`."""
    unit = {"en": ("blocks", "neurons"), "vi": ("khối", "nơ-ron")}[lang]
    parts = [f"{r['label']}, {r['n_blocks']} {unit[0]} × {r['n_neurons']} {unit[1]}" for r in rows]
    lead = {"en": "This run analyses ", "vi": "Lần chạy này phân tích "}[lang]
    return lead + "; ".join(parts) + "."


def scale_sentence(lang: str, pretrained: Sequence[str], n_models: int = 2) -> str:
    if len(pretrained) >= 2:
        return {
            "en": f"The configuration holds trained models of different size, {join_list('en', pretrained)}, so the "
                  "study's comparison across scale can be repeated at matched relative depth.",
            "vi": f"Cấu hình có các mô hình đã huấn luyện với quy mô khác nhau là {join_list('vi', pretrained)}, nên "
                  "có thể lặp lại phép so sánh theo quy mô của nghiên cứu gốc tại cùng độ sâu tương đối.",
        }[lang]
    return {
        "en": f"The configuration holds a single trained model, {pretrained[0] if pretrained else '—'}, so the study's "
              "comparison across scale cannot be repeated here; the figures set it against the "
              + ("other model" if n_models == 2 else "other models") + " of the run at matched relative depth "
              "instead.",
        "vi": f"Cấu hình chỉ có một mô hình đã huấn luyện là {pretrained[0] if pretrained else '—'}, nên không thể lặp "
              "lại phép so sánh theo quy mô của nghiên cứu gốc; thay vào đó, các hình đặt mô hình này cạnh những mô "
              "hình còn lại của lần chạy tại cùng độ sâu tương đối.",
    }[lang]


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def control_sentence(lang: str, control: str | None, n_init: str, primary: str, same_architecture: bool,
                     sd_control: str, sd_null_control: str) -> str:
    """What the random-weights control is, whether it shares the trained model's architecture, and its own
    spread of r against its own calibrated null."""
    if control is None:
        return {"en": "No random-weights control is part of this configuration.",
                "vi": "Cấu hình này không có mô hình đối chứng với trọng số ngẫu nhiên."}[lang]
    shape = {"en": (f"It has the architecture and tokenizer of {primary}" if same_architecture else
                    f"Its architecture and tokenizer are not those of {primary}, so it controls for what an "
                    f"untrained network and its own token sample produce, not for {primary}'s architecture"),
             "vi": (f"Mô hình này có cùng kiến trúc và bộ tách token với {primary}" if same_architecture else
                    f"Kiến trúc và bộ tách token của mô hình này khác với {primary}, nên nó cho biết một mạng chưa "
                    f"huấn luyện cùng mẫu token của chính nó tạo ra gì, chứ không đối chứng cho kiến trúc của "
                    f"{primary}")}[lang]
    return {
        "en": f"{_capitalised(control)} is untrained: its weights are drawn at random with {n_init} different "
              f"seeds, so whatever it shows comes from an architecture, a tokenizer and the statistics of the tokens, "
              f"not from learning. {shape}. At the split block its standard deviation of r across neurons is "
              f"{sd_control}, against {sd_null_control} under its own calibrated null.",
        "vi": f"{_capitalised(control)} là một mạng chưa được huấn luyện: trọng số được khởi tạo ngẫu nhiên bằng "
              f"{n_init} hạt giống khác nhau, nên mọi hiện tượng ở mô hình này đến từ kiến trúc, bộ tách token và "
              f"thống kê của chính các token chứ không từ quá trình học. {shape}. Tại khối phân nhóm, độ lệch chuẩn "
              f"của r giữa các nơ-ron của mô hình này là {sd_control}, so với {sd_null_control} theo phân phối ngẫu "
              f"nhiên đã hiệu chỉnh của chính nó.",
    }[lang]


def leading_space_sentence(lang: str, counted: bool) -> str:
    if counted:
        return {"en": 'the leading space of a token counts as a character (" the" has length 4)',
                "vi": 'khoảng trắng ở đầu token được tính là một ký tự (" the" có độ dài 4)'}[lang]
    return {"en": 'the leading space of a token is not counted (" the" has length 3)',
            "vi": 'khoảng trắng ở đầu token không được tính (" the" có độ dài 3)'}[lang]


def site_sentence(lang: str, site: str, modules: Sequence[str], labels: Sequence[str] | None = None) -> str:
    """'the output of `mlp.c_fc` (GPT-Neo …), before the activation function'; each module with the models
    it is read in when they differ."""
    where = {"pre": {"en": "before the activation function", "vi": "trước hàm kích hoạt"},
             "post": {"en": "after the activation function", "vi": "sau hàm kích hoạt"}}.get(site, {"en": site, "vi": site})
    uniq = list(dict.fromkeys(modules))
    if labels is not None and len(uniq) > 1:
        by = {m: [lab for lab, mm in zip(labels, modules) if mm == m] for m in uniq}
        mods = join_list(lang, [f"`{m}` ({join_list(lang, by[m])})" for m in uniq])
    else:
        mods = join_list(lang, [f"`{m}`" for m in uniq])
    return {"en": f"the output of {mods}, {where['en']}",
            "vi": f"đầu ra của {mods}, {where['vi']}"}[lang]


def numbering_sentence(lang: str, block0: int) -> str:
    return {"en": f"block {block0} counted from zero, that is block {block0 + 1} counted from one",
            "vi": f"khối {block0} khi đếm từ 0, tức khối thứ {block0 + 1} khi đếm từ 1"}[lang]


def tally_sentence(lang: str, label: str, verdicts: dict[str, str]) -> str:
    """'For X — supported: C1, C3; mixed: C2; not supported: C4.'"""
    from analysis.figures.i18n import verdict_word

    groups: dict[str, list[str]] = {}
    for cid, v in verdicts.items():
        groups.setdefault(v or "missing", []).append(cid)
    order = ["supported", "mixed", "not_supported", "not_applicable", "missing"]
    parts = [f"{verdict_word(lang, v)}: {', '.join(groups[v])}" for v in order if v in groups]
    lead = {"en": f"For {label}", "vi": f"Với {label}"}[lang]
    return f"{lead} — " + "; ".join(parts) + "."


def stability_sentence(lang: str, label: str, n_samples: int, stable: Sequence[str], unstable: Sequence[str]) -> str:
    if n_samples <= 1:
        return {"en": f"For {label} only one sample was drawn, so the stability of its verdicts is not measured.",
                "vi": f"Với {label} chỉ có một mẫu, nên chưa đo được độ ổn định của các kết luận."}[lang]
    s = join_list(lang, stable) if stable else {"en": "none", "vi": "không có"}[lang]
    u = join_list(lang, unstable) if unstable else {"en": "none", "vi": "không có"}[lang]
    if not unstable:
        return {"en": f"Over {n_samples} independent samples of {label}, the headline verdicts of all claims are "
                      f"stable.",
                "vi": f"Qua {n_samples} mẫu độc lập của {label}, kết luận chính của mọi nhận định đều ổn định."}[lang]
    if not stable:
        return {"en": f"Over {n_samples} independent samples of {label}, no headline verdict is stable.",
                "vi": f"Qua {n_samples} mẫu độc lập của {label}, không kết luận chính nào ổn định."}[lang]
    one = len(unstable) == 1
    return {"en": f"Over {n_samples} independent samples of {label}, the headline verdicts of {s} are stable, and "
                  f"{'that' if one else 'those'} of {u} {'is' if one else 'are'} not.",
            "vi": f"Qua {n_samples} mẫu độc lập của {label}, kết luận chính của {s} là ổn định, còn của {u} thì "
                  f"không."}[lang]
