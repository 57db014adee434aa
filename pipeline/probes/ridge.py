"""``ridge``: the least-squares linear classifier in closed form -- scikit-learn's ``RidgeClassifier``
(one-vs-rest targets +-1, unpenalised intercept), with ``alpha = 1 / (2 C)``:

    min_{W, b} sum_i sum_c (s_ic - w_c^T x_i - b_c)^2 + ||W||^2 / (2 C),   s_ic = +1 if y_i = c else -1,

the squared-hinge SVM's objective (``svm``, liblinear's C) with every row counted, whether or not it
violates its margin (the least-squares SVM of Suykens & Vandewalle, 1999). Its minimiser is
W = (X_c^T X_c + alpha I)^-1 X_c^T S_c on centred X and S: exact, no iterations, one pass over the rows
(the Gram matrix accumulated in row blocks: memory d^2 + block x d, whatever n), and one eigen-
decomposition serves the whole C grid. The probe a CPU affords at DomainNet scale (README), where the
exact multinomial logistic regression costs about 0.3 TFLOP per function evaluation."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..errors import ParamsError
from . import PROBES

BLOCK = 65_536  # rows per block of the Gram accumulation


def _moments(X: np.ndarray, yi: np.ndarray, k: int):
    """(mean x, Gram of the centred rows X_c^T X_c, X_c^T S_c) in float64, accumulated over row blocks;
    no centred copy of X (X_c^T X_c = X^T X - n m m^T)."""
    n, d = X.shape
    G, XtS, total = np.zeros((d, d)), np.zeros((d, k)), np.zeros(d)
    for i in range(0, n, BLOCK):
        A = np.asarray(X[i:i + BLOCK])
        G += (A.T @ A).astype(np.float64)
        onehot = np.zeros((len(A), k), A.dtype)
        onehot[np.arange(len(A)), yi[i:i + BLOCK]] = 1
        XtS += (A.T @ (2 * onehot - 1)).astype(np.float64)
        total += A.sum(0, dtype=np.float64)
    m = total / n
    s_mean = 2 * np.bincount(yi, minlength=k) / n - 1
    return m, s_mean, G - n * np.outer(m, m), XtS - n * np.outer(m, s_mean)


@PROBES.register("ridge")
class Ridge(ClassifierMixin, BaseEstimator):
    """Fitted: ``coef_`` (k x d), ``intercept_`` (k), ``classes_``. ``max_iter``, ``seed`` and ``device``
    are accepted for the probe contract and unused (closed form, on the CPU)."""

    warm_start_path = False

    def __init__(self, *, C: float = 1.0, max_iter: int = 1000, seed: int = 0, device: str = "cpu"):
        self.C = C
        self.max_iter = max_iter
        self.seed = seed
        self.device = device

    def fit(self, X, y):
        vars(self).update({k: v for k, v in vars(self.fit_path(X, y, [self.C])[0]).items() if k.endswith("_")})
        return self

    @classmethod
    def fit_path(cls, X, y, Cs, *, max_iter: int = 1000, seed: int = 0, device: str = "cpu") -> list:
        """One fitted :class:`Ridge` per C in ``Cs``, from one pass over ``X`` and one eigen-decomposition."""
        if min(Cs) <= 0:
            raise ParamsError(f"classifier.C={min(Cs)} must be > 0")
        classes, yi = np.unique(y, return_inverse=True)
        m, s_mean, G, XtS = _moments(X, yi, len(classes))
        lam, V = np.linalg.eigh(G)
        B = V.T @ XtS
        out = []
        for C in Cs:
            est = cls(C=C, max_iter=max_iter, seed=seed, device=device)
            W = V @ (B / (lam.clip(0) + 1.0 / (2 * C))[:, None])  # d x k
            est.classes_, est.coef_, est.intercept_ = classes, W.T, s_mean - m @ W
            out.append(est)
        return out

    def decision_function(self, X):
        return np.asarray(X, np.float64) @ self.coef_.T + self.intercept_

    def predict(self, X):
        return self.classes_[self.decision_function(X).argmax(axis=1)]
