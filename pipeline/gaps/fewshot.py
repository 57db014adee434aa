"""Few-shot domain gaps: each gap measured from k target images against all of the source's, over repeated
draws of the k (the domain-gap proposal of seed 002: "measure domain distance between few-shot samples
and a target domain"). Every estimate carries a confidence interval for the population gap:

* moment gaps (``fid``, ``bures``, ``coral``, ``corr``): the bias-corrected normal bootstrap interval
  (:func:`pipeline.gaps.interval`), both sets resampled, from k >= ``MIN_K_PER_DIM`` x d target rows
  (below, the estimate has no interval: NaN); below d + 1 target rows the target covariance is singular
  and the square-root trace comes from the k x k matrix Z S_s Z^T / (k - 1) (Z the centred rows), which
  has the same non-zero eigenvalues as S_s^{1/2} S_t S_s^{1/2};
* kernel gaps (``kid``, ``mmd``, ``cmmd``): the unbiased MMD^2 between a random source subset of
  ``gap.subset_size`` rows and the k target rows, with the two-sample jackknife standard error of a
  U-statistic (Arvesen, Ann. Math. Statist. 1969), value +- t_{k-1} SE -- leave-one-out values from the
  kernel matrices' row sums, no refit.

``k = all`` (always included: the reference) is the full-sample value (``gap_table``'s). :func:`ranking_agreement` says, per metric and k,
how well the k-sample gaps rank the ordered pairs as the full-sample ones do (Spearman);
:func:`pipeline.diagnostics.agreement_with_drops` how well they rank them as the accuracy drop does."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ParamsError
from .base import rbf
from .cmmd import CMMD_SCALE
from .cmmd import _kernel as cmmd_kernel
from .covariance import coral_distance, correlation_matrix_distance
from .fid import _sqrt_psd
from .kid import cubic_kernel
from .moments import gaussian_stats, resampled_stats

MOMENT = {"fid", "bures", "coral", "corr"}
# The smallest k / d at which a moment gap's bootstrap interval covered the population value at about its
# nominal rate (two Gaussians, d = 8 and 16, 100 draws per k; docs/benchmarks.md). Below it the target
# covariance is singular or nearly so, and neither the bootstrap nor a jackknife covered (FID at k = 5,
# d = 16: 2 % and 37 %): the estimate is reported without an interval (NaN), never with a wrong one.
MIN_K_PER_DIM = {"fid": 2, "bures": 2, "coral": 2, "corr": 6}
KERNEL = {"kid", "mmd", "cmmd"}
FEWSHOT_COLUMNS = ["metric", "source", "target", "k", "draw", "value", "ci_low", "ci_high", "bias"]


def _tr_sqrt(A: np.ndarray, Y: np.ndarray) -> float:
    """Tr((A S_Y A)^{1/2}) for A = S_s^{1/2} and the rows Y (covariance S_Y, n - 1 denominator); through the
    k x k Gram of the centred rows when k <= d."""
    Z = Y - Y.mean(0)
    k, d = Z.shape
    M = (Z @ A) @ (Z @ A).T / (k - 1) if k <= d else A @ np.cov(Y, rowvar=False) @ A
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(M), 0, None)).sum())


class _Source:
    """A source domain's moments and their bootstrap replicates, each with S^{1/2} (computed once)."""

    def __init__(self, X: np.ndarray, n_boot: int, rng: np.random.Generator, need_sqrt: bool):
        stats = [gaussian_stats(X)] + resampled_stats(X, n_boot, rng)
        self.stats = [(mu, S, _sqrt_psd(S) if need_sqrt else None) for mu, S in stats]


def moment_gap(metric: str, src: tuple, Y: np.ndarray) -> float:
    """``metric`` between a source's (mu, S, S^{1/2}) and the rows Y."""
    mu, S, A = src
    Y = np.asarray(Y, np.float64)
    if metric in ("fid", "bures"):
        bures = float(np.trace(S)) + float(np.trace(np.cov(Y, rowvar=False))) - 2 * _tr_sqrt(A, Y)
        return bures + (float(((mu - Y.mean(0)) ** 2).sum()) if metric == "fid" else 0.0)
    mu_y, S_y = gaussian_stats(Y)
    return (coral_distance if metric == "coral" else correlation_matrix_distance)(mu, S, mu_y, S_y)


