"""Statistics of MLP neurons against token length and frequency: numpy/scipy/statsmodels, arrays in, arrays out.

    >>> from analysis.stats import Design, compute_block
    >>> d = Design.build(token_id, length, log_freq, seq, next_token_id, n_permutations=500, seed=(0,))
    >>> out = compute_block(X, d, seed=(0, block))          # X: [n_tokens, n_neurons] one block
    >>> out.neurons["r_within_p"], out.nulls["r_within.neg"]

Modules, one family each: design (the sample's types, sequences, strata and permutations), sums (per-type
and per-sequence sums of activations), linear (correlations, partial correlations, cluster-robust tests),
nulls (type-level permutation nulls), core (ranks, Mann-Whitney, dip, BH), block (one block),
model (q-values, block summaries with null quantiles, aggregates), claims (verdicts C1-C8),
stability (verdicts across samples and control initialisations), bench (the statsmodels reference loop).
Output columns: COLUMNS.md.
"""

from .block import BlockResult, compute_block
from .design import Design, DesignError

__all__ = ["BlockResult", "Design", "DesignError", "compute_block"]
