"""The *paper* configuration's own loading code, run offline against a seeded Hugging Face cache.

A temporary HF_HOME is laid out as the hub's cache (models--org--name/snapshots/<revision>/...) holding
tiny random-weight GPT-Neo stand-ins under the configured repo ids and revisions, and a small parquet under
the FineWeb file name and revision. With HF_HUB_OFFLINE=1, the unchanged paper path — the corpus download
(hf_hub_download by revision), AutoTokenizer / AutoModel.from_pretrained by id + revision — must run through
the tokens and extraction stages. huggingface_hub reads HF_HOME and HF_HUB_OFFLINE when imported, so the
pipeline runs in a subprocess with that environment, as a user's shell would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.params import ROOT, load_params

SENTENCES = [
    "The committee met on Tuesday to discuss the new budget for the library.",
    "Researchers found that small changes in temperature can affect crop yields.",
    "She walked along the river, counting the boats that drifted past the old mill.",
    "A simple recipe needs flour, water, salt and a little patience.",
    "The museum opened a new exhibition about the history of printing.",
    "Local volunteers planted hundreds of trees along the highway last spring.",
]


def snapshot(hf_home: Path, kind: str, repo_id: str, revision: str) -> Path:
    folder = hf_home / "hub" / f"{kind}--{repo_id.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(revision)
    snap = folder / "snapshots" / revision
    snap.mkdir(parents=True, exist_ok=True)
    return snap


def seed_model(hf_home: Path, spec: dict, hidden: int, layers: int) -> None:
    import torch
    from transformers import GPTNeoForCausalLM

    from analysis.models.architectures import gpt_neo_config
    from analysis.models.tokenizers import gpt2_tokenizer_dir

    snap = snapshot(hf_home, "models", spec["repo_id"], spec["revision"])
    torch.manual_seed(0)
    # A causal-LM checkpoint like the real repos (weights under "transformer."), tiny but GPT-Neo.
    GPTNeoForCausalLM(gpt_neo_config("gpt-neo-125m", hidden_size=hidden, num_layers=layers, num_heads=4)
                      ).save_pretrained(snap)
    tok = snapshot(hf_home, "models", spec["tokenizer"]["repo_id"], spec["tokenizer"]["revision"])
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copyfile(gpt2_tokenizer_dir() / name, tok / name)


def seed_corpus(hf_home: Path, spec: dict) -> None:
    snap = snapshot(hf_home, "datasets", spec["repo_id"], spec["revision"])
    path = snap / spec["filename"]
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.permutation(SENTENCES)) for _ in range(40)]
    pd.DataFrame({"text": texts, "id": [f"doc{i}" for i in range(40)], "url": ["https://example.org"] * 40}
                 ).to_parquet(path)


@pytest.mark.slow
def test_paper_configuration_runs_offline_from_a_seeded_hub_cache(tmp_path):
    params = load_params()
    paper = params["configs"]["paper"]
    hub_models = {name: spec for name, spec in paper["models"].items() if spec["source"] == "hub"}
    assert {"gpt-neo-125m", "gpt-neo-1p3b"} <= set(hub_models), "the paper configuration lost a GPT-Neo model"
    corpus = params["corpora"][paper["corpus"]]
    assert corpus["kind"] == "hf_parquet" and len(corpus["revision"]) == 40
    for spec in hub_models.values():
        assert len(spec["revision"]) == 40, "hub revisions must be pinned to full commit shas"

    hf_home = tmp_path / "hf"
    for (name, spec), (hidden, layers) in zip(sorted(hub_models.items()), [(32, 2), (48, 4)]):
        seed_model(hf_home, spec, hidden, layers)
    seed_corpus(hf_home, corpus)

    # The paper configuration, unchanged except for a small sample (and without the random control).
    params["config"] = {**paper, "models": hub_models}
    params["corpora"] = {paper["corpus"]: {**corpus, "max_documents": 30}}
    params["tokens"] = {**params["tokens"], "n_sequences": 2, "seq_len": 16}
    params["extract"] = {**params["extract"], "batch_size": 1, "device": "cpu", "dtype": "float32"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    script = f"""
import sys
from pathlib import Path
from analysis.params import load_params, corpus_spec
from analysis.corpus.fetch import fetch
from analysis.stages import tokens, extract
root = Path({str(tmp_path)!r})
params = load_params(root / "params.yaml")
fetch(corpus_spec(params), root / "data" / "raw" / params["config"]["corpus"])
for name in params["config"]["models"]:
    tokens.run(name, params, root=root)
    extract.run(name, params, root=root, progress=False)
"""
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]

    docs = pd.read_parquet(tmp_path / "data" / "raw" / paper["corpus"] / "documents.parquet")
    assert len(docs) == 30
    for (name, spec), hidden, layers in zip(sorted(hub_models.items()), (32, 48), (2, 4)):
        tokens_ = pd.read_parquet(tmp_path / "results" / name / "tokens.parquet")
        assert len(tokens_) == 32
        ids = tokens_["token_id"].to_numpy()
        assert ids.max() < 50257 and not tokens_["is_special"].all()
        acts = tmp_path / "results" / name / "activations"
        meta = json.loads((acts / "meta.json").read_text())
        assert (meta["repo_id"], meta["revision"], meta["weights"]) == (spec["repo_id"], spec["revision"], "pretrained")
        assert meta["n_blocks"] == layers and meta["n_neurons"] == 4 * hidden
        blocks = sorted(p.name for p in acts.glob("block_*.npy"))
        assert blocks == [f"block_{i:02d}.npy" for i in range(layers)]
        arr = np.load(acts / "block_00.npy")
        assert arr.shape == (32, 4 * hidden) and np.isfinite(arr).all() and arr.std() > 0
    # Both models share the GPT-2 tokenizer: identical samples, as in the study.
    a, b = (pd.read_parquet(tmp_path / "results" / n / "tokens.parquet") for n in sorted(hub_models))
    np.testing.assert_array_equal(a["token_id"], b["token_id"])
