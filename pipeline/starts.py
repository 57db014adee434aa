"""Warm starts for the exact probes, kept across runs beside the cell cache.

A probe that declares ``warm_start_path`` (``logreg``, ``svm``: exact solvers, whose result does not depend
on where they start) is fit, along ``classifier.C``, from the nearest solution already known. Within a job
that is the last C of the path; across runs it is this store: every such fit leaves its coefficients here,
keyed by the content of its training matrix (features after the operator, labels), the probe and the
standardisation, under the code version that computed them. A sweep that adds one C to the grid then fits
each new cell from its nearest stored neighbour (log-distance in C) instead of from zero: the svm's Newton
steps and the log loss's L-BFGS iterations drop several-fold, the minimiser does not move
(docs/benchmarks.md, docs/methods.md).

A start only saves time: coefficients are stored in float16 (half the bytes; a start needs no more; float32
where a coefficient would overflow float16), a file that cannot be read or holds a non-finite number is
logged, deleted and ignored, and a store that is absent (a Ray worker on another
machine) means cold fits. Files: ``<evaluation.cache_dir>/starts/<code version>/<key>.npz`` (``Cs``,
``coef``, ``intercept``); :func:`~pipeline.cellcache.prune` drops other code versions' directories.
"""
from __future__ import annotations

import hashlib
import logging
import zipfile
from pathlib import Path

import numpy as np

from .store import atomic_path

log = logging.getLogger(__name__)

DIR = "starts"


def starts_root(cache_root: str | Path | None, enabled: bool = True) -> Path | None:
    """Where this code version's starts live under a cell-cache directory (None: no cache directory, or
    ``evaluation.warm_starts`` off)."""
    from . import cellcache

    return Path(cache_root) / DIR / cellcache.code_version() if cache_root and enabled else None


def start_key(matrix: str, probe: str, standardize: bool) -> str:
    """A training matrix's digest (features after the operator, labels), the probe and the scaling."""
    return hashlib.sha256(f"{matrix}|{probe}|{bool(standardize)}".encode()).hexdigest()[:40]


def load(root: Path | None, key: str) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """{C: (coef, intercept)} stored under ``key`` ({} when none, or when the file is unreadable: then it is
    logged and deleted, and the fit starts cold)."""
    path = root / f"{key}.npz" if root else None
    if path is None or not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            Cs, coef, intercept = z["Cs"], z["coef"], z["intercept"]
        if coef.ndim != 3 or len(Cs) != len(coef) or intercept.shape != coef.shape[:2]:
            raise ValueError(f"arrays of shapes Cs {Cs.shape}, coef {coef.shape}, intercept {intercept.shape}")
        if not (np.isfinite(coef).all() and np.isfinite(intercept).all() and (Cs > 0).all()):
            raise ValueError("non-finite coefficients or a C <= 0")
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        log.warning("warm starts: deleting unreadable %s (%s: %s); its probes start cold", path, type(exc).__name__, exc)
        path.unlink(missing_ok=True)
        return {}
    return {float(C): (c.astype(np.float64), b.astype(np.float64)) for C, c, b in zip(Cs, coef, intercept)}


def save(root: Path | None, key: str, fits: dict[float, tuple[np.ndarray, np.ndarray]]) -> None:
    """Write ``fits`` ({C: (coef, intercept)}: every C known for ``key``, as :func:`fit_warm` returns them) as the
    file of ``key``, atomically (no read: the caller already holds what was stored)."""
    if root is None or not fits:
        return
    Cs = sorted(fits)
    coef = np.stack([np.asarray(fits[C][0], np.float64) for C in Cs])
    with np.errstate(over="ignore"):  # an overflow is seen below, and keeps float32
        small = coef.astype(np.float16)
    with atomic_path(root / f"{key}.npz") as tmp:
        with open(tmp, "wb") as f:  # float16 unless a coefficient overflows it
            np.savez(f, Cs=np.asarray(Cs, np.float64), coef=small if np.isfinite(small).all() else coef.astype(np.float32),
                     intercept=np.stack([np.asarray(fits[C][1], np.float64) for C in Cs]))


def matrix_digest(X: np.ndarray, y: np.ndarray) -> str:
    """sha256 of a training matrix's bytes and its labels' (the content a start belongs to)."""
    h = hashlib.sha256(memoryview(np.ascontiguousarray(X)).cast("B"))
    h.update(np.ascontiguousarray(y).tobytes())
    return h.hexdigest()


def fit_warm(probe: str, X: np.ndarray, y: np.ndarray, Cs, root: Path | None, *, digest: str | None = None,
             overwrite: bool = False, fallback: dict | None = None, **clf_args) -> tuple[dict, dict, int]:
    """:func:`~pipeline.probes.fit_probes` of one probe at ``Cs``, an exact probe starting from this matrix's
    stored fits (``root``: the store, None for none; ``digest``: :func:`matrix_digest` of ``X, y`` when known,
    needed when ``overwrite`` lets the fit scale ``X`` in place), else from ``fallback`` ({C: (coef,
    intercept)} of a neighbouring matrix: the previous trial's fits of the same setting). Returns (models,
    {start key: {C: (coef, intercept)}}: the stored fits and the new ones, for the caller to :func:`save`; how
    many fits began from a stored start)."""
    from .probes import PROBES, fit_probes

    exact = bool(getattr(PROBES[probe], "warm_start_path", False))
    kept = root is not None and exact  # its fits go to the store
    key = start_key(digest or matrix_digest(X, y), probe, clf_args.get("standardize", True)) if kept else None
    stored = load(root, key) if kept else {}
    begin = stored or (fallback if exact else None) or {}
    models = fit_probes([probe], X, y, Cs, overwrite=overwrite, starts={probe: begin}, **clf_args)
    new = {key: {**stored, **{C: coefficients(models[probe, C]) for C in Cs}}} if kept else {}
    return models, new, len(Cs) if stored else 0


def coefficients(model) -> tuple[np.ndarray, np.ndarray]:
    """(coef, intercept) of a fitted probe (the last step of its pipeline)."""
    est = model[-1] if hasattr(model, "steps") else model
    return est.coef_, est.intercept_


def nearest(C: float, known: dict) -> tuple | None:
    """The value of ``known`` ({C': start}) whose C' is nearest to ``C`` in log-distance (None if empty)."""
    if not known:
        return None
    return known[min(known, key=lambda c: (abs(np.log(c / C)), c))]


def report(cache_root: str | Path | None) -> dict:
    """{code version: (files, bytes)} of the store under a cell-cache directory."""
    base = Path(cache_root) / DIR if cache_root else None
    if base is None or not base.is_dir():
        return {}
    out = {}
    for d in sorted(p for p in base.iterdir() if p.is_dir()):
        files = list(d.glob("*.npz"))
        out[d.name] = (len(files), sum(f.stat().st_size for f in files))
    return out
