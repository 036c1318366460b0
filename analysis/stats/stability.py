"""Verdicts across repeated samples (stability) and across control initialisations (a distribution).

    >>> from analysis.stats.stability import stability, control_distribution
    >>> st = stability([headline_claims, *sample_claims], min_agree=0.8)     # per claim
    >>> st["C3"]["stable"], st["C3"]["n_agree"], st["C3"]["n"]
    >>> ctrl = control_distribution([claims_init0, claims_init1, claims_init2])

A verdict on one sample of a few dozen documents carries the between-document variance that no test inside
the sample sees. Each sample here is an independent draw of the study's size with disjoint documents
(tokens.sample_seeds). The headline verdict is the first sample's; it is *stable* when at least
`min_agree` (a share, params.yaml `stats.stability.min_agree`) of the samples give the same verdict. The
spread of each deciding statistic (each null-tested component's observed value) across samples is reported
beside it.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

ORDER = ("supported", "mixed", "not_supported", "not_applicable")


def _spread(values: list[float]) -> dict:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if not v.size:
        return {"n": 0, "min": np.nan, "max": np.nan, "mean": np.nan, "sd": np.nan}
    return {"n": int(v.size), "min": float(v.min()), "max": float(v.max()), "mean": float(v.mean()),
            "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0}


def stability(per_sample: list[dict], min_agree: float) -> dict:
    """per_sample: the claims dict ({C1: {verdict, tests, ...}}) of each sample, the headline first."""
    out = {}
    if not per_sample:
        return out
    n = len(per_sample)
    need = max(1, math.ceil(min_agree * n - 1e-9))
    for cid, head in per_sample[0].items():
        verdicts = [c.get(cid, {}).get("verdict", "missing") for c in per_sample]
        counts = Counter(verdicts)
        n_agree = counts[head["verdict"]]
        spread = {}
        for i, t in enumerate(head.get("tests", [])):
            vals = [(c.get(cid, {}).get("tests") or [{}] * (i + 1))[i].get("observed") if
                    len(c.get(cid, {}).get("tests") or []) > i else None for c in per_sample]
            passed = [bool((c.get(cid, {}).get("tests") or [{}] * (i + 1))[i].get("passed")) if
                      len(c.get(cid, {}).get("tests") or []) > i else False for c in per_sample]
            spread[t["component"]] = {**_spread(vals), "n_beyond_chance": int(sum(passed))}
        out[cid] = {"verdicts": verdicts, "counts": {v: counts[v] for v in ORDER if counts[v]},
                    "n": n, "n_agree": int(n_agree), "share_agree": n_agree / n, "needed": need,
                    "stable": bool(n > 1 and n_agree >= need), "spread": spread}
    return out


def control_distribution(per_init: list[dict]) -> dict:
    """Verdicts of a random-weights control over its weight initialisations, per claim."""
    out = {}
    if not per_init:
        return out
    for cid in per_init[0]:
        verdicts = [c.get(cid, {}).get("verdict", "missing") for c in per_init]
        counts = Counter(verdicts)
        out[cid] = {"verdicts": verdicts, "counts": {v: counts[v] for v in ORDER if counts[v]},
                    "n": len(verdicts), "n_supported": int(counts["supported"])}
    return out
