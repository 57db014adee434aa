"""SVM, softmax and DANN against scikit-learn run directly / against a source-only network."""
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from pipeline.adapters.dann import DANN
from pipeline.probes import PROBES, fit_probes, make_probe
from pipeline.probes.linear import GRID_TOL, LinearProbe
from pipeline.probes.logreg import EXACT_TOL


def data(seed=0, n=300, d=12, k=4):
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 1.5, (k, d))
    y = rng.integers(0, k, n)
    return means[y] + rng.normal(size=(n, d)), y


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_softmax_probe_equals_sklearn_multinomial_logreg(scale):
    X, y = data()
    X[:, 0] *= scale  # an ill-conditioned column: the preconditioned solver must still get there
    for C in (0.1, 1.0):
        ours = LinearProbe("log", C=C, tol=1e-9, max_iter=2000).fit(X, y)
        ref = LogisticRegression(C=C, max_iter=20000, tol=1e-10).fit(X, y)
        np.testing.assert_allclose(ours.coef_, ref.coef_, atol=2e-4 * np.abs(ref.coef_).max(), rtol=1e-3)
        np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-4)
        assert (ours.predict(X) == ref.predict(X)).all()


@pytest.mark.parametrize("C", [0.05, 0.5])
def test_linear_svm_equals_liblinear_directly(C):
    X, y = data(seed=1)
    Xs = StandardScaler().fit_transform(X)
    ours = LinearProbe("squared_hinge", C=C, tol=1e-9, max_iter=2000).fit(Xs, y)
    ref = LinearSVC(C=C, tol=1e-10, max_iter=100000, random_state=0).fit(Xs, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-4)
    assert (make_probe("svm", C=C).fit(X, y).predict(X) == ref.predict(Xs)).mean() > 0.98


def test_linear_probe_rejects_bad_settings():
    X, y = data()
    with pytest.raises(ValueError, match="classifier.C"):
        LinearProbe(C=0).fit(X, y)
    with pytest.raises(ValueError, match="loss"):
        LinearProbe(loss="hinge3").fit(X, y)


@pytest.mark.parametrize("name", sorted(PROBES.names()))
def test_every_probe_learns_a_separable_world(name):
    X, y = data(seed=2)
    clf = make_probe(name, C=1.0, max_iter=1000, seed=0, standardize=True).fit(X[:200], y[:200])
    assert (clf.predict(X[200:]) == y[200:]).mean() > 0.85


