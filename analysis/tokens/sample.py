"""The token sample: a seeded document order, the sample windows, and the disjoint reference pool.

    >>> order = document_order(["b", "a", "c"], seed=0)        # indices into the list, seeded permutation
    >>> windows, n_used = take_windows([[1, 2], [3, 4, 5]], sep_id=0, n_sequences=2, seq_len=3)
    >>> windows.tolist(), n_used                               # documents joined by the separator
    ([[1, 2, 0], [3, 4, 5]], 2)

The sample takes documents in the seeded order until it has n_sequences * seq_len tokens; repeated samples
(`draw_samples`, one seed each) take further documents, never one an earlier sample used; the documents no
sample used form the frequency reference pool, so samples and reference never share a document.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np


class CorpusTooShortError(ValueError):
    pass


TOO_SHORT_FIX = ("use a larger corpus (params.yaml `corpora:`, e.g. more `max_documents` or packages, then "
                 "`python -m analysis.corpus.fetch --force`) or lower tokens.n_sequences / tokens.seq_len")


def document_order(doc_ids: Sequence[str], seed: int, sources: Sequence[str] | None = None) -> np.ndarray:
    """A seeded permutation of document indices that does not depend on the order of `doc_ids`.

    The ids are sorted first, so the same documents in any file order give the same sample. With `sources`
    (one label per document), each source is permuted on its own and the sources are then interleaved
    round-robin, so a sample of a few documents draws from every source rather than from whichever source
    has the most documents.
    """
    ids = np.asarray(list(doc_ids), dtype=object)
    if len(set(ids.tolist())) != len(ids):
        raise ValueError("doc_ids must be unique")
    by_id = np.argsort(ids.astype(str), kind="stable")
    rng = np.random.default_rng(int(seed))
    if sources is None:
        return by_id[rng.permutation(len(ids))]
    labels = np.asarray(list(sources), dtype=object).astype(str)[by_id]
    groups = [by_id[labels == name] for name in sorted(set(labels.tolist()))]
    groups = [g[rng.permutation(len(g))] for g in groups]
    order = [g[i] for i in range(max(len(g) for g in groups)) for g in groups if i < len(g)]
    return np.asarray(order, dtype=np.int64)


def take_windows(encoded: Iterable[Sequence[int]], sep_id: int, n_sequences: int, seq_len: int,
                 max_per_document: int | None = None) -> tuple[np.ndarray, int]:
    """Join documents (token id lists, consumed lazily in order) with `sep_id` between them and cut the
    first n_sequences*seq_len tokens into [n_sequences, seq_len] windows; also return how many documents
    were used (the last one may be cut). `max_per_document`: at most that many tokens of each document (its
    beginning), so that a long document cannot fill the sample."""
    need = int(n_sequences) * int(seq_len)
    if need <= 0:
        raise ValueError("n_sequences and seq_len must be positive")
    stream: list[int] = []
    used = 0
    for ids in encoded:
        if used:
            stream.append(int(sep_id))  # separator between documents, not before the first
        ids = ids if max_per_document is None else ids[: int(max_per_document)]
        stream.extend(int(i) for i in ids)
        used += 1
        if len(stream) >= need:
            break
    if len(stream) < need:
        raise CorpusTooShortError(
            f"the corpus has only {len(stream)} tokens (with separators) in {used} documents, the sample needs "
            f"{n_sequences} x {seq_len} = {need}: {TOO_SHORT_FIX}")
    return np.asarray(stream[:need], dtype=np.int64).reshape(n_sequences, seq_len), used


def draw_samples(doc_ids: Sequence[str], sources: Sequence[str] | None, seeds: Sequence[int],
                 take) -> tuple[list, list[list[int]], np.ndarray]:
    """Independent samples with disjoint documents: sample k takes documents in the seeded order of
    seeds[k], skipping those earlier samples used; `take(order) -> (sample, n_documents_used)`.

    Returns (samples, documents of each sample (indices), the reference pool: documents no sample used, in
    the order of seeds[0])."""
    used: set[int] = set()
    samples, docs_of = [], []
    for seed in seeds:
        order = [int(i) for i in document_order(doc_ids, int(seed), sources) if int(i) not in used]
        if not order:
            raise CorpusTooShortError(f"no document is left for the sample of seed {seed}: {TOO_SHORT_FIX} "
                                      "or use fewer tokens.sample_seeds")
        sample, n_used = take(order)
        samples.append(sample)
        docs_of.append(order[:n_used])
        used.update(order[:n_used])
    first = document_order(doc_ids, int(seeds[0]), sources)
    reference = np.asarray([i for i in first if int(i) not in used], dtype=np.int64)
    return samples, docs_of, reference


def count_tokens(encoded: Iterable[Sequence[int]], vocab_size: int, max_tokens: int | None = None
                 ) -> tuple[np.ndarray, int, int]:
    """Counts of each token id over documents (lazily consumed) up to `max_tokens` tokens in total.

    Returns (counts[vocab_size], tokens counted, documents touched). The last document is cut at the budget.
    """
    counts = np.zeros(int(vocab_size), dtype=np.int64)
    total = docs = 0
    for ids in encoded:
        arr = np.asarray(ids, dtype=np.int64)
        if max_tokens is not None:
            arr = arr[: max(0, int(max_tokens) - total)]
        if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
            raise ValueError(f"token id outside the vocabulary [0, {vocab_size})")
        counts += np.bincount(arr, minlength=vocab_size)
        total += int(arr.size)
        docs += 1
        if max_tokens is not None and total >= max_tokens:
            break
    return counts, total, docs
