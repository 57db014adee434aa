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
