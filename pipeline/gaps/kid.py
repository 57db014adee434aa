"""KID (Bińkowski, Sutherland, Arbel, Gretton, "Demystifying MMD GANs", ICLR 2018): unbiased MMD^2 with
k(x, y) = (x.y / d + 1)^3, mean over random subset pairs -- as torch-fidelity computes it."""
from __future__ import annotations

import numpy as np

from .base import GAP_METRICS, GapMetric, unbiased_mmd2_of


def polynomial_mmd2(X: np.ndarray, Y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 (one KID subset), blockwise."""
    d = X.shape[1]
    return unbiased_mmd2_of(lambda A, B: (A @ B.T / d + 1) ** 3, X, Y)


@GAP_METRICS.register("kid")
class KID(GapMetric):
    def subset(self, A, B):
        return polynomial_mmd2(A, B)
