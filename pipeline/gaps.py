"""Domain-gap measures between two sets of features, with bootstrap / subset confidence intervals.

* FID – Fréchet distance between Gaussians fitted to the features (Heusel et al., "GANs Trained by
  a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017):
      ||mu_x - mu_y||^2 + Tr(S_x + S_y - 2 (S_x S_y)^{1/2}).
* KID – unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over
  random subsets (Bińkowski et al., "Demystifying MMD GANs", ICLR 2018).
* MMD – unbiased MMD^2 with a Gaussian kernel exp(-||x-y||^2 / (2 s^2)), s = median pairwise
  distance of the pooled sample (Gretton et al., "A Kernel Two-Sample Test", JMLR 2012).
* CMMD – MMD on L2-normalised CLIP embeddings with a Gaussian kernel of fixed sigma = 10, scaled by
  1000 (Jayasumana et al., "Rethinking FID: Towards a Better Evaluation Metric for Image
  Generation", CVPR 2024).
* CLIP inception score – exp(E_x KL(p(y|x) || p(y))) on zero-shot CLIP posteriors (Salimans et al.,
  "Improved Techniques for Training GANs", NeurIPS 2016), per domain.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .operators import l2_normalize


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


def _unbiased_mmd2(Kxx: np.ndarray, Kyy: np.ndarray, Kxy: np.ndarray) -> float:
    m, n = len(Kxx), len(Kyy)
    return float((Kxx.sum() - np.trace(Kxx)) / (m * (m - 1)) + (Kyy.sum() - np.trace(Kyy)) / (n * (n - 1))
                 - 2 * Kxy.mean())


def polynomial_mmd2(X: np.ndarray, Y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 (one KID subset)."""
    d = X.shape[1]
    k = lambda A, B: (A @ B.T / d + 1) ** 3  # noqa: E731
    return _unbiased_mmd2(k(X, X), k(Y, Y), k(X, Y))


