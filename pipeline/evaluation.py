"""The evaluation on cached features: plan -> fit -> score -> select, over trials, with a cell cache.

Protocols (PACS, Li et al. ICCV 2017), always scored on the target domain's *test* rows of a trial:

* ``zeroshot``      -- image-free methods (CLIP zero-shot, PromptStyler): no training image;
* ``in_domain``     -- trained on the train rows of the same domain (reference level);
* ``single_source`` -- trained on one domain, tested on each other one;
* ``lodo``          -- leave-one-domain-out: trained on the other domains.

For every trial (:mod:`pipeline.partition`) and setting, every operator variant (an operator of
``operators.names`` at one point of its grid) and every learner variant (a probe at one C, or an
adapter at one point of its grid) is one *cell*: fit on the sources' train rows, scored on the
sources' validation rows, the target's validation rows and the target's test rows. A
selection method (:mod:`pipeline.selection`) then picks, per (trial, setting, operator, learner),
the grid point to report. LODO validation adds ``lodo_val`` settings: trained on all sources but one
and scored on that one's train + validation rows.

The work is planned as jobs, one per source set (so that operators whose training rows coincide -- none,
translation, CORAL on source rows -- share one fit), run in ``classifier.n_jobs`` processes or as Ray tasks;
each job fits its operators, builds its training matrices, fits every probe at every C on each distinct one,
and returns its cells' accuracies. With ``evaluation.warm_starts`` a job runs its source set's trials in order
and the exact probes of trial t start from trial t - 1's solutions; without, every (trial, source set) is a
job of its own and every fit starts cold. Cells found in the cache are not planned.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from .adapters import ADAPTERS
from .cellcache import CellCache, cell_key
from .coverage import setting_gaps, warn_setting
from .errors import ParamsError, did_you_mean
from .imagefree import IMAGE_FREE
from .operators import OPERATORS, check_sections
from .params import Params
from .partition import TEST, TRAIN, VAL, digest, partitions, val_share
from .probes import PROBES, resolve_device
from .starts import coefficients, fit_warm, matrix_digest, starts_root
from .starts import save as save_starts
from .selection import SELECTIONS, pick

log = logging.getLogger(__name__)
ACCURACY_COLUMNS = ["trial", "selection", "protocol", "method", "classifier", "operator", "source", "target",
                    "hparams", "val_accuracy", "accuracy", "n_test", "missing_classes"]


@dataclass(frozen=True)
class Setting:
    protocol: str  # in_domain | single_source | lodo | lodo_val (trained on a LODO setting's sources but one)
    sources: tuple[str, ...]
    target: str
    parent: str | None = None  # lodo_val: the LODO target it validates

    @property
    def scored(self) -> bool:
        return self.protocol != "lodo_val"

    def label(self) -> list:
        return [self.protocol, list(self.sources), self.target]


def protocols(domains: list[str]) -> list[tuple[str, list[str], str]]:
    """(protocol, source domains, target domain) for every scored setting."""
    out = [("in_domain", [d], d) for d in domains]
    out += [("single_source", [s], t) for s in domains for t in domains if s != t]
    out += [("lodo", [s for s in domains if s != t], t) for t in domains]
    return out


def settings(domains: list[str], lodo_val: bool) -> list[Setting]:
    out = [Setting(p, tuple(s), t) for p, s, t in protocols(domains)]
    if lodo_val:
        for t in domains:
            sources = [s for s in domains if s != t]
            if len(sources) >= 2:
                out += [Setting("lodo_val", tuple(s for s in sources if s != h), h, parent=t) for h in sources]
    return out


def grid(values: dict) -> list[dict]:
    """Every combination of the values (a scalar is a grid of one), in params order."""
    keys = list(values)
    lists = [v if isinstance(v, list) else [v] for v in values.values()]
    return [dict(zip(keys, combo)) for combo in itertools.product(*lists)]


def operator_variants(p: Params) -> list[tuple[str, dict]]:
    """(operator name, hyper-parameters) for every operator of ``operators.names`` x its grid."""
    out = []
    check_sections(p.operators.grids())
    for name in OPERATORS.check(p.operators.names):
        op = OPERATORS[name]
        section = p.operators.grids().get(name, {}) if op.section().startswith("operators.") else p.translate.model_dump()
        values = {k: section.get(k, default) for k, default in op.hyper.items()}
        out += [(name, h) for h in grid(values)]
    return out


def learner_variants(p: Params) -> tuple[list[tuple[str, dict]], list[tuple[str, dict]]]:
    """(probe, {C}) and (adapter, hyper) variants of ``classifier.probes`` x their grids."""
    c = p.classifier
    probes, adapters = [], []
    for name in c.probes:
        if name in ADAPTERS:
            adapters += [(name, h) for h in grid(c.dann.grids())]
        elif name in PROBES:
            probes += [(name, {"C": C}) for C in c.C_grid()]
        else:
            known = sorted([*PROBES.names(), *ADAPTERS.names()])
            raise ParamsError(f"classifier.probes: unknown probe or adapter {name!r}" + did_you_mean(name, known)
                              + f"; choose from {known}")
    return probes, adapters


# ------------------------------------------------------------------------------------------- jobs
def _fit_operator(name, hyper, text, X, dom, rows, sources):
    return OPERATORS[name](text=text, **hyper).fit(X[rows], dom[rows], list(sources))


def _accuracy(y_true, y_pred) -> float:
    return float((np.asarray(y_true) == np.asarray(y_pred)).mean()) if len(y_true) else float("nan")


def cell_accuracy(clf, Z: np.ndarray, y: np.ndarray) -> float:
    """A cell's accuracy of ``clf`` on rows ``Z`` with labels ``y``: NaN on no row (a tiny domain's empty split),
    where the probe is not even asked to predict."""
    return _accuracy(y, clf.predict(Z)) if len(y) else float("nan")


def shared_data(images: pd.DataFrame, X: np.ndarray, parts: list, text: dict) -> dict:
    """What every job reads, handed to the engine once: features, domains (fixed-width strings, so that
    joblib memory-maps them too), labels, the trials' partitions and the description vectors."""
    return {"X": np.ascontiguousarray(X), "dom": images["domain"].to_numpy().astype(str),
            "y": images["label"].to_numpy(), "parts": list(parts), "text": text}


