"""Architectures this project can hook, and where their MLP neurons are.

    >>> arch = architecture_of(model)              # from model.config.model_type
    >>> arch.site_names(model, "pre")              # one dotted module name per block, first to last
    ['h.0.mlp.c_fc', 'h.1.mlp.c_fc', ...]
    >>> arch.retain("pre")                          # capture that module's output (or its input)
    'output'

Sites ("what a neuron's activation is"):
    GPT-Neo / GPT-2   pre  = output of mlp.c_fc (the MLP expansion, before the GELU: the study's choice)
                      post = output of mlp.act (after the GELU)
    Llama-style       pre  = output of mlp.gate_proj (before the SiLU gate)
    (gated SiLU MLP)  post = input of mlp.down_proj (act(gate) * up: what the down projection reads)

Random-weight GPT-Neo stand-ins of the exact 125M / 1.3B shapes come from `gpt_neo_config(name)`.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


class UnsupportedArchitectureError(ValueError):
    pass


@dataclass(frozen=True)
class Architecture:
    family: str
    model_types: tuple[str, ...]
    blocks: str                      # dotted path of the block list inside the base model
    sites: dict[str, tuple[str, str]]  # site -> (module path inside a block, "output" | "input")

    def n_blocks(self, base: nn.Module) -> int:
        from analysis.models.hooks import get_module

        return len(get_module(base, self.blocks))

    def site_names(self, base: nn.Module, site: str) -> list[str]:
        path, _ = self._site(site)
        return [f"{self.blocks}.{i}.{path}" for i in range(self.n_blocks(base))]

    def retain(self, site: str) -> str:
        return self._site(site)[1]

    def site_module(self, site: str) -> str:
        return self._site(site)[0]

    def _site(self, site: str) -> tuple[str, str]:
        if site not in self.sites:
            raise ValueError(f"unknown site {site!r} for {self.family}; choose one of {sorted(self.sites)}")
        return self.sites[site]


ARCHITECTURES = (
    Architecture("gpt-neo", ("gpt_neo",), "h", {"pre": ("mlp.c_fc", "output"), "post": ("mlp.act", "output")}),
    Architecture("gpt-2", ("gpt2",), "h", {"pre": ("mlp.c_fc", "output"), "post": ("mlp.act", "output")}),
    Architecture(
        "llama",
        ("llama", "mistral", "qwen2"),
        "layers",
        {"pre": ("mlp.gate_proj", "output"), "post": ("mlp.down_proj", "input")},
    ),
)


def supported_model_types() -> list[str]:
    return sorted(t for a in ARCHITECTURES for t in a.model_types)


def architecture_for(model_type: str) -> Architecture:
    for arch in ARCHITECTURES:
        if model_type in arch.model_types:
            return arch
    raise UnsupportedArchitectureError(
        f"architecture {model_type!r} is not supported: no known MLP hook sites. Supported model types: "
        f"{', '.join(supported_model_types())}. Add an entry to ARCHITECTURES in analysis/models/architectures.py."
    )


def architecture_of(model: nn.Module) -> Architecture:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return architecture_for(str(model_type))


# Exact GPT-Neo shapes (EleutherAI's published configs), for random-weight controls and tests.
GPT_NEO_SHAPES = {
    "gpt-neo-125m": dict(hidden_size=768, num_layers=12, num_heads=12),
    "gpt-neo-1.3b": dict(hidden_size=2048, num_layers=24, num_heads=16),
}


def gpt_neo_config(name: str, **overrides):
    """GPTNeoConfig of a published GPT-Neo shape (global/local attention alternating, window 256)."""
    from transformers import GPTNeoConfig

    key = name.lower()
    if key not in GPT_NEO_SHAPES:
        raise UnsupportedArchitectureError(f"unknown GPT-Neo shape {name!r}; known: {sorted(GPT_NEO_SHAPES)}")
    shape = {**GPT_NEO_SHAPES[key], **overrides}
    layers = shape["num_layers"]
    return GPTNeoConfig(
        vocab_size=50257,
        max_position_embeddings=2048,
        hidden_size=shape["hidden_size"],
        num_layers=layers,
        num_heads=shape["num_heads"],
        attention_types=[[["global", "local"], layers // 2]],
        window_size=256,
        intermediate_size=None,  # 4 * hidden_size, as published
        activation_function="gelu_new",
        bos_token_id=50256,
        eos_token_id=50256,
    )
