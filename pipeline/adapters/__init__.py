"""Adapters: probes that also learn from the unlabelled target train rows (DANN), one module each,
registered in :data:`ADAPTERS`. Contract: a keyword-only estimator with ``fit(X, y, X_target)``,
``predict``, and ``fit_many(tasks)`` -> one fitted clone per ``(X, y, X_target)`` task; ``hyper`` lists
the keyword arguments a grid may vary (their values / grids under ``classifier.<name>``)."""
from ..registry import Registry

ADAPTERS: Registry = Registry("adapter", "classifier.probes", __name__)
