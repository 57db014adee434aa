"""Per-domain mean centring: x <- x - mu_{domain(x)} (removes first-order domain statistics)."""
from __future__ import annotations

import numpy as np

from . import OPERATORS
from .base import PerDomain, f32


@OPERATORS.register("center")
class MeanCentering(PerDomain):
    scope = "domain"

    def fit(self, X, domains, sources=()):
        X, domains = np.asarray(X, np.float64), np.asarray(domains)
        self.stats_ = {d: X[domains == d].mean(axis=0) for d in np.unique(domains)}
        return self

    def _map(self, X, d):
        return X - f32(self.stats_[d])
