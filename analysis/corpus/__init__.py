"""Raw text: fetching corpora into data/raw/<corpus>/ and reading them back.

    >>> from analysis.corpus import read_documents
    >>> docs = read_documents("data/raw/debian-docs")    # DataFrame: doc_id, source, text
    $ python -m analysis.corpus.fetch [--corpus NAME] [--force]

Modules: fetch (CLI), documents (read/write documents.parquet), debian (apt packages), hub_parquet
(a pinned Hugging Face dataset shard), text (markup → prose).
"""

from analysis.corpus.documents import CorpusError, read_documents, read_provenance, write_documents

__all__ = ["CorpusError", "read_documents", "read_provenance", "write_documents"]
