"""Fetch a corpus into data/raw/<corpus>/ (documents.parquet + source.json).

    $ python -m analysis.corpus.fetch                     # the active configuration's corpus
    $ python -m analysis.corpus.fetch --corpus fineweb    # a named corpus
    $ python -m analysis.corpus.fetch --force             # redo even if a valid copy is there

Idempotent: when documents.parquet reads back cleanly and source.json records the same spec as params.yaml,
nothing is done. The spec (pins included) is stored in source.json, so changing a pin triggers a refetch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from analysis.corpus.documents import CorpusError, read_documents, read_provenance, write_documents
from analysis.params import ROOT, ParamsError, corpus_spec, load_params

RAW = ROOT / "data" / "raw"


def corpus_dir(name: str, raw: str | Path = RAW) -> Path:
    return Path(raw) / name


def is_current(folder: Path, spec: dict[str, Any]) -> bool:
    """A valid copy fetched with exactly this spec is already in `folder`."""
    try:
        read_documents(folder)
        return read_provenance(folder).get("spec") == spec
    except CorpusError:
        return False


def fetch(spec: dict[str, Any], folder: Path, force: bool = False) -> tuple[bool, dict[str, Any]]:
    """Fetch `spec` into `folder` unless current; returns (fetched?, provenance)."""
    if not force and is_current(folder, spec):
        return False, read_provenance(folder)
    kind = spec.get("kind")
    if kind == "debian":
        from analysis.corpus.debian import fetch_debian as fetcher
    elif kind == "hf_parquet":
        from analysis.corpus.hub_parquet import fetch_hf_parquet as fetcher
    else:
        raise CorpusError(f"corpus {spec.get('name')!r}: unknown kind {kind!r}; known: debian, hf_parquet")
    frame, provenance = fetcher(spec)
    provenance["spec"] = spec
    write_documents(folder, frame, provenance)
    return True, read_provenance(folder)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", help="a key of `corpora:` in params.yaml (default: the active config's corpus)")
    ap.add_argument("--force", action="store_true", help="fetch again even when a valid copy is present")
    ap.add_argument("--raw", default=str(RAW), help="parent folder of the corpus folders (default: data/raw)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        spec = corpus_spec(load_params(), args.corpus)
        folder = corpus_dir(spec["name"], args.raw)
        fetched, prov = fetch(spec, folder, force=args.force)
    except (CorpusError, ParamsError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    verb = "fetched" if fetched else "up to date:"
    print(f"{verb} {folder}: {prov.get('documents')} documents, {prov.get('characters')} characters "
          f"({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
