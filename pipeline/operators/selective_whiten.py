"""Domain-selective whitening, in the spirit of RobustNet's instance-selective whitening (Choi et al.,
CVPR 2021): whiten only the ``n_directions`` directions whose covariance varies most across domains,
the top eigenvectors U of B = mean_d (Sigma_d - Sigma)^2 (Sigma the mean of the shrunk Sigma_d). Inside
span(U) each domain is whitened and recoloured with the pooled covariance; outside it only centred:

    x <- x - mu_d + U [(U^T Sigma U)^{1/2} (U^T Sigma_d U)^{-1/2} - I] U^T (x - mu_d).
"""
from __future__ import annotations

import numpy as np

from . import OPERATORS
from .base import PerDomain, f32, shrunk_cov, sym_power


@OPERATORS.register("selective_whiten")
class SelectiveWhitening(PerDomain):
    hyper = {"n_directions": 32, "shrinkage": 0.1}
    bounds = {"n_directions": (1, float("inf")), "shrinkage": (0.0, 1.0)}
    scope = "pair"

    def fit(self, X, domains, sources=()):
        X, domains = np.asarray(X, np.float64), np.asarray(domains)
        doms = np.unique(domains)
        covs = {d: shrunk_cov(X[domains == d], self.shrinkage) for d in doms}
        mean_cov = np.mean(list(covs.values()), axis=0)
        B = np.mean([(C - mean_cov) @ (C - mean_cov) for C in covs.values()], axis=0)
        w, V = np.linalg.eigh(B)
        self.directions_ = V[:, np.argsort(w)[::-1][: min(int(self.n_directions), X.shape[1])]]
        U = self.directions_
        recolor = sym_power(U.T @ mean_cov @ U, 0.5)
        k = U.shape[1]
        self.stats_ = {d: (X[domains == d].mean(axis=0), sym_power(U.T @ covs[d] @ U, -0.5) @ recolor - np.eye(k))
                       for d in doms}
        return self

    def _map(self, X, d):
        mu, M = map(f32, self.stats_[d])
        Z = X - mu
        U = f32(self.directions_)
        return Z + (Z @ U) @ M @ U.T
