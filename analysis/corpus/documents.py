"""data/raw/<corpus>/documents.parquet: writing it deterministically and reading it back with clear errors.

    >>> from analysis.corpus.documents import read_documents, write_documents
    >>> write_documents("data/raw/demo", frame, {"corpus": "demo"})
    >>> docs = read_documents("data/raw/demo")       # DataFrame doc_id, source, text (sorted by nothing: file order)

The parquet file is written with pyarrow directly (fixed schema, no pandas metadata, no statistics that vary),
so that the same documents give the same bytes on every run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.io import atomic_path, write_json

COLUMNS = ("doc_id", "source", "text")
DOCUMENTS = "documents.parquet"
SOURCE = "source.json"
FIX = "run `make data` (or `python -m analysis.corpus.fetch --force`)"


class CorpusError(RuntimeError):
    pass


def write_documents(corpus_dir: str | Path, frame: pd.DataFrame, provenance: dict[str, Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    check_documents(frame, Path(corpus_dir) / DOCUMENTS)
    schema = pa.schema([(c, pa.string()) for c in COLUMNS])
    table = pa.Table.from_pydict({c: frame[c].astype(str).tolist() for c in COLUMNS}, schema=schema)
    with atomic_path(Path(corpus_dir) / DOCUMENTS) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=4096)
    provenance = {**provenance, "documents": len(frame), "characters": int(frame["text"].str.len().sum())}
    write_json(Path(corpus_dir) / SOURCE, provenance)


def check_documents(frame: pd.DataFrame, where: Path) -> None:
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise CorpusError(f"{where}: missing column(s) {missing}; {FIX}")
    if len(frame) == 0:
        raise CorpusError(f"{where} holds no documents; {FIX}")
    if frame["text"].isna().any() or frame["doc_id"].isna().any():
        raise CorpusError(f"{where}: null doc_id or text; {FIX}")
    if frame["doc_id"].duplicated().any():
        dup = frame.loc[frame["doc_id"].duplicated(), "doc_id"].iloc[0]
        raise CorpusError(f"{where}: duplicate doc_id {dup!r}; {FIX}")


def read_documents(corpus_dir: str | Path) -> pd.DataFrame:
    """Documents of a fetched corpus (columns doc_id, source, text), in file order."""
    import pyarrow.parquet as pq

    path = Path(corpus_dir) / DOCUMENTS
    if not path.exists():
        raise CorpusError(f"{path} not found: the corpus has not been fetched; {FIX}")
    try:
        frame = pq.read_table(path).to_pandas()
    except Exception as exc:  # pyarrow raises several types for truncated / non-parquet files
        raise CorpusError(f"{path} is corrupt or not a parquet file ({type(exc).__name__}: {exc}); {FIX}") from exc
    check_documents(frame, path)
    return frame[list(COLUMNS)]


def read_provenance(corpus_dir: str | Path) -> dict[str, Any]:
    path = Path(corpus_dir) / SOURCE
    if not path.exists():
        raise CorpusError(f"{path} not found; {FIX}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path} is not valid JSON ({exc}); {FIX}") from exc