def shifted_world(seed, n=600, k=4, d=16):
    """Target = source + a large shift that moves class 0 toward class 1: a source-only classifier
    mislabels target rows; aligning the two marginals undoes the shift."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0, 1.0, (k, d))
    shift = 2.5 * (mu[1] - mu[0]) + rng.normal(0, 1.0, d)

    def sample(offset):
        y = rng.integers(0, k, n)
        return (mu[y] + rng.normal(0, 1.0, (n, d)) + offset).astype(np.float32), y

    return (*sample(0.0), *sample(shift))


def test_dann_beats_source_only_when_alignment_must_help():
    gains = []
    for seed in range(4):
        Xs, ys, Xt, yt = shifted_world(seed)
        # unlabelled target train rows; scored on held-out target rows
        acc = {w: DANN(domain_weight=w, seed=seed).fit(Xs, ys, Xt[:300]).score(Xt[300:], yt[300:]) for w in (0.0, 1.0)}
        gains.append(acc[1.0] - acc[0.0])
    assert np.mean(gains) > 0.1, gains
    with pytest.raises(ValueError, match="target"):
        DANN().fit(Xs, ys, None)


def test_dann_fit_many_equals_separate_fits():
    """The batched run trains disjoint networks: each equals its own fit (different sizes and classes)."""
    tasks = [shifted_world(seed)[:3] for seed in (0, 1)]
    Xs, ys, Xt = tasks[1]
    tasks[1] = (Xs[ys != ys.max()][:150], ys[ys != ys.max()][:150], Xt[:200])  # fewer rows, one class absent
    est = DANN(steps=40, seed=3)
    for many, task in zip(est.fit_many(tasks), tasks):
        alone = DANN(steps=40, seed=3).fit(*task)
        np.testing.assert_array_equal(many.classes_, np.unique(task[1]))
        for a, b in zip(many.weights_, alone.weights_):
            np.testing.assert_allclose(a, b, atol=1e-5)
        np.testing.assert_array_equal(many.predict(task[2]), alone.predict(task[2]))


def test_fit_probes_shares_one_scaler_and_spectrum_and_equals_separate_fits():
    X, y = data(seed=3)
    X[:, 0] *= 30.0
    names = sorted(PROBES.names())
    out = fit_probes(names, X, y, [0.5], max_iter=1000)
    scaler = out["logreg", 0.5][0]
    assert all(out[name, 0.5][0] is scaler for name in names)  # one StandardScaler, fit on X
    np.testing.assert_allclose(scaler.mean_, X.mean(0))
    np.testing.assert_array_equal(out["logreg_sklearn", 0.5][-1].coef_, make_probe("logreg_sklearn", C=0.5).fit(X, y)[-1].coef_)
    for name in ("svm", "softmax", "logreg"):  # a shared preconditioner changes the path, not the minimiser
        alone = make_probe(name, C=0.5).fit(X, y)
        assert (out[name, 0.5].predict(X) == alone.predict(X)).mean() > 0.99
    Xs = scaler.transform(X)
    spectrum = LinearProbe.spectrum(Xs)
    for loss in ("log", "squared_hinge"):
        a = LinearProbe(loss, C=0.5, tol=1e-9, max_iter=2000).fit(Xs, y, spectrum=spectrum)
        b = LinearProbe(loss, C=0.5, tol=1e-9, max_iter=2000).fit(Xs, y)
        np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-5 * np.abs(b.coef_).max())
        np.testing.assert_allclose(a.intercept_, b.intercept_, atol=1e-5 * np.abs(b.coef_).max())


def hard_world(seed, n=1500, d=512, k=7, sep=0.2):
    """Ill-conditioned (correlated columns, power-law spectrum) and near-separable in 512-d: where a
    loose stopping rule leaves predictions that the exact minimiser would not make."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0, sep, (k, d))
    y = rng.integers(0, k, 2 * n)
    M = rng.normal(size=(d, d)) * (np.arange(1, d + 1) ** -1.0)[None]
    X = (means[y] + rng.normal(size=(2 * n, d))) @ M.T
    return X[:n], y[:n], X[n:], y[n:]


@pytest.mark.parametrize("name,loss", [("svm", "squared_hinge"), ("softmax", "log"), ("logreg", "log")])
def test_grid_probes_agree_with_the_exact_minimiser_on_a_hard_world(name, loss):
    """At the grid's tolerance, >= 99.5% of test predictions equal those of the minimiser solved to 1e-10
    in float64 (which the tests above pin to liblinear / scikit-learn); a loose tolerance does not get there."""
    grid_agree, loose_agree = [], []
    for seed in (0, 1):
        Xtr, ytr, Xte, _ = hard_world(seed)
        scaler = StandardScaler().fit(Xtr)
        exact = LinearProbe(loss, C=1.0, tol=1e-10, max_iter=20000).fit(scaler.transform(Xtr), ytr)
        pe = exact.predict(scaler.transform(Xte))
        grid = make_probe(name, C=1.0, max_iter=1000, seed=0, standardize=True).fit(Xtr, ytr)
        assert grid[-1].tol == {"softmax": GRID_TOL, "logreg": EXACT_TOL, "svm": 0.0}[name]  # svm: exact Newton
        grid_agree.append((grid.predict(Xte) == pe).mean())
        if loss == "squared_hinge":  # one Newton step from zero: the ridge fit to the +-1 targets
            loose = LinearProbe(loss, C=1.0, max_iter=1, dtype="float32")
        else:
            loose = LinearProbe(loss, C=1.0, tol=1e-3, max_iter=1000, dtype="float32")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            loose.fit(scaler.transform(Xtr), ytr)
        loose_agree.append((loose.predict(scaler.transform(Xte)) == pe).mean())
    assert min(grid_agree) >= 0.995, grid_agree
    assert min(loose_agree) < min(grid_agree)  # the world is hard enough to tell the two tolerances apart


def test_svm_warm_started_along_the_c_path_equals_cold_fits():
    """The exact svm may start each C from the last one's solution: same minimiser as a cold fit."""
    Xtr, ytr, Xte, _ = hard_world(2, n=600, d=64)
    Cs = [0.01, 0.1, 1.0]
    path = fit_probes(["svm"], Xtr, ytr, Cs)
    for C in Cs:
        cold = make_probe("svm", C=C).fit(Xtr, ytr)
        np.testing.assert_allclose(path["svm", C][-1].coef_, cold[-1].coef_, atol=1e-5 * np.abs(cold[-1].coef_).max())
        assert (path["svm", C].predict(Xte) == cold.predict(Xte)).all()
    cold = make_probe("svm", C=1.0).fit(Xtr, ytr)
    assert path["svm", 1.0][-1].newton_steps_ < cold[-1].newton_steps_  # started from C = 0.1's solution


