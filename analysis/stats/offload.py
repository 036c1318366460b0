"""A side process for the one kernel of the statistics that holds the GIL: Hartigan's dip (the diptest C call).

    >>> from analysis.stats.offload import side_process
    >>> side = side_process()                    # one child process, started on first use and kept
    >>> fut = side.submit(J, n_s)                # concurrent.futures.Future of core.dip_and_short(J, n_s)
    >>> dip, p, dip_short, p_short = fut.result()

compute_block runs its chunks of neurons on `workers` threads; everything there releases the GIL except the
dip, a C loop over one neuron at a time (~0.3 ms per 8 192 values) that blocks every numpy call of the other
thread. Measured on 2 cores, one 125M block (3 072 neurons, 512 of them dipped): the dip cost 0.31 s on one
thread and 0.41 s of wall time on two, i.e. it serialised the block. In a process of its own it overlaps with
the other statistics. The values are the same wherever it runs (a pure function of the arrays sent).

Why not multiprocessing / concurrent.futures.ProcessPoolExecutor: a spawned (or forkserver) child re-imports
the caller's main module, so any script or notebook cell without an `if __name__ == "__main__"` guard would
break; forking a process with BLAS and pool threads running is unsafe. The child here is
`python -m analysis.stats.offload`, fed pickled requests on stdin and answering on stdout, in order; a
writer thread sends, so `submit` never waits for the child. If the child cannot start or dies, `submit`'s
future fails with SideProcessError and the caller computes inline (block._dip_columns does).
"""

from __future__ import annotations

import collections
import pickle
import queue
import subprocess
import sys
import threading
from concurrent.futures import Future


class SideProcessError(RuntimeError):
    """The side process could not run a request (not started, or exited)."""


class SideProcess:
    """One child running core.dip_and_short on request, answers in request order."""

    def __init__(self):
        self._proc = subprocess.Popen([sys.executable, "-m", "analysis.stats.offload"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE)
        self._waiting: collections.deque = collections.deque()
        self._outbox: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._dead = False
        threading.Thread(target=self._write, daemon=True, name="offload-writer").start()
        threading.Thread(target=self._read, daemon=True, name="offload-reader").start()

    def submit(self, J, n_s: int) -> Future:
        fut: Future = Future()
        with self._lock:
            if self._dead:
                fut.set_exception(SideProcessError("the side process has exited"))
                return fut
            self._waiting.append(fut)
            self._outbox.put((J, int(n_s)))
        return fut

    def _write(self) -> None:
        try:
            while True:
                pickle.dump(self._outbox.get(), self._proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                self._proc.stdin.flush()
        except (OSError, ValueError):
            self._fail()

    def _read(self) -> None:
        try:
            while True:
                status, value = pickle.load(self._proc.stdout)
                with self._lock:
                    fut = self._waiting.popleft()
                if status == "ok":
                    fut.set_result(value)
                else:
                    fut.set_exception(SideProcessError(value))
        except (EOFError, OSError, pickle.UnpicklingError, IndexError):
            self._fail()

    def _fail(self) -> None:
        with self._lock:
            self._dead = True
            while self._waiting:
                self._waiting.popleft().set_exception(SideProcessError("the side process has exited"))


_SIDE: list = []
_SIDE_LOCK = threading.Lock()


def side_process() -> SideProcess | None:
    """The shared side process (started on first use; it exits when this process closes its end)."""
    with _SIDE_LOCK:
        if not _SIDE:
            try:
                _SIDE.append(SideProcess())
            except OSError:
                return None
        return _SIDE[0]


def _serve() -> None:
    from .core import dip_and_short

    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            J, n_s = pickle.load(inp)
        except EOFError:
            return
        try:
            reply = ("ok", dip_and_short(J, n_s))
        except Exception as exc:  # noqa: BLE001 - reported to the caller, which computes inline
            reply = ("error", f"{type(exc).__name__}: {exc}")
        pickle.dump(reply, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


if __name__ == "__main__":
    _serve()
