"""CMMD (Jayasumana et al., "Rethinking FID: Towards a Better Evaluation Metric for Image Generation",
CVPR 2024): 1000 x MMD^2 between L2-normalised CLIP embeddings, Gaussian kernel sigma = 10. Default
``vstat`` -- the reference implementation's estimator (google-research ``cmmd/distance.py``): the mean
over *every* kernel entry (diagonals included) of all images of both sets; its bootstrap replicates reuse
the kernel matrices (a resample is a vector w of multiplicities / n: w_a'K_aa w_a + w_b'K_bb w_b -
2 w_a'K_ab w_b). ``ustat`` (``gap.cmmd_estimator``): the unbiased estimator, averaged over subsets."""
from __future__ import annotations

import numpy as np

from ..operators.base import l2_normalize
from .base import GAP_METRICS, GapMetric, rbf, unbiased_mmd2

CMMD_SIGMA, CMMD_SCALE = 10.0, 1000.0


def cmmd(X: np.ndarray, Y: np.ndarray, estimator: str = "vstat") -> float:
    """CMMD of two sets of embeddings with the ``vstat`` (reference) or ``ustat`` (unbiased) estimator."""
    X, Y = l2_normalize(np.asarray(X, np.float64)), l2_normalize(np.asarray(Y, np.float64))
    Kxx, Kyy, Kxy = rbf(X, X, CMMD_SIGMA), rbf(Y, Y, CMMD_SIGMA), rbf(X, Y, CMMD_SIGMA)
    if estimator == "ustat":
        return CMMD_SCALE * unbiased_mmd2(Kxx, Kyy, Kxy)
    if estimator != "vstat":
        raise ValueError(f"gap.cmmd_estimator={estimator!r}: choose vstat or ustat")
    return CMMD_SCALE * float(Kxx.mean() + Kyy.mean() - 2 * Kxy.mean())


@GAP_METRICS.register("cmmd")
class CMMD(GapMetric):
    def __init__(self, gap, feats, rng):
        super().__init__(gap, feats, rng)
        self.family = "full_set" if gap.cmmd_estimator == "vstat" else "subsets"

    def full(self, a, A, b, B, rng):
        A, B = l2_normalize(np.asarray(A, np.float64)), l2_normalize(np.asarray(B, np.float64))
        Kaa, Kbb, Kab = (rbf(P, Q, CMMD_SIGMA) for P, Q in ((A, A), (B, B), (A, B)))
        value = CMMD_SCALE * float(Kaa.mean() + Kbb.mean() - 2 * Kab.mean())
        reps = []
        for _ in range(self.gap.n_boot):
            wa = np.bincount(rng.integers(0, len(A), len(A)), minlength=len(A)) / len(A)
            wb = np.bincount(rng.integers(0, len(B), len(B)), minlength=len(B)) / len(B)
            reps.append(CMMD_SCALE * float(wa @ Kaa @ wa + wb @ Kbb @ wb - 2 * wa @ Kab @ wb))
        return value, np.array(reps)

    def subset(self, A, B):
        return cmmd(A, B, "ustat")
