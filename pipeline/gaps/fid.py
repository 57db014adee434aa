"""FID (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", NeurIPS 2017): ||mu_x - mu_y||^2 + Tr(S_x + S_y - 2 (S_x S_y)^{1/2}), covariances with the
n - 1 denominator, on all images of both sets -- the number pytorch-fid / clean-fid compute."""
from __future__ import annotations

import numpy as np

from .base import GAP_METRICS
from .moments import MomentGap, gaussian_stats


def _sqrt_psd(S: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh(S)
    return (V * np.sqrt(np.clip(w, 0, None))) @ V.T


def bures2(S1: np.ndarray, S2: np.ndarray) -> float:
    """Tr(S1 + S2 - 2 (S1^{1/2} S2 S1^{1/2})^{1/2}): the squared Bures-Wasserstein distance of the
    covariances, FID's covariance term (its trace of the square root as sum sqrt(eig(.)), stable)."""
    A = _sqrt_psd(S1)
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(A @ S2 @ A), 0, None)).sum()
    return float(np.trace(S1) + np.trace(S2) - 2 * tr_sqrt)


def frechet_distance(mu1, S1, mu2, S2) -> float:
    return float(((mu1 - mu2) ** 2).sum()) + bures2(S1, S2)


def fid(X: np.ndarray, Y: np.ndarray) -> float:
    return frechet_distance(*gaussian_stats(X), *gaussian_stats(Y))


@GAP_METRICS.register("fid")
class FID(MomentGap):
    distance = staticmethod(frechet_distance)
