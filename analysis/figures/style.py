"""One look for every figure of the paper: palette, sizes for a paper column, fonts, saving.

    >>> from analysis.figures import style
    >>> fig, ax = style.subplots(width="column")          # 3.5 in wide, the paper's single column
    >>> ax.plot([0, 1], [0, 1], color=style.GROUP_COLORS["short"])
    >>> style.save(fig, "report/_generated/figures/en/example", formats=("svg", "png"))

Text is drawn as paths in SVG (matplotlib's default), so a browser and Typst draw the same glyphs
whatever fonts they have; matplotlib still writes each string as an XML comment, which the tests read.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import matplotlib

matplotlib.use("Agg")  # no display; figures are files
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap  # noqa: E402

from analysis.io import atomic_path  # noqa: E402

# Okabe–Ito: distinguishable with the common colour-vision deficiencies and in greyscale print.
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
GROUP_COLORS = {"short": "#0072B2", "equal": "#7F7F7F", "long": "#D55E00"}
CONTROL_COLOR = "#7F7F7F"
NULL_COLOR = "#BBBBBB"
# Depth runs from light to dark along one hue family, so "early" and "late" read without a legend.
DEPTH_CMAP = plt.get_cmap("viridis")
HEAT_CMAP = LinearSegmentedColormap.from_list("paper_heat", ["#FFFFFF", "#9ECAE1", "#08519C", "#08306B"])

# Widths in inches: one column of a two-column paper, and the full text width.
WIDTHS = {"column": 3.5, "full": 7.0}
BASE_FONT_PT = 8

RC = {
    "font.family": "DejaVu Sans",  # ships with matplotlib, full Vietnamese coverage (ă, ơ, ư, ệ, ...)
    "font.size": BASE_FONT_PT,
    "axes.titlesize": BASE_FONT_PT + 1,
    "axes.labelsize": BASE_FONT_PT,
    "xtick.labelsize": BASE_FONT_PT - 1,
    "ytick.labelsize": BASE_FONT_PT - 1,
    "legend.fontsize": BASE_FONT_PT - 1,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "axes.unicode_minus": True,
    "svg.fonttype": "path",
    "svg.hashsalt": "tokenlen",  # fixed ids inside the SVG: same inputs, same bytes
    "figure.dpi": 100,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
}


@contextmanager
def paper_style() -> Iterator[None]:
    """Apply the paper's rcParams inside the block only (tests and notebooks keep their own)."""
    with matplotlib.rc_context(RC):
        yield


def styled(fn):
    """Decorator: draw the whole figure under the paper's rcParams (fonts are fixed when text is created)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with paper_style():
            return fn(*args, **kwargs)
    return wrapper


def figsize(width: str | float = "column", aspect: float = 0.68) -> tuple[float, float]:
    """(width, height) in inches; `aspect` is height / width."""
    w = WIDTHS[width] if isinstance(width, str) else float(width)
    return (w, w * aspect)


def subplots(nrows: int = 1, ncols: int = 1, width: str | float = "column", aspect: float = 0.68, **kw):
    with paper_style():
        fig, axes = plt.subplots(nrows, ncols, figsize=figsize(width, aspect), constrained_layout=True, **kw)
    return fig, axes


def model_colors(names: Sequence[str], weights: Sequence[str]) -> dict[str, str]:
    """A fixed colour per model in configuration order; random-weight controls are always grey."""
    out, k = {}, 0
    for name, w in zip(names, weights):
        if w == "random":
            out[name] = CONTROL_COLOR
        else:
            out[name] = OKABE_ITO[k % len(OKABE_ITO)]
            k += 1
    return out


def figure_legend(fig, axes, ncol: int = 3) -> None:
    """One legend under all panels (deduplicated), so no legend ever hides data."""
    seen: dict[str, object] = {}
    for ax in (axes if isinstance(axes, (list, tuple)) else [axes]):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncol=min(ncol, len(seen)))


def panel_label(ax, letter: str) -> None:
    """Prefix the panel's title with (a), (b), ... and left-align it, as journals print panel letters."""
    title = ax.get_title()
    ax.set_title("")
    ax.set_title(f"({letter}) {title}".strip(), loc="left")


def save(fig, stem: str | Path, formats: Sequence[str] = ("svg", "png"), dpi: int = 300) -> list[Path]:
    """Write `stem.<fmt>` for each format atomically; metadata without dates, so reruns are byte-identical."""
    stem = Path(stem)
    written = []
    with paper_style():
        for fmt in formats:
            path = stem.with_suffix(f".{fmt}")
            meta = {"Date": None} if fmt in ("svg", "pdf") else {}
            if fmt == "png":
                meta = {"Software": None}
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=fmt, dpi=dpi, metadata=meta)
            written.append(path)
    plt.close(fig)
    return written
