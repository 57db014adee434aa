"""Domain-gap measures against independent computations from their definitions."""
import numpy as np
import pandas as pd
import pytest
from scipy import linalg

from pipeline.errors import BadInputError
from pipeline.gaps import (cmmd, fid, gap_table, inception_score, median_bandwidth, polynomial_mmd2,
                           rbf_mmd2)
from pipeline.params import Gap


def _data(seed=0, n=60, d=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(0.5, 1.5, size=(n + 7, d))


def test_fid_equals_scipy_sqrtm_definition():
    X, Y = _data()
    mu1, mu2 = X.mean(0), Y.mean(0)
    S1, S2 = np.cov(X, rowvar=False), np.cov(Y, rowvar=False)
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(S1 + S2 - 2 * linalg.sqrtm(S1 @ S2).real)
    assert fid(X, Y) == pytest.approx(ref, rel=1e-6)
    assert fid(X, X) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_known_gaussians():
    """N(0, I) vs N(m, 4I) in d dims: ||m||^2 + d (1 + 4 - 2 * 2) = ||m||^2 + d."""
    rng = np.random.default_rng(1)
    d, m = 4, np.array([1.0, 2.0, 0.0, 0.0])
    X = rng.normal(size=(200_000, d))
    Y = m + 2.0 * rng.normal(size=(200_000, d))
    assert fid(X, Y) == pytest.approx(5.0 + d, rel=0.02)


def _mmd_loops(X, Y, k):
    m, n = len(X), len(Y)
    xx = sum(k(X[i], X[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(Y[i], Y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(X[i], Y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_mmd_cmmd_equal_loop_definitions():
    X, Y = _data(n=25)
    d = X.shape[1]
    assert polynomial_mmd2(X, Y) == pytest.approx(_mmd_loops(X, Y, lambda a, b: (a @ b / d + 1) ** 3), rel=1e-9)
    s = 1.7
    assert rbf_mmd2(X, Y, s) == pytest.approx(
        _mmd_loops(X, Y, lambda a, b: np.exp(-((a - b) ** 2).sum() / (2 * s * s))), rel=1e-9)
    nx, ny = X / np.linalg.norm(X, axis=1, keepdims=True), Y / np.linalg.norm(Y, axis=1, keepdims=True)
    ref = 1000 * _mmd_loops(nx, ny, lambda a, b: np.exp(-((a - b) ** 2).sum() / 200))
    assert cmmd(X, Y, "ustat") == pytest.approx(ref, rel=1e-7)


def reference_cmmd(x, y):
    """google-research cmmd/distance.py (``mmd``), transcribed in numpy: the mean over every kernel
    entry, diagonals included (a V-statistic), sigma 10, scale 1000, on already-normalised embeddings."""
    gamma = 1 / (2 * 10.0**2)
    xx, yy = np.diag(x @ x.T), np.diag(y @ y.T)
    k_xx = np.mean(np.exp(-gamma * (-2 * x @ x.T + xx[:, None] + xx[None])))
    k_xy = np.mean(np.exp(-gamma * (-2 * x @ y.T + xx[:, None] + yy[None])))
    k_yy = np.mean(np.exp(-gamma * (-2 * y @ y.T + yy[:, None] + yy[None])))
    return 1000 * (k_xx + k_yy - 2 * k_xy)


def test_cmmd_default_equals_the_reference_implementation():
    X, Y = _data(n=80, d=16)
    nx, ny = X / np.linalg.norm(X, axis=1, keepdims=True), Y / np.linalg.norm(Y, axis=1, keepdims=True)
    assert cmmd(X, Y) == pytest.approx(reference_cmmd(nx, ny), rel=1e-9)
    assert cmmd(X, Y) != pytest.approx(cmmd(X, Y, "ustat"), rel=1e-3)  # the two estimators really differ
    # and the gap table's value is the reference on all images of both domains
    labels = np.array(["a"] * len(X) + ["b"] * len(Y))
    t, info = gap_table(np.concatenate([X, Y]), labels, ["a", "b"], Gap(metrics=["cmmd"], n_boot=5))
    row = t[(t.source == "a") & (t.target == "b")].iloc[0]
    assert row.value == pytest.approx(reference_cmmd(nx, ny), rel=1e-9)
    assert info["cmmd_estimator"] == "vstat" and "bootstrap" in info["intervals"]["cmmd"]


def test_median_bandwidth():
    X = np.array([[0.0], [1.0], [3.0]])
    assert median_bandwidth(X, X[:0]) == pytest.approx(2.0)  # distances 1, 3, 2


def test_inception_score_bounds():
    assert inception_score(np.full((10, 4), 0.25)) == pytest.approx(1.0)
    assert inception_score(np.eye(4)[np.arange(40) % 4]) == pytest.approx(4.0, rel=1e-6)


def test_gap_table_self_near_zero_and_monotone_in_shift():
    rng = np.random.default_rng(0)
    d, n = 8, 1500  # FID has a finite-sample bias ~ d^2 / n: keep it small against the planted gap
    shift = rng.normal(size=d)
    shift /= np.linalg.norm(shift)
    doms = ["a", "b", "c", "e"]
    X = np.concatenate([rng.normal(size=(n, d)) + k * shift for k in (0.0, 0.5, 1.0, 2.0)])
    labels = np.repeat(doms, n)
    gap = Gap(metrics=["fid", "kid", "mmd", "cmmd"], n_boot=8, n_subsets=8, subset_size=120, seed=0)  # mean-sensitive ones
    t, _ = gap_table(X, labels, doms, gap)
    assert list(t.columns) == ["metric", "source", "target", "value", "ci_low", "ci_high", "bias"]
    assert len(t) == 4 * 16
    for metric, g in t.groupby("metric"):
        v = g.set_index(["source", "target"])["value"]
        assert v["a", "b"] < v["a", "c"] < v["a", "e"], metric
        assert v["a", "b"] == v["b", "a"]
        cross = v["a", "e"]
        for dname in doms:
            assert abs(v[dname, dname]) < 0.1 * cross, metric
        centre = g["value"] - g["bias"]  # the bias-corrected estimate (the value itself for the unbiased ones)
        assert (g["ci_low"] < centre).all() and (centre < g["ci_high"]).all()
    t1, _ = gap_table(X, labels, doms, gap.model_copy(update={"n_jobs": 1}))
    pd.testing.assert_frame_equal(t, t1)  # deterministic whatever the parallelism
    with pytest.raises(ValueError, match="gap.metrics: unknown"):
        gap_table(X, labels, doms, Gap(metrics=["fid", "emd"]))


@pytest.mark.parametrize("cmmd_estimator", ["vstat", "ustat"])
def test_a_table_without_intervals_has_the_same_values(cmmd_estimator):
    """gap_table(..., intervals=False) (stage layerwise): every metric's value, a domain against itself
    included, equal to the full table's; no interval."""
    rng = np.random.default_rng(1)
    doms, n, d = ["a", "b", "c"], 300, 6
    X = np.concatenate([rng.normal(size=(n, d)) + k for k in range(3)])
    labels = np.repeat(doms, n)
    gap = Gap(metrics=["fid", "kid", "mmd", "cmmd", "coral", "bures", "corr"], n_boot=4, n_subsets=4, subset_size=50,
              cmmd_estimator=cmmd_estimator)
    full, _ = gap_table(X, labels, doms, gap)
    values, _ = gap_table(X, labels, doms, gap, intervals=False)
    pd.testing.assert_frame_equal(values.drop(columns=["ci_low", "ci_high", "bias"]),
                                  full.drop(columns=["ci_low", "ci_high", "bias"]))
    assert values[["ci_low", "ci_high", "bias"]].isna().all().all() and full["ci_low"].notna().all()


@pytest.mark.parametrize("n,d", [(60, 100), (4000, 8)])
def test_fid_interval_is_bias_corrected_toward_the_truth(n, d):
    """N(0, I) vs N(m, 4I): FID = ||m||^2 + d. The plug-in estimate is biased upward in 1/n (hugely when
    n < d); the interval is centred on value - bias, which lies nearer the truth than value."""
    rng = np.random.default_rng(3)
    m = np.zeros(d)
    m[0] = 1.0
    truth = 1.0 + d
    X, Y = rng.normal(size=(n, d)), m + 2.0 * rng.normal(size=(n, d))
    t, _ = gap_table(np.concatenate([X, Y]), np.repeat(["a", "b"], n), ["a", "b"], Gap(metrics=["fid"], n_boot=20))
    r = t[(t.source == "a") & (t.target == "b")].iloc[0]
    assert r.ci_low < r.value - r.bias < r.ci_high
    assert r.value > truth and r.bias > 0
    assert abs(r.value - r.bias - truth) < abs(r.value - truth)


def test_subset_size_above_half_the_smallest_domain_is_refused_or_clamped_and_recorded():
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(150, 4)), np.repeat(["a", "b"], [50, 100])
    with pytest.raises(BadInputError, match=r"gap.subset_size=40 exceeds half the smallest domain \(a: 50 images, so at most 25\)"):
        gap_table(X, labels, ["a", "b"], Gap(metrics=["kid"], subset_size=40))
    t, info = gap_table(X, labels, ["a", "b"], Gap(metrics=["kid"], subset_size=40, clamp_subset_size=True))
    assert info["subset_size"] == {"asked": 40, "used": 25, "clamped": True, "smallest_domain": "a"}
    assert (t["ci_high"] > t["ci_low"]).all()  # never the zero-width interval of a clamp to the whole domain
    _, info = gap_table(X, labels, ["a", "b"], Gap(metrics=["fid"], subset_size=40))  # FID uses no subsets
    assert info["subset_size"] is None


def test_blockwise_kernel_sums_equal_the_full_matrices():
    """Every kernel estimate is taken block by block (bounded memory whatever the set sizes): on small data
    with blocks smaller than the sets, the sums, the unbiased MMD^2 and CMMD's value and bootstrap
    replicates equal the full-matrix formulas."""
    from pipeline.gaps.base import block_sums, rbf, unbiased_mmd2, unbiased_mmd2_of
    from pipeline.gaps.cmmd import CMMD_SCALE, CMMD_SIGMA, vstat
    from pipeline.operators.base import l2_normalize

    rng = np.random.default_rng(3)
    A, B = rng.normal(size=(53, 6)), rng.normal(0.3, 1.0, size=(41, 6))
    W, V = rng.random((4, 53)), rng.random((4, 41))
    k = lambda P, Q: rbf(P, Q, 2.0)  # noqa: E731
    for block in (7, 16, 100):
        total, trace, forms = block_sums(k, A, W=W, block=block)
        K = k(A, A)
        assert total == pytest.approx(K.sum(), rel=1e-12) and trace == pytest.approx(np.trace(K), rel=1e-12)
        np.testing.assert_allclose(forms, np.einsum("ri,ij,rj->r", W, K, W), rtol=1e-12)
        total, trace, forms = block_sums(k, A, B, W=W, V=V, block=block)
        assert total == pytest.approx(k(A, B).sum(), rel=1e-12) and trace == 0
        np.testing.assert_allclose(forms, np.einsum("ri,ij,rj->r", W, k(A, B), V), rtol=1e-12)
        assert unbiased_mmd2_of(k, A, B, block=block) == pytest.approx(unbiased_mmd2(K, k(B, B), k(A, B)), rel=1e-10)
    An, Bn = l2_normalize(A), l2_normalize(B)
    Kaa, Kbb, Kab = rbf(An, An, CMMD_SIGMA), rbf(Bn, Bn, CMMD_SIGMA), rbf(An, Bn, CMMD_SIGMA)
    wa, wb = W / W.sum(1, keepdims=True), V / V.sum(1, keepdims=True)
    value, reps = vstat(A.astype(np.float32), B.astype(np.float32), wa, wb)
    A32, B32 = l2_normalize(A.astype(np.float32).astype(np.float64)), l2_normalize(B.astype(np.float32).astype(np.float64))
    K32 = [rbf(P, Q, CMMD_SIGMA) for P, Q in ((A32, A32), (B32, B32), (A32, B32))]
    assert value == pytest.approx(K32[0].mean() + K32[1].mean() - 2 * K32[2].mean(), rel=1e-9)
    full = [wa[r] @ K32[0] @ wa[r] + wb[r] @ K32[1] @ wb[r] - 2 * wa[r] @ K32[2] @ wb[r] for r in range(4)]
    np.testing.assert_allclose(reps, full, rtol=1e-9)
    assert CMMD_SCALE * (Kaa.mean() + Kbb.mean() - 2 * Kab.mean()) == pytest.approx(CMMD_SCALE * vstat(A, B)[0], rel=1e-9)


def _gaussian_pair(d: int, seed: int):
    """Two Gaussians with different means, covariances and correlation structure: (mu, S) each."""
    rng = np.random.default_rng(seed)
    A, B = rng.normal(size=(d, d)) / np.sqrt(d), rng.normal(size=(d, d)) / np.sqrt(d)
    S1, S2 = A @ A.T + 0.5 * np.eye(d), B @ B.T + np.diag(rng.uniform(0.3, 1.5, d))
    return (np.zeros(d), S1), (rng.normal(0, 0.3, d), S2)


def test_moment_gap_intervals_cover_the_population_gap_at_their_nominal_rate():
    """Two known Gaussians (d = 32, n = 500 a side), 50 draws: each moment gap's 95 % interval contains the
    population value about 95 % of the time (FID's old interval, centred on the biased value, did in 0 of 50)."""
    from pipeline.gaps.covariance import coral_distance, correlation_matrix_distance
    from pipeline.gaps.fid import bures2, frechet_distance

    d, n, draws = 32, 500, 50
    (m1, S1), (m2, S2) = _gaussian_pair(d, 0)
    truth = {"fid": frechet_distance(m1, S1, m2, S2), "bures": bures2(S1, S2),
             "coral": coral_distance(m1, S1, m2, S2), "corr": correlation_matrix_distance(m1, S1, m2, S2)}
    gap = Gap(metrics=list(truth), n_boot=40, n_jobs=1)
    hits = {k: 0 for k in truth}
    L1, L2 = np.linalg.cholesky(S1), np.linalg.cholesky(S2)
    for seed in range(draws):
        rng = np.random.default_rng(100 + seed)
        X = np.concatenate([m1 + rng.normal(size=(n, d)) @ L1.T, m2 + rng.normal(size=(n, d)) @ L2.T])
        t, _ = gap_table(X, np.repeat(["a", "b"], n), ["a", "b"], gap.model_copy(update={"seed": seed}))
        for r in t[(t.source == "a") & (t.target == "b")].itertuples():
            hits[r.metric] += r.ci_low <= truth[r.metric] <= r.ci_high
    assert all(h >= 0.86 * draws for h in hits.values()), hits


def test_subset_gap_intervals_cover_the_population_gap_at_their_nominal_rate():
    """KID on two known Gaussians: the mean over B subset pairs of m rows out of n, with the interval of
    :func:`interval`, contains the population MMD^2 (from 15,000 rows a side) about 95 % of the time, where
    the SD over subsets alone (torch-fidelity's kid_std, a spread) would be far too wide and SD / sqrt(B)
    too narrow."""
    from pipeline.gaps import interval, polynomial_mmd2

    d, n, m, B, draws = 16, 400, 100, 20, 60
    (m1, S1), (m2, S2) = _gaussian_pair(d, 1)
    L1, L2 = np.linalg.cholesky(S1), np.linalg.cholesky(S2)
    big = np.random.default_rng(7)
    truth = polynomial_mmd2(m1 + big.normal(size=(15_000, d)) @ L1.T, m2 + big.normal(size=(15_000, d)) @ L2.T)
    hits = narrow = 0
    for seed in range(draws):
        rng = np.random.default_rng(seed)
        X, Y = m1 + rng.normal(size=(n, d)) @ L1.T, m2 + rng.normal(size=(n, d)) @ L2.T
        est = np.array([polynomial_mmd2(X[rng.choice(n, m, replace=False)], Y[rng.choice(n, m, replace=False)])
                        for _ in range(B)])
        low, high, bias = interval("subsets", float(est.mean()), est, 1.96, m, n)
        hits += low <= truth <= high
        narrow += abs(est.mean() - truth) <= 1.96 * est.std(ddof=1) / np.sqrt(B)
        assert bias == 0.0
    assert hits >= 0.86 * draws, (hits, narrow)
    assert narrow < hits  # the independent-subsets interval undercovers: the subsets share rows


def covariance_world(n=600, d=16, seed=0):
    """Four domains with the same mean and growing planted covariance shift: domain j's covariance is
    I + j * 0.6 * u u^T (u fixed) with its first j features rescaled; the ordering a < b < c < e of the
    shift from a holds for every covariance gap."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    doms, blocks = ["a", "b", "c", "e"], []
    for j in range(4):
        S = np.eye(d) + j * 1.5 * np.outer(u, u)
        blocks.append(rng.normal(size=(n, d)) @ np.linalg.cholesky(S).T)
    return np.concatenate(blocks), np.repeat(doms, n), doms


def test_covariance_gaps_rank_a_planted_covariance_shift():
    X, labels, doms = covariance_world()
    t, _ = gap_table(X, labels, doms, Gap(metrics=["coral", "bures", "corr"], n_boot=10))
    for metric, g in t.groupby("metric"):
        v = g.set_index(["source", "target"])["value"]
        assert v["a", "b"] < v["a", "c"] < v["a", "e"], metric
        assert v["b", "c"] < v["b", "e"], metric
        assert v["a", "a"] < v["a", "b"], metric


def test_fewshot_estimates_converge_to_the_full_sample_value_and_rank_pairs():
    """Few-shot estimates on the planted covariance world: at k = all they are domain_gap's values; the
    relative error shrinks as k grows; a large k ranks the pairs as the full sample does."""
    from pipeline.gaps.fewshot import fewshot_table, ranking_agreement, smallest_k
    from pipeline.params import Fewshot

    X, labels, doms = covariance_world(n=500)
    gap = Gap(metrics=["fid", "bures", "coral", "corr", "kid", "mmd", "cmmd"], n_boot=10, subset_size=200)
    full, info = gap_table(X, labels, doms, gap)
    fs = Fewshot(k=[5, 20, 100, 400, "all"], draws=4, metrics=["fid", "bures", "coral", "corr", "kid", "mmd", "cmmd"],
                 n_boot=10)
    table = fewshot_table(X, labels, doms, fs, gap, full, info["mmd_sigma"])
    assert set(table.k) == {5, 20, 100, 400, 500} and len(table) == 12 * 7 * (4 * 4 + 1)
    at_all = table[table.k == 500].merge(full, on=["metric", "source", "target"], suffixes=("", "_full"))
    np.testing.assert_array_equal(at_all.value, at_all.value_full)
    summary = ranking_agreement(table)
    for metric, g in summary.groupby("metric"):
        err = g.set_index("k")["relative_error"].abs()
        assert err["400"] < err["5"], (metric, err.to_dict())
    sm = summary.set_index(["metric", "k"])
    for metric in ("coral", "bures", "fid"):
        assert sm.loc[(metric, "400"), "spearman_vs_full"] >= 0.9, metric
    assert set(smallest_k(summary)) == set(fs.metrics)


def test_fewshot_refuses_metrics_without_a_full_sample_value_or_estimator():
    from pipeline.errors import ParamsError
    from pipeline.gaps.fewshot import fewshot_table
    from pipeline.params import Fewshot

    X, labels, doms = covariance_world(n=50, d=4)
    full, info = gap_table(X, labels, doms, Gap(metrics=["fid"], n_boot=3))
    with pytest.raises(ParamsError, match="fewshot.metrics: 'kid' is not in gap.metrics"):
        fewshot_table(X, labels, doms, Fewshot(metrics=["kid"]), Gap(), full)
    with pytest.raises(ParamsError, match="fewshot.metrics: 'emd' has no few-shot estimator"):
        fewshot_table(X, labels, doms, Fewshot(metrics=["emd"]), Gap(), full)


def test_fewshot_intervals_cover_the_population_gap_at_every_k():
    """Two known Gaussians (d = 8, 1,000 source rows), 60 draws of k target rows per k: the kernel gap's
    jackknife interval covers the population MMD^2 at about its nominal rate at every k; each moment gap's
    bootstrap interval does wherever it is given (k >= MIN_K_PER_DIM x d), and is NaN below."""
    from pipeline.gaps.fewshot import MIN_K_PER_DIM, _kernel_fn, _Source, jackknife_interval, mmd2_jackknife, moment_gap
    from pipeline.gaps import interval, polynomial_mmd2
    from pipeline.gaps.covariance import coral_distance, correlation_matrix_distance
    from pipeline.gaps.fid import bures2, frechet_distance

    d, n, draws = 8, 1000, 60
    (m1, S1), (m2, S2) = _gaussian_pair(d, 0)
    L1, L2 = np.linalg.cholesky(S1), np.linalg.cholesky(S2)
    truth = {"fid": frechet_distance(m1, S1, m2, S2), "bures": bures2(S1, S2), "coral": coral_distance(m1, S1, m2, S2),
             "corr": correlation_matrix_distance(m1, S1, m2, S2)}
    big = np.random.default_rng(7)
    kid_truth = polynomial_mmd2(m1 + big.normal(size=(15_000, d)) @ L1.T, m2 + big.normal(size=(15_000, d)) @ L2.T)
    kernel = _kernel_fn("kid", None)[0]
    for k in (5, 10, 20, 50, 100):
        hits, given = dict.fromkeys(truth, 0), dict.fromkeys(truth, 0)
        kid_hits = 0
        for r in range(draws):
            rng = np.random.default_rng(1000 * k + r)
            X, Y = m1 + rng.normal(size=(n, d)) @ L1.T, m2 + rng.normal(size=(k, d)) @ L2.T
            src = _Source(X, 20, rng, True)
            for m in truth:
                if k >= MIN_K_PER_DIM[m] * d:
                    v = moment_gap(m, src.stats[0], Y)
                    reps = np.array([moment_gap(m, st, Y[rng.integers(0, k, k)]) for st in src.stats[1:]])
                    low, high, _ = interval("full_set", v, reps, 1.96)
                    hits[m] += low <= truth[m] <= high
                    given[m] += 1
            low, high = jackknife_interval(*mmd2_jackknife(kernel, X[rng.choice(n, 200, replace=False)], Y), 0.95, k)
            kid_hits += low <= kid_truth <= high
        assert kid_hits >= 0.85 * draws, (k, kid_hits)
        for m in truth:
            assert given[m] in (0, draws) and (given[m] == 0 or hits[m] >= 0.85 * draws), (k, m, hits[m])


def test_moment_gap_replicates_belong_to_their_own_table():
    """Every moment gap of one table shares its bootstrap replicates; another table on other data of the same
    shape never sees them (a cache keyed by object identity once could)."""
    rng = np.random.default_rng(5)
    labels = np.repeat(["a", "b"], 200)
    X1, X2 = rng.normal(size=(400, 6)), 3.0 * rng.normal(size=(400, 6)) + 1.0
    gap = Gap(metrics=["fid", "coral"], n_boot=5)
    alone, _ = gap_table(X2, labels, ["a", "b"], gap)
    for _ in range(3):
        gap_table(X1, labels, ["a", "b"], gap)
        again, _ = gap_table(X2, labels, ["a", "b"], gap)
        pd.testing.assert_frame_equal(alone, again)
