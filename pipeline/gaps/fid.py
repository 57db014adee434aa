"""FID (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", NeurIPS 2017): ||mu_x - mu_y||^2 + Tr(S_x + S_y - 2 (S_x S_y)^{1/2}), covariances with the
n - 1 denominator, on all images of both sets -- the number pytorch-fid / clean-fid compute."""
from __future__ import annotations

import numpy as np

from .base import GAP_METRICS, GapMetric


def _sqrt_psd(S: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh(S)
    return (V * np.sqrt(np.clip(w, 0, None))) @ V.T


def gaussian_stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, np.float64)
    return X.mean(axis=0), np.cov(X, rowvar=False)


def frechet_distance(mu1, S1, mu2, S2) -> float:
    """Tr((S1 S2)^{1/2}) as sum sqrt(eig(S1^{1/2} S2 S1^{1/2})) (symmetric PSD, numerically stable)."""
    A = _sqrt_psd(S1)
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(A @ S2 @ A), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(S1) + np.trace(S2) - 2 * tr_sqrt)


def fid(X: np.ndarray, Y: np.ndarray) -> float:
    return frechet_distance(*gaussian_stats(X), *gaussian_stats(Y))


@GAP_METRICS.register("fid")
class FID(GapMetric):
    family = "full_set"

    def __init__(self, gap, feats, rng):
        super().__init__(gap, feats, rng)  # per-domain bootstrap statistics, shared by every cross pair
        self.boot = {d: [gaussian_stats(f[rng.integers(0, len(f), len(f))]) for _ in range(gap.n_boot)]
                     for d, f in feats.items()}

    def full(self, a, A, b, B, rng):
        boot_a, boot_b = (self.boot[a], self.boot[b]) if a and b else (
            [gaussian_stats(S[rng.integers(0, len(S), len(S))]) for _ in range(self.gap.n_boot)] for S in (A, B))
        return fid(A, B), np.array([frechet_distance(*sa, *sb) for sa, sb in zip(boot_a, boot_b)])
