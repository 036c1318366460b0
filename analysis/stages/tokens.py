"""DVC stage `tokens@<model>`: the 16x512 token samples of the model's tokenizer and their token tables.

    $ python -m analysis.stages.tokens --model gpt-neo-125m-random

Reads  data/raw/<config.corpus>/documents.parquet, params.yaml (seed, tokens, config.corpus,
       config.models.<model>: the tokenizer spec, and the model's own package when `tokenizer.source: model`)
Writes results/<model>/tokens.parquet (the headline sample, tokens.sample_seeds[0]) and
       results/<model>/samples.parquet (the other samples, column `sample`), both with key-value metadata
       "tokenlen" (JSON; notes/CONTRACTS.md).

Models whose tokenizers have the same vocabulary and merges get byte-identical files: the metadata
describes the tokenizer by content (class, vocabulary size, SHA-256 of vocabulary), not by model name.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from analysis.corpus.documents import read_documents, read_provenance
from analysis.io import atomic_path
from analysis.stages import model_stage_main
from analysis.params import ROOT, active_config, model_spec
from analysis.tokens import count_tokens, draw_samples, length_summary, take_windows, token_table

REFERENCE_CHUNK = 64  # documents per batch call of the fast tokenizer (its Rust side uses all cores)


# --------------------------------------------------------------------------------- tokenizer adapters (I/O edge)
def batch_encoder(tok):
    """texts -> list of id lists, without special tokens, truncation or length warnings."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        if backend.truncation is not None:
            backend.no_truncation()
        if backend.padding is not None:
            backend.no_padding()
        return lambda texts: [e.ids for e in backend.encode_batch(list(texts), add_special_tokens=False)]
    return lambda texts: [tok(t, add_special_tokens=False, verbose=False)["input_ids"] for t in texts]


def encode_lazily(encode, texts: Sequence[str], order: Iterable[int], chunk: int) -> Iterator[list[int]]:
    """Token ids of texts[i] for i in `order`, encoding `chunk` documents per call, only as far as consumed."""
    order = list(order)
    for start in range(0, len(order), chunk):
        yield from encode([texts[i] for i in order[start: start + chunk]])


def describe_tokenizer(tok) -> dict[str, Any]:
    vocab = tok.get_vocab()
    digest = hashlib.sha256(json.dumps(sorted(vocab.items()), ensure_ascii=False).encode("utf-8")).hexdigest()
    return {"class": type(tok).__name__, "vocab_size": len(tok), "vocab_sha256": digest,
            "special_ids": sorted(int(i) for i in tok.all_special_ids)}


# --------------------------------------------------------------------------------- stage
def sample_seeds(cfg: dict[str, Any], seed: int) -> list[int]:
    """The document-order seeds of the samples: tokens.sample_seeds (the first is the headline sample)."""
    seeds = cfg.get("sample_seeds")
    return [int(x) for x in seeds] if seeds else [int(seed)]


def build(docs: pd.DataFrame, tok, sep_id: int, cfg: dict[str, Any], seed: int
          ) -> tuple[list[pd.DataFrame], dict[str, Any]]:
    """Token tables of every sample (the headline first) + metadata for `docs` (columns doc_id, text,
    source) with tokenizer `tok` (no file I/O). Samples have disjoint documents; the frequency reference is
    the documents no sample used."""
    texts = docs["text"].tolist()
    sources = docs["source"].tolist() if cfg.get("interleave_sources", True) and "source" in docs else None
    encode = batch_encoder(tok)
    n_seq, seq_len = int(cfg["n_sequences"]), int(cfg["seq_len"])
    per_doc = cfg.get("max_tokens_per_document")
    seeds = sample_seeds(cfg, seed)

    def take(order):
        # Sample documents are encoded one at a time: only the few that fill the windows are needed.
        return take_windows(encode_lazily(encode, texts, order, 1), sep_id, n_seq, seq_len,
                            None if per_doc is None else int(per_doc))

    windows, doc_idx, reference = draw_samples(docs["doc_id"].tolist(), sources, seeds, take)
    if len(reference) == 0:
        raise ValueError("every document went into the samples: no reference corpus is left for frequencies; "
                         "fetch a larger corpus (`python -m analysis.corpus.fetch --force` after editing params.yaml) "
                         "or use fewer tokens.sample_seeds")
    vocab_size = max(len(tok), int(max(tok.get_vocab().values())) + 1)
    max_ref = cfg.get("reference_max_tokens")
    counts, n_ref, n_ref_docs = count_tokens(encode_lazily(encode, texts, reference, REFERENCE_CHUNK),
                                             vocab_size, None if max_ref is None else int(max_ref))
    ids = np.unique(np.concatenate([w.ravel() for w in windows]))
    texts_by_id = {int(i): tok.decode([int(i)]) for i in ids}
    special = {int(i) for i in tok.all_special_ids} | {int(sep_id)}
    tables = [token_table(w, texts_by_id, special, counts, bool(cfg["count_leading_space"])) for w in windows]
    meta = {
        "n_sequences": n_seq, "seq_len": seq_len, "seed": int(seeds[0]), "sample_seeds": seeds,
        "max_tokens_per_document": None if per_doc is None else int(per_doc),
        "separator_id": int(sep_id), "count_leading_space": bool(cfg["count_leading_space"]),
        "sample_documents": [str(docs["doc_id"].iloc[i]) for i in doc_idx[0]],
        "samples": [{"seed": s_, "documents": len(d_)} for s_, d_ in zip(seeds, doc_idx)],
        "reference": {"documents": int(n_ref_docs), "tokens": int(n_ref), "max_tokens": max_ref,
                      "smoothing": "add-one", "log_base": 10,
                      "description": "documents of the same corpus in no sample, in the headline seed's order, "
                                     "up to max_tokens tokens"},
        "n_reference_tokens": int(n_ref),
        "tokenizer": describe_tokenizer(tok),
    }
    return tables, meta


