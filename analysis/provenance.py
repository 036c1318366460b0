"""Provenance of a rendered paper: which data version, code, environment and hardware it came from.

Standard library only (PyYAML is used when importable, with a small fallback parser), so it also runs under
the Python that Quarto picks for a pre-render script. Nothing here imports torch/transformers.

API (every function takes the project root; defaults to this checkout):

    data_provenance(root)   -> dict   content hashes, read from data.dvc and dvc.lock (no DVC import):
        data_md5            md5 DVC recorded for data/raw (e.g. "3f2c...e1.dir"); "" before `dvc add`
        data_nfiles, data_size
        lock_sha256         sha256 of dvc.lock's bytes ("" when there is no dvc.lock)
        outs                {stage: {path: md5}} for every stage output in dvc.lock
        data_version        16 hex: sha256 over data.dvc's md5 and every (stage, path, md5) in dvc.lock,
                            sorted. Same data and same pipeline outputs -> same value, on any machine.
    git_provenance(root)    -> dict   the checkout (volatile: changes with every commit):
        commit, short       HEAD sha (full / 10 chars); "" outside git
        describe            `git describe --tags --match 'data-*' --always --dirty`, e.g. "data-offline-v2",
                            "data-offline-v2-3-g1a2b3c4d5e" (3 commits after the tag), "...-dirty"
        tag                 the data-* tag pointing exactly at HEAD, or "" (an untagged checkout)
        dirty               True when tracked files differ from HEAD
        commit_date         committer date of HEAD (ISO 8601): a date that is the same for every render
                            of the same checkout, unlike "today"
    environment_provenance(packages=PACKAGES) -> dict
        python, platform (system, release, machine), cpu_count, packages {name: version or "not installed"}
    stage_provenance(root, packages=PACKAGES) -> dict
        what a cached DVC stage may write: data_md5 + environment. Deterministic for identical inputs in
        the same environment: no git commit (the commit that will record a stage's outputs does not exist
        yet when the stage runs), no dvc.lock (DVC rewrites it during `dvc repro`), no clock.
    render_provenance(root) -> dict
        everything above under one mapping, for the moment of rendering: call it when the paper is
        rendered (Quarto pre-render), never inside a cached stage.

CLI (a Quarto pre-render script; writes a metadata file read with {{< meta checkout.describe >}} etc.):

    python analysis/provenance.py                          # print render_provenance() as JSON
    python analysis/provenance.py --write report/_provenance.yml
    python analysis/provenance.py --epoch                  # the commit time, for SOURCE_DATE_EPOCH

The written file has two top-level keys: `checkout`, whose leaves are strings (Quarto's `meta` shortcode
prints strings), and `date`, the commit date of the checkout (the paper's date). JSON is valid YAML, so the
file is JSON with sorted keys: byte-identical for the same checkout, data and environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TAG_PATTERN = "data-*"
PACKAGES = ("torch", "transformers", "tokenizers", "numpy", "pandas", "pyarrow", "scipy", "statsmodels",
            "diptest", "matplotlib", "dvc")


# ------------------------------------------------------------------------------------------ YAML reading
def _load_yaml(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        import yaml
    except ImportError:  # a bare Python (Quarto's): the two DVC files have a fixed, simple layout
        return _FallbackDvcYaml(text)
    return yaml.safe_load(text)


class _FallbackDvcYaml(dict):
    """Enough of data.dvc / dvc.lock (DVC's fixed layout) without PyYAML: each `outs` list with its items'
    path, md5, size and nfiles; in dvc.lock, per stage (2-space indented names under `stages:`)."""

    def __init__(self, text: str):
        super().__init__()
        stages: dict[str, dict] = {}
        top_outs: list[dict] = []
        stage, section, section_in, item = None, None, None, None
        for line in text.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            indent = len(line) - len(line.lstrip(" "))
            m = re.match(r"^\s*(- )?\s*([^:]+?):\s*(.*)$", line)
            if not m:
                continue
            dash, key, value = m.group(1), m.group(2).strip().strip("'\""), m.group(3).strip().strip("'\"")
            if indent == 0 and not dash:
                section, stage, item = key, None, None
                continue
            if section == "stages" and indent == 2 and not dash:  # a stage name
                stage, section_in, item = key, None, None
                stages[stage] = {"outs": []}
                continue
            if stage is not None and indent == 4 and not dash:
                section_in = key
                item = None
                continue
            in_outs = section == "outs" if stage is None else section_in == "outs"
            if not in_outs:
                continue
            if dash:
                item = {}
                (top_outs if stage is None else stages[stage]["outs"]).append(item)
            if item is not None and key in ("path", "md5", "size", "nfiles"):
                item[key] = int(value) if key in ("size", "nfiles") and value.isdigit() else value
        if stages:
            self["stages"] = stages
        if top_outs:
            self["outs"] = top_outs


# ------------------------------------------------------------------------------------------------ data
def data_provenance(root: str | Path = ROOT) -> dict[str, Any]:
    root = Path(root)
    info: dict[str, Any] = {"data_md5": "", "data_nfiles": None, "data_size": None, "lock_sha256": "",
                            "outs": {}}
    dvcfile = root / "data.dvc"
    if dvcfile.exists():
        outs = (_load_yaml(dvcfile) or {}).get("outs") or [{}]
        info.update(data_md5=str(outs[0].get("md5", "")), data_nfiles=outs[0].get("nfiles"),
                    data_size=outs[0].get("size"))
    lock = root / "dvc.lock"
    if lock.exists():
        info["lock_sha256"] = hashlib.sha256(lock.read_bytes()).hexdigest()
        stages = (_load_yaml(lock) or {}).get("stages") or {}
        info["outs"] = {name: {str(o.get("path")): str(o.get("md5", "")) for o in (st.get("outs") or [])}
                        for name, st in sorted(stages.items())}
    h = hashlib.sha256(f"data.dvc\t{info['data_md5']}\n".encode())
    for stage, outs in sorted(info["outs"].items()):
        for path, md5 in sorted(outs.items()):
            h.update(f"{stage}\t{path}\t{md5}\n".encode())
    info["data_version"] = h.hexdigest()[:16]
    return info


# ------------------------------------------------------------------------------------------------- git
def _git(root: Path, *args: str) -> tuple[int, str]:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return 1, ""
    return out.returncode, out.stdout.strip()


def git_provenance(root: str | Path = ROOT) -> dict[str, Any]:
    root = Path(root)
    rc, commit = _git(root, "rev-parse", "HEAD")
    if rc != 0:
        return {"commit": "", "short": "", "describe": "", "tag": "", "dirty": False, "commit_date": ""}
    _, describe = _git(root, "describe", "--tags", "--match", TAG_PATTERN, "--always", "--dirty", "--abbrev=10")
    rc_tag, tag = _git(root, "describe", "--tags", "--exact-match", "--match", TAG_PATTERN, "HEAD")
    rc_diff, _ = _git(root, "diff-index", "--quiet", "HEAD", "--")
    _, date = _git(root, "show", "-s", "--format=%cI", "HEAD")
    return {"commit": commit, "short": commit[:10], "describe": describe, "tag": tag if rc_tag == 0 else "",
            "dirty": rc_diff != 0, "commit_date": date}


# ----------------------------------------------------------------------------------------- environment
def package_versions(names, missing: str = "not installed") -> dict[str, str]:
    """Installed version of each distribution name (`missing` where it is not installed)."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = missing
    return versions


def environment_provenance(packages: tuple[str, ...] | list[str] = PACKAGES) -> dict[str, Any]:
    versions = package_versions(packages)
    uname = platform.uname()
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": {"system": uname.system, "release": uname.release, "machine": uname.machine},
            "cpu_count": os.cpu_count(), "packages": versions}


