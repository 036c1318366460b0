"""Every word a figure or generated table shows, in English and Vietnamese.

    >>> from analysis.figures.i18n import tr
    >>> tr("vi", "length_axis")
    'Độ dài token (ký tự)'

A missing key or language raises KeyError at once (tests render every figure in both languages), so a
figure can never silently ship an English label in the Vietnamese paper.
"""

from __future__ import annotations

LANGS = ("en", "vi")

STRINGS: dict[str, dict[str, str]] = {
    # axes
    "length_axis": {"en": "Token length (characters)", "vi": "Độ dài token (ký tự)"},
    "share_tokens": {"en": "Share of tokens", "vi": "Tỉ lệ token"},
    "activation": {"en": "Activation", "vi": "Giá trị hoạt hóa"},
    "activation_z": {"en": "Activation (z-score per neuron)", "vi": "Hoạt hóa (z-score theo nơ-ron)"},
    "density": {"en": "Density", "vi": "Mật độ"},
    "r_axis": {"en": "r (activation, length), within sequences", "vi": "r (hoạt hóa, độ dài), trong từng chuỗi"},
    "neurons_density": {"en": "Density of neurons", "vi": "Mật độ nơ-ron"},
    "block": {"en": "Block", "vi": "Khối"},
    "rel_depth": {"en": "Relative depth (block / last block)", "vi": "Độ sâu tương đối (khối / khối cuối)"},
    "median_r": {"en": "Median r across neurons", "vi": "Trung vị r của các nơ-ron"},
    "sd_r": {"en": "SD of r across neurons", "vi": "Độ lệch chuẩn của r"},
    "rms_excess": {"en": "Spread of r beyond chance", "vi": "Độ phân tán của r vượt mức ngẫu nhiên"},
    "rms_excess_next": {"en": "Next-token partial r beyond chance", "vi": "r riêng phần token kế tiếp vượt ngẫu nhiên"},
    "share_negative": {"en": "Share of neurons with r < 0", "vi": "Tỉ lệ nơ-ron có r < 0"},
    "median_partial": {"en": "Median partial r", "vi": "Trung vị r riêng phần"},
    "share_beyond": {"en": "Share of neurons beyond chance", "vi": "Tỉ lệ nơ-ron vượt mức ngẫu nhiên"},
    "log_freq": {"en": "log10 relative frequency", "vi": "log10 tần suất tương đối"},
    "share_multimodal": {"en": "Share of multimodal neurons", "vi": "Tỉ lệ nơ-ron đa đỉnh"},
    "dip_axis": {"en": "Hartigan's dip statistic", "vi": "Thống kê dip của Hartigan"},
    "ecdf": {"en": "Cumulative share of neurons", "vi": "Tỉ lệ tích lũy nơ-ron"},
    "count_tokens": {"en": "Tokens", "vi": "Số token"},
    "r_value": {"en": "Correlation with length", "vi": "Tương quan với độ dài"},
    "share_block_neurons": {"en": "Share of the block's neurons", "vi": "Tỉ lệ nơ-ron của khối"},
    "share_outside": {"en": "Share of neurons outside the band", "vi": "Tỉ lệ nơ-ron nằm ngoài dải"},
    # legends
    "median": {"en": "median", "vi": "trung vị"},
    "short": {"en": "short (< median)", "vi": "ngắn (< trung vị)"},
    "equal": {"en": "at the median", "vi": "bằng trung vị"},
    "long": {"en": "long (> median)", "vi": "dài (> trung vị)"},
    "raw_r": {"en": "raw r", "vi": "r thô"},
    "partial_r": {"en": "partial r (log frequency controlled)", "vi": "r riêng phần (kiểm soát log tần suất)"},
    "null_band": {"en": "chance band (calibrated null)", "vi": "dải ngẫu nhiên (đã hiệu chỉnh)"},
    "null_sd": {"en": "1/√(n−1) (tokens as independent units)", "vi": "1/√(n−1) (token độc lập)"},
    "perm_sd": {"en": "calibrated null SD", "vi": "độ lệch chuẩn ngẫu nhiên đã hiệu chỉnh"},
    "null_normal": {"en": "chance (normal, calibrated SD)", "vi": "ngẫu nhiên (chuẩn, SD hiệu chỉnh)"},
    "null_range": {"en": "chance range (calibrated null)", "vi": "khoảng ngẫu nhiên (đã hiệu chỉnh)"},
    "sample_range": {"en": "range over samples", "vi": "khoảng giữa các mẫu"},
    "short_tokens": {"en": "short tokens only", "vi": "chỉ token ngắn"},
    "iqr_r": {"en": "Interquartile range of r", "vi": "Khoảng tứ phân vị của r"},
    "iqr": {"en": "interquartile range", "vi": "khoảng tứ phân vị"},
    "token_types": {"en": "token types", "vi": "loại token"},
    "mean_per_length": {"en": "mean per length", "vi": "trung bình theo độ dài"},
    # titles
    "pooled": {"en": "All neurons pooled", "vi": "Gộp mọi nơ-ron"},
    "neuron": {"en": "Neuron", "vi": "Nơ-ron"},
    "block_title": {"en": "block", "vi": "khối"},
    "spread_title": {"en": "Spread of r", "vi": "Độ phân tán của r"},
    "center_title": {"en": "Centre of r", "vi": "Vị trí trung tâm của r"},
    "next_title": {"en": "Next token", "vi": "Token kế tiếp"},
    "negative_title": {"en": "Negative r", "vi": "r âm"},
    "partial_title": {"en": "Frequency controlled", "vi": "Kiểm soát tần suất"},
    "beyond_title": {"en": "Beyond chance", "vi": "Vượt mức ngẫu nhiên"},
    "at_block": {"en": "r at the split block", "vi": "r tại khối phân nhóm"},
    "multimodal_title": {"en": "Multimodality by depth", "vi": "Tính đa đỉnh theo độ sâu"},
    "dip_title": {"en": "Dip at the split block", "vi": "Dip tại khối phân nhóm"},
    # table words
    "claim": {"en": "Claim", "vi": "Nhận định"},
    "model": {"en": "Model", "vi": "Mô hình"},
    "verdict": {"en": "Verdict", "vi": "Kết luận"},
    "statistic": {"en": "Statistic", "vi": "Thống kê"},
    "threshold": {"en": "Threshold", "vi": "Ngưỡng"},
    "quantity": {"en": "Quantity", "vi": "Đại lượng"},
    "item": {"en": "Item", "vi": "Mục"},
    "value": {"en": "Value", "vi": "Giá trị"},
}

VERDICTS = {
    "supported": {"en": "supported", "vi": "được ủng hộ"},
    "not_supported": {"en": "not supported", "vi": "không được ủng hộ"},
    "mixed": {"en": "mixed", "vi": "không nhất quán"},
    "not_applicable": {"en": "not applicable", "vi": "không áp dụng"},
    "missing": {"en": "not computed", "vi": "chưa tính"},
}

WEIGHTS = {
    "pretrained": {"en": "pretrained", "vi": "đã huấn luyện"},
    "random": {"en": "random (control)", "vi": "ngẫu nhiên (đối chứng)"},
}


def tr(lang: str, key: str) -> str:
    """The string `key` in `lang` (KeyError if either is unknown)."""
    return STRINGS[key][lang]


def verdict_word(lang: str, verdict: str | None) -> str:
    return VERDICTS.get(verdict or "missing", {"en": str(verdict), "vi": str(verdict)})[lang]