def _kernel_fn(metric: str, sigma: float | None):
    from ..operators.base import l2_normalize

    if metric == "kid":
        return cubic_kernel, (lambda M: M), 1.0
    if metric == "mmd":
        return lambda A, B: rbf(A, B, sigma), (lambda M: M), 1.0
    return cmmd_kernel, l2_normalize, CMMD_SCALE


def mmd2_jackknife(kernel, X: np.ndarray, Y: np.ndarray) -> tuple[float, float]:
    """(unbiased MMD^2, its two-sample jackknife standard error), from the three kernel matrices' row sums:
    dropping x_i leaves (S_xx - 2 r_i) / ((m-1)(m-2)) + S_yy / (n(n-1)) - 2 (S_xy - c_i) / ((m-1) n)."""
    m, n = len(X), len(Y)
    Kxx, Kyy, Kxy = kernel(X, X), kernel(Y, Y), kernel(X, Y)
    np.fill_diagonal(Kxx, 0.0)
    np.fill_diagonal(Kyy, 0.0)
    rx, ry, cx, cy = Kxx.sum(1), Kyy.sum(1), Kxy.sum(1), Kxy.sum(0)
    sxx, syy, sxy = rx.sum(), ry.sum(), cx.sum()
    value = sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * sxy / (m * n)
    drop_x = (sxx - 2 * rx) / ((m - 1) * (m - 2)) + syy / (n * (n - 1)) - 2 * (sxy - cx) / ((m - 1) * n)
    drop_y = sxx / (m * (m - 1)) + (syy - 2 * ry) / ((n - 1) * (n - 2)) - 2 * (sxy - cy) / (m * (n - 1))
    var = (m - 1) / m * ((drop_x - drop_x.mean()) ** 2).sum() + (n - 1) / n * ((drop_y - drop_y.mean()) ** 2).sum()
    return float(value), float(np.sqrt(var))


def jackknife_interval(value: float, se: float, ci: float, k: int) -> tuple[float, float]:
    """value +- t SE with Student's t at k - 1 degrees of freedom (k the smaller sample: the jackknife
    variance rests on its k leave-one-out values; Efron & Tibshirani 1993, §11.5)."""
    from scipy.stats import t

    q = float(t.ppf((1 + ci) / 2, max(k - 1, 1)))
    return value - q * se, value + q * se


def fewshot_table(X: np.ndarray, dom, domains: list[str], fs, gap, full: pd.DataFrame, sigma: float | None = None,
                  progress: bool = False) -> pd.DataFrame:
    """Every ordered cross pair x ``fs.metrics`` x ``fs.k`` x ``fs.draws`` draws (``FEWSHOT_COLUMNS``;
    ``fs``: the ``fewshot`` params); ``full``: ``gap_table``'s output, the value at ``k = all``; ``gap``:
    its params (ci, subset_size); ``sigma``: the MMD bandwidth it used."""
    from scipy.special import ndtri
    from tqdm import tqdm

    from . import interval

    ks, draws = list(fs.k), fs.draws
    metrics = list(fs.metrics) if fs.metrics else [m for m in dict.fromkeys(full["metric"]) if m in MOMENT | KERNEL]
    unknown = sorted(set(metrics) - MOMENT - KERNEL)
    if unknown:
        raise ParamsError(f"fewshot.metrics: {unknown[0]!r} has no few-shot estimator; choose from {sorted(MOMENT | KERNEL)}")
    missing = sorted(set(metrics) - set(full["metric"]))
    if missing:
        raise ParamsError(f"fewshot.metrics: {missing[0]!r} is not in gap.metrics, which gives its full-sample value; add it there")
    if "mmd" in metrics and sigma is None:
        raise ParamsError("fewshot.metrics: mmd needs the bandwidth stage domain_gap used (reports/domain_gap.json: mmd_sigma)")
    z = float(ndtri((1 + gap.ci) / 2))
    dom = np.asarray(dom)
    feats = {d: np.asarray(X[dom == d]) for d in domains}  # as stored; each subset drawn is cast to float64
    rng = np.random.default_rng(np.random.SeedSequence([fs.seed, 3]))
    moment = [m for m in metrics if m in MOMENT]
    dim = X.shape[1]
    boot = fs.n_boot if any(k != "all" and k >= MIN_K_PER_DIM[m] * dim for k in ks for m in moment) else 0  # an interval given
    sources = {d: _Source(f, boot, rng, bool({"fid", "bures"} & set(moment))) for d, f in feats.items()} if moment else {}
    kernels = {m: _kernel_fn(m, sigma) for m in metrics if m in KERNEL}
    full_v = full.set_index(["metric", "source", "target"])
    rows = []
    pairs = [(s, t) for s in domains for t in domains if s != t]
    for s, t in tqdm(pairs, desc="fewshot_gap", unit="pair", disable=not progress):
        T = feats[t]
        small = sorted({k for k in ks if k != "all" and k < len(T)})  # k >= the domain's size is the full sample
        for k in small + ["all"]:  # the full sample always: the reference of every summary
            if k == "all":
                for m in metrics:
                    r = full_v.loc[(m, s, t)]
                    rows.append((m, s, t, len(T), 0, r.value, r.ci_low, r.ci_high, r.bias))
                continue
            for draw in range(draws):
                Y = np.asarray(T[rng.choice(len(T), k, replace=False)], np.float64)
                for m in moment:
                    stats = sources[s].stats
                    value = moment_gap(m, stats[0], Y)
                    if k < MIN_K_PER_DIM[m] * dim:
                        rows.append((m, s, t, k, draw, value, np.nan, np.nan, np.nan))
                        continue
                    reps = np.array([moment_gap(m, st, Y[rng.integers(0, k, k)]) for st in stats[1:]])
                    rows.append((m, s, t, k, draw, value, *interval("full_set", value, reps, z)))
                for m, (kernel, prep, scale) in kernels.items():
                    S = feats[s]
                    Xs = prep(np.asarray(S[rng.choice(len(S), min(len(S), max(gap.subset_size, 3)), replace=False)], np.float64))
                    value, se = mmd2_jackknife(kernel, Xs, prep(Y)) if len(Xs) >= 3 else (np.nan, np.nan)
                    low, high = jackknife_interval(value, se, gap.ci, min(k, len(Xs)))
                    rows.append((m, s, t, k, draw, scale * value, scale * low, scale * high, 0.0))
    return pd.DataFrame(rows, columns=FEWSHOT_COLUMNS)


