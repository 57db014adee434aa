"""SVM and softmax probes against scikit-learn run directly."""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from pipeline.classifiers import PROBES, SoftmaxProbe, linear_svm


def data(seed=0, n=300, d=12, k=4):
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 1.5, (k, d))
    y = rng.integers(0, k, n)
    return means[y] + rng.normal(size=(n, d)), y


def test_softmax_probe_equals_sklearn_multinomial_logreg():
    X, y = data()
    for C in (0.1, 1.0):
        ours = SoftmaxProbe(C=C).fit(X, y)
        ref = LogisticRegression(C=C, max_iter=5000, tol=1e-10).fit(X, y)
        np.testing.assert_allclose(ours.coef_, ref.coef_, atol=2e-4, rtol=1e-3)
        np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-4)
        assert (ours.predict(X) == ref.predict(X)).all()


def test_linear_svm_equals_liblinear_directly():
    X, y = data(seed=1)
    ours = linear_svm(C=0.5, standardize=True, seed=0).fit(X, y)
    Xs = StandardScaler().fit_transform(X)
    ref = LinearSVC(C=0.5, random_state=0).fit(Xs, y)
    np.testing.assert_allclose(ours[-1].coef_, ref.coef_, rtol=1e-6)
    assert (ours.predict(X) == ref.predict(Xs)).all()


@pytest.mark.parametrize("name", sorted(PROBES))
def test_every_probe_learns_a_separable_world(name):
    X, y = data(seed=2)
    clf = PROBES[name](C=1.0, max_iter=1000, seed=0, standardize=True).fit(X[:200], y[:200])
    assert (clf.predict(X[200:]) == y[200:]).mean() > 0.85
