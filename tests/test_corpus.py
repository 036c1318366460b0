"""Corpus fetching and reading: markup → prose, pinned Debian packages, the hub shard, documents.parquet.

All offline: downloads are replaced by local fakes; the hub is reached through a temporary HF_HOME.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pandas as pd
import pytest

from analysis.corpus import CorpusError, read_documents, write_documents
from analysis.corpus import debian, fetch as fetch_mod
from analysis.corpus.text import osis_chapters, sphinx_html_to_text

ROOT = Path(__file__).resolve().parent.parent

SPHINX_PAGE = """<html><head><title>T</title><script>var x = 1;</script><style>p {}</style></head><body>
<nav class="menu">Navigation menu</nav>
<div class="related" role="navigation">previous | next</div>
<div class="document"><div class="body" role="main">
<h1>Classes<a class="headerlink" href="#c">¶</a></h1>
<p>Classes   provide a means
of bundling data.</p>
<div class="highlight"><pre><span>class</span> Foo: pass</pre></div>
<p>Second &amp; last <code>paragraph</code>.<br>After break</p>
</div></div>
<div class="footer">© Copyright</div></body></html>"""


def test_sphinx_page_keeps_main_prose_only():
    text = sphinx_html_to_text(SPHINX_PAGE)
    assert text == "Classes\n\nClasses provide a means of bundling data.\n\nSecond & last paragraph.\n\nAfter break"
    for dropped in ("Navigation", "previous", "var x", "Foo", "¶", "Copyright"):
        assert dropped not in text


def test_osis_chapters_split_unwrap_and_drop_notes():
    osis = ('<div type="book" osisID="Gen"/><title>Genesis</title>'
            '<chapter osisID="Gen.1" sID="Gen.1"/>In the <w lemma="strong:H7225">beginning</w>'
            '<note placement="foot"><reference>1.1</reference>Heb. note</note> God. \u00b6 And light.'
            '<chapter eID="Gen.1"/><chapter osisID="Gen.2" sID="Gen.2"/>Thus the <divineName>LORD</divineName>.'
            '<chapter eID="Gen.2"/>')
    assert osis_chapters(osis) == [("Gen.1", "In the beginning God.\n\nAnd light."), ("Gen.2", "Thus the LORD.")]


def test_ztext_blocks_decode():
    books = ["<chapter sID='A.1'/>first book", "second \u00e9 book"]
    bzz, bzs = b"", b""
    for b in books:
        comp = zlib.compress(b.encode("utf-8"))
        bzs += struct.pack("<III", len(bzz), len(comp), len(b.encode("utf-8")))
        bzz += comp
    assert debian.ztext_books(bzs, bzz) == books
    with pytest.raises(debian.DebianFetchError):
        debian.ztext_books(bzs[:-1], bzz)


# ------------------------------------------------------------------------------------------ Debian fetch
def _spec(sha: str, root: str = "usr/share/doc/demo/html") -> dict:
    return {"name": "demo", "kind": "debian", "min_chars": 10,
            "packages": {"demo-doc": {"version": "1.0", "sha256": sha, "format": "sphinx_html", "root": root}}}


def _build_deb(tmp_path: Path) -> Path:
    pkg = tmp_path / "pkg"
    html = pkg / "usr/share/doc/demo/html"
    (html / "tutorial").mkdir(parents=True)
    (pkg / "DEBIAN").mkdir()
    (pkg / "DEBIAN/control").write_text("Package: demo-doc\nVersion: 1.0\nArchitecture: all\n"
                                        "Maintainer: t <t@example.org>\nDescription: demo\n")
    (html / "tutorial/b.html").write_text(SPHINX_PAGE)
    (html / "a.html").write_text(SPHINX_PAGE.replace("Classes", "Alpha"))
    (html / "genindex.html").write_text(SPHINX_PAGE)  # an index page: must be skipped
    (html / "tiny.html").write_text('<div role="main"><p>short</p></div>')  # below min_chars
    deb = tmp_path / "demo-doc_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(pkg), str(deb)],
                   check=True, capture_output=True)
    return deb


def _fake_download(deb: Path):
    def download(name, version, dest):
        assert (name, version) == ("demo-doc", "1.0")
        return Path(shutil.copy(deb, dest / deb.name))
    return download


def test_debian_fetch_wrong_sha256_fails_clearly(tmp_path):
    def download(name, version, dest):
        path = dest / f"{name}_{version}_all.deb"
        path.write_bytes(b"not the pinned package")
        return path

    with pytest.raises(debian.DebianFetchError) as err:
        debian.fetch_debian(_spec("0" * 64), download=download)
    msg = str(err.value)
    assert "SHA-256 mismatch" in msg and "demo-doc" in msg and "0" * 64 in msg
    assert hashlib.sha256(b"not the pinned package").hexdigest() in msg


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_debian_fetch_reads_pages_in_sorted_order_deterministically(tmp_path):
    deb = _build_deb(tmp_path)
    sha = hashlib.sha256(deb.read_bytes()).hexdigest()
    frame, prov = debian.fetch_debian(_spec(sha), download=_fake_download(deb))
    assert frame["doc_id"].tolist() == ["demo-doc:a.html", "demo-doc:tutorial/b.html"]
    assert frame["text"].iloc[0].startswith("Alpha\n\nAlpha provide")
    assert prov["packages"]["demo-doc"]["sha256"] == sha
    assert prov["packages"]["demo-doc"]["documents_found"] == 3  # a, b, tiny (genindex skipped)
    # the same documents written twice give the same bytes
    write_documents(tmp_path / "one", frame, prov)
    again, _ = debian.fetch_debian(_spec(sha), download=_fake_download(deb))
    write_documents(tmp_path / "two", again, prov)
    assert (tmp_path / "one/documents.parquet").read_bytes() == (tmp_path / "two/documents.parquet").read_bytes()


def test_version_missing_from_mirror_names_package_and_fix(tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        out = "demo-doc:\n  Candidate: 2.0" if cmd[:2] == ["apt-cache", "policy"] else ""
        err = "E: Version '1.0' for 'demo-doc' was not found" if cmd[:2] == ["apt-get", "download"] else ""
        return subprocess.CompletedProcess(cmd, 100 if cmd[1] == "download" else 0, out, err)

    monkeypatch.setattr(debian.subprocess, "run", fake_run)
    monkeypatch.setattr(debian.shutil, "which", lambda name: "/usr/bin/" + name)
    with pytest.raises(debian.DebianFetchError) as err:
        debian.apt_download("demo-doc", "1.0", tmp_path)
    msg = str(err.value)
    assert "demo-doc=1.0" in msg and "no longer" in msg and "params.yaml" in msg and "Candidate: 2.0" in msg
    assert ["apt-get", "update"] in calls  # retried once after refreshing the package lists


def test_params_pins_are_complete():
    from analysis.params import corpus_spec, load_params

    pins = debian.package_pins(corpus_spec(load_params(), "debian-docs"))
    for name, pin in pins.items():
        assert len(pin["sha256"]) == 64 and int(pin["sha256"], 16) >= 0, name


# ------------------------------------------------------------------------------------------ documents.parquet
def _docs(n=3) -> pd.DataFrame:
    return pd.DataFrame({"doc_id": [f"d{i}" for i in range(n)], "source": "s", "text": [f"text {i}" for i in range(n)]})


def test_read_documents_round_trip(tmp_path):
    write_documents(tmp_path, _docs(), {"corpus": "t"})
    assert read_documents(tmp_path).equals(_docs())


def test_missing_documents_names_the_fix(tmp_path):
    with pytest.raises(CorpusError, match=r"not found.*make data"):
        read_documents(tmp_path / "nothing")


def test_corrupt_documents_names_the_fix(tmp_path):
    write_documents(tmp_path, _docs(), {"corpus": "t"})
    path = tmp_path / "documents.parquet"
    path.write_bytes(path.read_bytes()[:50])  # truncated, as after an interrupted copy
    with pytest.raises(CorpusError, match=r"corrupt.*--force"):
        read_documents(tmp_path)


def test_empty_and_bad_documents_are_refused(tmp_path):
    empty = _docs(0)
    empty.to_parquet(tmp_path / "documents.parquet")
    with pytest.raises(CorpusError, match="no documents"):
        read_documents(tmp_path)
    _docs().drop(columns="text").to_parquet(tmp_path / "documents.parquet")
    with pytest.raises(CorpusError, match="missing column"):
        read_documents(tmp_path)
    dup = _docs()
    dup.loc[1, "doc_id"] = "d0"
    dup.to_parquet(tmp_path / "documents.parquet")
    with pytest.raises(CorpusError, match="duplicate doc_id"):
        read_documents(tmp_path)


def test_fetch_is_idempotent_and_refetches_on_force_or_new_pin(tmp_path, monkeypatch):
    calls = []

    def fake_fetch(spec):
        calls.append(spec)
        return _docs(), {"corpus": spec["name"], "kind": "debian"}

    monkeypatch.setattr(debian, "fetch_debian", fake_fetch)
    spec = {"name": "t", "kind": "debian", "packages": {"p": {"version": "1"}}}
    assert fetch_mod.fetch(spec, tmp_path)[0] is True
    assert fetch_mod.fetch(spec, tmp_path)[0] is False
    assert fetch_mod.fetch(spec, tmp_path, force=True)[0] is True
    assert fetch_mod.fetch({**spec, "packages": {"p": {"version": "2"}}}, tmp_path)[0] is True
    assert len(calls) == 3


# ------------------------------------------------------------------------------------------ hub shard
def _run_fetch(env_extra: dict, raw: Path) -> subprocess.CompletedProcess:
    # A subprocess: huggingface_hub reads HF_HOME / HF_HUB_OFFLINE when it is imported.
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-m", "analysis.corpus.fetch", "--corpus", "fineweb", "--raw", str(raw)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_hub_fetch_offline_with_empty_cache_points_to_offline_config(tmp_path):
    proc = _run_fetch({"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}, tmp_path / "raw")
    assert proc.returncode == 1, proc.stderr
    assert "offline configuration" in proc.stderr and "make demo" in proc.stderr
    assert "HuggingFaceFW/fineweb" in proc.stderr
    assert not (tmp_path / "raw" / "fineweb" / "documents.parquet").exists()


def test_hub_fetch_reads_first_rows_from_seeded_cache(tmp_path):
    from analysis.params import corpus_spec, load_params

    spec = corpus_spec(load_params(), "fineweb")
    # The hub cache layout: <HF_HOME>/hub/datasets--<org>--<name>/snapshots/<sha>/<filename>
    repo_dir = tmp_path / "hf" / "hub" / ("datasets--" + spec["repo_id"].replace("/", "--"))
    shard = repo_dir / "snapshots" / spec["revision"] / spec["filename"]
    shard.parent.mkdir(parents=True)
    n = int(spec["max_documents"]) + 5
    pd.DataFrame({"id": range(n), spec["text_column"]: [f"web page {i}" for i in range(n)]}).to_parquet(shard)
    proc = _run_fetch({"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}, tmp_path / "raw")
    assert proc.returncode == 0, proc.stderr
    docs = read_documents(tmp_path / "raw" / "fineweb")
    assert len(docs) == spec["max_documents"]
    assert docs["text"].iloc[0] == "web page 0" and docs["text"].iloc[-1] == f"web page {n - 6}"
