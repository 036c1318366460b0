"""Publish a data version: check, push to the DVC remote, tag. What `make release [VERSION=N]` runs.

    python -m analysis.release                  # next version for the active configuration: data-offline-v3
    python -m analysis.release --version 2.1    # data-<config>-v2.1
    python -m analysis.release --dry-run        # only the checks
    python -m analysis.release --remote shared --no-push-tag

Tag convention: ``data-<config>-v<VERSION>`` (e.g. ``data-offline-v1``, ``data-paper-v2``), an annotated git
tag on the commit whose dvc.lock and data.dvc record the data. <config> is the configuration selected by the
`config:` switch of params.yaml; VERSION is a number with optional dotted parts (1, 2, 2.1), by default one
more than the highest ``data-<config>-v<N>`` tag. The tag message records the configuration, its models, the
data.dvc md5, the dvc.lock sha256, a combined data-version hash and the hash of every stage output
(analysis.provenance). `git describe --tags --match 'data-*'` names the data version of any checkout.

Steps, each stopping with a clear message (exit status 1) when it fails:
 1. git: a repository with a commit; working tree clean (no modified, staged or untracked files);
    dvc.lock and data.dvc committed; the tag does not exist yet.
 2. DVC: `dvc status` clean (the pipeline is up to date with the committed code, params and data), every
    stage of dvc.yaml recorded in dvc.lock, and no stage output that neither DVC nor git would publish
    (`cache: false` outputs that are git-ignored cannot reach a reviewer).
 3. `dvc push` to the default remote (or --remote), then `dvc status --cloud` must be clean.
 4. `git tag -a data-<config>-v<VERSION>`; pushed with `git push <remote> <tag>` when the repository has a
    git remote (origin preferred; --no-push-tag to skip).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from analysis.provenance import data_provenance

TAG_PREFIX = "data-"
VERSION_RE = re.compile(r"^\d+(\.\d+)*$")


class ReleaseError(RuntimeError):
    pass


def _run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise ReleaseError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{(proc.stderr or proc.stdout).strip()}")
    return proc


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run(["git", *args], root, check)


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "dvc", *args], root, check)


def tag_name(config: str, version: str) -> str:
    return f"{TAG_PREFIX}{config}-v{version}"


def next_version(existing_tags: list[str], config: str) -> str:
    """One more than the highest leading integer of data-<config>-v<N...> tags; "1" when there is none."""
    pat = re.compile(rf"^{re.escape(TAG_PREFIX + config)}-v(\d+)(\.\d+)*$")
    nums = [int(m.group(1)) for t in existing_tags if (m := pat.match(t))]
    return str(max(nums) + 1 if nums else 1)


def active_config_name(root: Path) -> dict:
    import yaml

    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    cfg = params.get("config")
    if not isinstance(cfg, dict) or "name" not in cfg:
        raise ReleaseError("params.yaml: `config:` must select a configuration (`config: *offline` / `*paper`)")
    return cfg


def check_git(root: Path, tag: str) -> None:
    if git(root, "rev-parse", "--is-inside-work-tree", check=False).returncode != 0:
        raise ReleaseError(f"{root} is not a git repository")
    if git(root, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode != 0:
        raise ReleaseError("the repository has no commit yet: commit the project first")
    dirty = git(root, "status", "--porcelain", "--untracked-files=normal").stdout.splitlines()
    if dirty:
        shown = "\n".join(f"    {line}" for line in dirty[:20]) + ("\n    ..." if len(dirty) > 20 else "")
        raise ReleaseError(
            "the git working tree is not clean; a data version must be exactly a commit. Commit (or stash) these, "
            "and add generated files to .gitignore:\n" + shown)
    for f in ("dvc.yaml", "dvc.lock", "data.dvc", "params.yaml"):
        if git(root, "ls-files", "--error-unmatch", f, check=False).returncode != 0:
            hint = "run `dvc repro`, then commit dvc.lock" if f == "dvc.lock" else (
                "run `make data` (dvc add data/raw), then commit data.dvc" if f == "data.dvc" else "commit it")
            raise ReleaseError(f"{f} is not committed to git: {hint}")
    if git(root, "rev-parse", "-q", "--verify", f"refs/tags/{tag}", check=False).returncode == 0:
        raise ReleaseError(f"tag {tag} already exists: choose another VERSION (make release VERSION=...)")


def unpublishable_outputs(root: Path) -> list[str]:
    """Stage outputs with `cache: false` that git ignores: neither `dvc push` nor `git push` publishes them."""
    from dvc.repo import Repo

    bad = []
    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            for out in stage.outs:
                if out.use_cache:
                    continue
                rel = str(Path(out.fs_path).relative_to(root))
                tracked = git(root, "ls-files", "--error-unmatch", rel, check=False).returncode == 0
                if not tracked:
                    bad.append(f"{stage.addressing}: {rel}")
    return bad


def check_dvc(root: Path) -> None:
    status = dvc(root, "status", "--json", check=False)
    if status.returncode != 0:
        raise ReleaseError(f"`dvc status` failed:\n{(status.stderr or status.stdout).strip()}")
    try:
        changes = json.loads(status.stdout.strip().splitlines()[-1] if status.stdout.strip() else "{}")
    except json.JSONDecodeError:
        raise ReleaseError(f"could not read `dvc status --json` output:\n{status.stdout}") from None
    if changes:
        names = "\n".join(f"    {name}: {json.dumps(what)}" for name, what in list(changes.items())[:20])
        raise ReleaseError(
            "the pipeline is not up to date (`dvc status` is not clean): run `dvc repro` (or `make repro`), commit "
            "dvc.lock (and data.dvc), then release again. Changed:\n" + names)
    bad = unpublishable_outputs(root)
    if bad:
        raise ReleaseError(
            "these stage outputs have `cache: false` and are git-ignored, so neither `dvc push` nor git "
            "publishes them and a reviewer's `dvc pull` cannot restore them; drop `cache: false` in dvc.yaml "
            "(or commit them to git):\n" + "\n".join(f"    {b}" for b in bad))


def default_remote(root: Path, remote: str | None) -> str:
    if remote:
        if dvc(root, "remote", "list", check=False).stdout.split().count(remote) == 0:
            raise ReleaseError(f"no DVC remote named {remote!r} (see `dvc remote list`)")
        return remote
    name = dvc(root, "remote", "default", check=False).stdout.strip()
    if not name:
        raise ReleaseError("no default DVC remote: `dvc remote add -d storage <url>` (README: For reviewers)")
    return name


def push(root: Path, remote: str) -> None:
    print(f"release: dvc push -r {remote}")
    proc = subprocess.run([sys.executable, "-m", "dvc", "push", "-r", remote], cwd=root)
    if proc.returncode != 0:
        raise ReleaseError(f"`dvc push -r {remote}` failed: check the remote's URL and credentials "
                           f"(`dvc remote list`; `dvc remote modify --local {remote} url <url>`)")
    cloud = dvc(root, "status", "--cloud", "-r", remote, "--json", check=False)
    left = cloud.stdout.strip()
    if cloud.returncode != 0 or (left and json.loads(left.splitlines()[-1])):
        raise ReleaseError(f"after `dvc push`, `dvc status --cloud -r {remote}` is not clean:\n{left or cloud.stderr}")


def tag_message(tag: str, cfg: dict, root: Path, remote: str, remote_url: str) -> str:
    prov = data_provenance(root)
    lines = [f"Data version {tag} (configuration {cfg['name']})", "",
             f"config: {cfg['name']}", f"corpus: {cfg.get('corpus', '')}",
             "models: " + ", ".join(cfg.get("models", {})),
             f"data.dvc md5: {prov['data_md5']}", f"dvc.lock sha256: {prov['lock_sha256']}",
             f"data version hash: {prov['data_version']}", f"dvc remote: {remote} ({remote_url})",
             "outputs (dvc.lock):"]
    for stage, outs in prov["outs"].items():
        for path, md5 in outs.items():
            lines.append(f"  {stage}  {path}  {md5}")
    return "\n".join(lines) + "\n"


def release(root: Path, version: str | None = None, remote: str | None = None, push_tag: bool = True,
            dry_run: bool = False) -> str:
    root = Path(root).resolve()
    cfg = active_config_name(root)
    tags = git(root, "tag", "--list", f"{TAG_PREFIX}*", check=False).stdout.split()
    version = version or next_version(tags, cfg["name"])
    if not VERSION_RE.match(version):
        raise ReleaseError(f"VERSION must be a number with optional dotted parts (1, 2, 2.1); got {version!r}")
    tag = tag_name(cfg["name"], version)
    print(f"release: {tag}")
    check_git(root, tag)
    print("release: git working tree clean")
    check_dvc(root)
    print("release: dvc status clean (pipeline up to date)")
    remote = default_remote(root, remote)
    remote_url = dvc(root, "remote", "list", check=False).stdout
    remote_url = next((line.split()[1] for line in remote_url.splitlines()
                       if len(line.split()) > 1 and line.split()[0] == remote), "")
    if dry_run:
        print(f"release: dry run: would push to DVC remote {remote!r} ({remote_url}) and tag {tag}")
        return tag
    push(root, remote)
    msg = tag_message(tag, cfg, root, remote, remote_url)
    proc = subprocess.run(["git", "tag", "-a", tag, "-F", "-"], cwd=root, input=msg, text=True, capture_output=True)
    if proc.returncode != 0:
        raise ReleaseError(f"`git tag -a {tag}` failed:\n{proc.stderr.strip()}")
    print(f"release: tagged {tag} at {git(root, 'rev-parse', '--short=10', 'HEAD').stdout.strip()}")
    remotes = git(root, "remote").stdout.split()
    if push_tag and remotes:
        target = "origin" if "origin" in remotes else remotes[0]
        pushed = git(root, "push", target, tag, check=False)
        if pushed.returncode != 0:
            raise ReleaseError(f"tag {tag} was created locally but `git push {target} {tag}` failed:\n"
                               f"{pushed.stderr.strip()}\nRetry with: git push {target} {tag}")
        print(f"release: pushed {tag} to git remote {target}")
    elif push_tag:
        print("release: no git remote: the tag stays local (publish it later with `git push <remote> " + tag + "`)")
    return tag


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", default=None, help="VERSION of data-<config>-v<VERSION> (default: next integer)")
    ap.add_argument("--remote", default=None, help="DVC remote name (default: the default remote)")
    ap.add_argument("--no-push-tag", action="store_true", help="do not push the tag to the git remote")
    ap.add_argument("--dry-run", action="store_true", help="run the checks only")
    ap.add_argument("--root", default=".", help="project root (default: current directory)")
    args = ap.parse_args(argv)
    try:
        release(Path(args.root), args.version or None, args.remote, not args.no_push_tag, args.dry_run)
    except ReleaseError as exc:
        print(f"release: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
