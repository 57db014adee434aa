"""Statistics operators on synthetic Gaussians with known covariances."""
import numpy as np
import pytest

from pipeline.operators import OPERATORS

CORAL, MeanCentering, SelectiveWhitening, Whitening = (OPERATORS[n] for n in ("coral", "center", "selective_whiten",
                                                                              "whiten"))
TextSubspaceRemoval = OPERATORS["text_removal"]


def gaussians(seed=0, n=4000, d=6):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(d, d))
    B = rng.normal(size=(d, d)) * 0.5
    Xs = rng.normal(size=(n, d)) @ A + 3.0
    Xt = rng.normal(size=(n + 500, d)) @ B - 1.0
    return np.concatenate([Xs, Xt]), np.array(["s"] * n + ["t"] * (n + 500))


def cov(X):
    return np.cov(np.asarray(X, np.float64), rowvar=False)


def test_mean_centering():
    X, dom = gaussians()
    Z = MeanCentering().fit(X, dom).transform(X, dom)
    for d in ("s", "t"):
        np.testing.assert_allclose(Z[dom == d].mean(axis=0), 0, atol=1e-4)


def test_whitening_gives_identity_then_known_shrunk_covariance():
    X, dom = gaussians()
    Z = Whitening(shrinkage=0.0).fit(X, dom).transform(X, dom)
    for d in ("s", "t"):
        np.testing.assert_allclose(cov(Z[dom == d]), np.eye(6), atol=1e-4)
    s = 0.3
    Z = Whitening(shrinkage=s).fit(X, dom).transform(X, dom)
    S = cov(X[dom == "t"])
    Ss = (1 - s) * S + s * np.trace(S) / 6 * np.eye(6)
    w, V = np.linalg.eigh(Ss)
    W = (V / np.sqrt(w)) @ V.T
    np.testing.assert_allclose(cov(Z[dom == "t"]), W @ S @ W, atol=1e-4)


def test_coral_maps_target_onto_source_statistics():
    X, dom = gaussians()
    Z = CORAL(ridge=0.0).fit(X, dom, ["s"]).transform(X, dom)
    np.testing.assert_array_equal(Z[dom == "s"], X[dom == "s"].astype(np.float32))
    np.testing.assert_allclose(Z[dom == "t"].mean(axis=0), X[dom == "s"].mean(axis=0), atol=1e-3)
    np.testing.assert_allclose(cov(Z[dom == "t"]), cov(X[dom == "s"]), rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="source domains"):
        CORAL().fit(X, dom)


def test_selective_whitening_finds_and_equalises_the_varying_direction():
    rng = np.random.default_rng(0)
    d, n = 10, 20000
    scales = {"a": 3.0, "b": 0.5, "c": 1.0}
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))  # the domain-varying direction is Q[:, 0]
    Xs, doms = [], []
    for name, s in scales.items():
        Z = rng.normal(size=(n, d))
        Z[:, 0] *= s
        Xs.append(Z @ Q.T + rng.normal(size=d))
        doms += [name] * n
    X, dom = np.concatenate(Xs), np.array(doms)
    op = SelectiveWhitening(n_directions=1, shrinkage=0.0).fit(X, dom)
    u = op.directions_[:, 0]
    assert abs(u @ Q[:, 0]) > 0.99
    Z = op.transform(X, dom)
    var_u = [np.var(Z[dom == k] @ u) for k in scales]
    assert max(var_u) / min(var_u) == pytest.approx(1.0, abs=0.05)      # equalised along u ...
    pooled = np.mean([s**2 for s in scales.values()])
    assert np.mean(var_u) == pytest.approx(pooled, rel=0.05)             # ... to the pooled variance
    other = Q[:, 3]
    np.testing.assert_allclose(Z[dom == "a"] @ other, (X[dom == "a"] - X[dom == "a"].mean(0)) @ other, atol=0.05)


def test_text_subspace_removal_is_source_free_projection():
    rng = np.random.default_rng(0)
    text = {d: rng.normal(size=8) for d in "abcd"}
    op = TextSubspaceRemoval(text={"domain": text}, normalize=False).fit()
    assert op.basis_.shape == (8, 3)
    X = rng.normal(size=(20, 8))
    Z = op.transform(X)
    diffs = np.stack([text["a"] - text[k] for k in "bcd"])
    np.testing.assert_allclose(Z @ diffs.T, 0, atol=1e-5)
    np.testing.assert_allclose(op.transform(Z), Z, atol=1e-5)  # idempotent
    assert TextSubspaceRemoval.uses == OPERATORS["translate_single"].uses == "text"
    assert CORAL.uses == "images" and CORAL.scope == "sources" and SelectiveWhitening.scope == "pair"
