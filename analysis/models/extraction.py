"""Hooked MLP activations for every block, in one forward pass per batch, straight to .npy files on disk.

    >>> sites = architecture_of(model).site_names(model, "pre")
    >>> info = extract_to_dir(model, input_ids, sites, out_dir, retain="output", batch_size=4)
    >>> np.load(out_dir / "block_00.npy", mmap_mode="r").shape   # [n_seq * seq_len, n_neurons]

Memory is bounded by one batch: each block's output is copied into a memory-mapped .npy as soon as its
hook fires (nothing keeps all blocks x all tokens in RAM), and the pass stops after the last hooked block,
so the final norm and the LM head never run. Rows are sequence-major: row = seq * seq_len + pos.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap
from torch import nn
from tqdm.auto import tqdm

from analysis.models.hooks import Trace

DTYPES = {"float16": np.float16, "float32": np.float32}


def block_file(out_dir: Path, index: int) -> Path:
    return Path(out_dir) / f"block_{index:02d}.npy"


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def extract_to_dir(
    model: nn.Module,
    input_ids: np.ndarray,
    sites: list[str],
    out_dir: Path,
    *,
    retain: str = "output",
    batch_size: int = 4,
    dtype: str = "float16",
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict:
    """Write block_NN.npy ([n_seq*seq_len, n_neurons]) for each site into `out_dir`; return timing info."""
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must be [n_sequences, seq_len], got shape {input_ids.shape}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    n_seq, seq_len = input_ids.shape
    device = torch.device(device)
    model = model.to(device)
    out_dir = Path(out_dir)
    arrays: dict[str, np.memmap] = {}
    row0 = 0

    def write(name: str, tensor: torch.Tensor) -> None:
        flat = tensor.reshape(-1, tensor.shape[-1])
        if name not in arrays:  # the width is known only once the first batch ran
            arrays[name] = open_memmap(block_file(out_dir, sites.index(name)), mode="w+",
                                       dtype=DTYPES[dtype], shape=(n_seq * seq_len, flat.shape[1]))
        arrays[name][row0:row0 + flat.shape[0]] = flat.to("cpu", torch.float32).numpy()

    ids = torch.as_tensor(np.ascontiguousarray(input_ids), dtype=torch.long)
    start = time.perf_counter()
    bar = tqdm(total=n_seq, desc="extract", unit="seq", disable=not progress)
    with torch.inference_mode():
        for b in range(0, n_seq, batch_size):
            batch = ids[b:b + batch_size].to(device)
            row0 = b * seq_len
            with Trace(model, sites, retain=retain, stop=True, callback=write):
                model(input_ids=batch, use_cache=False)
            bar.update(batch.shape[0])
    bar.close()
    for arr in arrays.values():
        arr.flush()
    missing = [s for s in sites if s not in arrays]
    if missing:
        raise RuntimeError(f"hooks never fired for {missing}: the forward pass did not reach them")
    seconds = time.perf_counter() - start
    n_neurons = {int(arr.shape[1]) for arr in arrays.values()}
    arrays.clear()  # close the memmaps before the directory is renamed
    return {"seconds": round(seconds, 3), "n_blocks": len(sites), "n_tokens": n_seq * seq_len,
            "n_neurons": n_neurons.pop() if len(n_neurons) == 1 else sorted(n_neurons)}
