"""Forward hooks that capture submodule outputs (or inputs) in one pass, and can stop the pass early.

A small cousin of baukit's ``nethook.TraceDict``:

    >>> with Trace(model, ["h.0.mlp.c_fc", "h.11.mlp.c_fc"], stop=True) as tr:
    ...     model(input_ids)                 # stops right after h.11.mlp.c_fc has run
    >>> tr["h.0.mlp.c_fc"].shape            # a detached copy of that module's output

Options (orthogonal):
    retain="output" | "input"   what to capture: the module's output, or its first positional input
    stop=True                   raise StopForward after the last listed module ran (swallowed on exit),
                                so blocks after the last one you need, the final norm and any LM head never run
    callback=fn(name, tensor)   hand each captured tensor to `fn` instead of keeping it: memory stays bounded
                                by one module's output (the extraction writes straight to disk this way)
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable, Iterable

import torch
from torch import nn


class StopForward(Exception):
    """Raised inside a hook to end the forward pass after the last module of interest."""


def get_module(model: nn.Module, name: str) -> nn.Module:
    """`model`'s submodule by dotted name, with an error that lists what exists at the failing level."""
    module = model
    for part in name.split("."):
        children = dict(module.named_children())
        if part not in children:
            raise KeyError(f"no submodule {name!r}: {part!r} not among {sorted(children)[:20]}")
        module = children[part]
    return module


class Trace(AbstractContextManager):
    """Capture what named submodules produce (or receive) during a forward pass. See module docstring."""

    def __init__(
        self,
        model: nn.Module,
        names: Iterable[str],
        *,
        retain: str = "output",
        stop: bool = False,
        callback: Callable[[str, torch.Tensor], None] | None = None,
    ):
        if retain not in ("output", "input"):
            raise ValueError("retain must be 'output' or 'input'")
        self.names = list(names)
        if not self.names:
            raise ValueError("Trace needs at least one module name")
        self.captured: dict[str, torch.Tensor] = {}
        self._handles = []
        last = self.names[-1]
        for name in self.names:
            module = get_module(model, name)

            def record(tensor: torch.Tensor, name: str = name) -> None:
                tensor = tensor.detach()
                if callback is not None:
                    callback(name, tensor)
                else:
                    self.captured[name] = tensor.clone()
                if stop and name == last:
                    raise StopForward(name)

            if retain == "output":
                hook = module.register_forward_hook(lambda _m, _inp, out, record=record: record(out))
            else:
                hook = module.register_forward_pre_hook(lambda _m, inp, record=record: record(inp[0]))
            self._handles.append(hook)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.captured[name]

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.close()
        return exc_type is not None and issubclass(exc_type, StopForward)