def run_probe_job(shared: dict, sources, trials, fitted: dict, clf_args, starts_dir=None, chain: bool = True) -> dict:
    """One source set over trials: ``trials`` = [(t, jobs)], ``jobs`` = [(setting,
    operator, hyper, cell keys {(probe, C): key})]. Operators of scope ``global`` / ``domain`` arrive fitted on
    every train row of their trial (``fitted``: {t: {(operator, hyper json): fitted}}); the others are fit here
    on the unlabelled train rows their scope allows. Rows are mapped when a fit or a score needs them, one
    matrix at a time (no job holds a mapped copy of every row). Every probe is fit at the Cs its missing cells
    need, once per distinct training matrix; an exact probe starts from the nearest known solution: this
    matrix's fits in the warm-start store ``starts_dir`` (:mod:`pipeline.starts`; read here, written by the
    caller), else (``chain``: ``evaluation.warm_starts``) the same matrix's fits in the previous trial, whose
    partition differs by a redraw (the same minimiser, reached in fewer steps: docs/methods.md). Returns {"cells": {cell key: accuracies},
    "starts": {start key: {C: (coef, intercept)}} of the exact probes' matrices (stored and new fits),
    "warm_started": fits that began from a stored start}."""
    out, new, warm, last = {}, {}, 0, {}
    for t, jobs in trials:
        cells, started, n = _probe_trial(shared, t, sources, jobs, fitted.get(t, {}), clf_args, starts_dir,
                                         last if chain else None)
        out.update(cells)
        new.update(started)
        warm += n
    return {"cells": out, "starts": new, "warm_started": warm}


