"""Where the evaluation's jobs run (``evaluation.engine``), on engines users already operate.

The contract of an engine: ``run(fn, shared, calls, workers, **options)`` calls ``fn(shared, *args)``
for every ``args`` in ``calls`` and yields ``(index, result)`` as each job finishes. ``shared`` is the
read-only data every job reads (features, labels, partitions): it is handed over once -- memory-mapped
by joblib for local processes, put once in Ray's object store for Ray -- never copied per job. The
results go to the caller, which keeps the cell cache as the single source of results.

* ``local``: joblib's loky processes on this machine (``workers`` of them; 1 = in this process).
  A worker whose parent dies -- ``kill -9`` of stage evaluate included -- exits within a second
  (:func:`watch_parent`), so no ~500 MB process outlives a killed run.
* ``ray``: one Ray task per job on a local Ray (started here with ``workers`` CPUs and shut down at the
  end) or on an existing cluster (``address``: ``auto`` or ``ray://host:10001``). A driver that dies
  takes its job's tasks with it (Ray kills a dead driver's workers); a local Ray it started is killed
  with it by a reaper process (:func:`start_reaper`).
"""
from __future__ import annotations

import os
import threading
from typing import Callable, Iterator

from .registry import Registry

ENGINES: Registry = Registry("engine", "evaluation.engine")

_WATCHED: set[int] = set()


def watch_parent(parent: int, interval: float = 0.5) -> None:
    """Exit this process (``os._exit``) as soon as its parent ``parent`` is gone: a daemon thread polls
    ``os.getppid()``, once per process."""
    if parent in _WATCHED or os.getpid() == parent:
        return
    _WATCHED.add(parent)

    def loop():
        import time

        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=loop, name="watch-parent", daemon=True).start()


def _guarded(index: int, parent: int, fn: Callable, shared, *args):
    watch_parent(parent)
    return index, fn(shared, *args)


@ENGINES.register("local")
def run_local(fn: Callable, shared, calls: list[tuple], workers: int = 1, **_) -> Iterator[tuple[int, object]]:
    """joblib processes (``workers``; 1 = in process), results in completion order."""
    from joblib import Parallel, delayed

    if workers == 1:
        for i, args in enumerate(calls):
            yield i, fn(shared, *args)
        return
    parent = os.getpid()
    yield from Parallel(n_jobs=workers, return_as="generator_unordered")(
        delayed(_guarded)(i, parent, fn, shared, *args) for i, args in enumerate(calls))


_REAPER = r"""
import os, sys, time
root, me = int(sys.argv[1]), os.getpid()

def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()  # state, ppid, ..., starttime at [19]

def alive(pid):
    try:
        return stat(pid)[0] not in "ZX"
    except OSError:
        return False

def tree():
    kids = {}
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            f = stat(d)
        except OSError:
            continue
        kids.setdefault(int(f[1]), []).append((int(d), f[19]))
    out, todo = {}, [root]
    while todo:
        for pid, start in kids.get(todo.pop(), []):
            if pid != me:
                out[pid] = start
                todo.append(pid)
    return out

seen = {}
while alive(root):
    seen.update(tree())
    time.sleep(0.5)
for pid, start in seen.items():
    try:
        if stat(pid)[19] == start:
            os.kill(pid, 9)
    except (OSError, IndexError):
        pass
"""


def start_reaper():
    """A tiny process that, when this one dies (``kill -9`` included), kills every process this one
    started, directly or not (a local Ray's raylet, GCS and agents re-parent to init and would outlive
    it). Linux (/proc); None elsewhere. Stop it with ``.kill()`` after a clean shutdown."""
    import subprocess
    import sys

    if not os.path.isdir("/proc/self"):
        return None
    return subprocess.Popen([sys.executable, "-c", _REAPER, str(os.getpid())], start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ray_call(fn, shared, *args):
    return os.getpid(), fn(shared, *args)


@ENGINES.register("ray")
def run_ray(fn: Callable, shared, calls: list[tuple], workers: int = 2, address: str | None = None,
            cpus_per_job: float = 1, **_) -> Iterator[tuple[int, object]]:
    """One Ray task per job; ``address`` None starts a local Ray with ``workers`` CPUs (stopped at the end)."""
    yield from ((i, r) for i, (_, r) in run_ray_pids(fn, shared, calls, workers, address, cpus_per_job))


def run_ray_pids(fn, shared, calls, workers=2, address=None, cpus_per_job=1):
    """:func:`run_ray` yielding ``(index, (worker pid, result))`` (the tests check that every worker ran jobs)."""
    import ray

    started, reaper = not ray.is_initialized(), None
    if started:
        kw = {"num_cpus": workers} if address is None else {}
        reaper = start_reaper() if address is None else None
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False, **kw)
    try:
        ref = ray.put(shared)
        task = ray.remote(num_cpus=cpus_per_job, max_retries=0)(_ray_call)
        pending = {task.remote(fn, ref, *args): i for i, args in enumerate(calls)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for r in done:
                yield pending.pop(r), ray.get(r)
    finally:
        if started:
            ray.shutdown()
        if reaper is not None:
            reaper.kill()


def engine_workers(engine: str, n_jobs: int, ray_workers: int) -> int:
    """How many jobs run at once: local ``n_jobs`` (-1 = every core), ray the local Ray's CPUs."""
    if engine == "ray":
        return ray_workers
    return (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
