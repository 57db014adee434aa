"""How often each gap's 95 % interval contains the population value, on two known Gaussians (the worlds of
tests/test_gaps.py): the full-sample moment gaps through `gap_table` (d = 32, n = 500 a side), KID's subset
mean (d = 16, 20 subsets of 100 out of 400) against the intervals it replaced, and the few-shot estimates
(k target rows against 1,000 source rows, d = 16) for every k -- the figures behind MIN_K_PER_DIM.

    python benchmarks/gap_coverage.py            # about 3 min on 2 cores
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import typer

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from test_gaps import _gaussian_pair  # noqa: E402

from pipeline.gaps import gap_table, interval, polynomial_mmd2  # noqa: E402
from pipeline.gaps.covariance import coral_distance, correlation_matrix_distance  # noqa: E402
from pipeline.gaps.fewshot import _kernel_fn, _Source, jackknife_interval, mmd2_jackknife, moment_gap  # noqa: E402
from pipeline.gaps.fid import bures2, frechet_distance  # noqa: E402
from pipeline.params import Gap  # noqa: E402


def truths(d: int, seed: int):
    (m1, S1), (m2, S2) = _gaussian_pair(d, seed)
    t = {"fid": frechet_distance(m1, S1, m2, S2), "bures": bures2(S1, S2), "coral": coral_distance(m1, S1, m2, S2),
         "corr": correlation_matrix_distance(m1, S1, m2, S2)}
    L1, L2 = np.linalg.cholesky(S1), np.linalg.cholesky(S2)
    big = np.random.default_rng(7)
    t["kid"] = polynomial_mmd2(m1 + big.normal(size=(15_000, d)) @ L1.T, m2 + big.normal(size=(15_000, d)) @ L2.T)
    return t, (lambda rng, n: m1 + rng.normal(size=(n, d)) @ L1.T), (lambda rng, n: m2 + rng.normal(size=(n, d)) @ L2.T)


def main(draws: int = 50, fewshot_draws: int = 100) -> None:
    truth, draw_a, draw_b = truths(32, 0)
    moments = ["fid", "bures", "coral", "corr"]
    hits, old = dict.fromkeys(moments, 0), dict.fromkeys(moments, 0)
    for seed in range(draws):
        rng = np.random.default_rng(100 + seed)
        X = np.concatenate([draw_a(rng, 500), draw_b(rng, 500)])
        t, _ = gap_table(X, np.repeat(["a", "b"], 500), ["a", "b"], Gap(metrics=moments, n_boot=40, n_jobs=1, seed=seed))
        for r in t[(t.source == "a") & (t.target == "b")].itertuples():
            hits[r.metric] += r.ci_low <= truth[r.metric] <= r.ci_high
            half = (r.ci_high - r.ci_low) / 2
            old[r.metric] += r.value - half <= truth[r.metric] <= r.value + half
    print(f"full sample, d = 32, n = 500, {draws} draws: bias-corrected {hits}; centred on the value {old}")
    truth, draw_a, draw_b = truths(16, 1)
    ours = narrow = wide = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        X, Y = draw_a(rng, 400), draw_b(rng, 400)
        est = np.array([polynomial_mmd2(X[rng.choice(400, 100, replace=False)], Y[rng.choice(400, 100, replace=False)])
                        for _ in range(20)])
        low, high, _ = interval("subsets", float(est.mean()), est, 1.96, 100, 400)
        ours += low <= truth["kid"] <= high
        narrow += abs(est.mean() - truth["kid"]) <= 1.96 * est.std(ddof=1) / np.sqrt(20)
        wide += abs(est.mean() - truth["kid"]) <= 1.96 * est.std(ddof=1)
    print(f"KID subset mean, 60 draws: ours {ours}, SD/sqrt(B) {narrow}, SD over subsets {wide}")
    truth, draw_a, draw_b = truths(16, 0)
    kernel = _kernel_fn("kid", None)[0]
    print(f"few-shot, d = 16, 1,000 source rows, {fewshot_draws} draws (no MIN_K_PER_DIM cut):")
    for k in (5, 10, 20, 50, 100, 200):
        h = dict.fromkeys([*moments, "kid"], 0)
        for r in range(fewshot_draws):
            rng = np.random.default_rng(1000 * k + r)
            X, Y = draw_a(rng, 1000), draw_b(rng, k)
            src = _Source(X, 20, rng, True)
            for m in moments:
                v = moment_gap(m, src.stats[0], Y)
                reps = np.array([moment_gap(m, st, Y[rng.integers(0, k, k)]) for st in src.stats[1:]])
                low, high, _ = interval("full_set", v, reps, 1.96)
                h[m] += low <= truth[m] <= high
            low, high = jackknife_interval(*mmd2_jackknife(kernel, X[rng.choice(1000, 200, replace=False)], Y), 0.95, k)
            h["kid"] += low <= truth["kid"] <= high
        print(f"  k = {k}: " + ", ".join(f"{m} {100 * v / fewshot_draws:.0f} %" for m, v in h.items()))


if __name__ == "__main__":
    typer.run(main)
