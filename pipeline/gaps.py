"""Domain-gap measures between two sets of features, each with an interval that contains it and says what it is.

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

Intervals (``ci_low``, ``ci_high``; ``bias``):

* full-set statistics (FID, CMMD ``vstat``): value +- z * SD of ``n_boot`` bootstrap replicates (the
  standard normal bootstrap interval, Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993,
  §13.2). It describes sampling variability at this sample size. Both statistics are biased upward
  in 1/n (Chong & Forsyth, "Effectively Unbiased FID and Inception Score and Where to Find Them",
  CVPR 2020), and resampling with replacement inflates them further, so percentiles of the replicates
  can miss the estimate altogether; ``bias`` = mean(replicates) - value is the bootstrap estimate of
  that bias (Efron & Tibshirani §10.2): value - bias is the bias-corrected figure.
* subset statistics (KID, MMD, CMMD ``ustat``): value +- z * SD over the subset estimates -- how much one
  subset's estimate varies (torch-fidelity reports this SD as ``kid_std``); ``bias`` is 0 (unbiased).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtri

from .errors import BadInputError
from .operators import l2_normalize
from .params import Gap


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


def _rbf(A: np.ndarray, B: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-_sq_dists(A, B) / (2 * sigma**2))


def rbf_mmd2(X: np.ndarray, Y: np.ndarray, sigma: float) -> float:
    """Unbiased MMD^2 with the Gaussian kernel exp(-||x-y||^2 / (2 sigma^2))."""
    return _unbiased_mmd2(_rbf(X, X, sigma), _rbf(Y, Y, sigma), _rbf(X, Y, sigma))


CMMD_SIGMA, CMMD_SCALE = 10.0, 1000.0


def cmmd(X: np.ndarray, Y: np.ndarray, estimator: str = "vstat") -> float:
    """CMMD: 1000 x MMD^2 (Gaussian kernel, sigma = 10) between L2-normalised embeddings. ``vstat``: mean
    over every kernel entry, as the reference implementation; ``ustat``: the unbiased estimator."""
    X, Y = l2_normalize(np.asarray(X, np.float64)), l2_normalize(np.asarray(Y, np.float64))
    if estimator == "ustat":
        return CMMD_SCALE * rbf_mmd2(X, Y, CMMD_SIGMA)
    if estimator != "vstat":
        raise ValueError(f"gap.cmmd_estimator={estimator!r}: choose vstat or ustat")
    return CMMD_SCALE * float(_rbf(X, X, CMMD_SIGMA).mean() + _rbf(Y, Y, CMMD_SIGMA).mean()
                              - 2 * _rbf(X, Y, CMMD_SIGMA).mean())


def inception_score(probs: np.ndarray) -> float:
    """exp(mean_x KL(p(y|x) || p(y))), p(y) the mean posterior; 1 <= IS <= number of classes."""
    p = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
    py = p.mean(axis=0, keepdims=True)
    return float(np.exp((p * (np.log(p) - np.log(py))).sum(axis=1).mean()))


GAP_COLUMNS = ["metric", "source", "target", "value", "ci_low", "ci_high", "bias"]
INTERVALS = {  # what ci_low / ci_high mean, recorded in reports/domain_gap.json (docs/methods.md says more)
    "full_set": "all images; value +- z SD of the bootstrap replicates; bias = bootstrap bias estimate",
    "subsets": "mean over subsets; value +- z SD over subsets (one subset's spread); unbiased",
}


def _halves(X: np.ndarray, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    idx = rng.permutation(len(X))
    return X[idx[:m]], X[idx[m:2 * m]]


def _subsets(X: np.ndarray, Y: np.ndarray | None, m: int, rng: np.random.Generator):
    """Two random subsets of ``m`` rows: disjoint halves of X when Y is None (a domain against itself)."""
    if Y is None:
        return _halves(X, m, rng)
    return X[rng.choice(len(X), m, replace=False)], Y[rng.choice(len(Y), m, replace=False)]


def _boot_fid(A, B, boot_a, boot_b, n_boot, rng):
    """FID of A vs B and its bootstrap replicates (``boot_*``: shared per-domain resample statistics)."""
    if boot_a is None or boot_b is None:  # a domain against itself: resample within each half
        boot_a = [gaussian_stats(A[rng.integers(0, len(A), len(A))]) for _ in range(n_boot)]
        boot_b = [gaussian_stats(B[rng.integers(0, len(B), len(B))]) for _ in range(n_boot)]
    return fid(A, B), np.array([frechet_distance(*sa, *sb) for sa, sb in zip(boot_a, boot_b)])


def _boot_cmmd_v(A, B, n_boot, rng):
    """CMMD (V-statistic) of A vs B and its bootstrap replicates, from the kernel matrices computed once:
    a resample is a vector of multiplicities w / n, and its V-statistic is w_a'K_aa w_a + w_b'K_bb w_b
    - 2 w_a'K_ab w_b."""
    A, B = l2_normalize(np.asarray(A, np.float64)), l2_normalize(np.asarray(B, np.float64))
    Kaa, Kbb, Kab = (_rbf(P, Q, CMMD_SIGMA) for P, Q in ((A, A), (B, B), (A, B)))
    value = CMMD_SCALE * float(Kaa.mean() + Kbb.mean() - 2 * Kab.mean())
    reps = []
    for _ in range(n_boot):
        wa = np.bincount(rng.integers(0, len(A), len(A)), minlength=len(A)) / len(A)
        wb = np.bincount(rng.integers(0, len(B), len(B)), minlength=len(B)) / len(B)
        reps.append(CMMD_SCALE * float(wa @ Kaa @ wa + wb @ Kbb @ wb - 2 * wa @ Kab @ wb))
    return value, np.array(reps)