def test_logreg_along_the_c_path_equals_independent_fits_and_scikit_learns_minimiser():
    """The headline probe: each C warm-started from the last C's solution (one tight solve) reaches the
    minimiser an independent cold fit reaches, and the one scikit-learn reaches at tight tolerance:
    >= 99.5 % of cross-domain predictions agree (scikit-learn at its default tolerance does not always)."""
    Xtr, ytr, Xte, _ = hard_world(3, n=800, d=128)
    scaler = StandardScaler().fit(Xtr)
    Cs = [0.01, 0.1, 1.0]
    path = fit_probes(["logreg"], Xtr, ytr, Cs)
    for C in Cs:
        cold = make_probe("logreg", C=C).fit(Xtr, ytr)
        assert (path["logreg", C].predict(Xte) == cold.predict(Xte)).mean() >= 0.995
        np.testing.assert_allclose(path["logreg", C][-1].coef_, cold[-1].coef_, atol=1e-3 * np.abs(cold[-1].coef_).max())
        ref = LogisticRegression(C=C, tol=1e-10, max_iter=100000).fit(scaler.transform(Xtr), ytr)
        assert (path["logreg", C].predict(Xte) == ref.predict(scaler.transform(Xte))).mean() >= 0.995
    colds = sum(make_probe("logreg", C=C).fit(Xtr, ytr)[-1].n_iter_ for C in Cs)
    assert sum(path["logreg", C][-1].n_iter_ for C in Cs) < colds  # the path saves work


def test_a_stored_start_saves_iterations_not_the_minimiser():
    """A start from another C's solution (as the warm-start store keeps it: float16) is only a start: the svm
    lands on the cold fit's minimiser, the log loss on its predictions, each in fewer steps; a start of
    another shape (another class count) is ignored."""
    Xtr, ytr, Xte, _ = hard_world(4, n=600, d=64)
    for name, steps in (("svm", "newton_steps_"), ("logreg", "n_iter_")):
        near = fit_probes([name], Xtr, ytr, [1.0])[name, 1.0][-1]
        stored = {1.0: (near.coef_.astype(np.float16).astype(np.float64), near.intercept_)}
        warm = fit_probes([name], Xtr, ytr, [0.5], starts={name: stored})[name, 0.5]
        cold = fit_probes([name], Xtr, ytr, [0.5])[name, 0.5]
        tol = 1e-5 if name == "svm" else 1e-3
        np.testing.assert_allclose(warm[-1].coef_, cold[-1].coef_, atol=tol * np.abs(cold[-1].coef_).max())
        assert (warm.predict(Xte) == cold.predict(Xte)).mean() >= 0.995
        assert getattr(warm[-1], steps) < getattr(cold[-1], steps)
        other = {1.0: (np.zeros((2, Xtr.shape[1])), np.zeros(2))}
        again = fit_probes([name], Xtr, ytr, [0.5], starts={name: other})[name, 0.5][-1]
        assert getattr(again, steps) == getattr(cold[-1], steps)


