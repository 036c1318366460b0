"""Optional fused kernels for GPT-Neo's eager forward pass (params.yaml `extract.fused`).

    >>> n = use_fused_kernels(model)      # patches the model's modules in place; returns how many

transformers 5.24 has no SDPA attention for GPT-Neo: its eager attention materialises a [batch, heads, seq,
seq] score tensor and passes over it four times (matmul, window/causal `where`, mask add, softmax) before the
value matmul, and its "gelu_new" activation is eight element-wise passes (pow, mul, add, mul, tanh, add, mul,
mul) over the [tokens, 4 * hidden] MLP tensor. On a CPU those passes are a large share of the forward pass.
This module swaps, per module instance (no global monkey-patching of transformers):

    attention  torch's scaled_dot_product_attention with GPT-Neo's own causal / local-window mask
               (the module's `bias` buffer), scale 1.0 (GPT-Neo does not scale the scores)
    gelu_new   torch.nn.GELU(approximate="tanh"): the same formula in one fused kernel; it stays at
               `mlp.act`, so the `post` hook site is unchanged

The activations equal the eager ones to float32 rounding (tests/test_models.py checks both sites on a tiny
model; bench/RESULTS.md reports the differences at the full 125M shape after float16 storage). Other
architectures are left alone (Llama-style models already use SDPA and a fused SiLU in transformers).
"""

from __future__ import annotations

import types

import torch
from torch import nn
from torch.nn import functional as F


def _combined_mask(self, attention_mask, q_len, k_len, dtype):
    """GPT-Neo's window/causal buffer combined with the model's attention mask (bool: True = may attend,
    or additive float). The model hands the same mask object to every layer of one forward pass, so the
    combination is cached per attention type while that object is alive (identity, never its address)."""
    mask = self.bias[:, :, k_len - q_len : k_len, :k_len]
    if attention_mask is None:
        return mask
    cache = self._fused_mask_cache
    if cache.get("source") is not attention_mask or cache.get("key") != (q_len, k_len, dtype):
        cache.clear()
        cache.update(source=attention_mask, key=(q_len, k_len, dtype))
    if self.attention_type not in cache:
        if attention_mask.dtype == torch.bool:
            cache[self.attention_type] = mask & attention_mask
        else:  # additive float mask (what transformers builds for eager attention)
            cache[self.attention_type] = attention_mask.to(dtype).masked_fill(~mask, float("-inf"))
    return cache[self.attention_type]


def _sdpa_attn(self, query, key, value, attention_mask=None):
    """Drop-in for GPTNeoSelfAttention._attn: same masks, scale 1.0, no materialised weights."""
    mask = _combined_mask(self, attention_mask, query.size(-2), key.size(-2), query.dtype)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=0.0, scale=1.0)
    return out, None  # attention weights are not materialised (output_attentions is never used here)


def use_fused_kernels(model: nn.Module) -> int:
    """Patch GPT-Neo attention modules and gelu_new activations of `model` in place; return the count."""
    from transformers.activations import NewGELUActivation
    from transformers.models.gpt_neo.modeling_gpt_neo import GPTNeoSelfAttention

    n = 0
    cache: dict = {}  # shared by all layers: one combined mask per attention type and forward pass
    for module in list(model.modules()):
        if type(module) is GPTNeoSelfAttention:  # not the flash-attention subclass
            module._attn = types.MethodType(_sdpa_attn, module)
            module._fused_mask_cache = cache
            n += 1
        for name, child in list(module.named_children()):
            if type(child) is NewGELUActivation:
                setattr(module, name, nn.GELU(approximate="tanh"))
                n += 1
    return n
