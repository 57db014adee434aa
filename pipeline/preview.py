"""The cost of an evaluation before it runs: what the plan computes and how long it should take here.

:func:`summarize` counts the plan's cells (total / cached / to compute, per learner and per operator);
:func:`calibrate` times the solvers on this machine, on one thread as a worker runs them: every missing
(probe, C) fit on two subsamples of the training rows (so that the time's growth with the row count is
measured, t(n) = t(m) (n / m)^b; each probe's whole C path at once, as a job fits it, its time shared evenly
by the Cs; an exact probe's path on the next trial's rows from these solutions, the price of a fit chained
across trials), a few adapter steps, and a feature map (two passes of n d^2 over the rows a setting maps);
:func:`estimate` prices each job with those rates and spreads the jobs over the engine's workers (the longest job first, as they
are dispatched). The estimate is a model, not a promise: docs/benchmarks.md compares it with measured
runs.
"""
from __future__ import annotations

import json
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .evaluation import Plan
from .operators import OPERATORS
from .partition import TRAIN
from .probes import PROBES


@dataclass
class Preview:
    cells: int
    to_compute: int
    by_learner: dict
    by_operator: dict
    jobs: int
    seconds: float | None = None  # estimated wall time of the jobs on ``workers``
    cpu_seconds: float | None = None
    workers: int = 1
    calibration_s: float = 0.0
    rates: dict = field(default_factory=dict)

    @property
    def cached(self) -> int:
        return self.cells - self.to_compute

    def line(self) -> str:
        """One line: cells total / cached / to compute, per learner and operator, and the estimate."""
        def counts(c):
            return ", ".join(f"{k} {v:,}" for k, v in sorted(c.items(), key=lambda kv: -kv[1])) or "-"

        head = (f"plan: {self.cells:,} cells, {self.cached:,} cached, {self.to_compute:,} to compute in {self.jobs} jobs"
                f" [{counts(self.by_learner)}] [{counts(self.by_operator)}]")
        if self.seconds is None:
            return head
        return (head + f"; estimated {_dur(self.seconds)} on {self.workers} worker{'s' * (self.workers > 1)}"
                f" ({_dur(self.cpu_seconds)} of CPU; calibrated in {self.calibration_s:.1f} s)")

    def as_dict(self) -> dict:
        return {"cells": self.cells, "cached": self.cached, "to_compute": self.to_compute, "jobs": self.jobs,
                "by_learner": self.by_learner, "by_operator": self.by_operator,
                "estimated_seconds": None if self.seconds is None else round(self.seconds, 1),
                "estimated_cpu_seconds": None if self.cpu_seconds is None else round(self.cpu_seconds, 1),
                "workers": self.workers, "calibration_seconds": round(self.calibration_s, 2)}


