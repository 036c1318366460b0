"""tokenlen: how MLP neurons of GPT-Neo respond to token length, and whether it is token frequency.

Subpackages, in data-flow order (see README):
    analysis.corpus   raw text: fetch (Debian docs / FineWeb shard) and read documents
    analysis.tokens   the token sample, token lengths, reference-corpus frequencies
    analysis.models   model loading, architectures and hook sites, activation extraction (torch lives here only)
    analysis.stats    per-neuron and per-block statistics, claim verdicts (numpy/scipy/statsmodels)
    analysis.figures  figures and tables for the manuscript
    analysis.stages   one module per DVC stage: read inputs -> pure functions -> atomic writes
"""

__version__ = "0.1.0"


def _pin_blas_kernel() -> None:
    """Same bytes on every x86-64 CPU with AVX2: pin OpenBLAS's kernel before numpy/scipy load it.

    OpenBLAS picks its kernels by CPU at load time (Haswell, SkylakeX, Zen, ...); they sum in different
    orders, so p-values and correlations moved in the last bits between machines and every statistics hash
    in dvc.lock changed (measured: OPENBLAS_CORETYPE=Sandybridge vs Haswell on one machine changes every
    stats output; numpy's own SIMD level does not, NPY_DISABLE_CPU_FEATURES=X86_V3). Forcing the Haswell
    kernels, which every AVX2+FMA CPU runs, removes that source. Respects a value already set; a no-op on
    other CPUs (results there agree within the tolerances of `make verify`) and when numpy is already loaded.
    """
    import os
    import sys

    if "OPENBLAS_CORETYPE" in os.environ or "numpy" in sys.modules:
        return
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    except OSError:
        return
    if {"avx2", "fma"} <= set(flags):
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"


_pin_blas_kernel()