def _probe_trial(shared: dict, t: int, sources, jobs, fitted: dict, clf_args, starts_dir, last: dict | None):
    """:func:`run_probe_job`'s trial ``t``: (cells, starts to store, fits from stored starts). ``last``:
    {(matrix, probe): {C: (coef, intercept)}} of the previous trial, updated with this trial's fits (None: no
    chain)."""
    X, dom, y, part, text = shared["X"], shared["dom"], shared["y"], shared["parts"][t], shared["text"]
    train = part == TRAIN
    src = np.isin(dom, sources)
    tr = train & src
    ytr, fitted_ops, fits, out, new, warm = y[tr], dict(fitted), {}, {}, {}, 0
    for setting, name, hyper, keys in jobs:
        hkey = (name, json.dumps(hyper, sort_keys=True))
        share = hkey if hkey in fitted_ops else hkey + ((setting.target,) if OPERATORS[name].scope == "pair" else ())
        if share not in fitted_ops:
            rows = train if OPERATORS[name].scope == "sources" else train & np.isin(dom, [*sources, setting.target])
            fitted_ops[share] = _fit_operator(name, hyper, text, X, dom, rows, sources)
        op = fitted_ops[share]
        mapped = lambda m, op=op: op.transform(X[m], dom[m])  # noqa: E731
        Xtr = mapped(tr)
        digest = matrix_digest(Xtr, ytr)
        have = fits.setdefault(digest, {})
        for probe in sorted({pr for pr, _ in keys}):
            missing = sorted({C for pr, C in keys if pr == probe and (pr, C) not in have})
            if missing:
                Xfit = Xtr.copy() if probe != max(pr for pr, _ in keys) else Xtr  # the last probe may scale Xtr in place
                prior = None if last is None else last.get((share, probe))
                got, stored, n = fit_warm(probe, Xfit, ytr, missing, starts_dir, digest=digest, overwrite=True,
                                          fallback=prior, **clf_args)
                have.update(got)
                new.update(stored)
                warm += n
                if last is not None and getattr(PROBES[probe], "warm_start_path", False):
                    last[share, probe] = {C: coefficients(m) for (pr, C), m in have.items() if pr == probe}
                del Xfit
        del Xtr
        tgt = dom == setting.target
        evals = {"source_val": (part == VAL) & src}
        if setting.scored:
            evals["target_val"], evals["test"] = (part == VAL) & tgt, (part == TEST) & tgt
        else:  # a held-out source of LODO validation: all of its rows that no test touches
            evals["target_val"] = (part != TEST) & tgt
        acc = {key: {} for key in keys.values()}
        for k, m in evals.items():  # one mapped evaluation matrix at a time
            Z, yy = mapped(m), y[m]
            for (probe, C), key in keys.items():
                acc[key][k] = cell_accuracy(have[probe, C], Z, yy)
                acc[key][f"n_{k}"] = len(yy)
        for key, a in acc.items():
            out[key] = {"source_val": a["source_val"], "target_val": a["target_val"], "test": a.get("test", np.nan),
                        "n_source_val": a["n_source_val"], "n_target_val": a["n_target_val"], "n_test": a.get("n_test", 0)}
    return out, new, warm


def fit_shared_operators(shared: dict, t: int, ops, domains) -> dict:
    """{(operator, hyper json): fitted operator} for the operators that map each domain alone (scope
    ``global`` or ``domain``): fit once per trial on every train row, shared by all of its jobs (the
    fitted maps are small: a vector or a matrix per domain)."""
    X, dom, train = shared["X"], shared["dom"], shared["parts"][t] == TRAIN
    return {(name, json.dumps(hyper, sort_keys=True)): _fit_operator(name, hyper, shared["text"], X, dom, train, domains)
            for name, hyper in ops if OPERATORS[name].scope in ("global", "domain")}


def run_adapter_job(shared: dict, t: int, name: str, hyper: dict, tasks, seed: int, device: str = "cpu") -> dict:
    """One adapter at one grid point on several (setting, key) tasks of trial ``t`` in one batched run."""
    X, dom, y, part = shared["X"], shared["dom"], shared["y"], shared["parts"][t]
    train, est = part == TRAIN, ADAPTERS[name](seed=seed, device=device, **hyper)
    data = []
    for setting, _ in tasks:
        tr = train & np.isin(dom, setting.sources)
        data.append((X[tr], y[tr], X[train & (dom == setting.target)]))
    out = {}
    for (setting, key), clf in zip(tasks, est.fit_many(data)):
        src, tgt = np.isin(dom, setting.sources), dom == setting.target
        ev = {"source_val": (part == VAL) & src,
              "target_val": ((part == VAL) if setting.scored else (part != TEST)) & tgt,
              "test": (part == TEST) & tgt if setting.scored else np.zeros(len(dom), bool)}
        out[key] = {**{k: _accuracy(y[m], clf.predict(X[m])) if m.any() else float("nan") for k, m in ev.items()},
                    **{f"n_{k}": int(m.sum()) for k, m in ev.items()}}
    return {"cells": out, "starts": {}, "warm_started": 0}


def _run_job(shared: dict, kind: str, *args) -> dict:
    return (run_adapter_job if kind == "adapter" else run_probe_job)(shared, *args)


