"""tokenlen: how MLP neurons of GPT-Neo respond to token length, and whether it is token frequency.

Subpackages, in data-flow order (see README):
    analysis.corpus   raw text: fetch (Debian docs / FineWeb shard) and read documents
    analysis.tokens   the token sample, token lengths, reference-corpus frequencies
    analysis.models   model loading, architectures and hook sites, activation extraction (torch lives here only)
    analysis.stats    per-neuron and per-block statistics, claim verdicts (numpy/scipy/statsmodels)
    analysis.figures  figures and tables for the manuscript
    analysis.stages   one module per DVC stage: read inputs -> pure functions -> atomic writes
"""

__version__ = "0.1.0"
