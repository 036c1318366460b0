"""Hooks, architectures, loading errors and extraction, on tiny random-weight models built from configs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from analysis.models.architectures import (
    UnsupportedArchitectureError,
    architecture_for,
    architecture_of,
    gpt_neo_config,
)
from analysis.models.extraction import block_file, extract_to_dir
from analysis.models.hooks import Trace


@pytest.fixture(autouse=True)
def no_grad():
    # Captured tensors come from inference mode; recomputing from them must not track gradients.
    with torch.inference_mode():
        yield


def tiny_gpt_neo(seed: int = 0):
    from transformers import GPTNeoModel

    torch.manual_seed(seed)
    cfg = gpt_neo_config("gpt-neo-125m", hidden_size=32, num_layers=4, num_heads=4)
    return GPTNeoModel(cfg).eval()


def tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaModel

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaModel(cfg).eval()


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    # GPT-Neo's "gelu_new", written out from its definition.
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def ids(n_seq=3, seq_len=10, vocab=100, seed=0):
    return torch.as_tensor(np.random.default_rng(seed).integers(0, vocab, (n_seq, seq_len)))


def mlp_inputs(model, blocks: str, n: int, input_ids) -> list[torch.Tensor]:
    names = [f"{blocks}.{i}.mlp" for i in range(n)]
    with torch.inference_mode(), Trace(model, names, retain="input") as tr:
        model(input_ids=input_ids)
    return [tr[name] for name in names]


def test_gpt_neo_pre_and_post_equal_values_recomputed_from_weights():
    model = tiny_gpt_neo()
    x = ids()
    arch = architecture_of(model)
    inputs = mlp_inputs(model, "h", 4, x)
    for site in ("pre", "post"):
        names = arch.site_names(model, site)
        with torch.inference_mode(), Trace(model, names, retain=arch.retain(site)) as tr:
            model(input_ids=x)
        for i, name in enumerate(names):
            fc = model.h[i].mlp.c_fc
            pre = inputs[i] @ fc.weight.T + fc.bias
            expected = pre if site == "pre" else gelu_tanh(pre)
            assert tr[name].shape == (3, 10, 128)
            torch.testing.assert_close(tr[name], expected, rtol=1e-5, atol=1e-5)


def test_llama_gate_and_down_input_equal_values_recomputed_from_weights():
    model = tiny_llama()
    x = ids()
    arch = architecture_of(model)
    assert arch.family == "llama"
    inputs = mlp_inputs(model, "layers", 3, x)
    for site in ("pre", "post"):
        names = arch.site_names(model, site)
        with torch.inference_mode(), Trace(model, names, retain=arch.retain(site)) as tr:
            model(input_ids=x)
        for i, name in enumerate(names):
            mlp = model.layers[i].mlp
            gate = inputs[i] @ mlp.gate_proj.weight.T
            up = inputs[i] @ mlp.up_proj.weight.T
            expected = gate if site == "pre" else gate * torch.sigmoid(gate) * up
            torch.testing.assert_close(tr[name], expected, rtol=1e-5, atol=1e-5)


def test_stop_ends_the_pass_after_the_last_traced_module():
    model = tiny_gpt_neo()
    fired = []
    handle = model.h[3].mlp.register_forward_hook(lambda *a: fired.append("h.3"))
    norm = model.ln_f.register_forward_hook(lambda *a: fired.append("ln_f"))
    with torch.inference_mode(), Trace(model, ["h.0.mlp.c_fc", "h.1.mlp.c_fc"], stop=True) as tr:
        model(input_ids=ids())
        pytest.fail("the forward pass should have been stopped")
    handle.remove()
    norm.remove()
    assert fired == []  # neither later blocks nor the final norm ran
    assert set(tr.captured) == {"h.0.mlp.c_fc", "h.1.mlp.c_fc"}


def test_unknown_architecture_error_lists_supported():
    with pytest.raises(UnsupportedArchitectureError) as err:
        architecture_for("mamba")
    assert "mamba" in str(err.value) and "gpt_neo" in str(err.value) and "llama" in str(err.value)


def test_random_gpt_neo_shapes_are_the_published_ones():
    small, large = gpt_neo_config("gpt-neo-125m"), gpt_neo_config("gpt-neo-1.3b")
    assert (small.num_layers, small.hidden_size, small.num_heads) == (12, 768, 12)
    assert (large.num_layers, large.hidden_size, large.num_heads) == (24, 2048, 16)
    assert small.attention_layers[:4] == ["global", "local", "global", "local"]
    assert small.window_size == 256 and small.vocab_size == 50257


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_extraction_rows_align_with_sequence_and_position(tmp_path, dtype):
    model = tiny_gpt_neo()
    x = ids(n_seq=5, seq_len=12)
    arch = architecture_of(model)
    sites = arch.site_names(model, "pre")
    info = extract_to_dir(model, x.numpy(), sites, tmp_path, batch_size=2, dtype=dtype, progress=False)
    assert info["n_blocks"] == 4 and info["n_tokens"] == 60 and info["n_neurons"] == 128
    tol = 1e-6 if dtype == "float32" else 2e-3
    for seq in (0, 3, 4):  # sequences in the first, second and last (partial) batch
        with torch.inference_mode(), Trace(model, sites) as tr:
            model(input_ids=x[seq:seq + 1])
        for i, name in enumerate(sites):
            arr = np.load(block_file(tmp_path, i), mmap_mode="r")
            assert arr.dtype == np.dtype(dtype) and arr.shape == (60, 128)
            rows = np.asarray(arr[seq * 12:(seq + 1) * 12], dtype=np.float32)
            np.testing.assert_allclose(rows, tr[name][0].numpy(), rtol=tol, atol=tol)


def test_random_model_loads_deterministically_and_is_labelled_random():
    from analysis.models.loading import ModelSpecError, describe, load_model

    spec = {"name": "r", "source": "random", "architecture": "gpt-neo-125m", "weights": "random",
            "init_seed": 3, "overrides": {"hidden_size": 32, "num_layers": 2, "num_heads": 4}}
    a, b = load_model(spec), load_model(spec)
    torch.testing.assert_close(a.h[1].mlp.c_fc.weight, b.h[1].mlp.c_fc.weight)
    c = load_model({**spec, "init_seed": 4})
    assert not torch.equal(a.h[1].mlp.c_fc.weight, c.h[1].mlp.c_fc.weight)
    assert describe(spec)["weights"] == "random"
    with pytest.raises(ModelSpecError, match="weights: random"):
        describe({**spec, "weights": "pretrained"})


def test_unknown_model_source_and_missing_revision_are_clear():
    from analysis.models.loading import ModelSpecError, load_model

    with pytest.raises(ModelSpecError, match="unknown source 'ftp'"):
        load_model({"name": "x", "source": "ftp"})
    with pytest.raises(ModelSpecError, match="pinned revision"):
        load_model({"name": "x", "source": "hub", "repo_id": "EleutherAI/gpt-neo-125m"})


def test_unknown_model_name_names_the_config_and_the_fix():
    from analysis.params import ParamsError, model_spec

    params = {"config": {"name": "offline", "models": {"a": {}, "b": {}}}}
    with pytest.raises(ParamsError) as err:
        model_spec(params, "gpt-neo-2.7b")
    assert "offline" in str(err.value) and "a, b" in str(err.value) and "params.yaml" in str(err.value)


def test_hub_model_without_network_or_cache_points_to_offline_config(tmp_path, monkeypatch):
    from analysis.models.hub import HubUnavailableError
    from analysis.models.loading import load_model

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = {"name": "gpt-neo-125m", "source": "hub", "repo_id": "EleutherAI/gpt-neo-125m",
            "revision": "0" * 40, "weights": "pretrained"}
    with pytest.raises(HubUnavailableError) as err:
        load_model(spec)
    assert "make demo" in str(err.value) and "offline" in str(err.value)


def test_interrupted_extraction_leaves_no_finished_looking_output(tmp_path, monkeypatch):
    import pandas as pd

    from analysis.stages import extract as stage

    n_seq, seq_len = 4, 8
    tokens = pd.DataFrame({"seq": np.repeat(np.arange(n_seq), seq_len), "pos": np.tile(np.arange(seq_len), n_seq),
                           "token_id": np.arange(n_seq * seq_len) % 100})
    (tmp_path / "results" / "m").mkdir(parents=True)
    tokens.to_parquet(tmp_path / "results" / "m" / "tokens.parquet")
    stale = tmp_path / "results" / "m" / "activations"
    stale.mkdir()
    (stale / "block_00.npy").write_bytes(b"from an older run")

    model = tiny_gpt_neo()
    calls = []

    def interrupt_on_second_batch(module, inputs, output):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-run

    model.h[2].mlp.c_fc.register_forward_hook(interrupt_on_second_batch)
    monkeypatch.setattr("analysis.models.loading.load_model", lambda spec, **kw: model)
    params = {"config": {"name": "t", "models": {"m": {"source": "random", "weights": "random",
                                                       "architecture": "gpt-neo-125m"}}},
              "extract": {"site": "pre", "batch_size": 2, "dtype": "float32", "device": "cpu"}}
    with pytest.raises(KeyboardInterrupt):
        stage.run("m", params, root=tmp_path, progress=False)
    leftovers = sorted(p.name for p in (tmp_path / "results" / "m").iterdir())
    assert leftovers == ["activations", "tokens.parquet"]  # no partial directory, and nothing lost:
    assert (stale / "block_00.npy").read_bytes() == b"from an older run"  # the previous output is untouched

    calls.clear()
    calls.append("skip")  # the next run is not interrupted (the hook now fires on calls 2.. without raising at 2)
    calls.append("skip")
    out = stage.run("m", params, root=tmp_path, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["block_00.npy", "block_01.npy", "block_02.npy",
                                                     "block_03.npy", "meta.json"]
    assert np.load(out / "block_03.npy").shape == (n_seq * seq_len, 128)


# ---------------------------------------------------------------------------------------------------------
# speed options of the extraction (params.yaml extract.fused / compute / threads)
def tiny_gpt_neo_window(window: int = 4, seed: int = 0):
    from transformers import GPTNeoModel

    torch.manual_seed(seed)
    cfg = gpt_neo_config("gpt-neo-125m", hidden_size=32, num_layers=4, num_heads=4)
    cfg.window_size = window  # shorter than the sequences below, so the local layers really mask
    return GPTNeoModel(cfg).eval()


def test_fused_kernels_give_the_eager_activations_at_both_sites_and_with_padding():
    from analysis.models.kernels import use_fused_kernels

    eager, fused = tiny_gpt_neo_window(), tiny_gpt_neo_window()
    assert use_fused_kernels(fused) == 8  # 4 attention modules + 4 GELUs
    assert type(fused.h[0].mlp.act) is torch.nn.GELU  # still at mlp.act: the `post` site is unchanged
    x = ids(n_seq=3, seq_len=12)
    arch = architecture_of(eager)
    for site in ("pre", "post"):
        names = arch.site_names(eager, site)
        with Trace(eager, names) as a:
            out_a = eager(input_ids=x).last_hidden_state
        with Trace(fused, names) as b:
            out_b = fused(input_ids=x).last_hidden_state
        for name in names:
            torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out_b, out_a, rtol=1e-5, atol=1e-5)
    pad = torch.ones(3, 12, dtype=torch.long)
    pad[1, :3] = 0  # left padding in one sequence: the additive mask path
    keep = pad.bool()
    out_a = eager(input_ids=x, attention_mask=pad).last_hidden_state
    out_b = fused(input_ids=x, attention_mask=pad).last_hidden_state
    torch.testing.assert_close(out_b[keep], out_a[keep], rtol=1e-5, atol=1e-5)


def test_extraction_speed_options(tmp_path):
    model = tiny_gpt_neo_window()
    x = ids(n_seq=4, seq_len=12)
    sites = architecture_of(model).site_names(model, "pre")
    with Trace(model, sites) as ref:  # one batch, as the extraction below: the same float32 arithmetic
        model(input_ids=x)
    out = {}
    for key, opts in {"f16": dict(dtype="float16"), "fused": dict(dtype="float32", fused=True),
                      "bf16": dict(dtype="float32", compute="bfloat16"),
                      "threads": dict(dtype="float32", threads=1)}.items():
        d = tmp_path / key
        d.mkdir()
        extract_to_dir(tiny_gpt_neo_window(), x.numpy(), sites, d, batch_size=4, progress=False, **opts)
        out[key] = [np.load(block_file(d, i)) for i in range(len(sites))]
    for i, name in enumerate(sites):
        expected = ref[name].reshape(-1, 128).numpy()
        # float16 storage: torch's rounding, bit for bit numpy's astype of the float32 values
        np.testing.assert_array_equal(out["f16"][i].view(np.uint16), expected.astype(np.float16).view(np.uint16))
        np.testing.assert_allclose(out["fused"][i], expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(out["threads"][i], expected, rtol=1e-5, atol=1e-5)
        scale = np.abs(expected).max()
        np.testing.assert_allclose(out["bf16"][i], expected, rtol=0, atol=0.05 * scale)  # bfloat16: ~3 digits
        assert not np.array_equal(out["bf16"][i], expected)
    with pytest.raises(ValueError, match="compute"):
        extract_to_dir(model, x.numpy(), sites, tmp_path / "bad", compute="float8", progress=False)
