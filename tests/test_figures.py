"""Figures of the assets stage: valid files, translated text, deterministic bytes.

    pytest tests/test_figures.py

Runs the stage on the synthetic results tree (tests/synthetic.py); no models, no Quarto.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from analysis.figures import plots
from analysis.figures.i18n import LANGS, STRINGS, tr
from analysis.figures.make import FIGURES
from analysis.stages.assets import build

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def svg_text(path: Path) -> str:
    """The strings of an SVG whose text is drawn as paths: matplotlib writes each one as an XML comment."""
    return " ".join(re.findall(r"<!--\s*(.*?)\s*-->", path.read_text(encoding="utf-8"), flags=re.S))


@pytest.mark.parametrize("lang", LANGS)
def test_every_figure_is_a_valid_svg_and_png(assets_any, lang):
    d = assets_any["gen"] / "figures" / lang
    for name in FIGURES:
        svg, png = d / f"{name}.svg", d / f"{name}.png"
        assert svg.exists() and png.exists(), f"missing {name} ({lang})"
        root = ET.parse(svg).getroot()
        assert root.tag.endswith("svg")
        assert "Date" not in svg.read_text(encoding="utf-8")[:2000] or "<dc:date>" not in svg.read_text()
        head = png.read_bytes()[:24]
        assert head[:8] == PNG_MAGIC
        width = int.from_bytes(head[16:20], "big")
        assert 600 <= width <= 3000, f"{name}: {width} px wide"


@pytest.mark.parametrize("name,key", [("token_lengths", "length_axis"), ("r_density_lines", "r_axis"),
                                      ("depth_compare", "rel_depth"), ("split_histograms", "activation_z"),
                                      ("length_vs_logfreq", "log_freq"), ("null_control", "sd_r")])
def test_figures_carry_their_language(assets_offline, name, key):
    en = svg_text(assets_offline["gen"] / "figures" / "en" / f"{name}.svg")
    vi = svg_text(assets_offline["gen"] / "figures" / "vi" / f"{name}.svg")
    assert tr("en", key) in en
    assert tr("vi", key) in vi, f"{name}: Vietnamese label {tr('vi', key)!r} not in the vi SVG"
    assert tr("en", key) not in vi, f"{name}: English label left in the vi SVG"


def test_vietnamese_has_diacritics_and_model_labels(assets_paper):
    vi = svg_text(assets_paper["gen"] / "figures" / "vi" / "depth_compare.svg")
    assert "Độ sâu tương đối" in vi
    assert "Đối chứng ngẫu nhiên" in vi          # translated short label of the control (params.yaml)
    assert "GPT-Neo 1.3B" in vi


def test_translations_are_complete():
    for key, entry in STRINGS.items():
        for lang in LANGS:
            assert entry.get(lang), f"{key} has no {lang} text"


def test_plot_functions_are_pure_and_return_figures():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"block": np.repeat([0, 1, 2], 50), "neuron": np.tile(np.arange(50), 3),
                       "rel_depth": np.repeat([0, 0.5, 1], 50), "r_within": rng.normal(0, 0.1, 150),
                       "partial_r_length": rng.normal(0, 0.1, 150), "partial_r_next": rng.normal(0, 0.05, 150),
                       "n": 500})
    bl = pd.DataFrame({"block": [0, 1, 2], "rel_depth": [0, 0.5, 1], "r_within_median": [0.1, -0.02, 0.0],
                       "r_within.ms": [0.02, 0.01, 0.005], "r_within.null_ms": [0.002] * 3,
                       "partial_r_next.ms": [0.001, 0.002, 0.004], "partial_r_next.null_ms": [0.001] * 3,
                       "r_within_share_negative": [0.3, 0.6, 0.5], "partial_r_length_median": [0.05, -0.01, 0.0],
                       "r_within.med.q025": [-0.01] * 3, "r_within.med.q975": [0.01] * 3,
                       "r_within.neg.q025": [0.45] * 3, "r_within.neg.q975": [0.55] * 3})
    for lang in LANGS:
        for fig in (plots.r_density_lines({"m": df}, {"m": "M"}, lang), plots.r_heatmap({"m": df}, {"m": "M"}, lang),
                    plots.raw_vs_partial({"m": df}, {"m": "M"}, lang),
                    plots.depth_compare({"m": bl}, {"m": "M"}, {"m": "#0072B2"}, lang),
                    plots.stability_bands({"m": [bl, bl]}, {"m": "M"}, {"m": "#0072B2"}, lang)):
            assert isinstance(fig, Figure)
            assert fig.get_size_inches()[0] <= 7.01  # fits the text width


def test_split_histograms_handles_constant_neurons():
    acts = np.random.default_rng(1).normal(size=(300, 10)).astype(np.float16)
    acts[:, 3] = 1.0
    groups = np.array(["short", "equal", "long"] * 100)
    fig = plots.split_histograms(acts, groups, [0, 5], "vi", "M, khối 1")
    assert isinstance(fig, Figure)


def test_stage_is_deterministic(assets_offline, tmp_path):
    """Same inputs → byte-identical metadata, tables and SVGs (so `dvc repro` after a rerun changes nothing)."""
    root = assets_offline["root"]
    out = tmp_path / "again"
    build(assets_offline["params"], root / "results", root / "summary", out, Path(__file__).resolve().parent.parent)
    first = assets_offline["gen"]
    for rel in ["metadata.yml", "tables/en/claims.md", "tables/en/verdicts.md", "tables/vi/provenance.md",
                "figures/en/r_heatmap.svg", "figures/en/stability_bands.svg",
                "figures/vi/split_histograms.svg", "figures/en/token_lengths.png"]:
        assert (first / rel).read_bytes() == (out / rel).read_bytes(), f"{rel} differs between two runs"


def test_numbers_print_one_way():
    from analysis.manuscript.format import fint, fp, fpct, fr

    assert fp(1e-212) == "< 0.001" and fp(0.013) == "0.013"
    assert fr(-0.0156) == "−0.016" and fr(-0.0001) == "0.000" and fpct(0.5417) == "54.2%"
    assert fint(12345) == "12\u2009345" and fr(float("nan")) == "—"
