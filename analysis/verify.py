"""A reviewer's reproduction check: recompute the pipeline in a scratch folder and compare every output with
the one in this checkout (committed, or fetched by `dvc pull`), within stated tolerances.

    $ python -m analysis.verify                       # from the raw inputs (data/raw): every stage
    $ python -m analysis.verify --from activations    # reuse this checkout's activations: tokens, stats, ...
    $ python -m analysis.verify --models smollm2-135m --stages tokens,extract,stats

What is compared, and how (TOLERANCES; a file of a kind not listed is compared byte for byte):

    tokens / samples (.parquet)      every value exactly
    activations (block_NN.npy)       to one float16 step (|a - b| <= spacing of float16 at max(|a|, |b|))
    statistics (.parquet, .csv,      numbers to a relative 1e-9 (plus 1e-12 absolute, for values that are
    .json)                           zero up to rounding); NaN where NaN; text, verdicts and counts exactly
    the manuscript (metadata.yml,    exactly: these are the numbers and verdicts the paper prints, as printed
    tables)
    figures (.svg / .png)            reported (identical or not), never a failure: drawings, not numbers

The checkout's outputs must be the ones dvc.lock records (`dvc status` clean), else the comparison would
be against stale files; the recomputation runs the stages' own `run` functions with the scratch folder as
root, so nothing in the checkout is written. Exit status 1 when any output differs beyond its tolerance;
the table printed says which output, how many values and by how much.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from analysis.params import ROOT, active_config, load_params

REL, ABS = 1e-9, 1e-12
MODEL_STAGES = ("tokens", "extract", "stats", "replicates")
STAGES = MODEL_STAGES + ("summary", "assets")
TOLERANCES = {
    "exact": "every value exactly",
    "float16-step": "one float16 step",
    "rel-1e-9": f"relative {REL:g} (absolute {ABS:g})",
    "printed": "exactly as printed",
    "drawing": "reported only",
    "bytes": "byte for byte",
}


@dataclass
class Diff:
    """One compared output file: how many values, how many differ beyond the tolerance, the largest gap."""
    path: str
    rule: str
    n_values: int = 0
    n_differ: int = 0
    max_gap: float = 0.0
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.rule == "drawing" or (self.n_differ == 0 and not self.note.startswith("FAIL"))


# ----------------------------------------------------------------------------------------- comparisons
def rule_for(rel: str) -> str:
    name = rel.rsplit("/", 1)[-1]
    if rel.startswith("report/_generated/figures/") or name.endswith((".svg", ".png", ".pdf")):
        return "drawing"
    if rel.startswith("report/_generated/"):
        return "printed"
    if name in ("tokens.parquet", "samples.parquet"):
        return "exact"
    if name.endswith(".npy"):
        return "float16-step"
    if name.endswith((".parquet", ".csv", ".json")):
        return "rel-1e-9"
    return "bytes"


def close(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(beyond tolerance, gap) of two float arrays: relative REL plus absolute ABS; NaN only matches NaN."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    with np.errstate(invalid="ignore"):
        gap = np.where(nan_a | nan_b, 0.0, np.abs(a - b))
        same_inf = np.isinf(a) & (a == b)
        gap = np.where(same_inf, 0.0, gap)
        bad = (nan_a != nan_b) | (gap > REL * np.maximum(np.abs(a), np.abs(b)) + ABS)
    return bad, gap


def compare_npy(a: Path, b: Path, rel: str) -> Diff:
    A, B = np.load(a, mmap_mode="r"), np.load(b, mmap_mode="r")
    if A.shape != B.shape or A.dtype != B.dtype:
        return Diff(rel, "float16-step", note=f"FAIL shape/dtype {B.shape} {B.dtype} vs {A.shape} {A.dtype}")
    A64, B64 = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    step = np.spacing(np.maximum(np.abs(A), np.abs(B)).astype(A.dtype)).astype(np.float64)
    gap = np.abs(A64 - B64)
    steps = np.where(gap == 0, 0.0, gap / step)
    return Diff(rel, "float16-step", A.size, int((steps > 1).sum() + (np.isnan(A64) != np.isnan(B64)).sum()),
                float(np.nanmax(steps)) if A.size else 0.0, "gap in float16 steps")


def _frame(path: Path):
    import pandas as pd

    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def compare_table(a: Path, b: Path, rel: str, rule: str) -> Diff:
    import pandas as pd

    A, B = _frame(a), _frame(b)
    if list(A.columns) != list(B.columns) or len(A) != len(B):
        return Diff(rel, rule, note=f"FAIL columns/rows differ ({len(B)} x {B.shape[1]} vs {len(A)} x {A.shape[1]})")
    d = Diff(rel, rule)
    for col in A.columns:
        x, y = A[col], B[col]
        d.n_values += len(x)
        numeric = pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x)
        if numeric and rule == "rel-1e-9" and pd.api.types.is_float_dtype(x) | pd.api.types.is_float_dtype(y):
            bad, gap = close(x.to_numpy(np.float64), y.to_numpy(np.float64))
            d.n_differ += int(bad.sum())
            d.max_gap = max(d.max_gap, float(np.nanmax(gap)) if len(gap) else 0.0)
        else:
            same = (x.astype(str).to_numpy() == y.astype(str).to_numpy())
            d.n_differ += int((~same).sum())
    return d


def _walk(x: Any, y: Any, at: str, out: list) -> None:
    if isinstance(x, dict) and isinstance(y, dict):
        for k in sorted(set(x) | set(y)):
            if k not in x or k not in y:
                out.append((f"{at}.{k}", math.inf, True))
            else:
                _walk(x[k], y[k], f"{at}.{k}", out)
    elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        for i, (u, v) in enumerate(zip(x, y)):
            _walk(u, v, f"{at}[{i}]", out)
    elif isinstance(x, float) or isinstance(y, float):
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
            bad, gap = close(np.array([x]), np.array([y]))
            out.append((at, float(gap[0]), bool(bad[0])))
        else:
            out.append((at, math.inf, True))
    else:
        out.append((at, 0.0, x != y))


def compare_json(a: Path, b: Path, rel: str) -> Diff:
    items: list = []
    _walk(json.loads(a.read_text(encoding="utf-8")), json.loads(b.read_text(encoding="utf-8")), "", items)
    bad = [i for i in items if i[2]]
    return Diff(rel, "rel-1e-9", len(items), len(bad), max((i[1] for i in items), default=0.0),
                f"first: {bad[0][0]}" if bad else "")


def compare_text(a: Path, b: Path, rel: str, rule: str) -> Diff:
    la = a.read_text(encoding="utf-8").splitlines()
    lb = b.read_text(encoding="utf-8").splitlines()
    n = max(len(la), len(lb))
    differ = [i for i in range(n) if (la[i] if i < len(la) else None) != (lb[i] if i < len(lb) else None)]
    return Diff(rel, rule, n, len(differ), 0.0, f"first line {differ[0] + 1}: {lb[differ[0]][:60]!r}"
                if differ and differ[0] < len(lb) else "")


def compare_file(a: Path, b: Path, rel: str) -> Diff:
    """Compare the recomputed `a` with the checkout's `b` by the rule of `rel` (the path in the checkout)."""
    rule = rule_for(rel)
    if not a.exists() or not b.exists():
        return Diff(rel, rule, note="FAIL missing in the " + ("recomputation" if not a.exists() else "checkout"))
    if a.read_bytes() == b.read_bytes():
        return Diff(rel, rule, 1, 0, 0.0, "identical bytes")
    if rule == "drawing":
        return Diff(rel, rule, 1, 1, 0.0, "bytes differ")
    if rule == "float16-step":
        return compare_npy(a, b, rel)
    if rel.endswith((".parquet", ".csv")) and rule in ("exact", "rel-1e-9"):
        return compare_table(a, b, rel, rule)
    if rel.endswith(".json"):
        return compare_json(a, b, rel)
    if rule == "printed":
        return compare_text(a, b, rel, rule)
    return Diff(rel, rule, 1, 1, 0.0, "bytes differ")


