"""CMMD (Jayasumana et al., "Rethinking FID: Towards a Better Evaluation Metric for Image Generation",
CVPR 2024): 1000 x MMD^2 between L2-normalised CLIP embeddings, Gaussian kernel sigma = 10. Default
``vstat`` -- the reference implementation's estimator (google-research ``cmmd/distance.py``): the mean
over *every* kernel entry (diagonals included) of all images of both sets; its bootstrap replicates reuse
the kernel matrices (a resample is a vector w of multiplicities / n: w_a'K_aa w_a + w_b'K_bb w_b -
2 w_a'K_ab w_b). ``ustat`` (``gap.cmmd_estimator``): the unbiased estimator, averaged over subsets.
Every kernel sum is taken block by block (:func:`~pipeline.gaps.base.block_sums`): two 170k-image
domains never build a 170k x 170k matrix, and the value and every bootstrap replicate come from one
pass over each of the three kernel matrices."""
from __future__ import annotations

import numpy as np

from ..operators.base import l2_normalize
from .base import GAP_METRICS, GapMetric, block_sums, rbf, unbiased_mmd2_of

CMMD_SIGMA, CMMD_SCALE = 10.0, 1000.0


def cmmd(X: np.ndarray, Y: np.ndarray, estimator: str = "vstat") -> float:
    """CMMD of two sets of embeddings with the ``vstat`` (reference) or ``ustat`` (unbiased) estimator."""
    if estimator == "ustat":
        X, Y = l2_normalize(np.asarray(X, np.float64)), l2_normalize(np.asarray(Y, np.float64))
        return CMMD_SCALE * unbiased_mmd2_of(_kernel, X, Y)
    if estimator != "vstat":
        raise ValueError(f"gap.cmmd_estimator={estimator!r}: choose vstat or ustat")
    return CMMD_SCALE * vstat(X, Y)[0]


def _kernel(A, B):
    return rbf(A, B, CMMD_SIGMA)


def vstat(A: np.ndarray, B: np.ndarray, wa: np.ndarray | None = None, wb: np.ndarray | None = None):
    """(mean K_aa + mean K_bb - 2 mean K_ab, and for weight rows wa (r x len(A)), wb (r x len(B)) the r
    replicates wa'K_aa wa + wb'K_bb wb - 2 wa'K_ab wb), rows L2-normalised in float64 block by block."""
    saa, _, faa = block_sums(_kernel, A, W=wa, prep=l2_normalize)
    sbb, _, fbb = block_sums(_kernel, B, W=wb, prep=l2_normalize)
    sab, _, fab = block_sums(_kernel, A, B, W=wa, V=wb, prep=l2_normalize)
    value = saa / len(A) ** 2 + sbb / len(B) ** 2 - 2 * sab / (len(A) * len(B))
    return float(value), (None if wa is None else faa + fbb - 2 * fab)


@GAP_METRICS.register("cmmd")
class CMMD(GapMetric):
    def __init__(self, gap, feats, rng):
        super().__init__(gap, feats, rng)
        self.family = "full_set" if gap.cmmd_estimator == "vstat" else "subsets"

    def full(self, a, A, b, B, rng):
        wa, wb = np.empty((self.gap.n_boot, len(A))), np.empty((self.gap.n_boot, len(B)))
        for r in range(self.gap.n_boot):  # resamples as multiplicities / n, drawn in the reference order
            wa[r] = np.bincount(rng.integers(0, len(A), len(A)), minlength=len(A)) / len(A)
            wb[r] = np.bincount(rng.integers(0, len(B), len(B)), minlength=len(B)) / len(B)
        value, reps = vstat(A, B, wa, wb)
        return CMMD_SCALE * value, CMMD_SCALE * reps

    def subset(self, A, B):
        return cmmd(A, B, "ustat")