def _sq_dists(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.clip((A * A).sum(1)[:, None] + (B * B).sum(1)[None] - 2 * A @ B.T, 0, None)


def median_bandwidth(X: np.ndarray, Y: np.ndarray, max_points: int = 1000, seed: int = 0) -> float:
    """Median pairwise Euclidean distance of the pooled sample (the median heuristic)."""
    Z = np.concatenate([X, Y])
    if len(Z) > max_points:
        Z = Z[np.random.default_rng(seed).choice(len(Z), max_points, replace=False)]
    D = _sq_dists(Z, Z)
    return float(np.sqrt(np.median(D[np.triu_indices(len(Z), 1)])))


def rbf_mmd2(X: np.ndarray, Y: np.ndarray, sigma: float) -> float:
    """Unbiased MMD^2 with the Gaussian kernel exp(-||x-y||^2 / (2 sigma^2))."""
    g = 1.0 / (2 * sigma**2)
    return _unbiased_mmd2(np.exp(-g * _sq_dists(X, X)), np.exp(-g * _sq_dists(Y, Y)), np.exp(-g * _sq_dists(X, Y)))


def cmmd(X: np.ndarray, Y: np.ndarray, sigma: float = 10.0, scale: float = 1000.0) -> float:
    """CMMD: scale * MMD^2 (Gaussian kernel, sigma = 10) between L2-normalised embeddings."""
    return scale * rbf_mmd2(l2_normalize(X), l2_normalize(Y), sigma)


def inception_score(probs: np.ndarray) -> float:
    """exp(mean_x KL(p(y|x) || p(y))), p(y) the mean posterior; 1 <= IS <= number of classes."""
    p = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
    py = p.mean(axis=0, keepdims=True)
    return float(np.exp((p * (np.log(p) - np.log(py))).sum(axis=1).mean()))


def subset_estimates(fn, X: np.ndarray, Y: np.ndarray, n_subsets: int, subset_size: int,
                     rng: np.random.Generator) -> np.ndarray:
    """``fn`` on ``n_subsets`` pairs of random subsets (without replacement) of X and Y."""
    m = min(subset_size, len(X), len(Y))
    return np.array([fn(X[rng.choice(len(X), m, replace=False)], Y[rng.choice(len(Y), m, replace=False)])
                     for _ in range(n_subsets)])


def bootstrap_fid(X: np.ndarray, Y: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """FID on ``n_boot`` bootstrap resamples (with replacement) of both sets."""
    return np.array([fid(X[rng.integers(0, len(X), len(X))], Y[rng.integers(0, len(Y), len(Y))])
                     for _ in range(n_boot)])


GAP_COLUMNS = ["metric", "source", "target", "value", "ci_low", "ci_high"]
KERNEL_METRICS = ("kid", "mmd", "cmmd")


def _pairs(X: np.ndarray, Y: np.ndarray | None, size: int, rng: np.random.Generator):
    """Two random subsets: disjoint halves of X when Y is None (a domain against itself)."""
    if Y is None:
        m = min(size, len(X) // 2)
        idx = rng.permutation(len(X))
        return X[idx[:m]], X[idx[m:2 * m]]
    m = min(size, len(X), len(Y))
    return X[rng.choice(len(X), m, replace=False)], Y[rng.choice(len(Y), m, replace=False)]


def _pair_metric(metric: str, Xa: np.ndarray, Xb: np.ndarray | None, boot_a, boot_b, n_boot: int, n_subsets: int,
                 subset_size: int, kernel_fn, rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """(point estimate, samples for the CI) of one metric on one unordered pair (Xb None: self)."""
    if metric == "fid":
        if Xb is None:
            vals = np.array([fid(*_pairs(Xa, None, len(Xa), rng)) for _ in range(n_boot + 1)])
            return float(vals[0]), vals[1:]
        samples = np.array([frechet_distance(*sa, *sb) for sa, sb in zip(boot_a, boot_b)])
        return fid(Xa, Xb), samples
    samples = np.array([kernel_fn(*_pairs(Xa, Xb, subset_size, rng)) for _ in range(n_subsets)])
    return float(samples.mean()), samples


def gap_table(X: np.ndarray, domains_of_x, domains: list[str], metrics=("fid", "kid", "mmd", "cmmd"),
              n_boot: int = 20, n_subsets: int = 20, subset_size: int = 500, ci: float = 0.95,
              seed: int = 0, n_jobs: int = 2) -> pd.DataFrame:
    """Every ordered pair of domains x every metric, long format (``GAP_COLUMNS``).

    FID: point estimate on the full sets, CI from ``n_boot`` bootstrap resamples. Kernel metrics:
    mean over ``n_subsets`` random subset pairs of ``subset_size``, CI from their percentiles. A
    domain against itself is measured between two disjoint random halves (so it is ~0, not 0 by
    construction). All these statistics are symmetric, so each unordered pair is computed once.
    Each (pair, metric) job has its own seeded generator, so results do not depend on ``n_jobs``
    (jobs run in threads; numpy's linear algebra releases the GIL).
    """
    from joblib import Parallel, delayed
    from threadpoolctl import threadpool_limits

    unknown = set(metrics) - {"fid", *KERNEL_METRICS}
    if unknown:
        raise ValueError(f"unknown gap metrics {sorted(unknown)}; choose from fid, kid, mmd, cmmd")
    dom = np.asarray(domains_of_x)
    feats = {d: np.asarray(X[dom == d], np.float64) for d in domains}
    seeds = np.random.SeedSequence(seed)
    rng = np.random.default_rng(seeds.spawn(1)[0])
    lo_q, hi_q = 100 * (1 - ci) / 2, 100 * (1 + ci) / 2
    kernel_fns = {"kid": polynomial_mmd2, "cmmd": cmmd}
    if "mmd" in metrics:
        pooled = np.concatenate([f[rng.choice(len(f), min(len(f), 250), replace=False)] for f in feats.values()])
        sigma = median_bandwidth(pooled, pooled[:0], seed=seed)
        kernel_fns["mmd"] = lambda a, b: rbf_mmd2(a, b, sigma)
    boot = {d: None for d in domains}
    if "fid" in metrics:  # per-domain bootstrap statistics, shared by every pair
        for d, f in feats.items():
            boot[d] = [gaussian_stats(f[rng.integers(0, len(f), len(f))]) for _ in range(n_boot)]

    jobs = [(a, b, metric) for i, a in enumerate(domains) for b in domains[i:] for metric in metrics]
    with threadpool_limits(1 if n_jobs != 1 else None):  # one BLAS thread per job: no oversubscription
        results = Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(_pair_metric)(metric, feats[a], None if a == b else feats[b], boot[a], boot[b], n_boot,
                                  n_subsets, subset_size, kernel_fns.get(metric), np.random.default_rng(s))
            for (a, b, metric), s in zip(jobs, seeds.spawn(len(jobs))))
    rows = []
    for (a, b, metric), (value, samples) in zip(jobs, results):
        lo, hi = np.percentile(samples, [lo_q, hi_q]) if len(samples) else (np.nan, np.nan)
        for s, t in {(a, b), (b, a)}:
            rows.append((metric, s, t, float(value), float(lo), float(hi)))
    order = {d: k for k, d in enumerate(domains)}
    df = pd.DataFrame(rows, columns=GAP_COLUMNS)
    return df.sort_values(["metric", "source", "target"], key=lambda c: c.map(order) if c.name != "metric" else c,
                          ignore_index=True)
