"""The gap-metric contract and the kernels the metrics share."""
from __future__ import annotations

import numpy as np

from ..params import Gap
from ..registry import Registry

GAP_METRICS: Registry = Registry("gap metric", "gap.metrics", __package__)  # one module per metric in this package


def sq_dists(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.clip((A * A).sum(1)[:, None] + (B * B).sum(1)[None] - 2 * A @ B.T, 0, None)


def rbf(A: np.ndarray, B: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-sq_dists(A, B) / (2 * sigma**2))


BLOCK = 2048  # rows per side of a kernel block: 2048 x 2048 float64 = 32 MiB, whatever the sets' sizes


def block_sums(kernel, A: np.ndarray, B: np.ndarray | None = None, W: np.ndarray | None = None,
               V: np.ndarray | None = None, block: int = BLOCK, prep=None) -> tuple[float, float, np.ndarray | None]:
    """Sums over the kernel matrix K = kernel(A, B) computed one ``block`` x ``block`` piece at a time, so
    memory is bounded whatever len(A) and len(B): (sum of every entry, trace (B None, else 0), and -- given
    weight rows W (r x len(A)) and V (r x len(B), default W) -- the r bilinear forms w_k' K v_k).
    B None: K(A, A), symmetric, so only the blocks on and above the diagonal are computed. Blocks are
    formed in float64, each side's rows passed through ``prep`` first when given (a row-wise map, e.g. L2
    normalisation, so it equals mapping the whole set first)."""
    sym = B is None
    B = A if sym else B
    V = W if V is None else V
    total, trace = 0.0, 0.0
    forms = None if W is None else np.zeros(len(W))
    prep = prep or (lambda M: M)
    for i in range(0, len(A), block):
        Ai = prep(np.asarray(A[i:i + block], np.float64))
        for j in range(i if sym else 0, len(B), block):
            K = kernel(Ai, Ai if sym and j == i else prep(np.asarray(B[j:j + block], np.float64)))
            twice = 2.0 if sym and j != i else 1.0  # an off-diagonal block stands for its transpose too
            total += twice * float(K.sum())
            if sym and j == i:
                trace += float(np.trace(K))
            if W is not None:
                f = ((W[:, i:i + block] @ K) * V[:, j:j + block]).sum(1)
                if twice == 2.0:  # w' K_ij v + w' K_ji v = w_i' K_ij v_j + v_i' K_ij w_j
                    f = f + ((V[:, i:i + block] @ K) * W[:, j:j + block]).sum(1)
                forms += f
    return total, trace, forms


def unbiased_mmd2_of(kernel, X: np.ndarray, Y: np.ndarray, block: int = BLOCK) -> float:
    """Unbiased MMD^2 of two sets under ``kernel`` (Gretton et al. 2012, eq. 3), blockwise:
    (sum K_xx - tr K_xx) / (m (m-1)) + (sum K_yy - tr K_yy) / (n (n-1)) - 2 mean K_xy."""
    m, n = len(X), len(Y)
    sxx, txx, _ = block_sums(kernel, X, block=block)
    syy, tyy, _ = block_sums(kernel, Y, block=block)
    sxy, _, _ = block_sums(kernel, X, Y, block=block)
    return float((sxx - txx) / (m * (m - 1)) + (syy - tyy) / (n * (n - 1)) - 2 * sxy / (m * n))


def unbiased_mmd2(Kxx: np.ndarray, Kyy: np.ndarray, Kxy: np.ndarray) -> float:
    """The same estimator from full kernel matrices (small sets; the tests' reference)."""
    m, n = len(Kxx), len(Kyy)
    return float((Kxx.sum() - np.trace(Kxx)) / (m * (m - 1)) + (Kyy.sum() - np.trace(Kyy)) / (n * (n - 1))
                 - 2 * Kxy.mean())


class GapMetric:
    """A domain-gap measure. ``family`` says how its value and interval are made:

    * ``full_set``: :meth:`full` -> (value on all images of both domains, ``gap.n_boot`` bootstrap
      replicates); interval value +- z SD(replicates), bias = mean(replicates) - value;
    * ``subsets``: :meth:`subset` -> one unbiased estimate on a pair of subsets of ``gap.subset_size``;
      value = mean over ``gap.n_subsets`` pairs, interval value +- z SD over them.

    The constructor sees every domain's features (``feats``) and the table's generator once, to prepare
    what all pairs share (a bandwidth, per-domain bootstrap statistics)."""

    name = ""
    family = "subsets"

    def __init__(self, gap: Gap, feats: dict[str, np.ndarray], rng: np.random.Generator):
        self.gap = gap

    def full(self, a: str | None, A: np.ndarray, b: str | None, B: np.ndarray, rng) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def subset(self, A: np.ndarray, B: np.ndarray) -> float:
        raise NotImplementedError
