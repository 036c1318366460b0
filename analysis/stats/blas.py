"""Thread and memory settings for the statistics' numerical kernels (no statistics here).

    >>> with one_blas_thread():          # skinny, memory-bound products: one thread
    ...     with blas_threads(2):        # a compute-bound product inside: two
    ...         C = V @ S
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks up to 256 MB in the heap instead of returning them to the OS.

    Every chunk allocates temporaries of tens of MB; by default glibc serves each from fresh mmap'd pages
    and unmaps them on free, so every temporary pays page faults again. On virtual machines that hand free
    pages back to the host (this project's CI and dev machines), that made element-wise passes ~5x slower
    (1.6 vs 7-8 GB/s measured, analysis/stats/bench.py). A no-op where mallopt is unavailable."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(-3, 1 << 28) and libc.mallopt(-1, 1 << 30) and libc.mallopt(-2, 1 << 28)
        return bool(ok)  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, M_TOP_PAD
    except (OSError, AttributeError):
        return False


@contextmanager
def blas_threads(n: int):
    """Run the enclosed matrix products on n BLAS threads (restored afterwards); a no-op without control."""
    lib = _numpy_openblas()
    if lib is None:
        yield
        return
    get, set_ = lib
    old = get()
    set_(int(n))
    try:
        yield
    finally:
        set_(old)


@contextmanager
def one_blas_thread():
    """Run the enclosed matrix products on one BLAS thread.

    The skinny products here ([k, n] @ [n, <30]) are memory-bound: a second thread gains little on an idle
    machine, while OpenBLAS threads that wait for a core busy with another job cost seconds per block
    (measured: 11.5 s vs 4.4 s for a block on this 2-core machine with one core taken). Uses threadpoolctl
    when installed, else numpy's bundled OpenBLAS through ctypes; a no-op if neither works."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        with threadpool_limits(1, user_api="blas"):
            yield
        return
    with blas_threads(1):
        yield


@lru_cache(maxsize=1)
def _numpy_openblas():
    import ctypes
    import glob
    import os

    libdir = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in glob.glob(os.path.join(libdir, "*openblas*.so*")):
        try:
            lib = ctypes.CDLL(path)  # already loaded by numpy: the same handle
        except OSError:
            continue
        for suffix in ("64_", "_64_", ""):
            get = getattr(lib, f"scipy_openblas_get_num_threads{suffix}", None) or getattr(lib, f"openblas_get_num_threads{suffix}", None)
            set_ = getattr(lib, f"scipy_openblas_set_num_threads{suffix}", None) or getattr(lib, f"openblas_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                get.restype = ctypes.c_int
                set_.argtypes = [ctypes.c_int]
                return get, set_
    return None
