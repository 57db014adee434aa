"""KID (Bińkowski, Sutherland, Arbel, Gretton, "Demystifying MMD GANs", ICLR 2018): unbiased MMD^2 with
k(x, y) = (x.y / d + 1)^3, mean over random subset pairs -- as torch-fidelity computes it."""
from __future__ import annotations

import numpy as np

from .base import GAP_METRICS, GapMetric, unbiased_mmd2_of


def cubic_kernel(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """KID's kernel k(x, y) = (x.y / d + 1)^3."""
    return (A @ B.T / A.shape[1] + 1) ** 3


def polynomial_mmd2(X: np.ndarray, Y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 (one KID subset), blockwise."""
    return unbiased_mmd2_of(cubic_kernel, X, Y)


@GAP_METRICS.register("kid")
class KID(GapMetric):
    def subset(self, A, B):
        return polynomial_mmd2(A, B)
