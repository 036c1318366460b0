"""Every figure of the paper for one language, from the loaded results (what the `assets` stage calls).

    >>> from analysis.figures.make import FIGURES, make_figures
    >>> make_figures(out_dir, "vi", models, per, roles, params["assets"])   # out_dir/figures/vi/<name>.{svg,png}

Which data each figure reads is decided here; how it looks is plots.py; its words are i18n.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from analysis.figures import plots, style
from analysis.figures.data import B, C, T, ModelResults
from analysis.figures.i18n import tr

FIGURES = ("token_lengths", "split_histograms", "r_at_block", "r_density_lines", "r_heatmap", "raw_vs_partial",
           "length_vs_logfreq", "depth_compare", "multimodality", "null_control", "stability_bands")


def split_groups(mr: ModelResults) -> np.ndarray:
    lengths = mr.used_tokens()[T.length].to_numpy(float)
    med = float(mr.summary.get("split", {}).get("median", np.median(lengths)))
    return np.where(lengths < med, "short", np.where(lengths > med, "long", "equal"))


def example_neurons(mr: ModelResults, k: int) -> list[int]:
    """Deterministic examples at the split block: most negative r, the median r, most positive r (k >= 3)."""
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
    fig_dir = Path(out) / "figures" / lang
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
    if prim.acts is not None:
        used = np.flatnonzero(~prim.tokens[T.special].astype(bool).to_numpy())
        title = f"{labels[prim.name]}, {tr(lang, 'block_title')} {prim.split_block}"
        save(plots.split_histograms(prim.acts[used], split_groups(prim), example_neurons(prim, int(a.get("example_neurons", 3))),
                                    lang, title), "split_histograms")
    depth = float(prim.blocks.loc[prim.blocks[B.block] == prim.split_block, B.rel_depth].iloc[0])
    at = {n: matched_block(models[n], depth) for n in names}
    r_at = {n: models[n].neurons.loc[models[n].neurons[C.block] == at[n], C.r].to_numpy(float) for n in names}
    pb = prim.blocks.loc[prim.blocks[B.block] == at[prim.name]].iloc[0]
    chance_sd = math.sqrt(float(pb["r_within.null_ms"])) if "r_within.null_ms" in pb else \
        1 / math.sqrt(max(len(prim.used_tokens()) - 1, 1))
    save(plots.r_at_block(r_at, chance_sd, labels, colors, lang,
                          f"{tr(lang, 'at_block')} ({tr(lang, 'rel_depth').split(' (')[0].lower()} {depth:.2f})"),
         "r_at_block")
    neurons = {n: models[n].neurons for n in names}
    save(plots.r_density_lines(neurons, labels, lang), "r_density_lines")
    save(plots.r_heatmap(neurons, labels, lang), "r_heatmap")
    save(plots.raw_vs_partial(neurons, labels, lang), "raw_vs_partial")
    toks = {n: models[n].used_tokens() for n in names}
    save(plots.length_vs_logfreq(toks, {n: per[n]["c8"]["r_length_logfreq"] for n in names}, labels, colors, lang),
         "length_vs_logfreq")
    blocks = {n: models[n].blocks for n in names}
    save(plots.depth_compare(blocks, labels, colors, lang), "depth_compare")
    dips = {n: models[n].neurons.loc[models[n].neurons[C.block] == at[n], C.dip].to_numpy(float) for n in names}
    save(plots.multimodality(blocks, dips, labels, colors, lang), "multimodality")
    save(plots.null_control(blocks, len(prim.used_tokens()), labels, colors, lang), "null_control")
    trained = [n for n in names if models[n].weights != "random"] or names
    save(plots.stability_bands({n: models[n].sample_blocks() for n in trained}, labels, colors, lang),
         "stability_bands")
