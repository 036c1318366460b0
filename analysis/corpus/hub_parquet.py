"""A pinned parquet shard of a Hugging Face dataset (kind `hf_parquet` in params.yaml `corpora:`).

    >>> from analysis.corpus.hub_parquet import fetch_hf_parquet
    >>> docs, provenance = fetch_hf_parquet(corpus_spec(load_params(), "fineweb"))

`hf_hub_download(repo_id, filename, repo_type="dataset", revision=<full commit sha>)` goes through
`analysis.models.hub.hub_call`: the local cache first (works offline, but only with the full 40-character
sha), then the network; with neither, the error points to the offline configuration. The first
`max_documents` rows of `text_column` are kept, in file order (doc_id "<filename>#<row>"). The whole shard
is downloaded once (~2 GB for a FineWeb sample shard) and read batch by batch, never all into memory.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from analysis.models.hub import hub_call

_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


class HubCorpusError(RuntimeError):
    pass


def _hf_hub_download(repo_id: str, **kwargs: Any) -> str:
    from huggingface_hub import hf_hub_download

    return hf_hub_download(repo_id, **kwargs)


def first_rows(path: str, column: str, n: int, batch_size: int = 1024) -> list[str]:
    """The first `n` values of `column` in a parquet file, streaming record batches."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    if column not in pf.schema_arrow.names:
        raise HubCorpusError(f"{path}: no column {column!r} (columns: {pf.schema_arrow.names})")
    out: list[str] = []
    for batch in pf.iter_batches(batch_size=batch_size, columns=[column]):
        out.extend(batch.column(0).to_pylist())
        if len(out) >= n:
            break
    return out[:n]


def fetch_hf_parquet(spec: dict[str, Any], download=_hf_hub_download) -> tuple[pd.DataFrame, dict[str, Any]]:
    repo_id, revision, filename = spec["repo_id"], str(spec["revision"]), spec["filename"]
    if not _FULL_SHA.match(revision):
        raise HubCorpusError(f"corpora.{spec.get('name')}.revision must be a full 40-character commit sha "
                             f"(got {revision!r}): a branch or short sha is neither reproducible nor usable offline")
    path = hub_call(download, repo_id, revision=revision, what=f"dataset file {filename}",
                    filename=filename, repo_type="dataset")
    column = spec.get("text_column", "text")
    n = int(spec["max_documents"])
    texts = first_rows(path, column, n)
    frame = pd.DataFrame({
        "doc_id": [f"{filename}#{i:07d}" for i in range(len(texts))],
        "source": f"{repo_id}@{revision}/{filename}",
        "text": [t if t is not None else "" for t in texts],
    })
    provenance = {"corpus": spec.get("name"), "kind": "hf_parquet", "repo_id": repo_id, "revision": revision,
                  "filename": filename, "text_column": column, "max_documents": n, "documents": len(frame)}
    return frame, provenance
