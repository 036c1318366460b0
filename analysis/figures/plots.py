"""Pure plotting functions: DataFrames/arrays in, a matplotlib Figure out (nothing read, nothing saved).

    >>> from analysis.figures import plots, style
    >>> fig = plots.r_density_lines({"m": neurons_df}, labels={"m": "GPT-Neo 125M"}, lang="vi")
    >>> style.save(fig, "report/_generated/figures/vi/r_density_lines")

Every function takes `lang` ("en" or "vi") and draws all words through analysis.figures.i18n, so the two
languages get the same figure with translated titles, axes and legends. Column names come from
analysis.figures.data (C: neurons, B: blocks, T: tokens).
"""

from __future__ import annotations

import math
import textwrap
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.ticker import MaxNLocator

from analysis.figures import style
from analysis.figures.data import B, C, T
from analysis.figures.i18n import tr

Z_CHANCE = 1.96  # two-sided 5 % band of r under independence (normal approximation)


def _grid(n_panels: int, width: str = "full", aspect_per_row: float = 0.30, max_cols: int = 3):
    ncols = min(n_panels, max_cols)
    nrows = math.ceil(n_panels / ncols)
    fig, axes = style.subplots(nrows, ncols, width=width, aspect=aspect_per_row * nrows * (3 / max(ncols, 1)) ** 0.3,
                               squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    return fig, flat[:n_panels]


def _smooth_density(x: np.ndarray, edges: np.ndarray, sigma_bins: float = 1.5) -> np.ndarray:
    """Histogram density lightly smoothed with a Gaussian kernel: a cheap, deterministic KDE."""
    x = x[np.isfinite(x)]
    h, _ = np.histogram(x, bins=edges, density=True)
    if sigma_bins <= 0 or len(h) < 5:
        return h
    k = np.arange(-int(3 * sigma_bins) - 1, int(3 * sigma_bins) + 2)
    w = np.exp(-0.5 * (k / sigma_bins) ** 2)
    return np.convolve(h, w / w.sum(), mode="same")


def _r_edges(frames: Sequence[pd.DataFrame], col: str = C.r, n_bins: int = 60) -> np.ndarray:
    vals = np.concatenate([f[col].to_numpy(dtype=float) for f in frames])
    vals = vals[np.isfinite(vals)]
    lim = float(np.quantile(np.abs(vals), 0.999)) if vals.size else 1.0
    lim = max(lim * 1.05, 0.02)
    return np.linspace(-lim, lim, n_bins + 1)


# --------------------------------------------------------------------------------------------------------
@style.styled
def token_lengths(lengths: Mapping[str, np.ndarray], medians: Mapping[str, float], labels: Mapping[str, str],
                  colors: Mapping[str, str], lang: str, max_len: int | None = None):
    """Share of tokens at each length (grouped bars, one colour per model) with each model's median."""
    fig, ax = style.subplots(width="column", aspect=0.62)
    names = list(lengths)
    top = max_len or int(max(np.max(v) for v in lengths.values()))
    xs = np.arange(1 if min(np.min(v) for v in lengths.values()) >= 1 else 0, top + 1)
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        v = np.asarray(lengths[name])
        share = np.array([(v == x).mean() for x in xs])
        ax.bar(xs - 0.4 + width * (i + 0.5), share, width=width, color=colors[name], label=labels[name], lw=0)
        ax.axvline(medians[name], color=colors[name], ls="--", lw=0.9)
    ax.plot([], [], color="k", ls="--", lw=0.9, label=tr(lang, "median"))
    ax.set_xlabel(tr(lang, "length_axis"))
    ax.set_ylabel(tr(lang, "share_tokens"))
    ax.set_xticks(xs[:: max(1, len(xs) // 10)])
    ax.legend(loc="upper right")
    return fig


@style.styled
def split_histograms(acts: np.ndarray, groups: np.ndarray, example_neurons: Sequence[int], lang: str,
                     block_title: str, n_bins: int = 80, chunk: int = 512):
    """Median split at one block: (a) all neurons pooled (z-scored per neuron), then example neurons.

    acts: [n_tokens, n_neurons] (rows already restricted to the tokens used); groups: "short"/"equal"/"long"
    per row. Pooling is done in chunks of neurons so a 1.3B block (8192 × 8192) never needs a float64 copy.
    """
    keys = ("short", "equal", "long")
    masks = {g: np.asarray(groups) == g for g in keys}
    edges = np.linspace(-4, 4, n_bins + 1)
    pooled = {g: np.zeros(n_bins) for g in keys}
    for start in range(0, acts.shape[1], chunk):
        a = np.asarray(acts[:, start:start + chunk], dtype=np.float32)
        sd = a.std(axis=0)
        ok = sd > 0
        z = (a[:, ok] - a[:, ok].mean(axis=0)) / sd[ok]
        for g in keys:
            pooled[g] += np.histogram(z[masks[g]].ravel(), bins=edges)[0]
    n_panels = 1 + len(example_neurons)
    fig, axes = _grid(n_panels, width="full", aspect_per_row=0.27, max_cols=min(4, n_panels))
    centers = 0.5 * (edges[1:] + edges[:-1])
    for g in keys:
        dens = pooled[g] / max(pooled[g].sum() * (edges[1] - edges[0]), 1e-12)
        axes[0].step(centers, dens, where="mid", color=style.GROUP_COLORS[g], label=tr(lang, g))
    axes[0].set_title(tr(lang, "pooled"))
    fig.suptitle(block_title, fontsize=style.BASE_FONT_PT)
    axes[0].set_xlabel(tr(lang, "activation_z"))
    axes[0].set_ylabel(tr(lang, "density"))
    for ax, j in zip(axes[1:], example_neurons):
        col = np.asarray(acts[:, j], dtype=np.float32)
        lo, hi = np.quantile(col, [0.002, 0.998])
        e = np.linspace(lo, hi if hi > lo else lo + 1, 50)
        for g in keys:
            ax.hist(col[masks[g]], bins=e, density=True, histtype="step", color=style.GROUP_COLORS[g], lw=1.1)
        ax.set_title(f"{tr(lang, 'neuron')} {j}")
        ax.set_xlabel(tr(lang, "activation"))
    style.figure_legend(fig, axes[:1], ncol=3)
    for i, ax in enumerate(axes):
        style.panel_label(ax, "abcdefgh"[i])
    return fig


@style.styled
def r_at_block(r: Mapping[str, np.ndarray], chance_sd: float, labels: Mapping[str, str], colors: Mapping[str, str],
               lang: str, title: str):
    """Distribution of r over the neurons of one block per model, against the chance band ±1.96 x the SD of
    r under the calibrated null (type-level permutation, widened; the first model's block)."""
    fig, ax = style.subplots(width="column", aspect=0.62)
    edges = _r_edges([pd.DataFrame({C.r: v}) for v in r.values()], n_bins=70)
    band = Z_CHANCE * chance_sd
    ax.axvspan(-band, band, color=style.NULL_COLOR, alpha=0.45, lw=0, label=tr(lang, "null_band"))
    xs = np.linspace(edges[0], edges[-1], 400)
    ax.plot(xs, np.exp(-0.5 * (xs / chance_sd) ** 2) / (chance_sd * math.sqrt(2 * math.pi)), color="k", lw=0.7,
            ls=":", label=tr(lang, "null_normal"))
    for name, v in r.items():
        ax.hist(np.asarray(v)[np.isfinite(v)], bins=edges, density=True, histtype="step", lw=1.3,
                color=colors[name], label=labels[name])
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel(tr(lang, "r_axis"))
    ax.set_ylabel(tr(lang, "neurons_density"))
    ax.set_title(title)
    ax.set_ylim(0, None)
    style.figure_legend(fig, ax, ncol=2)
    return fig


@style.styled
def r_density_lines(neurons: Mapping[str, pd.DataFrame], labels: Mapping[str, str], lang: str):
    """Per model, one density curve of r per block, coloured by relative depth (the study's line plot)."""
    fig, axes = _grid(len(neurons), width="full", aspect_per_row=0.30)
    edges = _r_edges(list(neurons.values()), n_bins=80)
    centers = 0.5 * (edges[1:] + edges[:-1])
    norm = Normalize(0, 1)
    for i, (ax, (name, df)) in enumerate(zip(axes, neurons.items())):
        blocks = np.sort(df[C.block].unique())
        last = max(blocks.max(), 1)
        for b in blocks:
            ax.plot(centers, _smooth_density(df.loc[df[C.block] == b, C.r].to_numpy(float), edges),
                    color=style.DEPTH_CMAP(norm(b / last)), lw=0.9)
        ax.axvline(0, color="k", lw=0.5)
        ax.set_title(labels[name])
        ax.set_xlabel(tr(lang, "r_axis"))
        style.panel_label(ax, "abcdefgh"[i])
    axes[0].set_ylabel(tr(lang, "neurons_density"))
    cb = fig.colorbar(ScalarMappable(norm=norm, cmap=style.DEPTH_CMAP), ax=axes, shrink=0.9, pad=0.01)
    cb.set_label(tr(lang, "rel_depth"))
    return fig


@style.styled
def r_heatmap(neurons: Mapping[str, pd.DataFrame], labels: Mapping[str, str], lang: str):
    """Per model, blocks (rows) × r bins (columns): the share of a block's neurons in each bin."""
    fig, axes = _grid(len(neurons), width="full", aspect_per_row=0.32)
    edges = _r_edges(list(neurons.values()), n_bins=50)
    im = None
    for i, (ax, (name, df)) in enumerate(zip(axes, neurons.items())):
        blocks = np.sort(df[C.block].unique())
        mat = np.vstack([np.histogram(df.loc[df[C.block] == b, C.r].to_numpy(float), bins=edges)[0] for b in blocks])
        mat = mat / np.maximum(mat.sum(axis=1, keepdims=True), 1)
        im = ax.imshow(mat, aspect="auto", origin="lower", cmap=style.HEAT_CMAP, interpolation="nearest",
                       extent=(edges[0], edges[-1], blocks[0] - 0.5, blocks[-1] + 0.5), vmin=0)
        ax.axvline(0, color="#D55E00", lw=0.6, ls="--")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(labels[name])
        ax.set_xlabel(tr(lang, "r_axis"))
        style.panel_label(ax, "abcdefgh"[i])
    axes[0].set_ylabel(tr(lang, "block"))
    cb = fig.colorbar(im, ax=axes, shrink=0.9, pad=0.01)
    cb.set_label(tr(lang, "share_block_neurons"))
    return fig


def _quantiles_by_block(df: pd.DataFrame, col: str) -> pd.DataFrame:
    g = df.groupby(C.block)[col]
    return pd.DataFrame({"q25": g.quantile(0.25), "q50": g.median(), "q75": g.quantile(0.75)})


@style.styled
def raw_vs_partial(neurons: Mapping[str, pd.DataFrame], labels: Mapping[str, str], lang: str):
    """Per model, median and IQR of raw r and of partial r (log frequency controlled) by block."""
    fig, axes = _grid(len(neurons), width="full", aspect_per_row=0.30)
    for i, (ax, (name, df)) in enumerate(zip(axes, neurons.items())):
        for col, color, key, ls in ((C.r, "#0072B2", "raw_r", "-"), (C.partial_r, "#D55E00", "partial_r", "--")):
            q = _quantiles_by_block(df, col)
            ax.fill_between(q.index, q.q25, q.q75, color=color, alpha=0.18, lw=0)
            ax.plot(q.index, q.q50, color=color, ls=ls, marker="o", ms=2.5, label=tr(lang, key))
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(labels[name])
        ax.set_xlabel(tr(lang, "block"))
        style.panel_label(ax, "abcdefgh"[i])
    axes[0].set_ylabel(tr(lang, "r_value"))
    style.figure_legend(fig, axes[:1], ncol=2)
    return fig


@style.styled
def length_vs_logfreq(tokens: Mapping[str, pd.DataFrame], r_values: Mapping[str, str], labels: Mapping[str, str],
                      colors: Mapping[str, str], lang: str, seed: int = 0):
    """Per tokenizer/model: each distinct token type (length, log frequency), jittered, with the mean per length.

    r_values are preformatted strings (from the metadata) so the figure and the text show the same number.
    """
    fig, axes = _grid(len(tokens), width="full", aspect_per_row=0.30)
    rng = np.random.default_rng(seed)
    for i, (ax, (name, df)) in enumerate(zip(axes, tokens.items())):
        types = df.drop_duplicates(T.token_id)
        x = types[T.length].to_numpy(float)
        y = types[T.log_freq].to_numpy(float)
        ax.scatter(x + rng.uniform(-0.3, 0.3, len(x)), y, s=1.5, alpha=0.25, color=colors[name], lw=0,
                   rasterized=len(x) > 3000, label=tr(lang, "token_types"))
        m = types.groupby(T.length)[T.log_freq].mean()
        ax.plot(m.index, m.values, color="k", lw=1.1, marker="o", ms=2, label=tr(lang, "mean_per_length"))
        ax.set_title(labels[name])
        ax.text(0.97, 0.95, f"r = {r_values[name]}", transform=ax.transAxes, ha="right", va="top")
        ax.set_xlabel(tr(lang, "length_axis"))
        style.panel_label(ax, "abcdefgh"[i])
    axes[0].set_ylabel(tr(lang, "log_freq"))
    style.figure_legend(fig, axes[:1], ncol=2)
    return fig


def rms_excess(blocks: pd.DataFrame, stat: str) -> np.ndarray:
    """Per block, sqrt(max(mean square - null mean square, 0)): the spread of a statistic beyond chance."""
    ms, null = blocks[f"{stat}.ms"].to_numpy(float), blocks[f"{stat}.null_ms"].to_numpy(float)
    return np.sqrt(np.maximum(ms - null, 0.0))


@style.styled
def depth_compare(blocks: Mapping[str, pd.DataFrame], labels: Mapping[str, str], colors: Mapping[str, str],
                  lang: str):
    """Models at matched relative depth: median r, spread of r beyond chance, next-token partial r beyond chance."""
    fig, axes = style.subplots(1, 3, width="full", aspect=0.30)
    titles = ("center_title", "spread_title", "next_title")
    ylabels = ("median_r", "rms_excess", "rms_excess_next")
    for name, bl in blocks.items():
        ls = "--" if colors[name] == style.CONTROL_COLOR else "-"
        stats = (bl[B.r_median].to_numpy(float), rms_excess(bl, "r_within"), rms_excess(bl, "partial_r_next"))
        for ax, v in zip(axes, stats):
            ax.plot(bl[B.rel_depth], v, color=colors[name], ls=ls, marker="o", ms=2.5, label=labels[name])
    for i, (ax, t, yl) in enumerate(zip(axes, titles, ylabels)):
        ax.set_title(tr(lang, t))
        ax.set_xlabel(tr(lang, "rel_depth"))
        ax.set_ylabel(textwrap.fill(tr(lang, yl), 24, break_on_hyphens=False))   # three panels: long labels wrap
        style.panel_label(ax, "abc"[i])
    axes[0].axhline(0, color="k", lw=0.5)
    style.figure_legend(fig, list(axes[:1]), ncol=4)
    return fig


@style.styled
def stability_bands(samples: Mapping[str, Sequence[pd.DataFrame]], labels: Mapping[str, str],
                    colors: Mapping[str, str], lang: str):
    """Per-block summaries of the headline sample (line), their range over the repeated samples (band) and
    the headline's calibrated chance range (grey): median r, share of negative r, spread beyond chance,
    median partial r (frequency controlled)."""
    fig, axes = _grid(4, width="full", aspect_per_row=0.30, max_cols=2)
    panels = (("r_within.med", B.r_median, "median_r", "center_title"),
              ("r_within.neg", B.share_negative, "share_negative", "negative_title"),
              (None, "rms", "rms_excess", "spread_title"),
              ("partial_r_length.med", B.partial_median, "median_partial", "partial_title"))
    for name, frames in samples.items():
        head = frames[0]
        depth = head[B.rel_depth].to_numpy(float)
        for ax, (null_col, col, yl, title) in zip(axes, panels):
            vals = [rms_excess(f, "r_within") if col == "rms" else f[col].to_numpy(float) for f in frames]
            n = min(len(v) for v in vals)
            V = np.vstack([v[:n] for v in vals])
            if len(frames) > 1:
                ax.fill_between(depth[:n], V.min(axis=0), V.max(axis=0), color=colors[name], alpha=0.22, lw=0)
            ax.plot(depth[:n], V[0], color=colors[name], marker="o", ms=2, lw=1.1, label=labels[name])
            if null_col and f"{null_col}.q025" in head:
                ax.fill_between(depth, head[f"{null_col}.q025"], head[f"{null_col}.q975"], color=style.NULL_COLOR,
                                alpha=0.35, lw=0)
            ax.set_title(tr(lang, title))
            ax.set_ylabel(tr(lang, yl))
    for i, ax in enumerate(axes):
        ax.set_xlabel(tr(lang, "rel_depth"))
        style.panel_label(ax, "abcd"[i])
    axes[0].fill_between([], [], color=style.NULL_COLOR, alpha=0.35, label=tr(lang, "null_range"))
    # the band takes each model's colour; the legend shows the first model's (one entry for all)
    band = colors[next(iter(samples))] if samples else "#999999"
    axes[0].fill_between([], [], color=band, alpha=0.22, label=tr(lang, "sample_range"))
    style.figure_legend(fig, axes[:1], ncol=4)
    return fig


@style.styled
def multimodality(blocks: Mapping[str, pd.DataFrame], dips: Mapping[str, np.ndarray], labels: Mapping[str, str],
                  colors: Mapping[str, str], lang: str):
    """(a) share of multimodal neurons by relative depth; (b) ECDF of the dip statistic at matched depth."""
    fig, axes = style.subplots(1, 2, width="full", aspect=0.32)
    for name, df in blocks.items():
        ls = "--" if colors[name] == style.CONTROL_COLOR else "-"
        axes[0].plot(df[B.rel_depth], df[B.share_multimodal], color=colors[name], ls=ls, marker="o", ms=2.5,
                     label=labels[name])
        axes[0].plot(df[B.rel_depth], df[B.share_multimodal_short], color=colors[name], ls=":", lw=0.9)
        d = np.sort(np.asarray(dips[name], float)[np.isfinite(dips[name])])
        axes[1].step(d, np.arange(1, len(d) + 1) / max(len(d), 1), where="post", color=colors[name], ls=ls)
    axes[0].plot([], [], color="#555555", ls=":", lw=0.9, label=tr(lang, "short_tokens"))
    axes[0].axhline(0.05, color="k", lw=0.6, ls="--")
    axes[0].set_title(tr(lang, "multimodal_title"))
    axes[0].set_xlabel(tr(lang, "rel_depth"))
    axes[0].set_ylabel(tr(lang, "share_multimodal"))
    axes[0].set_ylim(0, None)
    style.figure_legend(fig, [axes[0]], ncol=4)
    axes[1].set_title(tr(lang, "dip_title"))
    axes[1].set_xlabel(tr(lang, "dip_axis"))
    axes[1].set_ylabel(tr(lang, "ecdf"))
    for i, ax in enumerate(axes):
        style.panel_label(ax, "ab"[i])
    return fig


@style.styled
def null_control(blocks: Mapping[str, pd.DataFrame], n_tokens: int, labels: Mapping[str, str],
                 colors: Mapping[str, str], lang: str):
    """(a) SD of r by depth against the calibrated null's SD (dotted, per model) and the tokens-as-units
    value 1/sqrt(n-1); (b) share of neurons beyond their own null's 95 % quantile, against the 97.5 %
    quantile of that share under the joint null (dotted): what chance produces for a whole block."""
    fig, axes = style.subplots(1, 2, width="full", aspect=0.32)
    for name, bl in blocks.items():
        ls = "--" if colors[name] == style.CONTROL_COLOR else "-"
        depth = bl[B.rel_depth]
        axes[0].plot(depth, bl[B.r_sd], color=colors[name], ls=ls, marker="o", ms=2.5, label=labels[name])
        if "r_within.null_ms" in bl:
            axes[0].plot(depth, np.sqrt(bl["r_within.null_ms"]), color=colors[name], ls=":", lw=0.9)
        if "r_within.sig" in bl:
            axes[1].plot(depth, bl["r_within.sig"], color=colors[name], ls=ls, marker="o", ms=2.5)
            axes[1].plot(depth, bl["r_within.sig.q975"], color=colors[name], ls=":", lw=0.9)
    axes[0].axhline(1 / math.sqrt(max(n_tokens - 1, 1)), color="k", lw=0.8, ls="-.", label=tr(lang, "null_sd"))
    axes[0].plot([], [], color="#555555", ls=":", lw=0.9, label=tr(lang, "perm_sd"))
    axes[0].set_yscale("log")
    axes[0].set_title(tr(lang, "spread_title"))
    axes[0].set_ylabel(tr(lang, "sd_r"))
    axes[1].set_title(tr(lang, "beyond_title"))
    axes[1].set_ylabel(tr(lang, "share_beyond"))
    axes[1].set_ylim(0, 1.02)
    for i, ax in enumerate(axes):
        ax.set_xlabel(tr(lang, "rel_depth"))
        style.panel_label(ax, "ab"[i])
    style.figure_legend(fig, [axes[0]], ncol=3)
    return fig
