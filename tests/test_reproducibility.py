"""Reproducibility: the BLAS kernel is pinned (same bytes on every AVX2 CPU), and `make verify` compares
each kind of output by its stated tolerance (analysis/verify.py). The end-to-end `make verify` on a
pipeline run is in tests/test_reviewer.py (the tiny project)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import verify as V
from analysis.params import ROOT

AVX2 = "avx2" in Path("/proc/cpuinfo").read_text(errors="replace") if Path("/proc/cpuinfo").exists() else False

STATS_SCRIPT = """
import copy, hashlib, sys
from pathlib import Path
from analysis.params import load_params
from analysis.stages import stats
from analysis.stats.simulate import activations, write_model, zipf_stream
import numpy, os
root = Path(sys.argv[1])
p = copy.deepcopy(load_params())
p["stats"].update(split_block=1, chunk_neurons=64, dip_neurons=64, rank_neurons=64)
p["stats"]["nulls"].update(n_permutations=50)
tok = zipf_stream(5, n_seq=8)
write_model(root, "m", tok, activations(tok, "typefun", 3, 200, 5, planted="study"))
stats.run("m", p, root=root, progress=False)
print(os.environ.get("OPENBLAS_CORETYPE"), hashlib.sha256(b"".join(
    (root / "results/m" / f).read_bytes() for f in ("neurons.parquet", "nulls.parquet", "summary.json"))).hexdigest())
"""


@pytest.mark.skipif(not AVX2, reason="the kernel is pinned on AVX2 CPUs only")
def test_blas_kernel_is_pinned_and_decides_the_bytes(tmp_path):
    """Unset, the package pins OpenBLAS to Haswell: same bytes as an explicit Haswell; another kernel
    (what a different CPU would pick) changes them, which is why it is pinned."""
    def run(coretype: str | None, sub: str) -> tuple[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
        if coretype:
            env["OPENBLAS_CORETYPE"] = coretype
        proc = subprocess.run([sys.executable, "-c", STATS_SCRIPT, str(tmp_path / sub)], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        core, digest = proc.stdout.split()[-2:]
        return core, digest

    pinned = run(None, "pinned")
    assert pinned[0] == "Haswell"
    assert run("Haswell", "haswell")[1] == pinned[1]
    assert run("Sandybridge", "sandybridge")[1] != pinned[1]


# ---------------------------------------------------------------------------------------- tolerances
def test_rules_by_path():
    assert V.rule_for("results/m/tokens.parquet") == "exact"
    assert V.rule_for("results/m/activations/block_03.npy") == "float16-step"
    assert V.rule_for("results/m/neurons.parquet") == "rel-1e-9"
    assert V.rule_for("results/m/replicates/sample1/claims.json") == "rel-1e-9"
    assert V.rule_for("report/_generated/metadata.yml") == "printed"
    assert V.rule_for("report/_generated/figures/en/r_at_block.svg") == "drawing"


def test_statistics_within_1e9_pass_beyond_fail(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"block": np.arange(50), "r_within": rng.normal(size=50), "verdict": ["a"] * 50})
    df.loc[3, "r_within"] = np.nan
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    df.to_parquet(b)
    near = df.copy()
    near["r_within"] *= 1 + 3e-10
    near.to_parquet(a)
    d = V.compare_file(a, b, "results/m/neurons.parquet")
    assert d.ok and d.n_values == 150 and 0 < d.max_gap < 1e-9
    far = df.copy()
    far.loc[7, "r_within"] *= 1 + 1e-7
    far.loc[9, "verdict"] = "b"
    far.to_parquet(a)
    d = V.compare_file(a, b, "results/m/neurons.parquet")
    assert not d.ok and d.n_differ == 2
    nan = df.copy()
    nan.loc[4, "r_within"] = np.nan                     # NaN where the checkout has a number
    nan.to_parquet(a)
    assert not V.compare_file(a, b, "results/m/neurons.parquet").ok


def test_json_numbers_relative_strings_exact(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    base = {"C3": {"verdict": "mixed", "statistic": 0.5123456789, "tests": [{"p": 0.01}]}, "n": 8192}
    b.write_text(json.dumps(base))
    a.write_text(json.dumps({**base, "C3": {**base["C3"], "statistic": 0.5123456789 * (1 + 1e-12)}}))
    assert V.compare_file(a, b, "results/m/claims.json").ok
    a.write_text(json.dumps({**base, "C3": {**base["C3"], "verdict": "supported"}}))
    d = V.compare_file(a, b, "results/m/claims.json")
    assert not d.ok and "C3.verdict" in d.note
    a.write_text(json.dumps({**base, "n": 8191}))
    assert not V.compare_file(a, b, "results/m/claims.json").ok


def test_activations_to_one_float16_step(tmp_path):
    X = np.random.default_rng(1).normal(size=(64, 8)).astype(np.float16)
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(b, X)
    Y = X.copy()
    Y[0, 0] = np.nextafter(Y[0, 0], np.float16(np.inf))
    np.save(a, Y)
    d = V.compare_file(a, b, "results/m/activations/block_00.npy")
    assert d.ok and d.max_gap == pytest.approx(1.0)
    Y[1, 1] = np.nextafter(np.nextafter(Y[1, 1], np.float16(9)), np.float16(9))
    np.save(a, Y)
    d = V.compare_file(a, b, "results/m/activations/block_00.npy")
    assert not d.ok and d.n_differ == 1


def test_printed_numbers_exactly_and_figures_reported_only(tmp_path):
    a, b = tmp_path / "a.yml", tmp_path / "b.yml"
    b.write_text("m:\n  r: '0.123'\n")
    a.write_text("m:\n  r: '0.124'\n")
    d = V.compare_file(a, b, "report/_generated/metadata.yml")
    assert not d.ok and "line 2" in d.note
    d = V.compare_file(a, b, "report/_generated/figures/en/x.svg")
    assert d.ok and d.n_differ == 1
    assert not V.compare_file(tmp_path / "missing", b, "report/_generated/metadata.yml").ok


def test_report_names_the_differing_output():
    diffs = [V.Diff("results/m/neurons.parquet", "rel-1e-9", 10, 2, 1e-6),
             V.Diff("results/m/tokens.parquet", "exact", 1, 0, 0.0, "identical bytes")]
    text = V.report(diffs)
    assert "neurons.parquet" in text and "DIFFERS" in text and "1 of 2 files byte-identical" in text