def stage_provenance(root: str | Path = ROOT, packages: tuple[str, ...] | list[str] = PACKAGES) -> dict[str, Any]:
    """Deterministic provenance for cached stage outputs (see the module docstring)."""
    data = data_provenance(root)
    env = environment_provenance(packages)
    return {"data_md5": data["data_md5"], "data_nfiles": data["data_nfiles"], "data_size": data["data_size"],
            "python": env["python"], "packages": env["packages"], "machine": env["platform"]["machine"]}


def render_provenance(root: str | Path = ROOT) -> dict[str, Any]:
    """All provenance at the moment of rendering: data version, checkout, environment."""
    return {"data": data_provenance(root), "git": git_provenance(root), "environment": environment_provenance()}


def quarto_metadata(prov: dict[str, Any]) -> dict[str, Any]:
    """Flatten render_provenance() into string leaves under `checkout` for {{< meta checkout.<key> >}}, plus
    the document `date`: the commit date of the checkout (the data version), so that every render of one
    checkout shows the same date. (`render` would be the natural key, but Quarto reserves it: a metadata
    file's `render:` block never reaches the `meta` shortcode.)"""
    d, g, e = prov["data"], prov["git"], prov["environment"]
    version = g["tag"] or (g["describe"] or "untagged")
    out = {"checkout": {
        "data_tag": g["tag"] or "none (untagged checkout)",
        "describe": g["describe"] or "not a git checkout",
        "data_version_label": version,
        "commit": g["commit"] or "—", "commit_short": g["short"] or "—",
        "commit_date": g["commit_date"] or "—", "dirty": "yes" if g["dirty"] else "no",
        "data_md5": d["data_md5"] or "—", "data_version": d["data_version"],
        "lock_sha256": d["lock_sha256"] or "—", "lock_sha256_short": (d["lock_sha256"] or "—")[:12],
        "n_outputs": str(sum(len(v) for v in d["outs"].values())),
        "python": e["python"],
        "packages": ", ".join(f"{k} {v}" for k, v in e["packages"].items() if v != "not installed") or "—",
        "platform": f"{e['platform']['system']} {e['platform']['machine']}, {e['cpu_count']} CPUs",
        # the same three in Vietnamese (the paper-vi footer)
        "data_tag_vi": g["tag"] or "không có (bản checkout chưa gắn thẻ)",
        "describe_vi": g["describe"] or "không phải bản checkout git",
        "platform_vi": f"{e['platform']['system']} {e['platform']['machine']}, {e['cpu_count']} nhân CPU",
    }}
    if g["commit_date"]:
        out["date"] = g["commit_date"][:10]
    return out


def source_date_epoch(root: str | Path = ROOT) -> str:
    """Seconds since the epoch of the checkout's commit (for SOURCE_DATE_EPOCH: Typst's own timestamp)."""
    rc, out = _git(Path(root), "show", "-s", "--format=%ct", "HEAD")
    return out if rc == 0 and out.isdigit() else "0"


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=None, help="project root (default: the checkout holding this file)")
    ap.add_argument("--write", metavar="PATH", help="write Quarto metadata ({checkout: {...}, date}) to PATH")
    ap.add_argument("--epoch", action="store_true", help="print the commit time for SOURCE_DATE_EPOCH and exit")
    args = ap.parse_args(argv)
    root = Path(args.root) if args.root else ROOT
    if args.epoch:
        print(source_date_epoch(root))
        return 0
    prov = render_provenance(root)
    if args.write:
        out = Path(args.write)
        out = out if out.is_absolute() else root / out
        text = json.dumps(quarto_metadata(prov), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, out)
        print(f"provenance: {quarto_metadata(prov)['checkout']['data_version_label']} -> {out}")
    else:
        json.dump(prov, sys.stdout, indent=2, sort_keys=True)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
