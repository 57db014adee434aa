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


def unbiased_mmd2(Kxx: np.ndarray, Kyy: np.ndarray, Kxy: np.ndarray) -> float:
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