def ranking_agreement(table: pd.DataFrame) -> pd.DataFrame:
    """Per metric and k: the Spearman correlation between the k-sample gaps of the ordered pairs and their
    full-sample gaps (mean over draws); the mean relative error (value - full) / |full| (the small-k bias);
    how often the interval contains the full-sample value; the mean interval width."""
    from ..correlation import correlations, k_labelled, mean_of

    full = _full_values(table)
    rows = []
    for (metric, k), g in k_labelled(table).groupby(["metric", "k"], sort=False):
        rho = [correlations(d.value.to_numpy(), full.loc[[(metric, s, t) for s, t in zip(d.source, d.target)]].to_numpy())["spearman"]
               for _, d in g.groupby("draw")]
        ref = full.loc[[(metric, s, t) for s, t in zip(g.source, g.target)]].to_numpy()
        rows.append({"metric": metric, "k": k, "spearman_vs_full": mean_of(rho),
                     "relative_error": float(((g.value.to_numpy() - ref) / np.abs(ref)).mean()),
                     "covers_full": _share_covering(g.ci_low.to_numpy(), g.ci_high.to_numpy(), ref),
                     "mean_ci_width": float((g.ci_high - g.ci_low).mean()), "draws": int(g.draw.nunique())})
    return pd.DataFrame(rows)


def _full_values(table: pd.DataFrame) -> pd.Series:
    n_all = table.groupby(["source", "target"])["k"].transform("max")
    return table[table.k == n_all].set_index(["metric", "source", "target"])["value"]


def _share_covering(low: np.ndarray, high: np.ndarray, ref: np.ndarray) -> float:
    """The share of the given intervals (finite bounds) that contain ``ref``; NaN when none is given."""
    given = np.isfinite(low) & np.isfinite(high)
    return float(((low <= ref) & (ref <= high))[given].mean()) if given.any() else float("nan")


def smallest_k(summary: pd.DataFrame, threshold: float = 0.9) -> dict:
    """{metric: the smallest k whose mean Spearman against the full-sample ranking is >= ``threshold`` and
    stays so at every larger k (None if none)}."""
    out = {}
    for metric, g in summary.groupby("metric", sort=False):
        g = g[g.k != "all"].assign(n=lambda d: d.k.astype(int)).sort_values("n")
        ok = (g.spearman_vs_full >= threshold).to_numpy()
        first = next((i for i in range(len(ok)) if ok[i:].all()), None)
        out[metric] = None if first is None else int(g.n.iloc[first])
    return out