def corpus_description(provenance: dict[str, Any]) -> dict[str, Any]:
    keep = ("corpus", "kind", "repo_id", "revision", "filename", "max_documents", "documents", "characters")
    out = {k: provenance[k] for k in keep if k in provenance}
    if "packages" in provenance:
        out["packages"] = {n: {"version": p["version"], "sha256": p["sha256"]} for n, p in provenance["packages"].items()}
    return out


def write_table(path: Path, table: pd.DataFrame, meta: dict[str, Any]) -> None:
    """A token table as parquet, with page checksums and the metadata under key "tokenlen"."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                           b"tokenlen": json.dumps(meta, sort_keys=True).encode("utf-8")})
    with atomic_path(path) as tmp:
        pq.write_table(arrow, tmp, write_page_checksum=True)


def replicate_samples(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Every sample after the headline in one table, with its index in column `sample` (1, 2, ...)."""
    if len(tables) <= 1:
        return tables[0].iloc[:0].assign(sample=pd.Series(dtype="int64"))
    return pd.concat([t.assign(sample=k) for k, t in enumerate(tables) if k], ignore_index=True)


def run(model_name: str, params: dict[str, Any], root: Path = ROOT) -> tuple[Path, dict[str, Any]]:
    from analysis.models.tokenizers import load_tokenizer, separator_id

    spec = model_spec(params, model_name)
    corpus = active_config(params)["corpus"]
    corpus_dir = root / "data" / "raw" / corpus
    docs = read_documents(corpus_dir)
    tok = load_tokenizer(spec["tokenizer"], spec)
    tables, meta = build(docs, tok, separator_id(tok), params["tokens"], int(params["seed"]))
    meta["corpus"] = corpus_description(read_provenance(corpus_dir))
    meta["reference"]["corpus"] = corpus
    out = root / "results" / model_name / "tokens.parquet"
    write_table(out, tables[0], meta)
    write_table(out.with_name("samples.parquet"), replicate_samples(tables), meta)
    return out, meta


def run_and_report(model_name: str, params: dict[str, Any]) -> Path:
    """`run`, then one line on what was written (the stage's console output)."""
    t0 = time.perf_counter()
    out, meta = run(model_name, params)
    summary = length_summary(pd.read_parquet(out))
    print(f"wrote {out} in {time.perf_counter() - t0:.1f} s: {len(meta['samples'])} samples of "
          f"{'/'.join(str(s_['documents']) for s_ in meta['samples'])} documents, "
          f"{meta['reference']['tokens']} reference tokens in {meta['reference']['documents']} documents; "
          f"lengths {summary['min']}-{summary['max']}, median {summary['median']:g} "
          f"({summary['share_at_median']:.1%} at the median), r(length, log_freq) = {summary['r_length_logfreq']:.3f}")
    return out


def main(argv: list[str] | None = None) -> int:
    return model_stage_main(run_and_report, "token sample + token table for one model", argv)


if __name__ == "__main__":
    sys.exit(main())
