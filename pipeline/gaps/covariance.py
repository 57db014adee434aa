"""Covariance-only domain gaps -- RobustNet's premise that second-order statistics carry style (Choi et
al., CVPR 2021) -- each on all images of both sets, covariances with the n - 1 denominator:

* ``coral``: ||C_s - C_t||_F^2 / (4 d^2), the CORAL loss (Sun & Saenko, "Deep CORAL", ECCV-W 2016);
* ``bures``: Tr(C_s + C_t - 2 (C_s^{1/2} C_t C_s^{1/2})^{1/2}), FID's covariance term alone (the squared
  Bures-Wasserstein distance; FID = ||mu_s - mu_t||^2 + bures);
* ``corr``: 1 - tr(R_s R_t) / (||R_s||_F ||R_t||_F) on the Pearson correlation matrices R, the
  correlation matrix distance (Herdin et al., VTC 2005): 0 for proportional, 1 for orthogonal ones;
  blind to per-feature scale.
"""
from __future__ import annotations

import numpy as np

from .base import GAP_METRICS
from .fid import bures2
from .moments import MomentGap


def coral_distance(mu1, S1, mu2, S2) -> float:
    d = len(S1)
    return float(((S1 - S2) ** 2).sum() / (4 * d * d))


def _correlation(S: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.clip(np.diag(S), 1e-300, None))
    return S / sd[:, None] / sd[None]


def correlation_matrix_distance(mu1, S1, mu2, S2) -> float:
    """NaN when a set has no variance at all (e.g. a bootstrap resample of one repeated row)."""
    R1, R2 = _correlation(S1), _correlation(S2)
    norms = np.linalg.norm(R1) * np.linalg.norm(R2)
    return float(1.0 - (R1 * R2).sum() / norms) if norms > 0 else float("nan")


@GAP_METRICS.register("coral")
class Coral(MomentGap):
    distance = staticmethod(coral_distance)


@GAP_METRICS.register("bures")
class Bures(MomentGap):
    distance = staticmethod(lambda mu1, S1, mu2, S2: bures2(S1, S2))


@GAP_METRICS.register("corr")
class CorrelationDistance(MomentGap):
    distance = staticmethod(correlation_matrix_distance)
