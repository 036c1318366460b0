"""Where shards run: in this process (the default, no service) or on a Dask cluster.

    >>> from analysis.stats.engine import Engine
    >>> with Engine() as eng:                                   # in-process
    ...     out = eng.map(fn, items, shared=design)             # [fn(item, design) for item in items]
    >>> with Engine("dask", workers=2) as eng:                  # a dask.distributed LocalCluster
    ...     out = eng.map(fn, items, shared=design)             # the same list, computed on 2 processes
    >>> with Engine("dask", address="tcp://10.0.0.5:8786") as eng:   # an existing cluster's scheduler
    ...     out = eng.map(fn, items, shared=design)

`fn(item, shared)` must be a module-level function (workers import it) and depend only on its arguments;
results come back in the order of `items`, whatever order the workers finish in. `shared` (the design,
the reduction's weights) is sent to every worker once, not once per item, and not again while the next
call passes the same object.

Why Dask and not Ray: `dask.distributed` is two pure-Python wheels on PyPI with no daemon to install, a
LocalCluster starts inside the calling process, and pointing at a real cluster is one scheduler address:
the same model as this pipeline's "one machine by default, a parameter for more". Ray would do as well,
with a heavier install (a native core and its own object store) for no gain at this size.
"""

from __future__ import annotations

ENGINES = ("inprocess", "dask")


class EngineError(RuntimeError):
    """A configuration problem with the engine, worded for the user (stats.engine in params.yaml)."""


class Engine:
    """Runs fn(item, shared) for a list of items: `kind` "inprocess" (default) or "dask" (LocalCluster of
    `workers` single-threaded worker processes, or the scheduler at `address`)."""

    def __init__(self, kind: str = "inprocess", *, workers: int = 2, address: str | None = None):
        if kind not in ENGINES:
            raise EngineError(f"stats.engine is {kind!r}: use one of {', '.join(ENGINES)}")
        self.kind, self.workers, self.address = kind, int(workers), address
        self._client = self._cluster = None
        self._shared = None          # (object, its future on the workers): sent once while it is the same

    def __enter__(self) -> "Engine":
        if self.kind == "dask":
            self._start_dask()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start_dask(self) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as e:  # pragma: no cover - the lock file installs it
            raise EngineError("stats.engine is dask but dask.distributed is not installed: `make setup` "
                              "installs it (requirements.lock)") from e
        if self.address:
            try:
                self._client = Client(self.address, timeout="20s")
                # the same bytes need the same code and libraries on every worker: refuse a mismatch
                self._client.get_versions(check=True)
            except (OSError, ValueError, TypeError) as e:
                self.close()
                raise EngineError(f"stats.engine_address {self.address!r}: {type(e).__name__}: {e}; start a "
                                  f"scheduler (`dask scheduler`) and workers with this repository's environment, "
                                  f"or leave the address empty for a local cluster") from e
        else:
            # single-threaded workers (the nanny sets one BLAS thread): numpy's BLAS threads per process would
            # oversubscribe the cores, and the in-process sums run on one BLAS thread as well
            self._cluster = LocalCluster(n_workers=max(1, self.workers), threads_per_worker=1, processes=True,
                                         dashboard_address=None, silence_logs=40)
            try:
                self._client = Client(self._cluster)
            except BaseException:
                self.close()
                raise

    def map(self, fn, items: list, shared=None) -> list:
        items = list(items)
        if self.kind == "inprocess":
            return [fn(item, shared) for item in items]
        if self._client is None:
            raise EngineError("internal: a dask Engine is used outside its `with` block")
        shared_f = self._send(shared) if shared is not None else None
        sent = self._client.scatter(items)       # data as data, not inside the task graph (dask's advice)
        futures = self._client.map(fn, sent, shared=shared_f, pure=False)
        return self._client.gather(futures)

    def _send(self, shared):
        """The future of `shared` on every worker, sent again only when it is another object."""
        if self._shared is None or self._shared[0] is not shared:
            # a one-element list: scatter would split a tuple or dict into one future per element
            self._shared = (shared, self._client.scatter([shared], broadcast=True, hash=False)[0])
        return self._shared[1]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = self._shared = None
