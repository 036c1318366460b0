"""Atomic writes and checked reads: an interrupted stage never leaves an output that looks finished, never
loses what was there, and a bad input file is named in one line with the fix.

Every writer goes to a temporary sibling (``.<name>.tmp-<pid>``) and is renamed into place only when
complete; os.replace is atomic on one filesystem. Leftover temporaries of killed runs (their process is
gone) are removed by the next run that writes the same output.

    >>> with atomic_path("results/m/tokens.parquet") as tmp:
    ...     df.to_parquet(tmp)
    >>> with atomic_dir("results/m/activations") as tmp_dir:       # the old directory stays until the end
    ...     np.save(tmp_dir / "block_00.npy", a)
    >>> summary = read_json("results/m/summary.json", fix="run `dvc repro stats@m`")
"""

from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)$")


class InputFileError(ValueError):
    """An input file is missing or unreadable; the message names it and says what to do."""


def _tmp_sibling(path: Path, kind: str = "tmp") -> Path:
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(path: str | Path) -> list[Path]:
    """Clean up after killed runs: temporaries of `path` (``.<name>.tmp-<pid>`` / ``.old-<pid>``) whose process
    no longer exists are removed, except that a previous output moved aside (``.old-<pid>``) by a run killed
    between its two renames is put back when `path` itself is missing. Returns what was removed."""
    path = Path(path)
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    dead = []
    for p in sorted(path.parent.iterdir()):
        m = _TMP.match(p.name)
        if m and m.group("name") == path.name and not _alive(int(m.group("pid"))):
            dead.append((p, m.group("kind")))
    for p, kind in dead:
        if kind == "old" and not (path.exists() or path.is_symlink()):
            os.replace(p, path)       # nothing lost: the last complete output returns
            continue
        _remove(p)
        removed.append(p)
    return removed


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file path; move it to `path` only if the block finishes without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    tmp = _tmp_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory; it replaces `path` only if the block finishes without error.

    The temporary directory is created (which also proves the parent is writable) before anything is
    touched; the existing `path` stays in place while the work runs, is moved aside only once the new
    directory is complete, and removed after the new one is in place. A kill at any point leaves either
    the old directory or the new one at `path` (plus a hidden leftover the next run removes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    tmp = _tmp_sibling(path)
    if tmp.exists():
        _remove(tmp)
    tmp.mkdir()
    try:
        yield tmp
        old = _tmp_sibling(path, "old")
        if path.exists() or path.is_symlink():
            os.replace(path, old)
        os.replace(tmp, path)
        if old.exists() or old.is_symlink():
            _remove(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, allow_nan=True, default=str) + "\n", encoding="utf-8")


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_parquet(path: str | Path, df) -> None:
    """A DataFrame as parquet with page checksums (a flipped byte is an error on reading, not a value)."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False, write_page_checksum=True)


def write_csv(path: str | Path, df) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def read_json(path: str | Path, fix: str) -> Any:
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path} is missing: {fix}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path} is not valid JSON ({exc}): {fix}") from exc


def read_parquet(path: str | Path, fix: str, columns: list[str] | None = None):
    """A parquet file as a DataFrame; page checksums are verified where the file has them."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path} is missing: {fix}")
    try:
        return pq.read_table(path, columns=columns, page_checksum_verification=True).to_pandas()
    except Exception as exc:  # pyarrow raises several types (ArrowInvalid, OSError, ...) for a corrupt file
        raise InputFileError(f"{path} is corrupt or not a parquet file ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}): {fix}") from exc
