"""Statistics of MLP neurons against token length and frequency: numpy/scipy/statsmodels, arrays in, arrays out.

    >>> from analysis.stats import Covariates, compute_block
    >>> cov = Covariates.build(length, log_freq, next_length, seq)   # non-special tokens, row order
    >>> out = compute_block(X, cov, seed=(0, block))                   # X: [n_tokens, n_neurons] one block
    >>> out.neurons["pearson_r"], out.null["null_sd_permutation"]

Modules: core (vectorised primitives), block (one block), model (q-values, block summaries, aggregates),
claims (verdicts C1-C8), bench (the per-neuron statsmodels reference loop and a timing helper).
Output columns: COLUMNS.md.
"""

from .block import BlockResult, Covariates, compute_block

__all__ = ["BlockResult", "Covariates", "compute_block"]
