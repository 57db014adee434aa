"""The shared machinery of the gaps computed from each set's first two moments (FID and the covariance gaps):
a distance between (mean, covariance) pairs, on all images of both sets, with ``gap.n_boot`` bootstrap
replicates of it from per-domain resampled moments (shared by every pair that domain is in, and by every
moment gap of one table: the same resamples, drawn from their own generator seeded by ``gap.seed``)."""
from __future__ import annotations

import numpy as np

from .base import GapMetric


def gaussian_stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance with the n - 1 denominator) in float64."""
    X = np.asarray(X, np.float64)
    return X.mean(axis=0), np.cov(X, rowvar=False)


def resampled_stats(X: np.ndarray, n_boot: int, rng: np.random.Generator) -> list:
    """``n_boot`` bootstrap replicates of :func:`gaussian_stats` (rows drawn with replacement)."""
    return [gaussian_stats(X[rng.integers(0, len(X), len(X))]) for _ in range(n_boot)]


class DomainSets(dict):
    """{domain: features} of one gap table, carrying what its moment gaps share: each domain's moments and
    their bootstrap replicates."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.replicates: dict = {}


def shared_replicates(feats: dict, n_boot: int, seed: int) -> dict:
    """{domain: ``n_boot`` replicates of its (mean, covariance)}, drawn from a generator seeded by ``seed``;
    computed once per :class:`DomainSets` (every moment gap of a table reuses them), afresh for a plain dict."""
    cache = getattr(feats, "replicates", None)
    key = (n_boot, seed)
    if cache is not None and key in cache:
        return cache[key]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    out = {d: resampled_stats(f, n_boot, rng) for d, f in feats.items()}
    if cache is not None:
        cache[key] = out
    return out


def shared_stats(feats: dict) -> dict:
    """{domain: :func:`gaussian_stats` of all its rows}, once per :class:`DomainSets` (not once per pair and
    metric), afresh for a plain dict."""
    cache = getattr(feats, "replicates", None)
    if cache is not None and "full" in cache:
        return cache["full"]
    out = {d: gaussian_stats(f) for d, f in feats.items()}
    if cache is not None:
        cache["full"] = out
    return out


class MomentGap(GapMetric):
    """A ``full_set`` gap that is a function :meth:`distance` of two (mean, covariance) pairs."""

    family = "full_set"

    def __init__(self, gap, feats, rng):
        super().__init__(gap, feats, rng)
        self.stats, self.boot = shared_stats(feats), shared_replicates(feats, gap.n_boot, gap.seed)

    @staticmethod
    def distance(mu1, S1, mu2, S2) -> float:
        raise NotImplementedError

    def full(self, a, A, b, B, rng):
        boot_a, boot_b = (self.boot[a], self.boot[b]) if a and b else (
            resampled_stats(S, self.gap.n_boot, rng) for S in (A, B))
        sa, sb = (self.stats[a], self.stats[b]) if a and b else (gaussian_stats(A), gaussian_stats(B))
        value = self.distance(*sa, *sb)
        return value, np.array([self.distance(*sa, *sb) for sa, sb in zip(boot_a, boot_b)])
