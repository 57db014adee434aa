"""Classifiers on cached features: CLIP zero-shot and linear probes (scikit-learn estimators)."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .operators import l2_normalize


class ZeroShotClassifier(ClassifierMixin, BaseEstimator):
    """CLIP zero-shot (Radford et al., 2021): argmax_c cos(E_I(x), w_c), w_c the ensembled class
    text embedding; probabilities softmax(logit_scale * cos). Needs no training images."""

    def __init__(self, class_weights: np.ndarray | None = None, logit_scale: float = 100.0):
        self.class_weights = class_weights
        self.logit_scale = logit_scale

    def fit(self, X=None, y=None):
        self.classes_ = np.arange(len(self.class_weights))
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return l2_normalize(np.asarray(X, np.float64)) @ l2_normalize(np.asarray(self.class_weights, np.float64)).T

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        z = self.logit_scale * self.decision_function(X)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.decision_function(X).argmax(axis=1)]


def logistic_regression(C: float = 1.0, max_iter: int = 1000, seed: int = 0, standardize: bool = True):
    """Multinomial L2-regularised logistic regression (L-BFGS): the linear probe C of the
    translation paper and of CLIP's linear-probe evaluation (Radford et al., 2021, §3.2).
    ``standardize`` puts a StandardScaler (fit on the training features) in front."""
    if C <= 0:
        raise ValueError(f"classifier.C={C} must be > 0")
    clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    return make_pipeline(StandardScaler(), clf) if standardize else clf


def linear_svm(C: float = 1.0, max_iter: int = 1000, seed: int = 0, standardize: bool = True):
    """One-vs-rest linear SVM, squared hinge, L2 (liblinear; the frozen-features + SVM probe of
    Donahue et al. 2014 / Zeiler & Fergus 2014 in seed 003's table)."""
    from sklearn.svm import LinearSVC

    if C <= 0:
        raise ValueError(f"classifier.C={C} must be > 0")
    clf = LinearSVC(C=C, max_iter=max_iter, random_state=seed)
    return make_pipeline(StandardScaler(), clf) if standardize else clf


class SoftmaxProbe(ClassifierMixin, BaseEstimator):
    """A linear softmax layer on frozen features, trained full-batch in torch with L-BFGS on
        mean_i CE(W x_i + b, y_i) + ||W||^2 / (2 C n),
    which is scikit-learn's multinomial LogisticRegression objective divided by C n: the same
    minimiser, computed in torch (GPU when given ``device``)."""

    def __init__(self, C: float = 1.0, max_iter: int = 500, tol: float = 1e-8, device: str = "cpu"):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.device = device

    def fit(self, X, y):
        import torch

        X = torch.as_tensor(np.asarray(X, np.float64), device=self.device)
        self.classes_, yi = np.unique(y, return_inverse=True)
        yt = torch.as_tensor(yi, device=self.device)
        n, d = X.shape
        W = torch.zeros(d, len(self.classes_), dtype=X.dtype, device=self.device, requires_grad=True)
        b = torch.zeros(len(self.classes_), dtype=X.dtype, device=self.device, requires_grad=True)
        opt = torch.optim.LBFGS([W, b], max_iter=self.max_iter, tolerance_grad=self.tol,
                                tolerance_change=self.tol * 1e-3, history_size=20, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(X @ W + b, yt) + (W * W).sum() / (2 * self.C * n)
            loss.backward()
            return loss

        opt.step(closure)
        self.coef_ = W.detach().cpu().numpy().T
        self.intercept_ = b.detach().cpu().numpy()
        return self

    def decision_function(self, X):
        return np.asarray(X, np.float64) @ self.coef_.T + self.intercept_

    def predict_proba(self, X):
        z = self.decision_function(X)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[self.decision_function(X).argmax(axis=1)]


def softmax_probe(C: float = 1.0, max_iter: int = 500, seed: int = 0, standardize: bool = True):
    clf = SoftmaxProbe(C=C, max_iter=max_iter)
    return make_pipeline(StandardScaler(), clf) if standardize else clf


PROBES = {"logreg": logistic_regression, "svm": linear_svm, "softmax": softmax_probe}
