"""Token sample and token table (pure functions: lists/arrays in, arrays/DataFrames out).

    >>> from analysis.tokens import document_order, take_windows, count_tokens, token_table
    >>> order = document_order(doc_ids, seed=0)
    >>> windows, n_used = take_windows((encode(texts[i]) for i in order), sep_id, 16, 512)
    >>> counts, n_ref, _ = count_tokens((encode(texts[i]) for i in order[n_used:]), vocab_size, 5_000_000)
    >>> df = token_table(windows, texts_by_id, special_ids, counts, count_leading_space=False)

The DVC stage that wires these to files is analysis/stages/tokens.py.
"""

from analysis.tokens.sample import CorpusTooShortError, count_tokens, document_order, draw_samples, take_windows
from analysis.tokens.table import length_summary, log_frequency, next_lengths, token_length, token_table

__all__ = ["CorpusTooShortError", "count_tokens", "document_order", "draw_samples", "take_windows", "length_summary",
           "log_frequency", "next_lengths", "token_length", "token_table"]
