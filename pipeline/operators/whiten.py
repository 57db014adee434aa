"""Per-domain ZCA whitening: x <- Sigma_d^{-1/2} (x - mu_d), Sigma_d = (1 - s) S_d + s (tr S_d / p) I,
s = ``shrinkage`` in [0, 1] (Kessy, Lewin, Strimmer, "Optimal Whitening and Decorrelation", Am. Stat. 2018;
the whitening transform of RobustNet, Choi et al. CVPR 2021)."""
from __future__ import annotations

import numpy as np

from . import OPERATORS
from .base import PerDomain, f32, shrunk_cov, sym_power


@OPERATORS.register("whiten")
class Whitening(PerDomain):
    hyper = {"shrinkage": 0.1}
    bounds = {"shrinkage": (0.0, 1.0)}
    scope = "domain"

    def fit(self, X, domains, sources=()):
        X, domains = np.asarray(X, np.float64), np.asarray(domains)
        self.stats_ = {d: (X[domains == d].mean(axis=0), sym_power(shrunk_cov(X[domains == d], self.shrinkage), -0.5))
                       for d in np.unique(domains)}
        return self

    def _map(self, X, d):
        mu, W = map(f32, self.stats_[d])
        return (X - mu) @ W
