"""Numbers as the manuscript prints them, and pipe tables (strings in, strings out).

    >>> from analysis.manuscript.format import fr, fpct, fint, fp, md_table
    >>> fr(-0.0123), fpct(0.5417), fint(12345), fp(0.0004)
    ('−0.012', '54.2%', '12 345', '< 0.001')

Conventions (one place, so both languages print the same number the same way): correlation-like numbers
with 3 decimals and a typographic minus; shares as percent with 1 decimal; counts with a thin-space
thousands separator; p-values with 2 significant digits, or "< 0.001"; "—" for a missing value.
"""

from __future__ import annotations

import math
from typing import Any

MINUS = "\u2212"
THIN = "\u2009"
DASH = "—"


def finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fr(x, nd: int = 3) -> str:
    """A correlation-like number: fixed decimals, typographic minus, no "−0.000"."""
    if not finite(x):
        return DASH
    s = f"{float(x):.{nd}f}"
    if float(s) == 0:
        s = s.lstrip("-")
    return s.replace("-", MINUS)


def fsigned(x, nd: int = 3) -> str:
    """As fr, with an explicit plus sign for positive values."""
    s = fr(x, nd)
    return s if s == DASH or s.startswith(MINUS) or float(x) == 0 else "+" + s


def fpct(x, nd: int = 1) -> str:
    return DASH if not finite(x) else f"{100 * float(x):.{nd}f}%"


def fint(x) -> str:
    if not finite(x):
        return DASH
    return f"{int(round(float(x))):,}".replace(",", THIN)


def fp(x) -> str:
    if not finite(x):
        return DASH
    x = float(x)
    return "< 0.001" if x < 0.001 else f"{x:.2g}"


def fnum(x) -> str:
    """A statistic of unknown kind: integers as counts, small floats with 3 decimals, large ones as counts."""
    if isinstance(x, bool) or x is None:
        return DASH if x is None else str(x).lower()
    if isinstance(x, int):
        return fint(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return DASH
        return fr(x, 3) if abs(x) < 100 else fint(x)
    return str(x)


def md_escape(s: str) -> str:
    return str(s).replace("|", "\\|")


def md_table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A pipe table; align is one letter per column (l / r / c)."""
    align = align or "l" + "r" * (len(header) - 1)
    sep = {"r": "---:", "l": ":---", "c": ":---:"}
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |",
             "| " + " | ".join(sep[a] for a in align) + " |"]
    lines += ["| " + " | ".join(md_escape(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def put(tree: dict, dotted: str, value: Any) -> None:
    """tree["a"]["b"]["c"] = value for dotted "a.b.c" (intermediate dicts created)."""
    node = tree
    *path, leaf = dotted.split(".")
    for k in path:
        node = node.setdefault(k, {})
    node[leaf] = value


def meta_key(model: str) -> str:
    """A model name as a metadata key: Quarto's `meta` shortcode splits keys on "."."""
    return model.replace(".", "p")
