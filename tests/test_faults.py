"""The fault battery (issue 10): each bad input or fault, reproduced in a temporary copy, must end in one
clear line naming the parameter or file and the fix, never a traceback, and never lose or fake an output.

    case                                      test
    typo in a required / an optional key      test_bad_parameters_fail_before_any_work (CLI)
    a string for a boolean, "abc" for an int  test_bad_parameters_fail_before_any_work (CLI)
    seq_len beyond the model's positions      test_seq_len_beyond_positions_fails_before_weights
    NaN / random bytes in a block file        test_nonfinite_or_random_bytes_in_a_block_are_named
    an in-place edit of a checked-out file    test_cache_never_links_workspace_files
    SIGKILL of extract mid-run                test_sigkill_of_extract_leaves_old_output_and_next_run_cleans
    a kill between the two renames            test_kill_between_renames_restores_previous_output
    results/<model> not writable              test_unwritable_results_keep_existing_activations
    truncated / missing / corrupt inputs      test_missing_and_corrupt_inputs_name_their_file
    hub model of an unsupported architecture  test_hub_config_is_checked_before_weights (subprocess)
    a failed cache load                       test_hub_config_is_checked_before_weights (subprocess)
    a model removed from the configuration    test_cross_model_stages_depend_on_exact_files
    `make render` without Quarto              test_make_render_fails_without_quarto
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.params import ROOT, load_params
from analysis.stats.simulate import activations, write_model, zipf_stream

PY = sys.executable


def project_copy(dest: Path) -> Path:
    """The code and parameters of this checkout in `dest` (no data, no results)."""
    shutil.copytree(ROOT / "analysis", dest / "analysis", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("params.yaml", "dvc.yaml"):
        shutil.copy2(ROOT / f, dest / f)
    return dest


def run_cli(project: Path, *args: str, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(project), "HF_HUB_OFFLINE": "1", **(env or {})}
    env.pop("TOKENLEN_DEBUG", None)
    return subprocess.run([PY, *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The stage's stderr: exit 1, no traceback, exactly one line that starts with `error:`."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


# ------------------------------------------------------------------------------------------- parameters
BAD_PARAMS = {
    "typo-required": ("  n_sequences: 16", "  n_sequnces: 16", "unknown key `tokens.n_sequnces`; did you mean `n_sequences`?"),
    "typo-optional": ("  reference_max_tokens: 5000000", "  reference_max_token: 5000000",
                      "unknown key `tokens.reference_max_token`; did you mean `reference_max_tokens`?"),
    "string-bool": ("  count_leading_space: true", '  count_leading_space: "false"',
                    "`tokens.count_leading_space` must be true or false (not a string), got 'false'"),
    "string-int": ("  seq_len: 512", '  seq_len: "abc"', "`tokens.seq_len` must be an integer, got 'abc'"),
    "bad-choice": ("  site: pre", "  site: mid", "`extract.site` must be 'pre' or 'post', got 'mid'"),
    "out-of-range": ("  alpha: 0.05", "  alpha: 5", "`stats.alpha`: Input should be less than 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_PARAMS))
def test_bad_parameters_fail_before_any_work(tmp_path, case):
    old, new, expected = BAD_PARAMS[case]
    project = project_copy(tmp_path)
    text = (project / "params.yaml").read_text(encoding="utf-8")
    assert text.count(old + " ") + text.count(old + "\n") == 1, f"params.yaml no longer has {old!r} once"
    (project / "params.yaml").write_text(text.replace(old, new, 1), encoding="utf-8")
    line = one_line_error(run_cli(project, "-m", "analysis.stages.tokens", "--model", "smollm2-135m"))
    assert "params.yaml" in line and expected in line, line
    assert not (project / "results").exists()            # nothing was started


def test_schema_accepts_the_committed_params_and_both_configurations():
    from analysis.params import validate

    params = load_params()
    for name, cfg in params["configs"].items():
        validate({**params, "config": cfg})


def test_seq_len_beyond_positions_fails_before_weights(monkeypatch):
    import transformers

    from analysis.models.loading import ModelSpecError, load_model

    built = []
    monkeypatch.setattr(transformers, "GPTNeoModel", lambda *a, **k: built.append(1))
    spec = {"name": "gpt-neo-125m-random", "source": "random", "architecture": "gpt-neo-125m",
            "weights": "random", "init_seeds": [0]}
    with pytest.raises(ModelSpecError, match=r"tokens\.seq_len = 4096 .* 2048 positions"):
        load_model(spec, seq_len=4096)
    assert not built                                     # refused before a weight was drawn


HUB_SCRIPT = """
import json, sys
from pathlib import Path
from analysis.models.loading import load_model
out = {}
for case, spec in json.loads(sys.argv[1]).items():
    try:
        load_model(spec, seq_len=spec.pop("seq_len", None))
        out[case] = "loaded"
    except Exception as exc:
        out[case] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def test_hub_config_is_checked_before_weights(tmp_path):
    """A seeded offline hub cache: config.json only (no weights) for an unsupported architecture and for a
    too-short model; config + corrupt weights for a failed cache load."""
    from transformers import BertConfig

    from analysis.models.architectures import gpt_neo_config
    from tests.test_paper_path import snapshot

    hf = tmp_path / "hf"
    specs = {}
    for case, rev in (("bert", "1" * 40), ("short", "2" * 40), ("corrupt", "3" * 40), ("noweights", "4" * 40)):
        repo = f"test/{case}"
        snap = snapshot(hf, "models", repo, rev)
        cfg = BertConfig(num_hidden_layers=1) if case == "bert" else gpt_neo_config("gpt-neo-125m")
        cfg.save_pretrained(snap)
        if case == "corrupt":
            (snap / "model.safetensors").write_bytes(b"\x00" * 64)   # a broken download
        specs[case] = {"name": case, "source": "hub", "repo_id": repo, "revision": rev, "weights": "pretrained",
                       "seq_len": 4096 if case == "short" else 512}
    proc = run_cli(ROOT, "-c", HUB_SCRIPT, json.dumps(specs), env={"HF_HOME": str(hf)}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    # rejected from its config: the weights (absent from the cache) were never asked for
    assert "architecture 'bert' is not supported" in got["bert"] and "gpt_neo" in got["bert"], got["bert"]
    assert "cannot be reached" not in got["bert"]
    assert "tokens.seq_len = 4096" in got["short"] and "2048" in got["short"], got["short"]
    # the real reason of a failed cache load is kept, next to the offline hint where there is one
    assert "cannot be reached" not in got["corrupt"] and "deserializ" in got["corrupt"], got["corrupt"]
    assert "local cache:" in got["noweights"] and "model.safetensors" in got["noweights"], got["noweights"]


# ------------------------------------------------------------------------------------------- block files
@pytest.fixture()
def stats_params():
    import copy

    p = copy.deepcopy(load_params())
    p["stats"].update(split_block=1, chunk_neurons=16, dip_neurons=None, rank_neurons=None)
    p["stats"]["nulls"].update(n_permutations=20)
    return p


@pytest.mark.parametrize("corruption", ["nan", "random-bytes"])
def test_nonfinite_or_random_bytes_in_a_block_are_named(tmp_path, stats_params, corruption):
    from analysis.stages import stats as stats_stage

    tok = zipf_stream(0)
    write_model(tmp_path, "m", tok, activations(tok, "iid", 3, 12, 1))
    path = tmp_path / "results/m/activations/block_01.npy"
    X = np.load(path, mmap_mode="r+")
    if corruption == "nan":
        X[5:15, 2] = np.nan                               # 10 values, written in place
    else:
        X[:, 3:6] = np.random.default_rng(0).integers(0, 2**16, (X.shape[0], 3), dtype=np.uint16).view(np.float16)
    X.flush()
    n_bad = int((~np.isfinite(np.load(path))).sum())
    with pytest.raises(ValueError) as err:
        stats_stage.run("m", stats_params, root=tmp_path, progress=False)
    msg = str(err.value)
    assert str(path.relative_to(tmp_path)) in msg and f"{n_bad} non-finite values" in msg, msg
    assert "constant" not in msg
    assert not (tmp_path / "results/m/neurons.parquet").exists()


def test_missing_and_corrupt_inputs_name_their_file(tmp_path, stats_params):
    import pyarrow.parquet as pq

    from analysis.io import write_parquet
    from analysis.stages import stats as stats_stage

    tok = zipf_stream(0)
    write_model(tmp_path, "m", tok, activations(tok, "iid", 3, 12, 1))
    res = tmp_path / "results/m"
    tokens = res / "tokens.parquet"
    write_parquet(tokens, pd.read_parquet(tokens))        # as the tokens stage writes it: page checksums

    block = res / "activations/block_02.npy"
    saved = block.read_bytes()
    block.write_bytes(saved[:-100])                       # truncated
    with pytest.raises(ValueError, match=str(block)):
        stats_stage.run("m", stats_params, root=tmp_path, progress=False)
    block.write_bytes(saved)

    # 8 zero bytes in the middle of the token_id column's data: a checksum error, not a silently wrong id
    meta = pq.ParquetFile(tokens).metadata.row_group(0)
    col = next(meta.column(i) for i in range(meta.num_columns) if meta.column(i).path_in_schema == "token_id")
    data = bytearray(tokens.read_bytes())
    at = col.data_page_offset + col.total_compressed_size // 2
    assert data[at: at + 8] != b"\0" * 8
    data[at: at + 8] = b"\0" * 8
    tokens.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{tokens} is corrupt.*checksum.*dvc repro tokens@m"):
        stats_stage.run("m", stats_params, root=tmp_path, progress=False)

    tokens.unlink()
    with pytest.raises(ValueError, match=rf"{tokens} is missing"):
        stats_stage.run("m", stats_params, root=tmp_path, progress=False)
    assert not (res / "neurons.parquet").exists()


# ------------------------------------------------------------------------------------------- the cache
def test_cache_never_links_workspace_files(tmp_path):
    """The committed .dvc/config: DVC's default reflink,copy. An in-place edit of a checked-out file changes
    the workspace copy only; the cache object keeps its content and `dvc status` reports the change."""
    import configparser
    import hashlib

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / ".dvc" / "config")
    types = [t.strip().strip('"') for t in cfg.get("cache", "type", fallback="reflink,copy").strip('"').split(",")]
    assert "hardlink" not in types and "symlink" not in types, types

    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    sh = lambda *a: subprocess.run(a, cwd=tmp_path, env=env, capture_output=True, text=True, check=True)  # noqa: E731
    sh("git", "init", "-q")
    sh(PY, "-m", "dvc", "init", "-q")
    shutil.copy2(ROOT / ".dvc" / "config", tmp_path / ".dvc" / "config")
    (tmp_path / "d").mkdir()
    f = tmp_path / "d" / "block_03.npy"
    np.save(f, np.ones((64, 8), dtype=np.float16))
    sh(PY, "-m", "dvc", "add", "-q", "d")
    sh(PY, "-m", "dvc", "checkout", "-q", "--relink")
    digest = hashlib.md5(f.read_bytes()).hexdigest()
    obj = tmp_path / ".dvc" / "cache" / "files" / "md5" / digest[:2] / digest[2:]
    assert obj.exists() and f.stat().st_nlink == 1 and not f.is_symlink()
    assert os.stat(obj).st_ino != f.stat().st_ino
    X = np.load(f, mmap_mode="r+")                         # the edit of the issue: NaN rows in place
    X[:4] = np.nan
    X.flush()
    del X
    assert hashlib.md5(obj.read_bytes()).hexdigest() == digest
    status = subprocess.run([PY, "-m", "dvc", "status"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "modified" in status.stdout, status.stdout


# ------------------------------------------------------------------------------------------- kills
KILL_SCRIPT = """
import os, signal, sys
import numpy as np, pandas as pd, torch
from pathlib import Path
from transformers import GPTNeoModel
from analysis.models.architectures import gpt_neo_config
from analysis.stages import extract as stage

root = Path(sys.argv[1])
torch.manual_seed(0)
model = GPTNeoModel(gpt_neo_config("gpt-neo-125m", hidden_size=32, num_layers=4, num_heads=4)).eval()
calls = []
def kill_at_half(module, inputs, output):
    calls.append(1)
    if len(calls) == 2 and sys.argv[2] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)             # as the OOM killer would: no cleanup runs
model.h[3].mlp.c_fc.register_forward_hook(kill_at_half)
import analysis.models.loading as loading
loading.load_model = lambda spec, **kw: model
params = {"config": {"name": "t", "models": {"m": {"source": "random", "weights": "random",
                                                   "architecture": "gpt-neo-125m", "init_seeds": [0]}}},
          "extract": {"site": "pre", "batch_size": 2, "dtype": "float16", "device": "cpu"}}
stage.run("m", params, root=root, progress=False)
"""


def _tiny_tokens(res: Path, n_seq: int = 4, seq_len: int = 8) -> None:
    res.mkdir(parents=True)
    pd.DataFrame({"seq": np.repeat(np.arange(n_seq), seq_len), "pos": np.tile(np.arange(seq_len), n_seq),
                  "token_id": np.arange(n_seq * seq_len) % 100}).to_parquet(res / "tokens.parquet")


def test_sigkill_of_extract_leaves_old_output_and_next_run_cleans(tmp_path):
    res = tmp_path / "results" / "m"
    _tiny_tokens(res)
    old = res / "activations"
    old.mkdir()
    (old / "block_00.npy").write_bytes(b"the previous complete output")
    killed = run_cli(ROOT, "-c", KILL_SCRIPT, str(tmp_path), "kill")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    names = sorted(p.name for p in res.iterdir())
    leftovers = [n for n in names if n.startswith(".activations.tmp-")]
    assert len(leftovers) == 1 and any((res / leftovers[0]).iterdir())   # half-written, hidden
    assert (old / "block_00.npy").read_bytes() == b"the previous complete output"

    done = run_cli(ROOT, "-c", KILL_SCRIPT, str(tmp_path), "finish")
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in res.iterdir()) == ["activations", "tokens.parquet"]   # leftover removed
    assert sorted(p.name for p in old.iterdir()) == [f"block_{b:02d}.npy" for b in range(4)] + ["meta.json"]


def test_kill_between_renames_restores_previous_output(tmp_path):
    """A kill after the old output was moved aside and before the new one was moved in: the next run puts
    the previous output back before it starts (nothing lost), then replaces it as usual."""
    from analysis.io import atomic_dir, remove_leftovers

    dead = subprocess.run([PY, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    aside = tmp_path / f".activations.old-{dead}"
    aside.mkdir()
    (aside / "meta.json").write_text("previous")
    (tmp_path / f".activations.tmp-{dead}").mkdir()          # the unfinished new output
    remove_leftovers(tmp_path / "activations")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["activations"]
    assert (tmp_path / "activations" / "meta.json").read_text() == "previous"
    with atomic_dir(tmp_path / "activations") as tmp:
        (tmp / "meta.json").write_text("new")
    assert (tmp_path / "activations" / "meta.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["activations"]


def test_unwritable_results_keep_existing_activations(tmp_path, monkeypatch):
    from analysis.stages import extract as stage

    res = tmp_path / "results" / "m"
    _tiny_tokens(res)
    old = res / "activations"
    old.mkdir()
    (old / "block_00.npy").write_bytes(b"kept")
    if os.geteuid() != 0:
        res.chmod(0o555)
    else:  # root writes anywhere: the refusal a read-only folder gives is raised where the folder is made
        real_mkdir = Path.mkdir

        def refuse(self, *a, **k):
            if self.parent == res and self.name.startswith(".activations."):
                raise PermissionError(13, "Permission denied", str(self))
            return real_mkdir(self, *a, **k)

        monkeypatch.setattr(Path, "mkdir", refuse)
    monkeypatch.setattr("analysis.models.loading.load_model", lambda spec, **kw: pytest.fail("loaded a model"))
    params = {"config": {"name": "t", "models": {"m": {"source": "random", "weights": "random",
                                                       "architecture": "gpt-neo-125m"}}},
              "extract": {"site": "pre", "batch_size": 2, "dtype": "float16", "device": "cpu"}}
    try:
        with pytest.raises(PermissionError, match="Permission denied"):
            stage.run("m", params, root=tmp_path, progress=False)
    finally:
        res.chmod(0o755)
    assert (old / "block_00.npy").read_bytes() == b"kept"


# ------------------------------------------------------------------------------------------- DVC graph
def test_cross_model_stages_depend_on_exact_files(tmp_path):
    from analysis import config as C

    project = project_copy(tmp_path)
    text = C.generated_stages(["a", "b"])
    deps = [ln.strip()[2:] for ln in text.splitlines() if ln.strip().startswith("- results")]
    assert deps and all(d.startswith(("results/a/", "results/b/")) for d in deps), deps
    assert "- results\n" not in text and "- results/\n" not in text

    # removing a model from the active configuration: `sync` drops its files; a stale dvc.yaml is refused
    params = (project / "params.yaml").read_text(encoding="utf-8")
    pair = "      smollm2-135m: *smollm2-135m\n      gpt-neo-125m-random: *gpt-neo-125m-random\n"
    removed = params.replace(pair, "      smollm2-135m: *smollm2-135m\n", 1)
    assert removed != params, "params.yaml's offline configuration no longer lists the random control"
    (project / "params.yaml").write_text(removed, encoding="utf-8")
    line = one_line_error(run_cli(project, "-m", "analysis.stages.summary"))
    assert "python -m analysis.config sync" in line, line
    synced = run_cli(project, "-m", "analysis.config", "sync")
    assert synced.returncode == 0, synced.stderr
    dvc_yaml = (project / "dvc.yaml").read_text(encoding="utf-8")
    block = dvc_yaml.split(C.BEGIN, 1)[1].split(C.END, 1)[0]
    assert "results/smollm2-135m/summary.json" in block and "gpt-neo-125m-random" not in block
    assert run_cli(project, "-m", "analysis.config", "check").returncode == 0


def test_make_render_fails_without_quarto(tmp_path):
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    if shutil.which("quarto", path=env["PATH"]):
        pytest.skip("quarto is installed here")
    shutil.copy2(ROOT / "Makefile", tmp_path / "Makefile")
    strict = subprocess.run(["make", "-s", "render", "PYTHON=" + PY], cwd=tmp_path, env=env, capture_output=True,
                            text=True)
    assert strict.returncode != 0 and "quarto not found" in strict.stderr, (strict.returncode, strict.stderr)
    lenient = subprocess.run(["make", "-s", "render-if-quarto", "PYTHON=" + PY], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
    assert lenient.returncode == 0 and "skipped" in lenient.stdout, (lenient.stdout, lenient.stderr)
