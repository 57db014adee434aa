"""Linear probes on frozen features, one module each, registered in :data:`PROBES`.

The contract: an entry is a class whose keyword-only constructor takes ``C`` (inverse L2 strength, the
``classifier.C`` grid), ``max_iter``, ``seed`` and ``device`` (``classifier.device``, resolved: cpu / cuda[:N];
a CPU-only solver ignores it) and returns a scikit-learn classifier (``fit(X, y)``,
``predict``, fitted ``coef_`` / ``intercept_`` / ``classes_``); ``warm_start_path = True`` declares that
its result does not depend on its starting point (an exact solver), so a C path may warm-start it; a
classmethod ``fit_path(X, y, Cs, *, max_iter, seed, device)`` returning one fitted estimator per C
(in the order of ``Cs``) lets a closed-form solver share the whole path's work (``ridge``).
:func:`fit_probes` standardises a training set once and fits every probe at every C on it.
"""
from __future__ import annotations

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..registry import Registry

PROBES: Registry = Registry("probe", "classifier.probes", __name__)


def resolve_device(device: str) -> str:
    """``classifier.device``: auto -> cuda when torch sees a GPU, else cpu; others as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def make_probe(name: str, *, C: float = 1.0, max_iter: int = 1000, seed: int = 0, standardize: bool = True,
               device: str = "cpu"):
    """``PROBES[name]`` as an estimator, behind a StandardScaler fit on the training rows if ``standardize``."""
    clf = PROBES[name](C=C, max_iter=max_iter, seed=seed, device=device)
    return make_pipeline(StandardScaler(), clf) if standardize else clf


def fit_probes(names, X, y, Cs=(1.0,), *, max_iter: int = 1000, seed: int = 0, standardize: bool = True,
               device: str = "cpu", overwrite: bool = False, starts: dict | None = None) -> dict:
    """{(name, C): fitted estimator} for every probe at every C on one training set, standardised once:
    the StandardScaler is fit on ``X`` and shared by every probe's pipeline. The :class:`LinearProbe` s
    with the log loss also share one feature spectrum (their first preconditioner, computed when a fit starts
    cold). Probes that declare ``warm_start_path`` (exact solvers) are solved along the C path in increasing
    C, each from the nearest solution known: the last C's, or one of ``starts`` ({name: {C: (coef,
    intercept)}}, e.g. this matrix's fits from an earlier run: :mod:`pipeline.starts`), nearest in
    log-distance; the others start from scratch at every C, so each fit equals a separate fit
    (logreg_sklearn exactly; softmax to its tolerance). ``overwrite``: standardise ``X`` in place (the caller
    hands over a copy it no longer needs)."""
    from ..starts import nearest
    from .linear import LinearProbe

    out, spectrum = {}, None
    scaler = StandardScaler().fit(X) if standardize else None
    Xs = scaler.transform(X, copy=not overwrite) if standardize else X  # overwrite: the caller's copy, in place
    k = len(np.unique(y))
    for name in names:
        entry = PROBES[name]
        if hasattr(entry, "fit_path"):  # a closed-form path: every C from one pass over the rows
            for C, clf in zip(sorted(Cs), entry.fit_path(Xs, y, sorted(Cs), max_iter=max_iter, seed=seed, device=device)):
                out[name, C] = make_pipeline(scaler, clf) if standardize else clf
            continue
        warm = bool(getattr(entry, "warm_start_path", False))
        known = {C: s for C, s in ((starts or {}).get(name) or {}).items()  # a start of another shape is not one
                 if warm and np.shape(s[0]) == (k, Xs.shape[1]) and np.shape(s[1]) == (k,)}
        for C in sorted(Cs):
            clf = entry(C=C, max_iter=max_iter, seed=seed, device=device)
            if isinstance(clf, LinearProbe):
                init = nearest(C, known)
                if standardize and clf.loss == "log" and init is None and spectrum is None:  # centred columns: one spectrum serves every log loss
                    spectrum = LinearProbe.spectrum(Xs)
                clf.fit(Xs, y, spectrum=spectrum if standardize else None, init=init)
                if warm:
                    known[C] = (clf.coef_, clf.intercept_)
            else:
                clf.fit(Xs, y)
            out[name, C] = make_pipeline(scaler, clf) if standardize else clf
    return out
