"""CORAL (Sun, Feng, Saenko, "Return of Frustratingly Easy Domain Adaptation", AAAI 2016), mapping every
domain onto the source statistics:

    x <- C_s^{1/2} C_d^{-1/2} (x - mu_d) + mu_s,   C = Sigma + ``ridge`` * (tr Sigma / p) I.

Source rows are left unchanged; several sources are pooled into one source distribution. Conventions
that differ from the paper's algorithm (which recolours the *source* with the target covariance, adds
the identity and leaves means alone): the target is mapped onto the source, so one classifier trained
on raw source rows serves every target; the ridge is relative to tr(Sigma)/p, so one value fits any
feature scale; means are aligned too (CLIP domain shifts are mostly first-order).
"""
from __future__ import annotations

import numpy as np

from . import OPERATORS
from .base import PerDomain, f32, sym_power


@OPERATORS.register("coral")
class CORAL(PerDomain):
    hyper = {"ridge": 0.1}
    bounds = {"ridge": (0.0, float("inf"))}
    scope = "sources"

    def _cov(self, X):
        S = np.cov(X, rowvar=False)
        return S + self.ridge * np.trace(S) / S.shape[0] * np.eye(S.shape[0])

    def fit(self, X, domains, sources=()):
        X, domains = np.asarray(X, np.float64), np.asarray(domains)
        if not len(sources):
            raise ValueError("CORAL.fit needs the source domains")
        self.sources_ = list(sources)
        src = X[np.isin(domains, self.sources_)]
        mu_s, Cs_half = src.mean(axis=0), sym_power(self._cov(src), 0.5)
        self.stats_ = {}
        for d in np.unique(domains):
            if d in self.sources_:
                self.stats_[d] = None
                continue
            Xd = X[domains == d]
            self.stats_[d] = (Xd.mean(axis=0), sym_power(self._cov(Xd), -0.5) @ Cs_half, mu_s)
        return self

    def _map(self, X, d):
        if self.stats_[d] is None:
            return X
        mu_d, A, mu_s = map(f32, self.stats_[d])
        return (X - mu_d) @ A + mu_s