def files_under(root: Path, rel: str) -> Iterator[str]:
    p = root / rel
    if p.is_dir():
        for f in sorted(p.rglob("*")):
            if f.is_file() and not any(part.startswith(".") for part in f.relative_to(root).parts):
                yield str(f.relative_to(root))
    else:
        yield rel


def compare_trees(new_root: Path, old_root: Path, outs: list[str]) -> list[Diff]:
    diffs = []
    for out in outs:
        rels = sorted(set(files_under(old_root, out)) | set(files_under(new_root, out)))
        diffs += [compare_file(new_root / r, old_root / r, r) for r in rels]
    return diffs


# ----------------------------------------------------------------------------------------- recomputing
def locked_outputs(root: Path = ROOT) -> dict[str, list[str]]:
    """{stage name in dvc.lock: [its output paths]}."""
    import yaml

    lock = root / "dvc.lock"
    if not lock.exists():
        raise SystemExit(f"error: {lock} is missing: nothing to compare with; run `dvc pull` (or `make demo`)")
    stages = yaml.safe_load(lock.read_text(encoding="utf-8")).get("stages", {})
    return {name: [o["path"] for o in st.get("outs", [])] for name, st in stages.items()}


def check_clean(root: Path = ROOT) -> None:
    """The checkout's outputs must be dvc.lock's (else they are not what was published)."""
    proc = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"error: `dvc status` failed: {proc.stderr.strip().splitlines()[-1:] or ''}")
    status = json.loads(proc.stdout or "{}")
    if status:
        raise SystemExit("error: the checkout's outputs are not those dvc.lock records (`dvc status`: "
                         f"{', '.join(sorted(status))}); run `dvc pull` or `dvc checkout` first")