# ----------------------------------------------------------------------------------------- driver
def features_digest(images: pd.DataFrame, X: np.ndarray) -> str:
    h = hashlib.sha256(memoryview(np.ascontiguousarray(X, np.float32)).cast("B"))
    for col in ("image_id", "domain", "label"):
        h.update("\x00".join(map(str, images[col])).encode())
    return h.hexdigest()[:32]


def text_digest(text: dict, kinds: tuple[str, ...]) -> str | None:
    """16 hex digits of the description vectors of ``kinds`` (None when an operator reads none): part of the key
    of every cell of a text operator, so that new prompts (descriptions, templates, another model) never serve
    an old cell."""
    if not kinds:
        return None
    h = hashlib.sha256()
    for kind in kinds:
        for domain, vec in sorted((text or {}).get(kind, {}).items()):
            h.update(f"{kind}|{domain}|".encode())
            h.update(np.ascontiguousarray(vec, np.float32).tobytes())
    return h.hexdigest()[:16]


@dataclass
class Plan:
    """What a run computes: per trial, the partition and every cell's key (and which are missing)."""
    parts: list
    cells: list  # (trial, setting, operator, op hyper, learner kind, learner, learner hyper, key)
    probe_jobs: list  # (sources, [(trial, jobs)]): one source set's trials (chained), or one trial each
    adapter_jobs: list  # (trial, adapter, hyper, tasks)


def plan(images: pd.DataFrame, X: np.ndarray, domains: list[str], p: Params, cache: CellCache,
         fixed_test: bool, text: dict | None = None) -> Plan:
    """Every cell of the grid, and the jobs that compute the ones the cache lacks (a cell's key: the features,
    the partition, the setting, the operator with its values and the text it reads, the learner with its)."""
    ev = p.evaluation
    sels = SELECTIONS.check(ev.selection)
    parts = partitions(images, ev.trials, p.data.test_fraction, p.data.val_fraction, p.data.split_seed, fixed_test)
    feats = features_digest(images, X)
    ops, (probes, adapters) = operator_variants(p), learner_variants(p)
    clf = p.classifier
    common = {"max_iter": clf.max_iter, "standardize": clf.standardize, "seed": clf.seed}
    sets = settings(domains, "lodo_val" in sels)
    cells, probe_jobs, adapter_jobs = [], {}, {}
    for t, part in enumerate(parts):
        pkey = digest(part)
        for s in sets:
            for op, oh in ops:
                if s.protocol == "in_domain" and op != "none":
                    continue  # operators align domains; in-domain there is nothing to align
                keys = {}
                tkey = text_digest(text, OPERATORS[op].text_kinds)
                for probe, lh in probes:
                    key = cell_key(feats, pkey, s.label(), op, oh, "probe", probe, lh, common,
                                   *([tkey] if tkey else []))
                    cells.append((t, s, op, oh, "probe", probe, lh, key))
                    if cache.get(key) is None:
                        keys[probe, lh["C"]] = key
                if keys:  # one job per source set, its trials in order (warm starts), or per source set and trial
                    trials = probe_jobs.setdefault((s.sources,) if ev.warm_starts else (s.sources, t), {})
                    trials.setdefault(t, []).append((s, op, oh, keys))
            if s.protocol in ("single_source", "lodo", "lodo_val"):
                for name, ah in adapters:
                    key = cell_key(feats, pkey, s.label(), "none", {}, "adapter", name, ah, clf.dann.fixed(), clf.seed)
                    cells.append((t, s, "none", {}, "adapter", name, ah, key))
                    if cache.get(key) is None:
                        adapter_jobs.setdefault((t, name, json.dumps(ah, sort_keys=True)), []).append((s, key))
    adapter_jobs = [(t, name, {**json.loads(h), **clf.dann.fixed()}, tasks) for (t, name, h), tasks in adapter_jobs.items()]
    return Plan(parts, cells, [(src, list(trials.items())) for (src, *_), trials in probe_jobs.items()], adapter_jobs)