def test_the_log_loss_in_row_blocks_equals_the_whole_matrix(monkeypatch):
    """Above LARGE (k x n) the log loss, its gradient and the curvature run in row blocks (memory k x block,
    not k x n, at DomainNet's scale): the same objective and minimiser as the one-matrix path."""
    import torch

    X, y = data(seed=4, n=900, d=10, k=5)
    Xs = StandardScaler().fit_transform(X).astype(np.float32)
    Wt, b = torch.randn(5, 10, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    Xt, yt = torch.as_tensor(Xs), torch.as_tensor(y)
    full = LinearProbe._loss_grad(Wt, b, Xt, False, yt, 0.01)
    monkeypatch.setattr(LinearProbe, "_blocks", classmethod(  # blocks of 1,024 rows at least: force small ones
        lambda cls, X, k, large=True: [(i, min(i + 128, len(X))) for i in range(0, len(X), 128)] if large else [(0, len(X))]))
    blocked = LinearProbe._loss_grad(Wt, b, Xt, True, yt, 0.01)
    for a, c in zip(full, blocked):
        np.testing.assert_allclose(np.asarray(a), np.asarray(c), rtol=1e-5, atol=1e-9)  # float32 data: sums in another order
    spectrum = LinearProbe.spectrum(Xs)
    ref = LinearProbe("log", C=0.5, tol=1e-9, max_iter=2000).fit(Xs, y, spectrum=spectrum)
    monkeypatch.setattr(LinearProbe, "LARGE", 0)
    big = LinearProbe("log", C=0.5, tol=1e-9, max_iter=2000).fit(Xs, y, spectrum=spectrum)
    # float32 data: both stop at the noise floor of float32 sums (~5e-5 of the coefficients here), in another order
    np.testing.assert_allclose(big.coef_, ref.coef_, atol=2e-4 * np.abs(ref.coef_).max())
    assert (big.predict(Xs) == ref.predict(Xs)).all()


def test_ridge_is_scikit_learns_ridge_classifier_along_its_c_path(monkeypatch):
    """``ridge`` at C equals RidgeClassifier(alpha = 1 / (2 C)) on the standardised rows, every C of the
    path from one pass; the Gram accumulated in row blocks equals the whole-matrix one."""
    from sklearn.linear_model import RidgeClassifier

    import pipeline.probes.ridge as ridge

    Xtr, ytr, Xte, _ = hard_world(4, n=700, d=48)
    scaler = StandardScaler().fit(Xtr)
    monkeypatch.setattr(ridge, "BLOCK", 128)  # 6 blocks
    path = fit_probes(["ridge"], Xtr, ytr, [0.01, 1.0, 100.0])
    for C in (0.01, 1.0, 100.0):
        ref = RidgeClassifier(alpha=1 / (2 * C)).fit(scaler.transform(Xtr), ytr)
        np.testing.assert_allclose(path["ridge", C][-1].coef_, ref.coef_, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(path["ridge", C][-1].intercept_, ref.intercept_, rtol=1e-6, atol=1e-9)
        assert (path["ridge", C].predict(Xte) == ref.predict(scaler.transform(Xte))).all()
        alone = make_probe("ridge", C=C).fit(Xtr, ytr)
        np.testing.assert_allclose(alone[-1].coef_, path["ridge", C][-1].coef_, rtol=1e-9, atol=1e-12)
    with pytest.raises(Exception, match="classifier.C"):
        make_probe("ridge", C=0.0).fit(Xtr, ytr)


def test_the_newton_systems_solve_as_numpy_does_in_either_precision_and_shared():
    """The svm's Newton systems (LAPACK potrf / potrs on the CPU): each equals numpy's solve, in float64 to
    rounding and in float32 to its precision; one factorisation serves every class when they share H; a
    scaled and shifted subset of the Grams is solved without writing them; a non-definite system raises."""
    import torch

    from pipeline.probes.linear import _spd_solve

    rng = np.random.default_rng(0)
    A = rng.normal(size=(3, 30, 30))
    H = torch.as_tensor(A @ A.transpose(0, 2, 1) + 30 * np.eye(30))
    g = torch.as_tensor(rng.normal(size=(3, 30)))
    ref = np.linalg.solve(H.numpy(), g.numpy()[..., None])[..., 0]
    kept = H.clone()
    np.testing.assert_allclose(_spd_solve(H, g, False).numpy(), ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_spd_solve(H, g, True).numpy(), ref, rtol=1e-3, atol=1e-5)
    assert torch.equal(H, kept)  # never written
    same = H[:1].expand(3, 30, 30).clone()
    ref = np.linalg.solve(same.numpy(), g.numpy()[..., None])[..., 0]
    np.testing.assert_allclose(_spd_solve(same, g, False, shared=True).numpy(), ref, rtol=1e-10, atol=1e-12)
    G = torch.cat([H, -H])  # H = 2 G[rows] + 0.5 I on a subset of the systems
    ref = np.linalg.solve(2 * H.numpy()[[2, 0]] + 0.5 * np.eye(30), g.numpy()[:2, :, None])[..., 0]
    np.testing.assert_allclose(_spd_solve(G, g[:2], False, scale=2.0, shift=0.5, rows=[2, 0]).numpy(), ref, rtol=1e-10, atol=1e-12)
    with pytest.raises(np.linalg.LinAlgError, match="class 4 is not positive definite"):
        _spd_solve(G, g[:2], False, rows=[0, 4])