def scratch_project(scratch: Path, locked: dict[str, list[str]], stages: list[str], models: list[str]) -> None:
    """data/raw and the outputs of every stage that is not recomputed (upstream inputs of those that are),
    linked from the checkout: only the recomputed stages write, and only into the scratch folder."""
    (scratch / "data").mkdir(parents=True)
    (scratch / "data" / "raw").symlink_to((ROOT / "data" / "raw").resolve())
    for m in models:
        (scratch / "results" / m).mkdir(parents=True, exist_ok=True)
    for name, paths in locked.items():
        stage, _, model = name.partition("@")
        if stage in stages or (model and model not in models):
            continue
        for rel in paths:
            src, dst = ROOT / rel, scratch / rel
            if not src.exists():
                raise SystemExit(f"error: {src} is missing: `dvc pull` it, or recompute stage {name} too")
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src.resolve(), target_is_directory=src.is_dir())


def recompute(scratch: Path, params: dict, models: list[str], stages: list[str],
              log: Callable[[str], None] = print) -> dict[str, float]:
    """Run the chosen stages into `scratch` in pipeline order; seconds per stage."""
    from analysis.stages import assets, extract, replicates, stats, summary, tokens

    runs = {"tokens": lambda m: tokens.run(m, params, root=scratch),
            "extract": lambda m: extract.run(m, params, root=scratch, progress=False),
            "stats": lambda m: stats.run(m, params, root=scratch, progress=False),
            "replicates": lambda m: replicates.run(m, params, root=scratch, progress=False)}
    seconds = {}
    for stage in STAGES:
        if stage not in stages:
            continue
        t0 = time.perf_counter()
        if stage in runs:
            for m in models:
                log(f"verify: {stage}@{m} ...")
                runs[stage](m)
        elif stage == "summary":
            log("verify: summary ...")
            summary.run(params, root=scratch, models=models)
        else:
            log("verify: assets ...")
            assets.build(params, scratch / "results", scratch / "summary", scratch / "report" / "_generated", ROOT)
        seconds[stage] = time.perf_counter() - t0
    return seconds


def outputs_of(locked: dict[str, list[str]], stages: list[str], models: list[str]) -> list[str]:
    outs = []
    for name, paths in locked.items():
        stage, _, model = name.partition("@")
        if stage in stages and (not model or model in models):
            outs += paths
    return outs


# ----------------------------------------------------------------------------------------- reporting
def report(diffs: list[Diff]) -> str:
    rows = [f"{'output':<58} {'rule':<13} {'values':>9} {'differ':>7} {'max gap':>9}  note"]
    for d in diffs:
        if d.note == "identical bytes":
            continue
        rows.append(f"{d.path[-58:]:<58} {d.rule:<13} {d.n_values:>9} {d.n_differ:>7} {d.max_gap:>9.2g}  "
                    f"{'ok' if d.ok else 'DIFFERS'} {d.note}")
    same = sum(d.note == "identical bytes" for d in diffs)
    rows.append(f"{same} of {len(diffs)} files byte-identical; "
                f"{sum(not d.ok for d in diffs)} beyond tolerance")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="start", choices=("raw", "activations"), default="raw",
                    help="recompute from data/raw (default) or from this checkout's activations")
    ap.add_argument("--models", help="comma-separated models of the active configuration (default: all)")
    ap.add_argument("--stages", help=f"comma-separated, of {','.join(STAGES)} (default: all)")
    ap.add_argument("--keep", metavar="DIR", help="recompute into DIR and keep it (default: a temporary folder)")
    ap.add_argument("--no-status-check", action="store_true", help="skip `dvc status` (compare whatever is here)")
    args = ap.parse_args(argv)
    try:
        params = load_params()
        models = list(active_config(params)["models"])
        if args.models:
            unknown = sorted(set(args.models.split(",")) - set(models))
            if unknown:
                raise SystemExit(f"error: --models {','.join(unknown)}: not in the active configuration ({', '.join(models)})")
            models = args.models.split(",")
        stages = args.stages.split(",") if args.stages else list(STAGES)
        if set(stages) - set(STAGES):
            raise SystemExit(f"error: --stages: unknown {sorted(set(stages) - set(STAGES))}; use {','.join(STAGES)}")
        if args.start == "activations":
            stages = [s for s in stages if s != "extract"]
        if set(stages) & {"summary", "assets"} and set(models) != set(active_config(params)["models"]):
            raise SystemExit("error: summary and assets need every model of the configuration: drop --models")
        locked = locked_outputs()
        if not args.no_status_check:
            check_clean()
        with tempfile.TemporaryDirectory(prefix="tokenlen-verify-") as tmp:
            scratch = Path(args.keep) if args.keep else Path(tmp)
            if args.keep and scratch.exists():
                shutil.rmtree(scratch)
            scratch_project(scratch, locked, stages, models)
            seconds = recompute(scratch, params, models, stages)
            diffs = compare_trees(scratch, ROOT, outputs_of(locked, stages, models))
        print(report(diffs))
        print("verify: " + ", ".join(f"{s} {t:.0f} s" for s, t in seconds.items()))
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 1
        raise
    except Exception as exc:  # one line (TOKENLEN_DEBUG=1 for the traceback)
        from analysis.stages import report_error

        return report_error(exc)
    bad = [d for d in diffs if not d.ok]
    print("verify: OK, every output within its tolerance" if not bad else
          f"verify: {len(bad)} output files differ beyond their tolerance (listed above)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
