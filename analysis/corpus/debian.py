"""English prose from pinned Debian packages (kind `debian` in params.yaml `corpora:`).

    >>> from analysis.corpus.debian import fetch_debian
    >>> docs, provenance = fetch_debian(corpus_spec(load_params(), "debian-docs"))
    >>> docs.columns.tolist()
    ['doc_id', 'source', 'text']

Each package is declared as
    <name>: {version: ..., sha256: ..., format: sphinx_html | sword_ztext, root: <folder inside the .deb>}
`apt-get download <name>=<version>` fetches the .deb into a temporary folder, its SHA-256 must equal the
pin, `dpkg-deb -x` unpacks it, and the `format` reader turns the files under `root` into documents:
    sphinx_html   one document per HTML page (prose of the main body; see analysis.corpus.text)
    sword_ztext   a SWORD zText Bible module: one document per chapter (blocks are zlib-compressed books)
Files are visited in sorted order and doc_ids are "<package>:<relative path or osisID>", so the output is
the same bytes on every run.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from analysis.corpus.text import osis_chapters, sphinx_html_to_text

# Sphinx pages that are indexes or search forms, not prose.
SPHINX_EXCLUDE_PREFIXES = ("genindex", "py-modindex", "search", "contents", "_")


class DebianFetchError(RuntimeError):
    pass


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- readers
def ztext_books(bzs: bytes, bzz: bytes) -> list[str]:
    """Decompress a SWORD zText testament: `.bzs` holds (offset, size, uncompressed size) uint32 triples
    indexing zlib blocks in `.bzz`; with BlockType=BOOK each block is one book of OSIS text."""
    if len(bzs) % 12:
        raise DebianFetchError(f"SWORD block index has {len(bzs)} bytes, not a multiple of 12")
    books = []
    for i in range(len(bzs) // 12):
        offset, size, usize = struct.unpack("<III", bzs[12 * i: 12 * i + 12])
        raw = zlib.decompress(bzz[offset: offset + size])
        if len(raw) != usize:
            raise DebianFetchError(f"SWORD block {i}: {len(raw)} bytes after decompression, index says {usize}")
        books.append(raw.decode("utf-8"))
    return books


def sword_ztext_documents(root: Path, package: str) -> list[dict[str, str]]:
    docs = []
    for testament in ("ot", "nt"):  # canonical order: Old Testament, then New
        bzs, bzz = root / f"{testament}.bzs", root / f"{testament}.bzz"
        if not bzs.exists():
            raise DebianFetchError(f"{package}: {bzs} not found in the package (is `root:` right?)")
        for book in ztext_books(bzs.read_bytes(), bzz.read_bytes()):
            for osis_id, text in osis_chapters(book):
                docs.append({"doc_id": f"{package}:{osis_id}", "source": package, "text": text})
    return docs


def sphinx_html_documents(root: Path, package: str) -> list[dict[str, str]]:
    docs = []
    for path in sorted(root.rglob("*.html"), key=lambda p: p.relative_to(root).as_posix()):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(SPHINX_EXCLUDE_PREFIXES) or "/_" in rel:
            continue
        text = sphinx_html_to_text(path.read_text(encoding="utf-8", errors="replace"))
        docs.append({"doc_id": f"{package}:{rel}", "source": package, "text": text})
    return docs


READERS: dict[str, Callable[[Path, str], list[dict[str, str]]]] = {
    "sphinx_html": sphinx_html_documents,
    "sword_ztext": sword_ztext_documents,
}


# ---------------------------------------------------------------------------------------------- download
def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True)


def apt_download(name: str, version: str, dest: Path) -> Path:
    """`apt-get download name=version` into `dest`; one `apt-get update` retry when apt does not know it."""
    if shutil.which("apt-get") is None:
        raise DebianFetchError("apt-get not found: the Debian corpus needs a Debian/Ubuntu machine "
                               "(or fetch data/raw elsewhere and copy it, it is tracked by data.dvc)")
    cmd = ["apt-get", "download", f"{name}={version}"]
    proc = subprocess.run(cmd, cwd=dest, capture_output=True, text=True)
    if proc.returncode != 0:
        _run(["apt-get", "update"])  # a fresh container has empty package lists
        proc = subprocess.run(cmd, cwd=dest, capture_output=True, text=True)
    debs = sorted(dest.glob(f"{name}_*.deb"))
    if proc.returncode != 0 or not debs:
        policy = _run(["apt-cache", "policy", name]).stdout.strip()
        raise DebianFetchError(
            f"cannot download Debian package {name}={version}: this version is not (or no longer) on the "
            f"configured mirror.\n  apt said: {proc.stderr.strip()[-400:]}\n  apt-cache policy {name}:\n{policy}\n"
            f"  Fix: pin a version the mirror has under corpora.<corpus>.packages.{name} in params.yaml "
            f"(version AND sha256 of the new .deb: `apt-get download {name}=<v> && sha256sum {name}_*.deb`), "
            f"or add a mirror / snapshot.debian.org that still has {version}."
        )
    return debs[0]


def verify_sha256(path: Path, expected: str, name: str) -> str:
    actual = sha256_file(path)
    if actual != str(expected).lower():
        raise DebianFetchError(
            f"SHA-256 mismatch for {name} ({path.name}): expected {expected}, got {actual}. The mirror serves "
            f"different bytes than the pinned package; do not use them. If the change is legitimate, update the "
            f"pin in params.yaml (corpora.<corpus>.packages.{name}.sha256) after checking the package."
        )
    return actual


def unpack(deb: Path, dest: Path) -> Path:
    proc = _run(["dpkg-deb", "-x", str(deb), str(dest)])
    if proc.returncode != 0:
        raise DebianFetchError(f"dpkg-deb -x {deb.name} failed: {proc.stderr.strip()}")
    return dest


# ---------------------------------------------------------------------------------------------- corpus
def package_pins(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    packages = spec.get("packages") or {}
    for name, pin in packages.items():
        missing = [k for k in ("version", "sha256", "format", "root") if not (isinstance(pin, dict) and pin.get(k))]
        if missing:
            raise DebianFetchError(f"params.yaml corpora.{spec.get('name')}.packages.{name}: missing {missing}")
        if pin["format"] not in READERS:
            raise DebianFetchError(f"{name}: unknown format {pin['format']!r}; known: {sorted(READERS)}")
    if not packages:
        raise DebianFetchError(f"params.yaml corpora.{spec.get('name')}: no `packages:` declared")
    return packages


def fetch_debian(spec: dict[str, Any], download: Callable[[str, str, Path], Path] = apt_download
                 ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Download, verify and read every pinned package; documents shorter than `min_chars` are dropped."""
    packages = package_pins(spec)
    min_chars = int(spec.get("min_chars", 0))
    docs: list[dict[str, str]] = []
    provenance = {"corpus": spec.get("name"), "kind": "debian", "min_chars": min_chars, "packages": {}}
    with tempfile.TemporaryDirectory(prefix="tokenlen-deb-") as tmp:
        for name in sorted(packages):
            pin = packages[name]
            work = Path(tmp) / name
            (work / "deb").mkdir(parents=True)
            deb = download(name, str(pin["version"]), work / "deb")
            sha = verify_sha256(deb, pin["sha256"], name)
            root = unpack(deb, work / "x") / pin["root"]
            if not root.is_dir():
                raise DebianFetchError(f"{name}: folder {pin['root']!r} not found inside {deb.name}")
            found = READERS[pin["format"]](root, name)
            kept = [d for d in found if len(d["text"]) >= min_chars]
            docs.extend(kept)
            provenance["packages"][name] = {
                "version": str(pin["version"]), "sha256": sha, "deb": deb.name, "format": pin["format"],
                "root": pin["root"], "documents_found": len(found), "documents_kept": len(kept),
                "chars_kept": sum(len(d["text"]) for d in kept),
            }
    frame = pd.DataFrame(docs, columns=["doc_id", "source", "text"])
    return frame, provenance
