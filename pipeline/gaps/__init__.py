"""Domain-gap measures between two sets of features, each with an interval that contains it and says what
it is; one module per metric, registered in :data:`GAP_METRICS` (contract: :class:`~pipeline.gaps.base.GapMetric`).

* FID -- Fréchet distance between Gaussians fitted to the features (Heusel et al., "GANs Trained by
  a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017):
      ||mu_x - mu_y||^2 + Tr(S_x + S_y - 2 (S_x S_y)^{1/2}),  S with the n - 1 denominator,
  on all images of both sets: the number pytorch-fid / clean-fid compute.
* KID -- unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, mean over random
  subset pairs (Bińkowski et al., "Demystifying MMD GANs", ICLR 2018), as torch-fidelity computes it.
* MMD -- unbiased MMD^2 with a Gaussian kernel exp(-||x-y||^2 / (2 s^2)), s = median pairwise
  distance of the pooled sample (Gretton et al., "A Kernel Two-Sample Test", JMLR 2012).
* CMMD -- 1000 x MMD^2 on L2-normalised CLIP embeddings with a Gaussian kernel of sigma = 10
  (Jayasumana et al., "Rethinking FID: Towards a Better Evaluation Metric for Image Generation",
  CVPR 2024). Default ``vstat``: the reference implementation's estimator (google-research
  ``cmmd/distance.py``), the mean over *every* kernel entry (diagonals included) of all images of both
  sets; ``ustat``: the unbiased estimator (diagonals excluded), averaged over subset pairs like KID.
* CLIP inception score -- exp(E_x KL(p(y|x) || p(y))) on zero-shot CLIP posteriors (Salimans et al.,
  "Improved Techniques for Training GANs", NeurIPS 2016), per domain, on one split (all its images).

* Covariance gaps (``coral``, ``bures``, ``corr``): :mod:`pipeline.gaps.covariance`.

Intervals (``ci_low``, ``ci_high``; ``bias``) are confidence intervals for the population gap
(:func:`interval`):

* full-set statistics (FID, the covariance gaps, CMMD ``vstat``): biased upward in 1/n (Chong & Forsyth,
  "Effectively Unbiased FID and Inception Score and Where to Find Them", CVPR 2020), so an interval
  centred on the value misses the population gap (two Gaussians, d = 32, n = 500 a side: 0 of 50).
  The bias-corrected normal bootstrap interval, (value - bias) +- z SD of ``n_boot`` replicates with
  ``bias`` = mean(replicates) - value (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993,
  §10.2, §13.2); the value itself stays the number the reference implementations report.
* subset statistics (KID, MMD, CMMD ``ustat``): unbiased, ``bias`` 0; the SD over subsets
  (torch-fidelity's ``kid_std``) is one subset's spread, so it is scaled to the mean's:
  sqrt(1/B + (1 - 1/B) m/n) for B subsets of m rows out of n.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtri

from ..errors import BadInputError
from ..params import Gap
from .base import GAP_METRICS
from .cmmd import cmmd  # re-exported: the metrics' functions
from .fid import bures2, fid, frechet_distance
from .moments import DomainSets, gaussian_stats
from .kid import polynomial_mmd2
from .mmd import median_bandwidth, rbf_mmd2

__all__ = ["GAP_METRICS", "GAP_COLUMNS", "gap_table", "interval", "inception_score", "subset_size", "bures2", "cmmd", "fid",
           "frechet_distance", "gaussian_stats", "polynomial_mmd2", "median_bandwidth", "rbf_mmd2"]


def inception_score(probs: np.ndarray) -> float:
    """exp(mean_x KL(p(y|x) || p(y))), p(y) the mean posterior; 1 <= IS <= number of classes."""
    p = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
    py = p.mean(axis=0, keepdims=True)
    return float(np.exp((p * (np.log(p) - np.log(py))).sum(axis=1).mean()))


GAP_COLUMNS = ["metric", "source", "target", "value", "ci_low", "ci_high", "bias"]
INTERVALS = {  # what ci_low / ci_high mean, recorded in reports/domain_gap.json (docs/methods.md says more)
    "full_set": "all images; confidence interval for the population gap: (value - bias) +- z SD of the bootstrap "
                "replicates, bias = bootstrap bias estimate (the value is biased upward)",
    "subsets": "mean over subsets (unbiased); confidence interval for the population gap: value +- z SD over "
               "subsets x sqrt(1/B + (1 - 1/B) m/n) (B subsets of m rows from sets of >= n rows)",
}


def _halves(X: np.ndarray, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    idx = rng.permutation(len(X))
    return X[idx[:m]], X[idx[m:2 * m]]


def _subsets(X: np.ndarray, Y: np.ndarray | None, m: int, rng: np.random.Generator):
    """Two random subsets of ``m`` rows: disjoint halves of X when Y is None (a domain against itself)."""
    if Y is None:
        return _halves(X, m, rng)
    return X[rng.choice(len(X), m, replace=False)], Y[rng.choice(len(Y), m, replace=False)]


def _pair_metric(metric, a: str, Xa: np.ndarray, b: str | None, Xb: np.ndarray | None, gap: Gap, m: int,
                 rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """(value, samples for the interval) of one metric on one unordered pair (b None: a domain vs itself)."""
    if metric.family == "full_set":
        if Xb is None:  # two disjoint halves, each resampled on its own
            A, B = _halves(Xa, len(Xa) // 2, rng)
            return metric.full(None, A, None, B, rng)
        return metric.full(a, Xa, b, Xb, rng)
    samples = np.array([metric.subset(*_subsets(Xa, Xb, m, rng)) for _ in range(gap.n_subsets)])
    return float(samples.mean()), samples


def interval(family: str, value: float, samples: np.ndarray, z: float, m: int = 0, n: int = 0) -> tuple[float, float, float]:
    """(ci_low, ci_high, bias): a confidence interval for the population gap.

    * ``full_set``: the bias-corrected normal bootstrap interval, (value - bias) +- z SD(replicates),
      bias = mean(replicates) - value (Efron & Tibshirani 1993, §10.2, §13.2). These statistics are
      biased upward in 1/n, so the interval sits below the value when the bias is large.
    * ``subsets``: the value is a mean of B unbiased subset estimates of m rows drawn from sets of at
      least n rows; two such subsets share a fraction m/n of their rows, so the mean's variance is
      Var(one) (1/B + (1 - 1/B) m/n) (the linear term of the U-statistic; conservative when the gap is
      ~0): value +- z SD sqrt(1/B + (1 - 1/B) m / n)."""
    sd = float(samples.std(ddof=1))
    if family == "full_set":
        bias = float(samples.mean() - value)
        return value - bias - z * sd, value - bias + z * sd, bias
    B = len(samples)
    half = z * sd * float(np.sqrt(1.0 / B + (1.0 - 1.0 / B) * min(m / max(n, 1), 1.0)))
    return value - half, value + half, 0.0


def subset_size(sizes: dict[str, int], gap: Gap) -> tuple[int, dict]:
    """The subset size the kernel metrics use and what was asked: at most half the smallest domain (a
    domain against itself needs two disjoint subsets). Over it, refused unless ``gap.clamp_subset_size``."""
    smallest = min(sizes, key=sizes.get)
    limit = sizes[smallest] // 2
    if gap.subset_size <= limit:
        return gap.subset_size, {"asked": gap.subset_size, "used": gap.subset_size, "clamped": False}
    if not gap.clamp_subset_size:
        raise BadInputError(f"gap.subset_size={gap.subset_size} exceeds half the smallest domain ({smallest}: "
                            f"{sizes[smallest]} images, so at most {limit}): lower it, or set "
                            f"gap.clamp_subset_size: true to clamp it (recorded in the report)")
    if limit < 2:
        raise BadInputError(f"domain {smallest} has {sizes[smallest]} images: too few for two subsets of 2")
    return limit, {"asked": gap.subset_size, "used": limit, "clamped": True, "smallest_domain": smallest}


def gap_table(X: np.ndarray, domains_of_x, domains: list[str], gap: Gap = Gap(), intervals: bool = True
              ) -> tuple[pd.DataFrame, dict]:
    """Every ordered pair of ``domains`` x every ``gap.metrics``, long format (``GAP_COLUMNS``), and a
    record of what the intervals mean and of the subset size used. ``intervals=False``: the values only
    (the same numbers; no bootstrap replicate is drawn, ``ci_low`` / ``ci_high`` / ``bias`` are NaN) --
    for a caller that reads no interval (stage layerwise: 13 blocks of 768-d features).

    A domain against itself is measured between two disjoint random halves (so it is ~0, not 0 by
    construction). Every statistic is symmetric, so each unordered pair is computed once. Each
    (pair, metric) job has its own seeded generator, so results do not depend on ``gap.n_jobs`` (jobs run
    in threads; numpy's linear algebra releases the GIL).
    """
    from joblib import Parallel, delayed
    from threadpoolctl import threadpool_limits

    GAP_METRICS.check(gap.metrics)
    if not intervals:  # full-set metrics draw no replicate; subset metrics' value is their mean over subsets
        gap = gap.model_copy(update={"n_boot": 0})
    dom = np.asarray(domains_of_x)
    feats = DomainSets({d: np.asarray(X[dom == d]) for d in domains})  # as stored (float32): float64 by block
    seeds = np.random.SeedSequence(gap.seed)
    rng = np.random.default_rng(seeds.spawn(1)[0])
    metrics = {name: GAP_METRICS[name](gap, feats, rng) for name in gap.metrics}
    uses_subsets = any(m.family == "subsets" for m in metrics.values())
    m, size_info = subset_size({d: len(f) for d, f in feats.items()}, gap) if uses_subsets else (0, None)
    z = float(ndtri((1 + gap.ci) / 2))
    jobs = [(a, b, name) for i, a in enumerate(domains) for b in domains[i:] for name in gap.metrics]
    with threadpool_limits(1 if gap.n_jobs != 1 else None):  # one BLAS thread per job: no oversubscription
        results = Parallel(n_jobs=gap.n_jobs, prefer="threads")(
            delayed(_pair_metric)(metrics[name], a, feats[a], None if a == b else b, None if a == b else feats[b],
                                  gap, m, np.random.default_rng(s))
            for (a, b, name), s in zip(jobs, seeds.spawn(len(jobs))))
    rows = []
    for (a, b, name), (value, samples) in zip(jobs, results):
        low, high, bias = interval(metrics[name].family, value, samples, z, m, min(len(feats[a]), len(feats[b]))
                                   ) if intervals else (np.nan, np.nan, np.nan)
        for s, t in {(a, b), (b, a)}:
            rows.append((name, s, t, float(value), low, high, bias))
    order = {d: k for k, d in enumerate(domains)}
    df = pd.DataFrame(rows, columns=GAP_COLUMNS)
    df = df.sort_values(["metric", "source", "target"], key=lambda c: c.map(order) if c.name != "metric" else c,
                        ignore_index=True)
    info = {"ci": gap.ci, "intervals": {k: f"{INTERVALS[v.family]} (z = {z:.3f})" for k, v in metrics.items()},
            "subset_size": size_info, "cmmd_estimator": gap.cmmd_estimator}
    if "mmd" in metrics:
        info["mmd_sigma"] = metrics["mmd"].sigma  # the median-heuristic bandwidth (stage fewshot_gap reuses it)
    return df, info