@contextlib.contextmanager
def one_thread():
    """numpy's BLAS and torch at one thread each while the probes fit: their products are small, and
    two thread pools spinning against each other on two cores made an in-process (``n_jobs: 1``) grid
    7x slower (docs/benchmarks.md)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(n)


def job_calls(shared: dict, p: Params, pl: Plan, starts_dir=None) -> list[tuple]:
    """The plan's jobs as engine calls (``_run_job`` arguments after ``shared``): adapters first, then the probe
    jobs longest first (training rows x trials x settings), so that no large LODO job starts last and runs
    alone on one worker while the others idle. ``starts_dir``: the warm-start store the probe jobs read."""
    clf = p.classifier
    device = resolve_device(clf.device)
    clf_args = {"max_iter": clf.max_iter, "seed": clf.seed, "standardize": clf.standardize, "device": device}
    calls = [("adapter", t, name, h, tasks, clf.seed, device) for t, name, h, tasks in pl.adapter_jobs]
    needed: dict[int, dict] = {}  # per trial, the operator variants its jobs use (a warm run needs few)
    for _, trials in pl.probe_jobs:
        for t, js in trials:
            for _, name, hyper, _ in js:
                needed.setdefault(t, {})[name, json.dumps(hyper, sort_keys=True)] = (name, hyper)
    domains = sorted(set(shared["dom"]))
    fitted = {t: fit_shared_operators(shared, t, list(ops.values()), domains) for t, ops in needed.items()}
    train = [part == TRAIN for part in shared["parts"]]

    def size(job):
        src, trials = job
        return -sum(int((train[t] & np.isin(shared["dom"], list(src))).sum()) * len(js) for t, js in trials)

    return calls + [("probe", list(src), trials, {t: fitted[t] for t, _ in trials}, clf_args, starts_dir, p.evaluation.warm_starts)
                    for src, trials in sorted(pl.probe_jobs, key=size)]


def fit(images: pd.DataFrame, X: np.ndarray, text: dict, p: Params, pl: Plan, cache: CellCache,
        progress: bool = False) -> int:
    """Run the plan's jobs on ``evaluation.engine`` (local: ``classifier.n_jobs`` processes; ray: Ray tasks),
    put every computed cell in the cache and, with ``evaluation.warm_starts``, the exact probes' coefficients
    in the warm-start store beside it (:mod:`pipeline.starts`); ``progress``: a bar over the jobs (stderr).
    Returns how many fits started from a stored start."""
    from .engines import ENGINES, engine_workers

    ev = p.evaluation
    shared = shared_data(images, X, pl.parts, text)
    workers = engine_workers(ev.engine, p.classifier.n_jobs, ev.ray.workers)
    # in-process jobs: one thread for BLAS and torch; worker processes get cores / n_jobs threads from
    # joblib (Ray: its CPUs per task), and the parent holds BLAS at one thread while it waits
    with one_thread() if ev.engine == "local" and workers == 1 else threadpool_limits(1):
        starts_dir = starts_root(cache.root, ev.warm_starts)
        calls = job_calls(shared, p, pl, starts_dir)
        if not calls:
            return 0
        warm = 0
        results = ENGINES[ev.engine](_run_job, shared, calls, workers=workers, address=ev.ray.address)
        for _, result in tqdm(results, total=len(calls), desc="evaluate", unit="job", disable=not progress):
            for key, value in result["cells"].items():
                cache.put(key, value)
            for key, fits in result["starts"].items():
                save_starts(starts_dir, key, fits)
            warm += result["warm_started"]
    return warm


def score(images: pd.DataFrame, X: np.ndarray, domains: list[str], classes: list[str], p: Params, pl: Plan,
          cache: CellCache, image_free: dict, joint: np.ndarray | None = None) -> pd.DataFrame:
    """Accuracy rows (``ACCURACY_COLUMNS``): per trial, selection method, scored setting and method, the
    selected grid point's test accuracy; image-free methods per trial and target, scored on the joint-space
    features ``joint`` (default ``X``)."""
    dom, y = images["domain"].to_numpy(), images["label"].to_numpy()
    rows = []
    Xj = X if joint is None else joint
    preds = {name: model.predict(Xj) for name, model in image_free.items()}  # trained on no image: once
    for t, part in enumerate(pl.parts):
        for name, pred in preds.items():
            for target in domains:
                m = (part == TEST) & (dom == target)
                rows.append((t, "-", "zeroshot", name, IMAGE_FREE[name].classifier, "none", "-", target, "{}",
                             np.nan, _accuracy(y[m], pred[m]), int(m.sum()), setting_gaps(np.arange(len(classes)), y[m], classes)))
    groups: dict[tuple, list] = {}
    for t, s, op, oh, kind, learner, lh, key in pl.cells:
        value = dict(cache.get(key), hparams={**oh, **lh})
        groups.setdefault((t, s.protocol, s.sources, s.target, s.parent, op, kind, learner), []).append(value)
    heldout: dict[tuple, list] = {}  # (trial, LODO target, op, learner, hparams) -> held-out accuracies
    for (t, protocol, sources, target, parent, op, kind, learner), vals in groups.items():
        if protocol == "lodo_val":
            for v in vals:
                heldout.setdefault((t, parent, op, learner, json.dumps(v["hparams"], sort_keys=True)), []).append(
                    v["target_val"])
    for (t, protocol, sources, target, parent, op, kind, learner), vals in groups.items():
        if protocol == "lodo_val":
            continue
        part = pl.parts[t]
        gaps = setting_gaps(y[(part == TRAIN) & np.isin(dom, sources)], y[(part == TEST) & (dom == target)], classes)
        for v in vals:
            v["heldout"] = heldout.get((t, target, op, learner, json.dumps(v["hparams"], sort_keys=True)), [])
        for sel_name in p.evaluation.selection:
            sel = SELECTIONS[sel_name]
            if sel.protocols and protocol not in sel.protocols:
                continue
            best, val = pick(vals, sel)
            method = learner if op == "none" else f"{learner}+{op}"
            rows.append((t, sel_name, protocol, method, learner, op, "+".join(sources), target,
                         json.dumps(best["hparams"], sort_keys=True), val, best["test"], best["n_test"], gaps))
    return pd.DataFrame(rows, columns=ACCURACY_COLUMNS)


def plan_preview(images: pd.DataFrame, X: np.ndarray, p: Params, pl: Plan):
    """The plan's :class:`~pipeline.preview.Preview` on this engine's workers, timed when ``evaluation.preview``."""
    from .engines import engine_workers
    from .preview import preview

    ev = p.evaluation
    return preview(X, images, pl, p, engine_workers(ev.engine, p.classifier.n_jobs, ev.ray.workers), timed=ev.preview)


def check_feature_space(p: Params) -> None:
    """Text operators act in the joint image-text space: refused, naming one, when the probes read the
    pre-projection features (``classifier.features: pooled``)."""
    if p.classifier.features == "projected":
        return
    text_ops = [n for n in OPERATORS.check(p.operators.names) if OPERATORS[n].uses == "text" and n != "none"]
    if text_ops:
        raise ParamsError(f"operators.names: {text_ops[0]} moves features along text directions of the joint "
                          "image-text space, which classifier.features: pooled leaves; drop it or read projected features")


def evaluate(images: pd.DataFrame, X: np.ndarray, text: dict, domains: list[str], classes: list[str], p: Params,
             image_free: dict, cache: CellCache, fixed_test: bool, progress: bool = False,
             joint: np.ndarray | None = None) -> tuple[pd.DataFrame, dict]:
    """The whole evaluation: (accuracy rows, run info: cells, computed, cached, trials, fixed_test, the
    validation share asked and applied). ``X``: the features the probes read (``classifier.features``);
    ``joint``: the joint-space ones the image-free methods read (default ``X``)."""
    check_feature_space(p)
    pl = plan(images, X, domains, p, cache, fixed_test, text)
    dom, y, part = images["domain"].to_numpy(), images["label"].to_numpy(), pl.parts[0]
    for protocol, sources, target in protocols(domains):  # what the data lacks, said once (trial 0)
        warn_setting("evaluate", protocol, sources, target,
                     setting_gaps(y[(part == TRAIN) & np.isin(dom, sources)], y[(part == TEST) & (dom == target)], classes))
    pv = plan_preview(images, X, p, pl)
    log.info("%s", pv.line())
    before, t0 = len(cache.new), time.perf_counter()
    warm = fit(images, X, text, p, pl, cache, progress)
    seconds = time.perf_counter() - t0
    acc = score(images, X, domains, classes, p, pl, cache, image_free, joint)
    info = {"cells": len(pl.cells), "computed": len(cache.new) - before, "warm_started_fits": warm, "trials": p.evaluation.trials,
            "seconds": round(seconds, 2), "plan": pv.as_dict(),
            "fixed_test": fixed_test, "features": p.classifier.features,
            "val_fraction": {"asked": p.data.val_fraction,
                             "applied": round(float(np.mean([val_share(part) for part in pl.parts])), 4)}}
    return acc, info