def _dur(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def summarize(pl: Plan) -> Preview:
    """Counts only (no timing): the cells the plan holds and those its jobs compute."""
    by_learner, by_operator = Counter(), Counter()
    for _, trials in pl.probe_jobs:
        for _, jobs in trials:
            for _, op, _, keys in jobs:
                for probe, _ in keys:
                    by_learner[probe] += 1
                    by_operator[op] += 1
    for _, name, _, tasks in pl.adapter_jobs:
        by_learner[name] += len(tasks)
        by_operator["none"] += len(tasks)
    return Preview(len(pl.cells), sum(by_learner.values()), dict(by_learner), dict(by_operator),
                   len(pl.probe_jobs) + len(pl.adapter_jobs))


def _chained(probe: str) -> bool:
    """Whether ``probe`` starts from a neighbouring solution when one is known (an exact solver)."""
    return bool(getattr(PROBES[probe], "warm_start_path", False))


def _probe_fits(pl: Plan) -> dict:
    """{(probe, C): [(job, trial, sources, fits, chained)]}: per job and trial the number of distinct training
    matrices each (probe, C) is fit on (operators of scope ``pair`` have one per target); ``chained``: the job's
    previous trial fit the same matrix (this fit can start from its solution)."""
    out: dict = {}
    for j, (sources, trials) in enumerate(pl.probe_jobs):
        seen: set = set()
        for t, jobs in trials:
            mats: dict = {}
            for setting, op, hyper, keys in jobs:
                mat = (op, json.dumps(hyper, sort_keys=True)) + ((setting.target,) if OPERATORS[op].scope == "pair" else ())
                for pc in keys:
                    mats.setdefault(pc, set()).add(mat)
            for pc, m in mats.items():
                chained = len(m & seen) if _chained(pc[0]) else 0
                out.setdefault(pc, []).append((j, t, tuple(sources), len(m) - chained, chained))
            seen = {mat for m in mats.values() for mat in m}
    return out


def calibrate(X: np.ndarray, y: np.ndarray, pl: Plan, p, dom: np.ndarray, max_rows: int = 2000) -> dict:
    """Seconds measured here on one thread, on the train rows of the largest domain: ``(probe, C) -> (its share
    of the C path's time at m rows, m, exponent b)``, ``(probe, "chain")`` -> the time of the path on trial 1's
    rows from trial 0's solutions over a cold path (an exact probe, ``evaluation.warm_starts``, two trials or
    more), ``adapter name -> seconds per step per task``, ``"map" -> seconds per row x dim^2`` (operator maps
    and fits)."""
    from .evaluation import one_thread
    from .probes import fit_probes
    from .starts import coefficients

    clf = p.classifier
    rng = np.random.default_rng(0)
    doms, counts = np.unique(dom, return_counts=True)  # one domain's train rows: what most fits see
    train = np.flatnonzero((pl.parts[0] == TRAIN) & (dom == doms[counts.argmax()]))
    rows = rng.choice(train, min(max_rows, len(train)), replace=False)
    half = rows[: max(len(rows) // 2, 2)]
    rates: dict = {}
    Cs: dict = {}
    for probe, C in _probe_fits(pl):
        Cs.setdefault(probe, set()).add(C)
    with one_thread():
        for probe, cs in Cs.items():  # the C path as a job fits it (warm-started probes: each C from the last)
            with warnings.catch_warnings():  # warm-up (imports, thread pools): 5 iterations, not a solution
                warnings.simplefilter("ignore", ConvergenceWarning)
                fit_probes([probe], X[rows[:200]], y[rows[:200]], [max(cs)], max_iter=5)
            times, args = [], {"max_iter": clf.max_iter, "seed": clf.seed, "standardize": clf.standardize}
            for r in (half, rows):
                t0 = time.perf_counter()
                fits = fit_probes([probe], X[r], y[r], sorted(cs), **args)
                times.append(time.perf_counter() - t0)
            b = float(np.clip(np.log(max(times[1], 1e-4) / max(times[0], 1e-4)) / np.log(len(rows) / len(half)), 0.5, 1.5))
            for C in cs:  # a path's time shared evenly by its Cs
                rates[probe, C] = (times[1] / len(cs), len(rows), b)
            if _chained(probe) and p.evaluation.warm_starts and len(pl.parts) > 1:  # the next trial's rows, from these
                nxt = np.flatnonzero((pl.parts[1] == TRAIN) & (dom == doms[counts.argmax()]))
                r = rng.choice(nxt, min(len(rows), len(nxt)), replace=False)
                t0 = time.perf_counter()
                fit_probes([probe], X[r], y[r], sorted(cs), **args,
                           starts={probe: {C: coefficients(fits[probe, C]) for C in cs}})
                rates[probe, "chain"] = float(np.clip((time.perf_counter() - t0) / max(times[1], 1e-4), 0.05, 1.0))
        from .adapters import ADAPTERS

        first: dict = {}
        for _, name, hyper, _ in pl.adapter_jobs:
            first.setdefault(name, hyper)
        for name, hyper in first.items():
            steps = min(int(hyper.get("steps", 100)), 20)
            src, tgt = rows[: len(rows) // 2], rows[len(rows) // 2:]
            est = ADAPTERS[name](seed=clf.seed, **{**hyper, "steps": steps})
            t0 = time.perf_counter()
            est.fit_many([(X[src], y[src], X[tgt])] * 2)
            rates[name] = (time.perf_counter() - t0) / (steps * 2)
        A = np.asarray(X[rows], np.float32)
        W = np.eye(X.shape[1], dtype=np.float32)
        t0 = time.perf_counter()
        for _ in range(3):
            A @ W
        rates["map"] = (time.perf_counter() - t0) / (3 * len(rows) * X.shape[1] ** 2)
    return rates


def estimate(pl: Plan, rates: dict, dom: np.ndarray, dim: int, workers: int) -> tuple[float, float]:
    """(wall seconds on ``workers``, CPU seconds) of the plan's jobs priced with ``rates``."""
    n_train = {}

    def rows(t, sources):
        key = (t, sources)
        if key not in n_train:
            n_train[key] = int(((pl.parts[t] == TRAIN) & np.isin(dom, sources)).sum())
        return n_train[key]

    jobs: dict = {}
    for (probe, C), fits in _probe_fits(pl).items():
        t_m, m, b = rates[probe, C]
        for j, t, sources, cold, chained in fits:
            n = cold + chained * rates.get((probe, "chain"), 1.0)
            jobs[j] = jobs.get(j, 0.0) + n * t_m * (rows(t, sources) / m) ** b
    scored: dict = {}

    def eval_rows(t, sources, target):  # the rows a setting maps to score: sources' and target's non-train rows
        key = (t, sources, target)
        if key not in scored:
            scored[key] = int(((pl.parts[t] != TRAIN) & np.isin(dom, [*sources, target])).sum())
        return scored[key]

    for j, (sources, trials) in enumerate(pl.probe_jobs):  # operator maps (and fits): two passes of n d^2 over the rows each setting maps
        src = tuple(sources)
        for t, js in trials:
            for setting, _, _, _ in js:
                n = rows(t, src) + eval_rows(t, src, setting.target)
                jobs[j] = jobs.get(j, 0.0) + 2 * n * dim * dim * rates["map"]
    costs = list(jobs.values())
    for _, name, hyper, tasks in pl.adapter_jobs:
        costs.append(rates[name] * int(hyper.get("steps", 100)) * len(tasks))
    loads = [0.0] * max(workers, 1)
    for c in sorted(costs, reverse=True):  # longest first onto the least loaded worker
        loads[loads.index(min(loads))] += c
    return max(loads, default=0.0), float(sum(costs))


def preview(X: np.ndarray, images, pl: Plan, p, workers: int, timed: bool = True) -> Preview:
    """:func:`summarize`, plus (``timed``) the calibrated estimate of what is left to compute."""
    pv = summarize(pl)
    pv.workers = workers
    if timed and pv.to_compute:
        dom, y = images["domain"].to_numpy().astype(str), images["label"].to_numpy()
        t0 = time.perf_counter()
        pv.rates = calibrate(X, y, pl, p, dom)
        pv.calibration_s = time.perf_counter() - t0
        pv.seconds, pv.cpu_seconds = estimate(pl, pv.rates, dom, X.shape[1], workers)
    elif timed:
        pv.seconds = pv.cpu_seconds = 0.0
    return pv
