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


def _data_matmul():
    import torch

    class DataMatmul(torch.autograd.Function):
        """logits = X W with X constant: backward X^T G from a contiguous copy of X^T (2x faster on
        CPU than autograd's transposed product); float32 data, float64 parameters."""

        @staticmethod
        def forward(ctx, W, X, Xt):
            ctx.save_for_backward(Xt)
            return (X @ W.to(X.dtype)).to(W.dtype)

        @staticmethod
        def backward(ctx, grad):
            (Xt,) = ctx.saved_tensors
            return (Xt @ grad.to(Xt.dtype)).to(grad.dtype), None, None

    return DataMatmul


class LinearProbe(ClassifierMixin, BaseEstimator):
    """A linear classifier on frozen features, solved full-batch in torch (GPU when ``device`` says):

    * ``loss="log"``: multinomial logistic regression (the softmax layer of seed 003),
          min_{W,b} mean_i CE(W x_i + b, y_i) + ||W||^2 / (2 C n)
      = scikit-learn's ``LogisticRegression`` objective divided by C n (same minimiser, b unpenalised);
    * ``loss="squared_hinge"``: one-vs-rest L2-loss linear SVM,
          min_w mean_i max(0, 1 - s_ik w_k^T [x_i; 1])^2 + ||w_k||^2 / (2 C n),  s_ik = +-1,
      = liblinear's primal as run by scikit-learn's ``LinearSVC`` (the bias is a regularised
      feature of value 1, as in liblinear; Fan et al., JMLR 2008).

    Speed: L-BFGS runs in the PCA basis of the features, each direction j rescaled by
    (kappa lambda_j + 1/(C n))^{-1/2}, with lambda_j the feature-covariance eigenvalue and kappa the
    loss curvature (a bound first, then re-estimated at the current point: it collapses on
    separable data). This change of variables leaves the minimiser unchanged but brings the
    Hessian near the identity, so ill-conditioned features (CLIP's are) converge in tens of
    iterations instead of hitting ``max_iter``. ``tol`` bounds the max-abs gradient in that basis.
    """

    _CURVATURE = {"log": 0.25, "squared_hinge": 1.0}

    def __init__(self, loss: str = "log", C: float = 1.0, max_iter: int = 500, tol: float = 1e-6,
                 device: str = "cpu", dtype: str = "float64"):
        self.loss = loss
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.device = device
        self.dtype = dtype

    def fit(self, X, y):
        import torch

        if self.loss not in self._CURVATURE:
            raise ValueError(f"LinearProbe: unknown loss {self.loss!r}; choose from {sorted(self._CURVATURE)}")
        if self.C <= 0:
            raise ValueError(f"classifier.C={self.C} must be > 0")
        X = torch.as_tensor(np.asarray(X), device=self.device).to(getattr(torch, self.dtype))
        dt = torch.float64  # parameters and loss; the data may be float32 (``dtype``) for speed
        self.classes_, yi = np.unique(y, return_inverse=True)
        n, k = len(X), len(self.classes_)
        yt = torch.as_tensor(yi, device=self.device)
        hinge = self.loss == "squared_hinge"
        if hinge:  # liblinear: bias = regularised constant feature; one column per class (OvR)
            X = torch.cat([X, torch.ones(n, 1, dtype=X.dtype, device=self.device)], 1)
            center = torch.zeros(X.shape[1], dtype=X.dtype, device=self.device)
            sign = 2.0 * torch.nn.functional.one_hot(yt, k).to(dt) - 1.0
        else:  # unpenalised intercept: centring X is an exact reparametrisation
            center = X.mean(0)
        Xc = X - center
        Xct = Xc.T.contiguous()
        lam, V = torch.linalg.eigh((Xct.float() @ Xc.float()).double() / n)  # a preconditioner: float32 is enough
        lam, V, r = lam.clamp_min(0).to(device=self.device), V.to(device=self.device), 1.0 / (self.C * n)
        matmul = _data_matmul().apply
        U0 = torch.zeros(X.shape[1], k, dtype=dt, device=self.device)  # W = V diag(scale) U
        b = torch.zeros(k, dtype=dt, device=self.device, requires_grad=not hinge)
        kappa, self.n_iter_ = self._CURVATURE[self.loss], 0
        for phase in range(3):  # loose solves with the curvature re-estimated after each, then a tight one
            last = phase == 2
            scale = (kappa * lam + r).rsqrt()
            U = U0.clone().requires_grad_(True)
            opt = torch.optim.LBFGS([U, b] if not hinge else [U], max_iter=self.max_iter,
                                    tolerance_grad=self.tol if last else max(self.tol, 1e-3),
                                    tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad()
                W = V @ (scale[:, None] * U)
                loss = self._data_loss(matmul(W, Xc, Xct) + b, yt, sign if hinge else None) + (W * W).sum() * r / 2
                loss.backward()
                return loss

            opt.step(closure)
            self.n_iter_ += opt.state[opt._params[0]]["n_iter"]
            if last:
                break
            with torch.no_grad():
                logits = matmul(V @ (scale[:, None] * U), Xc, Xct) + b
                if hinge:  # squared hinge: curvature 2 on the margin-violating rows
                    new = 2.0 * float((sign * logits < 1).to(dt).mean())
                else:  # softmax: mean eigenvalue of diag(p) - p p^T over its k - 1 free directions
                    pr = logits.softmax(1)
                    new = float((1 - (pr * pr).sum(1)).mean()) / max(k - 1, 1)
            new = min(max(new, 1e-4), self._CURVATURE[self.loss])
            U0 = U.detach() * scale[:, None] * (new * lam + r).sqrt()[:, None]  # same W in the next basis
            kappa = new
        W = (V @ (scale[:, None] * U.detach())).to(Xc.dtype)
        bias = b.detach().to(Xc.dtype) - center @ W
        if hinge:
            W, bias = W[:-1], W[-1]
        self.coef_ = W.T.cpu().numpy().astype(np.float64)
        self.intercept_ = bias.cpu().numpy().astype(np.float64)
        return self

    @staticmethod
    def _data_loss(logits, y, sign=None):
        """Mean squared hinge summed over classes (``sign`` = +-1 targets), or mean cross-entropy."""
        import torch

        if sign is not None:
            return (1.0 - sign * logits).clamp_min(0).pow(2).sum(1).mean()
        return torch.nn.functional.cross_entropy(logits, y)

    def decision_function(self, X):
        return np.asarray(X, np.float64) @ self.coef_.T + self.intercept_

    def predict_proba(self, X):
        z = self.decision_function(X)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[self.decision_function(X).argmax(axis=1)]


def softmax_probe(C: float = 1.0, max_iter: int = 500, seed: int = 0, standardize: bool = True):
    """``LinearProbe(loss="log")``: logistic regression's minimiser, fast and GPU-capable."""
    clf = LinearProbe("log", C=C, max_iter=max_iter, tol=1e-3, dtype="float32")
    return make_pipeline(StandardScaler(), clf) if standardize else clf


def linear_svm(C: float = 1.0, max_iter: int = 500, seed: int = 0, standardize: bool = True):
    """One-vs-rest L2-loss linear SVM (liblinear's objective; the frozen-features + SVM probe of
    Donahue et al. 2014 / Razavian et al. 2014 in seed 003's table), solved by :class:`LinearProbe`."""
    clf = LinearProbe("squared_hinge", C=C, max_iter=max_iter, tol=1e-3, dtype="float32")
    return make_pipeline(StandardScaler(), clf) if standardize else clf


# --------------------------------------------------------------------------------------- DANN
def _grad_reverse():
    import torch

    class GradReverse(torch.autograd.Function):
        """Identity forward; multiplies the gradient by -lambda backward (Ganin & Lempitsky 2015, eq. 6)."""

        @staticmethod
        def forward(ctx, x, lam):
            ctx.lam = lam
            return x.view_as(x)

        @staticmethod
        def backward(ctx, grad):
            return -ctx.lam * grad, None

    return GradReverse


class DANN(ClassifierMixin, BaseEstimator):
    """Domain-adversarial training (Ganin & Lempitsky, ICML 2015; Ganin et al., JMLR 2016) on
    frozen features: an adapter G_f (linear + ReLU, ``hidden`` units), a label head G_y and a domain
    head G_d (source vs target) behind a gradient-reversal layer, trained on

        min_{f,y} max_d  CE(G_y(G_f(x_s)), y_s) - lambda_p * BCE(G_d(G_f(x)), domain(x))

    with labelled source rows x_s and unlabelled target rows. Schedules from the paper (§5.2):
    lambda_p = ``domain_weight`` * (2 / (1 + exp(-10 p)) - 1) and learning rate
    lr / (1 + 10 p)^0.75, p = training progress in [0, 1]; SGD with momentum 0.9, ``batch_size`` rows
    of each domain a step. Features are
    standardised with the pooled source + target statistics. ``domain_weight=0`` is the source-only baseline
    (the same network without the adversary).
    """

    def __init__(self, hidden: int = 128, steps: int = 300, batch_size: int = 64, lr: float = 0.01,
                 weight_decay: float = 5e-4, domain_weight: float = 1.0, seed: int = 0, device: str = "cpu"):
        self.hidden = hidden
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.domain_weight = domain_weight
        self.seed = seed
        self.device = device

    def fit(self, X, y, X_target=None):
        import torch
        from torch import nn

        if X_target is None or not len(X_target):
            raise ValueError("DANN.fit needs unlabelled target rows (X_target)")
        pooled = np.concatenate([X, X_target])
        self.mean_, self.scale_ = pooled.mean(0), pooled.std(0) + 1e-8
        g = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        Xs = torch.as_tensor(self._std(X), dtype=torch.float32, device=self.device)
        Xt = torch.as_tensor(self._std(X_target), dtype=torch.float32, device=self.device)
        self.classes_, yi = np.unique(y, return_inverse=True)
        ys = torch.as_tensor(yi, device=self.device)
        d, h = Xs.shape[1], self.hidden
        self.net_ = nn.ModuleDict({"f": nn.Sequential(nn.Linear(d, h), nn.ReLU()), "y": nn.Linear(h, len(self.classes_)),
                                   "d": nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 1))}).to(self.device)
        opt = torch.optim.SGD(self.net_.parameters(), lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)
        reverse, bs = _grad_reverse().apply, self.batch_size
        dom = torch.cat([torch.zeros(bs), torch.ones(bs)]).to(self.device)
        for step in range(self.steps):
            p = step / max(self.steps - 1, 1)
            for group in opt.param_groups:
                group["lr"] = self.lr / (1 + 10 * p) ** 0.75
            lam = self.domain_weight * (2 / (1 + np.exp(-10 * p)) - 1)
            i = torch.randint(len(Xs), (bs,), generator=g)
            j = torch.randint(len(Xt), (bs,), generator=g)
            feats = self.net_["f"](torch.cat([Xs[i], Xt[j]]))
            loss = nn.functional.cross_entropy(self.net_["y"](feats[:bs]), ys[i])
            if self.domain_weight:
                logit = self.net_["d"](reverse(feats, lam)).squeeze(1)
                loss = loss + nn.functional.binary_cross_entropy_with_logits(logit, dom)
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.net_.eval()
        return self

    def _std(self, X):
        return (np.asarray(X, np.float32) - self.mean_) / self.scale_

    def decision_function(self, X):
        import torch

        with torch.no_grad():
            x = torch.as_tensor(self._std(X), dtype=torch.float32, device=self.device)
            return self.net_["y"](self.net_["f"](x)).cpu().numpy().astype(np.float64)

    def predict(self, X):
        return self.classes_[self.decision_function(X).argmax(axis=1)]


# probes fit on labelled source rows only; DANN also needs the unlabelled target rows
PROBES = {"logreg": logistic_regression, "svm": linear_svm, "softmax": softmax_probe}
ADAPTERS = {"dann": DANN}
