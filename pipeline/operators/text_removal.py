"""Source-free text subspace removal: project out the span of the centred domain-description vectors
{E_T(t_d) - mean_d E_T(t_d)} (rank <= n_domains - 1): x <- x - Q Q^T x, Q an orthonormal basis. Uses no
image (compare Hémadou et al. 2023 and Niu et al. 2022, which describe domains with text)."""
from __future__ import annotations

import numpy as np

from . import OPERATORS
from .base import Operator, l2_normalize


@OPERATORS.register("text_removal")
class TextSubspaceRemoval(Operator):
    hyper = {"normalize": True}
    scope, uses, text_kinds = "global", "text", ("domain",)

    def fit(self, X=None, domains=None, sources=()):
        T = np.stack([np.asarray(v, np.float64) for v in self.text["domain"].values()])
        if self.normalize:
            T = l2_normalize(T)
        T = T - T.mean(axis=0)
        U, s, _ = np.linalg.svd(T.T, full_matrices=False)
        self.basis_ = U[:, s > 1e-8 * s.max()]
        return self

    def transform(self, X, domains=None) -> np.ndarray:
        X = np.asarray(X, np.float64)
        return (X - (X @ self.basis_) @ self.basis_.T).astype(np.float32)
