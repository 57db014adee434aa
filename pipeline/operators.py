"""Feature-space operators (scikit-learn style: fit, then transform).

Text-guided translation (Hémadou, Vorobieva, Kijak, Jurie, "Généralisation de domaine par
translation dans l'espace CLIP", ORASIS 2023, §2): an image x of domain D_x is moved toward the
source domain along the text direction

    z = n_b(E_I(x)) + alpha * (n_b(E_T(t_src)) - n_b(E_T(t_x))),   then  z <- n_a(z)

where n_b / n_a are optional L2 normalisations before / after. With several source domains
E_T(t_src) is the mean of their description vectors. Source images have t_x = t_src, so the same
transform applied to training rows changes only their normalisation.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


def l2_normalize(X: np.ndarray, axis: int = -1) -> np.ndarray:
    n = np.linalg.norm(X, axis=axis, keepdims=True)
    return X / np.maximum(n, 1e-12)


class TextTranslation(TransformerMixin, BaseEstimator):
    """Translate image features by the text shift between a row's domain and the source domain(s).

    Parameters: ``domain_text`` {domain: E_T(t_domain)}, ``alpha`` (step size, 1 = the paper),
    ``normalize_before`` / ``normalize_after``.
    """

    def __init__(self, domain_text: dict[str, np.ndarray] | None = None, alpha: float = 1.0,
                 normalize_before: bool = False, normalize_after: bool = False):
        self.domain_text = domain_text
        self.alpha = alpha
        self.normalize_before = normalize_before
        self.normalize_after = normalize_after

    def _text(self, domain: str) -> np.ndarray:
        if not self.domain_text or domain not in self.domain_text:
            raise KeyError(f"no text description for domain {domain!r}")
        t = np.asarray(self.domain_text[domain], np.float64)
        return l2_normalize(t) if self.normalize_before else t

    def fit(self, X=None, y=None, source_domains: Sequence[str] = ()):
        if not len(source_domains):
            raise ValueError("TextTranslation.fit needs source_domains")
        self.source_domains_ = list(source_domains)
        self.t_src_ = np.mean([self._text(d) for d in self.source_domains_], axis=0)
        return self

    def shift(self, domain: str) -> np.ndarray:
        """alpha * (t_src - t_domain)."""
        return self.alpha * (self.t_src_ - self._text(domain))

    def transform(self, X: np.ndarray, domains: Sequence[str]) -> np.ndarray:
        X = np.asarray(X, np.float64)
        domains = np.asarray(domains)
        if len(domains) != len(X):
            raise ValueError(f"{len(X)} rows but {len(domains)} domain labels")
        Z = l2_normalize(X) if self.normalize_before else X.copy()
        for d in np.unique(domains):
            Z[domains == d] += self.shift(d)
        return (l2_normalize(Z) if self.normalize_after else Z).astype(np.float32)


# --------------------------------------------------------------------------- statistics operators
def _shrunk_cov(X: np.ndarray, shrinkage: float) -> np.ndarray:
    """(1 - s) S + s (tr S / p) I, s in [0, 1]: a convex blend toward a scaled identity (Ledoit-Wolf-style
    shrinkage; ``operators.whiten_shrinkage``). Compare :class:`CORAL`'s *added* ridge (``operators.coral_ridge``)."""
    S = np.cov(np.asarray(X, np.float64), rowvar=False)
    p = S.shape[0]
    return (1 - shrinkage) * S + shrinkage * np.trace(S) / p * np.eye(p)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float32)


def _sym_power(S: np.ndarray, power: float, eps: float = 1e-10) -> np.ndarray:
    w, V = np.linalg.eigh(S)
    return (V * np.clip(w, eps, None) ** power) @ V.T


class _PerDomain(TransformerMixin, BaseEstimator):
    """Base: ``fit(X, domains)`` learns per-domain statistics, ``transform(X, domains)`` maps rows
    of each domain with them. Which images ``fit`` sees (labels never) is stated by ``uses``."""

    uses = "unlabeled images of every domain"

    def _check(self, domains):
        missing = set(np.unique(domains)) - set(self.stats_)
        if missing:
            raise KeyError(f"{type(self).__name__} was not fit on domains {sorted(missing)}")

    def transform(self, X: np.ndarray, domains) -> np.ndarray:
        """Statistics are fit in float64; the maps run in float32, the features' precision."""
        X = np.asarray(X, np.float32)
        domains = np.asarray(domains)
        self._check(domains)
        Z = np.empty_like(X)
        for d in np.unique(domains):
            m = domains == d
            Z[m] = self._map(X[m], d)
        return Z


class MeanCentering(_PerDomain):
    """x <- x - mu_{domain(x)}: removes first-order domain statistics."""

    def fit(self, X, domains, y=None):
        X, domains = np.asarray(X, np.float64), np.asarray(domains)
        self.stats_ = {d: X[domains == d].mean(axis=0) for d in np.unique(domains)}
        return self

    def _map(self, X, d):
        return X - _f32(self.stats_[d])


class Whitening(_PerDomain):
    """Per-domain ZCA whitening: x <- Sigma_d^{-1/2} (x - mu_d), Sigma_d shrunk toward
    (tr Sigma_d / p) I by ``shrinkage`` (Kessy, Lewin, Strimmer, "Optimal Whitening and
    Decorrelation", Am. Stat. 2018; the whitening transform of RobustNet, Choi et al. CVPR 2021)."""

    def __init__(self, shrinkage: float = 0.1):
        self.shrinkage = shrinkage

    def fit(self, X, domains, y=None):
        X, domains = np.asarray(X, np.float64), np.asarray(domains)
        self.stats_ = {d: (X[domains == d].mean(axis=0), _sym_power(_shrunk_cov(X[domains == d], self.shrinkage), -0.5))
                       for d in np.unique(domains)}
        return self

    def _map(self, X, d):
        mu, W = map(_f32, self.stats_[d])
        return (X - mu) @ W


