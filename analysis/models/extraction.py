"""Hooked MLP activations for every block, in one forward pass per batch, straight to .npy files on disk.

    >>> sites = architecture_of(model).site_names(model, "pre")
    >>> info = extract_to_dir(model, input_ids, sites, out_dir, retain="output", batch_size=4)
    >>> np.load(out_dir / "block_00.npy", mmap_mode="r").shape   # [n_seq * seq_len, n_neurons]

Memory is bounded by one batch: each block's output is converted to the storage dtype (in torch) and
written at its row offset of a preallocated .npy file as soon as its hook fires (nothing keeps all blocks x
all tokens in RAM; plain positioned writes, not a memory map, so written pages never count in the process's
resident memory), and the pass stops after the last hooked block, so the final norm and the LM head never
run. Rows are sequence-major: row = seq * seq_len + pos; one batch is one contiguous byte range per file.

Speed options (params.yaml `extract`; bench/RESULTS.md has the measured gains):
    fused=True         fused attention and GELU kernels for GPT-Neo (analysis/models/kernels.py); same
                       activations to float32 rounding
    compute="bfloat16" CPU/GPU autocast to bfloat16 for the matrix products (faster where the hardware has
                       bfloat16 units; changes activations at the 1e-2 relative level: an opt-in)
    threads=N          torch intra-op threads (0: torch's default, one per core)
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from numpy.lib import format as npy_format
from torch import nn
from tqdm.auto import tqdm

from analysis.models.hooks import Trace

DTYPES = {"float16": np.float16, "float32": np.float32}
TORCH_DTYPES = {"float16": torch.float16, "float32": torch.float32}
COMPUTE = {"float32": None, "bfloat16": torch.bfloat16}


class NpyRowWriter:
    """A [rows, cols] .npy file written by row ranges with positioned writes (no memory map)."""

    def __init__(self, path: Path, shape: tuple[int, int], dtype: str):
        self.path, self.shape, self.dtype = Path(path), shape, np.dtype(DTYPES[dtype])
        header = {"descr": npy_format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": shape}
        self._fh = open(self.path, "w+b")
        npy_format.write_array_header_1_0(self._fh, header)  # what np.save writes for such shapes
        self.offset = self._fh.tell()
        self._fh.truncate(self.offset + shape[0] * shape[1] * self.dtype.itemsize)
        self.row_bytes = shape[1] * self.dtype.itemsize

    def write(self, row0: int, block: np.ndarray) -> None:
        assert block.dtype == self.dtype and block.ndim == 2 and block.shape[1] == self.shape[1]
        assert 0 <= row0 and row0 + block.shape[0] <= self.shape[0]
        os.pwrite(self._fh.fileno(), memoryview(np.ascontiguousarray(block)).cast("B"),
                  self.offset + row0 * self.row_bytes)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            self._fh.close()


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
    fused: bool = False,
    compute: str = "float32",
    threads: int = 0,
    sink: Callable[[int, int, np.ndarray], None] | None = None,
    store: bool = True,
) -> dict:
    """Write block_NN.npy ([n_seq*seq_len, n_neurons]) for each site into `out_dir`; return timing info.

    fused / compute / threads: speed options, see the module docstring (defaults: the reference path).
    sink(block, row0, values): called with each block's batch as it would be stored (storage dtype, rows
    row0.., in batch order), e.g. stream.StreamSums.add, which sums it during the pass; store=False: no
    block file is written (out_dir may then be None)."""
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must be [n_sequences, seq_len], got shape {input_ids.shape}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if compute not in COMPUTE:
        raise ValueError(f"compute must be one of {sorted(COMPUTE)}, got {compute!r}")
    if store and out_dir is None:
        raise ValueError("extract_to_dir: out_dir is None but store=True: pass a folder, or store=False with a sink")
    n_seq, seq_len = input_ids.shape
    device = torch.device(device)
    model = model.to(device)
    if fused:
        from analysis.models.kernels import use_fused_kernels

        use_fused_kernels(model)
    if threads:
        torch.set_num_threads(int(threads))
    out_dir = Path(out_dir) if out_dir is not None else Path(".")   # (only named in messages when not storing)
    files: dict[str, NpyRowWriter] = {}
    widths: dict[str, int] = {}
    row0 = 0
    store_dtype = TORCH_DTYPES[dtype]

    def write(name: str, tensor: torch.Tensor) -> None:
        flat = tensor.reshape(-1, tensor.shape[-1])
        stored = flat.to("cpu", store_dtype)
        if not bool(torch.isfinite(stored).all()):  # overflow of the storage dtype or a broken model
            bad = int((~torch.isfinite(stored)).sum())
            raise FloatingPointError(
                f"{block_file(out_dir, sites.index(name)).name} ({name}): {bad} non-finite activations in the "
                f"batch of sequences {row0 // seq_len}-{row0 // seq_len + tensor.shape[0] - 1} (stored as {dtype}); "
                "use extract.dtype: float32 if float16 overflows, or check the model's weights")
        widths[name] = int(flat.shape[1])
        values = stored.numpy()   # torch's float32 -> float16 rounding is numpy's (nearest even), bit for bit
        if store:
            if name not in files:  # the width is known only once the first batch ran
                files[name] = NpyRowWriter(block_file(out_dir, sites.index(name)), (n_seq * seq_len, widths[name]),
                                           dtype)
            files[name].write(row0, values)
        if sink is not None:
            sink(sites.index(name), row0, values)

    ids = torch.from_numpy(np.array(input_ids, dtype=np.int64))  # a writable copy
    autocast = (torch.autocast(device.type, dtype=COMPUTE[compute]) if COMPUTE[compute] is not None
                else nullcontext())
    start = time.perf_counter()
    bar = tqdm(total=n_seq, desc="extract", unit="seq", disable=not progress)
    try:
        with torch.inference_mode(), autocast:
            for b in range(0, n_seq, batch_size):
                batch = ids[b:b + batch_size].to(device)
                row0 = b * seq_len
                with Trace(model, sites, retain=retain, stop=True, callback=write):
                    model(input_ids=batch, use_cache=False)
                bar.update(batch.shape[0])
    finally:
        bar.close()
        for fh in files.values():
            fh.close()
    missing = [s for s in sites if s not in widths]
    if missing:
        raise RuntimeError(f"hooks never fired for {missing}: the forward pass did not reach them")
    seconds = time.perf_counter() - start
    n_neurons = set(widths.values())
    return {"seconds": round(seconds, 3), "n_blocks": len(sites), "n_tokens": n_seq * seq_len,
            "n_neurons": n_neurons.pop() if len(n_neurons) == 1 else sorted(n_neurons)}
