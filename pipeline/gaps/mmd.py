"""MMD (Gretton et al., "A Kernel Two-Sample Test", JMLR 2012): unbiased MMD^2 with the Gaussian kernel
exp(-||x-y||^2 / (2 s^2)), s = the median pairwise distance of a pooled sample of every domain."""
from __future__ import annotations

import numpy as np

from .base import GAP_METRICS, GapMetric, rbf, sq_dists, unbiased_mmd2_of


def median_bandwidth(X: np.ndarray, Y: np.ndarray, max_points: int = 1000, seed: int = 0) -> float:
    """Median pairwise Euclidean distance of the pooled sample (the median heuristic)."""
    Z = np.concatenate([X, Y])
    if len(Z) > max_points:
        Z = Z[np.random.default_rng(seed).choice(len(Z), max_points, replace=False)]
    D = sq_dists(Z, Z)
    return float(np.sqrt(np.median(D[np.triu_indices(len(Z), 1)])))


def rbf_mmd2(X: np.ndarray, Y: np.ndarray, sigma: float) -> float:
    """Unbiased MMD^2 with the Gaussian kernel exp(-||x-y||^2 / (2 sigma^2)), blockwise."""
    return unbiased_mmd2_of(lambda A, B: rbf(A, B, sigma), X, Y)


@GAP_METRICS.register("mmd")
class MMD(GapMetric):
    def __init__(self, gap, feats, rng):
        super().__init__(gap, feats, rng)
        pooled = np.concatenate([f[rng.choice(len(f), min(len(f), 250), replace=False)] for f in feats.values()]).astype(np.float64)
        self.sigma = median_bandwidth(pooled, pooled[:0], seed=gap.seed)

    def subset(self, A, B):
        return rbf_mmd2(A, B, self.sigma)