class CORAL(_PerDomain):
    """CORAL (Sun, Feng, Saenko, "Return of Frustratingly Easy Domain Adaptation", AAAI 2016),
    mapping every domain onto the source statistics:
        x <- C_s^{1/2} C_d^{-1/2} (x - mu_d) + mu_s,   C = Sigma + ``ridge`` * (tr Sigma / p) I.
    Source rows are left unchanged. Several sources are pooled into one source distribution.

    Two conventions differ from the paper's algorithm, which recolours the *source* features with the
    target covariance, adds the identity as its ridge and leaves means alone: here the target is
    mapped onto the source (so that one classifier trained on raw source rows serves every target),
    the ridge is relative to the average variance tr(Sigma)/p (scale-free, so one value fits any
    feature scale), and means are aligned too (CLIP domain shifts are mostly first-order)."""

    def __init__(self, ridge: float = 0.1):
        self.ridge = ridge

    def fit(self, X, domains, y=None, source_domains=()):
        X, domains = np.asarray(X, np.float64), np.asarray(domains)
        if not len(source_domains):
            raise ValueError("CORAL.fit needs source_domains")
        self.source_domains_ = list(source_domains)
        src = X[np.isin(domains, self.source_domains_)]
        mu_s, Cs_half = src.mean(axis=0), _sym_power(self._cov(src), 0.5)
        self.stats_ = {}
        for d in np.unique(domains):
            if d in self.source_domains_:
                self.stats_[d] = None
                continue
            Xd = X[domains == d]
            self.stats_[d] = (Xd.mean(axis=0), _sym_power(self._cov(Xd), -0.5) @ Cs_half, mu_s)
        return self

    def _cov(self, X):
        S = np.cov(X, rowvar=False)
        return S + self.ridge * np.trace(S) / S.shape[0] * np.eye(S.shape[0])

    def _map(self, X, d):
        if self.stats_[d] is None:
            return X
        mu_d, A, mu_s = map(_f32, self.stats_[d])
        return (X - mu_d) @ A + mu_s


class SelectiveWhitening(_PerDomain):
    """Domain-selective whitening, in the spirit of RobustNet's instance-selective whitening
    (Choi et al., CVPR 2021): whiten only the ``n_directions`` directions whose covariance varies
    most across domains. Those are the top eigenvectors U of B = mean_d (Sigma_d - Sigma)^2, where
    Sigma is the mean of the Sigma_d. Inside span(U), each domain is whitened and recoloured
    with the pooled covariance. Outside it, features are only centred:
        x <- x - mu_d + U [(U^T Sigma U)^{1/2} (U^T Sigma_d U)^{-1/2} - I] U^T (x - mu_d)."""

    def __init__(self, n_directions: int = 32, shrinkage: float = 0.1):
        self.n_directions = n_directions
        self.shrinkage = shrinkage

    def fit(self, X, domains, y=None):
        X, domains = np.asarray(X, np.float64), np.asarray(domains)
        doms = np.unique(domains)
        covs = {d: _shrunk_cov(X[domains == d], self.shrinkage) for d in doms}
        mean_cov = np.mean(list(covs.values()), axis=0)
        B = np.mean([(C - mean_cov) @ (C - mean_cov) for C in covs.values()], axis=0)
        w, V = np.linalg.eigh(B)
        self.directions_ = V[:, np.argsort(w)[::-1][: self.n_directions]]
        U = self.directions_
        recolor = _sym_power(U.T @ mean_cov @ U, 0.5)
        k = U.shape[1]
        self.stats_ = {d: (X[domains == d].mean(axis=0), _sym_power(U.T @ covs[d] @ U, -0.5) @ recolor - np.eye(k))
                       for d in doms}
        return self

    def _map(self, X, d):
        mu, M = map(_f32, self.stats_[d])
        Z = X - mu
        U = _f32(self.directions_)
        return Z + (Z @ U) @ M @ U.T


class TextSubspaceRemoval(TransformerMixin, BaseEstimator):
    """Source-free: project out the subspace spanned by the centred domain-description text
    vectors {E_T(t_d) - mean_d E_T(t_d)} (rank <= n_domains - 1). x <- x - Q Q^T x, where Q is an
    orthonormal basis. Uses no image at all (compare Hémadou et al. 2023 and Niu et al. 2022,
    which use text to describe domains)."""

    uses = "domain descriptions only (no images)"

    def __init__(self, domain_text: dict[str, np.ndarray] | None = None, normalize: bool = True):
        self.domain_text = domain_text
        self.normalize = normalize

    def fit(self, X=None, domains=None, y=None):
        T = np.stack([np.asarray(v, np.float64) for v in self.domain_text.values()])
        if self.normalize:
            T = l2_normalize(T)
        T = T - T.mean(axis=0)
        U, s, _ = np.linalg.svd(T.T, full_matrices=False)
        self.basis_ = U[:, s > 1e-8 * s.max()]
        return self

    def transform(self, X, domains=None) -> np.ndarray:
        X = np.asarray(X, np.float64)
        return (X - (X @ self.basis_) @ self.basis_.T).astype(np.float32)


TextTranslation.uses = "domain descriptions only (no images)"
