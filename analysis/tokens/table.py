"""The token table of the sample: one row per token with its length, frequency and the next token's length.

    >>> token_length(" the", count_leading_space=False), token_length(" the", count_leading_space=True)
    (3, 4)
    >>> log_frequency(np.array([0, 1, 3]))                 # add-one: (c+1)/(N+V), N=4, V=3
    array([-0.84509804, -0.54406804, -0.24303805])
    >>> df = token_table(windows, texts_by_id, special_ids, counts, count_leading_space=False)

Columns (notes/CONTRACTS.md): seq, pos, token_id, text, length, log_freq, freq_count, next_length, is_special.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd


def token_length(text: str, count_leading_space: bool) -> int:
    """Characters of a decoded token. Without `count_leading_space`, ONE leading space (GPT-2's word
    boundary marker "Ġ") is not counted; a token that is nothing but a single space keeps length 1, since
    there the space is the token's content, not a marker."""
    if not count_leading_space and len(text) > 1 and text[0] == " ":
        return len(text) - 1
    return len(text)


def log_frequency(counts: np.ndarray) -> np.ndarray:
    """log10 of the add-one smoothed relative frequency: (count + 1) / (N + V) for N counted tokens, V ids."""
    counts = np.asarray(counts, dtype=np.float64)
    return np.log10((counts + 1.0) / (counts.sum() + counts.size))


def next_lengths(lengths: np.ndarray, special: np.ndarray) -> np.ndarray:
    """[n_seq, seq_len] length of the next token in the same sequence; NaN at the last position and where
    the next token is special (a separator has no length in the sense of the study)."""
    nxt = np.full(lengths.shape, np.nan)
    nxt[:, :-1] = lengths[:, 1:]
    nxt[:, :-1][special[:, 1:]] = np.nan
    return nxt


def token_table(windows: np.ndarray, texts_by_id: Mapping[int, str], special_ids: set[int] | frozenset[int],
                counts: np.ndarray, count_leading_space: bool) -> pd.DataFrame:
    """One row per token of `windows` ([n_seq, seq_len] ids) in row order seq*seq_len + pos."""
    windows = np.asarray(windows, dtype=np.int64)
    n_seq, seq_len = windows.shape
    flat = windows.reshape(-1)
    texts = [texts_by_id[int(i)] for i in flat]
    lengths = np.array([token_length(t, count_leading_space) for t in texts], dtype=np.int64).reshape(n_seq, seq_len)
    special = np.isin(windows, np.fromiter(special_ids, dtype=np.int64, count=len(special_ids)))
    logf = log_frequency(counts)
    return pd.DataFrame({
        "seq": np.repeat(np.arange(n_seq, dtype=np.int64), seq_len),
        "pos": np.tile(np.arange(seq_len, dtype=np.int64), n_seq),
        "token_id": flat,
        "text": texts,
        "length": lengths.reshape(-1),
        "log_freq": logf[flat],
        "freq_count": np.asarray(counts, dtype=np.int64)[flat],
        "next_length": next_lengths(lengths.astype(np.float64), special).reshape(-1),
        "is_special": special.reshape(-1),
    })


def length_summary(df: pd.DataFrame) -> dict[str, float]:
    """Descriptive numbers of the non-special tokens (for logs; the stats stage computes its own)."""
    ok = df.loc[~df["is_special"]]
    lengths = ok["length"].to_numpy()
    median = float(np.median(lengths))
    return {
        "n": int(len(ok)), "min": int(lengths.min()), "max": int(lengths.max()), "median": median,
        "share_at_median": float(np.mean(lengths == median)),
        "r_length_logfreq": float(np.corrcoef(lengths, ok["log_freq"].to_numpy())[0, 1]),
    }