def _pair_metric(metric: str, Xa: np.ndarray, Xb: np.ndarray | None, boot_a, boot_b, gap: Gap, m: int,
                 kernel_fn, rng: np.random.Generator) -> tuple[float, np.ndarray, str]:
    """(value, samples for the interval, interval kind) of one metric on one unordered pair (Xb None: self)."""
    if metric in ("fid", "cmmd") and (metric == "fid" or gap.cmmd_estimator == "vstat"):
        A, B = (Xa, Xb) if Xb is not None else _halves(Xa, len(Xa) // 2, rng)
        if metric == "fid":
            value, reps = _boot_fid(A, B, boot_a if Xb is not None else None, boot_b, gap.n_boot, rng)
        else:
            value, reps = _boot_cmmd_v(A, B, gap.n_boot, rng)
        return value, reps, "full_set"
    samples = np.array([kernel_fn(*_subsets(Xa, Xb, m, rng)) for _ in range(gap.n_subsets)])
    return float(samples.mean()), samples, "subsets"


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


def gap_table(X: np.ndarray, domains_of_x, domains: list[str], gap: Gap = Gap()) -> tuple[pd.DataFrame, dict]:
    """Every ordered pair of ``domains`` x every ``gap.metrics``, long format (``GAP_COLUMNS``), and a
    record of what the intervals mean and of the subset size used.

    A domain against itself is measured between two disjoint random halves (so it is ~0, not 0 by
    construction). Every statistic is symmetric, so each unordered pair is computed once. Each
    (pair, metric) job has its own seeded generator, so results do not depend on ``gap.n_jobs`` (jobs run
    in threads; numpy's linear algebra releases the GIL).
    """
    from joblib import Parallel, delayed
    from threadpoolctl import threadpool_limits

    unknown = set(gap.metrics) - {"fid", "kid", "mmd", "cmmd"}
    if unknown:
        raise ValueError(f"gap.metrics: unknown {sorted(unknown)}; choose from fid, kid, mmd, cmmd")
    dom = np.asarray(domains_of_x)
    feats = {d: np.asarray(X[dom == d], np.float64) for d in domains}
    uses_subsets = {"kid", "mmd"} & set(gap.metrics) or ("cmmd" in gap.metrics and gap.cmmd_estimator == "ustat")
    m, size_info = subset_size({d: len(f) for d, f in feats.items()}, gap) if uses_subsets else (0, None)
    seeds = np.random.SeedSequence(gap.seed)
    rng = np.random.default_rng(seeds.spawn(1)[0])
    z = float(ndtri((1 + gap.ci) / 2))
    kernel_fns = {"kid": polynomial_mmd2, "cmmd": lambda a, b: cmmd(a, b, "ustat")}
    if "mmd" in gap.metrics:
        pooled = np.concatenate([f[rng.choice(len(f), min(len(f), 250), replace=False)] for f in feats.values()])
        sigma = median_bandwidth(pooled, pooled[:0], seed=gap.seed)
        kernel_fns["mmd"] = lambda a, b: rbf_mmd2(a, b, sigma)
    boot = {d: None for d in domains}
    if "fid" in gap.metrics:  # per-domain bootstrap statistics, shared by every cross-domain pair
        for d, f in feats.items():
            boot[d] = [gaussian_stats(f[rng.integers(0, len(f), len(f))]) for _ in range(gap.n_boot)]

    jobs = [(a, b, metric) for i, a in enumerate(domains) for b in domains[i:] for metric in gap.metrics]
    with threadpool_limits(1 if gap.n_jobs != 1 else None):  # one BLAS thread per job: no oversubscription
        results = Parallel(n_jobs=gap.n_jobs, prefer="threads")(
            delayed(_pair_metric)(metric, feats[a], None if a == b else feats[b], boot[a], boot[b], gap, m,
                                  kernel_fns.get(metric), np.random.default_rng(s))
            for (a, b, metric), s in zip(jobs, seeds.spawn(len(jobs))))
    rows, kinds = [], {}
    for (a, b, metric), (value, samples, kind) in zip(jobs, results):
        half = z * float(samples.std(ddof=1))
        bias = float(samples.mean() - value) if kind == "full_set" else 0.0
        kinds[metric] = kind
        for s, t in {(a, b), (b, a)}:
            rows.append((metric, s, t, float(value), float(value - half), float(value + half), bias))
    order = {d: k for k, d in enumerate(domains)}
    df = pd.DataFrame(rows, columns=GAP_COLUMNS)
    df = df.sort_values(["metric", "source", "target"], key=lambda c: c.map(order) if c.name != "metric" else c,
                        ignore_index=True)
    info = {"ci": gap.ci, "intervals": {k: f"{INTERVALS[v]} (z = {z:.3f})" for k, v in kinds.items()},
            "subset_size": size_info, "cmmd_estimator": gap.cmmd_estimator}
    return df, info
