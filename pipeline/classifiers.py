"""Classifiers on cached features: CLIP zero-shot and linear probes (scikit-learn estimators)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .operators import l2_normalize
from .store import atomic_path


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row max for stability."""
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


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
        return softmax(self.logit_scale * self.decision_function(X))

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

    @staticmethod
    def spectrum(X):
        """Eigenvalues and eigenvectors of X^T X / n in float32 (a preconditioner needs no more); on
        CPU the product runs as numpy's symmetric rank-k update, half the work of a general product."""
        import torch

        X = torch.as_tensor(X).float()
        G = torch.from_numpy(X.numpy().T @ X.numpy()) if X.device.type == "cpu" else X.T @ X
        return torch.linalg.eigh(G / len(X))

    def fit(self, X, y, spectrum=None):
        """``spectrum``: :meth:`spectrum` of the (column-centred) features, when already computed
        (:func:`fit_probes` shares one); any orthonormal basis leaves the minimiser unchanged."""
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
            sign = 2.0 * torch.nn.functional.one_hot(yt, k).T.to(dt) - 1.0  # k x n, as the logits
        else:  # unpenalised intercept: centring X is an exact reparametrisation
            center = X.mean(0)
        Xc = X - center
        Xct = Xc.T.contiguous()
        if spectrum is None:
            lam, V = self.spectrum(Xc)
        else:
            lam, V = (torch.as_tensor(a, device=self.device) for a in spectrum)
            if hinge:  # the bias feature: second moment 1, uncorrelated with centred features
                lam, V = torch.cat([lam, lam.new_ones(1)]), torch.block_diag(V, V.new_ones(1, 1))
        lam, V, r = lam.double().clamp_min(0), V.double(), 1.0 / (self.C * n)
        Vt = V.T.contiguous()  # W^T = (diag(scale) U)^T V^T: every product below in the k x p layout
        U0 = torch.zeros(k, X.shape[1], dtype=dt, device=self.device)  # W^T = U diag(scale) V^T
        b = torch.zeros(k, dtype=dt, device=self.device)
        target = sign if hinge else yt
        kappa, self.n_iter_ = self._CURVATURE[self.loss], 0
        for phase in range(3):  # loose solves with the curvature re-estimated after each, then a tight one
            last = phase == 2
            scale = (kappa * lam + r).rsqrt()
            U = U0.clone()
            opt = torch.optim.LBFGS([U, b] if not hinge else [U], max_iter=self.max_iter,
                                    tolerance_grad=self.tol if last else max(self.tol, 1e-3),
                                    tolerance_change=1e-12, history_size=50, line_search_fn="strong_wolfe")

            def closure():
                loss, gWt, gb = self._loss_grad((U * scale) @ Vt, b, Xc, Xct, target, r)
                U.grad, b.grad = (gWt @ V) * scale, gb
                return loss

            with torch.no_grad():
                opt.step(closure)
                self.n_iter_ += opt.state[opt._params[0]]["n_iter"]
                if last:
                    break
                logits = self._logits_t((U * scale) @ Vt, b, Xct)
                if hinge:  # squared hinge: curvature 2 on the margin-violating rows
                    new = 2.0 * float((sign * logits < 1).to(dt).mean())
                else:  # softmax: mean eigenvalue of diag(p) - p p^T over its k - 1 free directions
                    pr = logits.softmax(0)
                    new = float((1 - (pr * pr).sum(0)).mean()) / max(k - 1, 1)
            new = min(max(new, 1e-4), self._CURVATURE[self.loss])
            U0 = U * scale * (new * lam + r).sqrt()  # same W in the next basis
            kappa = new
        Wt = (U * scale) @ Vt
        if hinge:  # polish to the exact minimiser: Newton steps on the margin-violating rows
            Wt, self.newton_steps_ = self._newton_hinge(Wt, Xc, sign, r, self.max_iter)
        W = Wt.T.to(Xc.dtype)
        bias = b.to(Xc.dtype) - center @ W
        if hinge:
            W, bias = W[:-1], W[-1]
        self.coef_ = W.T.cpu().numpy().astype(np.float64)
        self.intercept_ = bias.cpu().numpy().astype(np.float64)
        return self

    @staticmethod
    def _newton_hinge(Wt, X, sign, r, max_steps):
        """Semismooth Newton on the k one-vs-rest squared-hinge problems at once (the generalised
        Hessian of liblinear's TRON, Lin, Weng & Keerthi, JMLR 2008). For class c, with active rows
        A = {i : s_i w.x_i < 1}:
            g = -2/n X_A^T (s_A * (1 - s_A X_A w)) + r w,   H = 2/n X_A^T X_A + r I,   w <- w - t H^-1 g,
        t the exact minimiser of the objective along the step (a convex piecewise quadratic in t, found
        by 1-D Newton). On a fixed active set the objective is quadratic, so a full step that leaves A
        unchanged lands on the minimiser: that is the stopping rule. Margins and gradients are in
        float64 (float32 would flip rows at the margin back and forth); X_A^T X_A comes from the data's
        dtype and is updated as rows enter and leave A. The k problems share every pass over X.
        Returns (W^T, Newton steps taken, summed over classes)."""
        import torch

        n, q = X.shape
        k = len(Wt)
        X64, Wt = X.to(Wt.dtype), Wt.clone()
        eye = torch.eye(q, dtype=Wt.dtype, device=Wt.device)
        gram = lambda rows: (X[rows].T @ X[rows]).to(Wt.dtype)  # noqa: E731
        M = sign * (Wt @ X64.T)  # k x n margins
        G = torch.empty(k, q, q, dtype=Wt.dtype, device=Wt.device)  # X_A^T X_A per class
        before, full, rough = None, None, True
        done = torch.zeros(k, dtype=torch.bool, device=Wt.device)
        steps = 0
        for _ in range(min(max_steps, 50)):
            active = M < 1
            for c in torch.nonzero(~done).flatten().tolist():
                if before is None:
                    if int(active[c].sum()) * 2 > n:  # more active rows than not: the whole Gram minus the rest
                        full = gram(slice(None)) if full is None else full
                        G[c] = full - gram(~active[c])
                    else:
                        G[c] = gram(active[c])
                else:
                    G[c] += gram(active[c] & ~before[c]) - gram(before[c] & ~active[c])
            before = active
            live = torch.nonzero(~done).flatten()  # classes still stepping
            Ml, Sl, Wl = M[live], sign[live], Wt[live]
            grad = -2.0 / n * ((Sl * (1.0 - Ml).clamp_min(0)) @ X64) + r * Wl  # rows off the active set add 0
            H = 2.0 / n * G[live] + r * eye
            if rough:  # far from the end the direction need not be exact: a float32 factorisation, half the cost
                D = torch.cholesky_solve(grad.float()[..., None], torch.linalg.cholesky(H.float()))[..., 0].to(Wt.dtype)
            else:
                D = torch.cholesky_solve(grad[..., None], torch.linalg.cholesky(H))[..., 0]
            U = Sl * (D @ X64.T)  # margins move by -t U along W - t D
            t = torch.ones(len(live), dtype=Wt.dtype, device=Wt.device)
            wd, dd = (Wl * D).sum(1), (D * D).sum(1)
            for _ in range(12):  # 1-D Newton on phi_c(t) = sum max(0, 1 - m + t u)^2 / n + r |w - t d|^2 / 2
                E = (1.0 - Ml + t[:, None] * U).clamp_min(0)
                slope = 2.0 / n * (E * U).sum(1) - r * wd + r * t * dd
                curv = 2.0 / n * ((E > 0) * U * U).sum(1) + r * dd
                step = slope / curv
                t -= step
                if float(step.abs().max()) <= 1e-10:
                    break
            Wt[live] = Wl - t[:, None] * D
            M[live] = Ml - t[:, None] * U
            steps += len(live)
            changed = ((M[live] < 1) != active[live]).sum(1)
            same = changed == 0
            rough = bool((changed > n // 200).all())  # every live class still moving rows in and out
            # same active set and a (near) full step: the piece's quadratic is minimised, its gradient
            # shrunk by |1 - t| <= 1e-4 from an already converged one
            done[live] = (same & ((t - 1).abs() < 1e-4)) | (t.abs() * dd.sqrt() <= 1e-12 * Wt[live].norm(dim=1))
            if bool(done.all()):
                break
        return Wt, steps

    @staticmethod
    def _logits_t(Wt, b, Xt):
        """Logits transposed, (X W + b)^T = W^T X^T + b (k x n), from contiguous W^T and X^T: CPU BLAS
        runs this skinny product 2-3x faster than X W; float32 data, float64 parameters."""
        return (Wt.to(Xt.dtype) @ Xt).to(Wt.dtype) + b[:, None]

    @classmethod
    def _loss_grad(cls, Wt, b, X, Xt, target, r):
        """Objective and its gradient in W and b, in closed form (no autograd graph), all in the
        k x n layout of the transposed logits z: squared hinge (``target`` = +-1 matrix)
        L = mean_i sum_k a_ki^2, a = max(0, 1 - s * z), dL/dz = -2 s a / n; cross-entropy
        (``target`` = labels) dL/dz = (softmax(z) - onehot(y)) / n; both plus the ridge r ||W||^2 / 2.
        Gradient in W^T (k x p): dL/dz X + r W^T."""
        import torch

        z = cls._logits_t(Wt, b, Xt)
        n = z.shape[1]
        if target.dtype.is_floating_point:
            a = (1.0 - target * z).clamp_min(0)
            loss, G = (a * a).sum() / n, -2.0 * target * a / n
        else:
            lse = z.logsumexp(0, keepdim=True)
            loss = (lse.squeeze(0) - z.gather(0, target[None]).squeeze(0)).mean()
            G = (z - lse).exp()
            G[target, torch.arange(n)] -= 1.0
            G /= n
        gWt = (G.to(X.dtype) @ X).to(Wt.dtype) + r * Wt
        return loss + (Wt * Wt).sum() * r / 2, gWt, G.sum(1)

    def decision_function(self, X):
        return np.asarray(X, np.float64) @ self.coef_.T + self.intercept_

    def predict_proba(self, X):
        return softmax(self.decision_function(X))

    def predict(self, X):
        return self.classes_[self.decision_function(X).argmax(axis=1)]


# Where the grid's softmax probe stops (max-abs gradient in the preconditioned basis). At 1e-3, up to
# 1.5% of test predictions on ill-conditioned, near-separable features differed from the exact
# minimiser's; at 1e-5 at least 99.95% agree (tests/test_probes.py, docs/benchmarks.md). The svm
# probe needs no tight tolerance: Newton steps on its active set finish at the exact minimiser.
GRID_TOL = 1e-5


def softmax_probe(C: float = 1.0, max_iter: int = 500, seed: int = 0, standardize: bool = True):
    """``LinearProbe(loss="log")``: logistic regression's minimiser, fast and GPU-capable."""
    clf = LinearProbe("log", C=C, max_iter=max_iter, tol=GRID_TOL, dtype="float32")
    return make_pipeline(StandardScaler(), clf) if standardize else clf


def linear_svm(C: float = 1.0, max_iter: int = 500, seed: int = 0, standardize: bool = True):
    """One-vs-rest L2-loss linear SVM (liblinear's objective; the frozen-features + SVM probe of
    Donahue et al. 2014 / Razavian et al. 2014 in seed 003's table), solved by :class:`LinearProbe`."""
    clf = LinearProbe("squared_hinge", C=C, max_iter=max_iter, tol=1e-3, dtype="float32")
    return make_pipeline(StandardScaler(), clf) if standardize else clf


def fit_probes(names, X, y, C: float = 1.0, max_iter: int = 1000, seed: int = 0, standardize: bool = True) -> dict:
    """{name: fitted ``PROBES[name](C, max_iter, seed, standardize)``} on one training set, which is
    standardised once: the StandardScaler is fit on ``X`` and shared by every probe's pipeline, at the
    cost of one scaling (and one trip to a worker process). The :class:`LinearProbe` s also share one
    feature spectrum, their preconditioner. ``logreg`` equals a separate fit exactly; ``svm`` /
    ``softmax`` reach the same minimiser by another path, so they agree to the solver tolerance."""
    out, spectrum = {}, None
    scaler = StandardScaler().fit(X) if standardize else None
    Xs = scaler.transform(X) if standardize else X
    for name in names:
        clf = PROBES[name](C, max_iter, seed, False)
        if isinstance(clf, LinearProbe) and standardize:  # centred columns: one spectrum serves every loss
            spectrum = LinearProbe.spectrum(Xs) if spectrum is None else spectrum
            clf.fit(Xs, y, spectrum=spectrum)
        else:
            clf.fit(Xs, y)
        out[name] = make_pipeline(scaler, clf) if standardize else clf
    return out


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
    of each domain a step. Features are standardised with the pooled source + target statistics.
    ``domain_weight=0`` is the source-only baseline (the same network without the adversary).

    :meth:`fit_many` trains one network per task in a single batched run (``torch.bmm``): the
    networks share no parameter, SGD is elementwise and each task draws from its own generator, so
    it gives what :meth:`fit` gives on each task alone, at a fraction of the cost.
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
        (fitted,) = self.fit_many([(X, y, X_target)])
        self.__dict__.update({k: v for k, v in vars(fitted).items() if k.endswith("_")})
        return self

    def fit_many(self, tasks) -> list["DANN"]:
        """One fitted clone of this estimator per ``(X, y, X_target)`` task."""
        import torch
        from torch import nn

        if any(Xt is None or not len(Xt) for *_, Xt in tasks):
            raise ValueError("DANN.fit needs unlabelled target rows (X_target)")
        out, dev, bs, h = [clone(self) for _ in tasks], self.device, self.batch_size, self.hidden
        B, d = len(tasks), tasks[0][0].shape[1]
        gens = [torch.Generator().manual_seed(self.seed) for _ in tasks]
        Xs = torch.zeros(B, max(len(X) for X, *_ in tasks), d)
        Xt = torch.zeros(B, max(len(X) for *_, X in tasks), d)
        ys = torch.zeros(Xs.shape[:2], dtype=torch.long)
        for b, (est, (X, y, X_target)) in enumerate(zip(out, tasks)):
            pooled = np.concatenate([X, X_target])
            est.mean_, est.scale_ = pooled.mean(0), pooled.std(0) + 1e-8
            est.classes_, yi = np.unique(y, return_inverse=True)
            Xs[b, : len(X)], Xt[b, : len(X_target)] = torch.as_tensor(est._std(X)), torch.as_tensor(est._std(X_target))
            ys[b, : len(X)] = torch.as_tensor(yi)
        Xs, Xt, ys = Xs.to(dev), Xt.to(dev), ys.to(dev)

        def linear(fan_in, fan_outs):  # nn.Linear's default init from each task's generator, zero-padded
            layer = [torch.zeros(B, n, max(fan_outs)) for n in (fan_in, 1)]
            for t in layer:
                for b, (g, m) in enumerate(zip(gens, fan_outs)):
                    t[b, :, :m] = (torch.rand(len(t[b]), m, generator=g) * 2 - 1) * fan_in ** -0.5
            return [t.to(dev).requires_grad_() for t in layer]

        classes = [len(e.classes_) for e in out]  # the label head has each task's own class count
        (W1, b1), (Wy, by), (Wd1, bd1), (Wd2, bd2) = (linear(d, [h] * B), linear(h, classes), linear(h, [h] * B),
                                                      linear(h, [1] * B))
        k = max(classes)
        absent = torch.tensor([[0.0] * m + [-1e9] * (k - m) for m in classes], device=dev)  # padded classes
        params = [W1, b1, Wy, by, Wd1, bd1, Wd2, bd2]
        opt = torch.optim.SGD(params, lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)
        reverse, rows = _grad_reverse().apply, torch.arange(B, device=dev)[:, None]
        n_s, n_t = [len(X) for X, *_ in tasks], [len(X) for *_, X in tasks]
        dom = torch.cat([torch.zeros(bs), torch.ones(bs)]).expand(B, -1).to(dev)
        for step in range(self.steps):
            p = step / max(self.steps - 1, 1)
            for group in opt.param_groups:
                group["lr"] = self.lr / (1 + 10 * p) ** 0.75
            lam = self.domain_weight * (2 / (1 + np.exp(-10 * p)) - 1)
            i = torch.stack([torch.randint(n, (bs,), generator=g) for n, g in zip(n_s, gens)]).to(dev)
            j = torch.stack([torch.randint(n, (bs,), generator=g) for n, g in zip(n_t, gens)]).to(dev)
            feats = torch.relu(torch.baddbmm(b1, torch.cat([Xs[rows, i], Xt[rows, j]], 1), W1))
            logits = torch.baddbmm(by, feats[:, :bs], Wy) + absent[:, None]
            loss = nn.functional.cross_entropy(logits.reshape(B * bs, k), ys[rows, i].reshape(-1)) * B
            if self.domain_weight:  # each task's mean loss; the sum over tasks keeps their gradients apart
                hid = torch.relu(torch.baddbmm(bd1, reverse(feats, lam), Wd1))
                logit = torch.baddbmm(bd2, hid, Wd2).squeeze(-1)
                loss = loss + nn.functional.binary_cross_entropy_with_logits(logit, dom) * B
            opt.zero_grad()
            loss.backward()
            opt.step()
        for b, est in enumerate(out):
            kb = len(est.classes_)
            est.weights_ = [t[b].detach().cpu().numpy().astype(np.float64) for t in (W1, b1, Wy[:, :, :kb], by[:, :, :kb])]
        return out

    def _std(self, X):
        return ((np.asarray(X, np.float32) - self.mean_) / self.scale_).astype(np.float32)

    def decision_function(self, X):
        W1, b1, Wy, by = self.weights_
        return np.maximum(self._std(X) @ W1 + b1, 0) @ Wy + by

    def predict(self, X):
        return self.classes_[self.decision_function(X).argmax(axis=1)]


# ------------------------------------------------------------------------------------- ArcFace
def arcface_logits(cos, y, s: float, m: float):
    """ArcFace logits (Deng, Guo, Xue, Zafeiriou, "ArcFace: Additive Angular Margin Loss for Deep
    Face Recognition", CVPR 2019, eq. 3): s cos(theta_j + m [j = y_i]), cos theta_j = <x/|x|, w_j/|w_j|>.
    Where theta_y + m > pi the target logit is s (cos theta_y - m sin m) instead, as in the authors'
    code, so it stays decreasing in theta_y. ``cos`` [n, k] tensor, ``y`` [n] class indices."""
    import torch

    target = cos.gather(1, y[:, None])
    sin = (1 - target * target).clamp_min(1e-15).sqrt()  # cos(theta + m) = cos cos m - sin sin m, finite gradients
    margin = torch.where(target > math.cos(math.pi - m), target * math.cos(m) - sin * math.sin(m),
                         target - m * math.sin(m))
    return s * cos.scatter(1, y[:, None], margin)


class ArcFace(ClassifierMixin, BaseEstimator):
    """A linear classifier on unit vectors trained with the ArcFace loss CE(arcface_logits(cos, y), y)
    (PromptStyler, Cho et al. ICCV 2023, trains it on style-content text features; s = 5, m = 0.5).
    SGD with momentum, mini-batches of ``batch_size``, ``epochs`` passes. Scores are cos(x, w_j)."""

    def __init__(self, s: float = 5.0, m: float = 0.5, epochs: int = 50, lr: float = 0.005, momentum: float = 0.9,
                 batch_size: int = 128, seed: int = 0):
        self.s = s
        self.m = m
        self.epochs = epochs
        self.lr = lr
        self.momentum = momentum
        self.batch_size = batch_size
        self.seed = seed

    def fit(self, X, y):
        import torch

        if self.s <= 0 or not 0 <= self.m < np.pi / 2:
            raise ValueError(f"promptstyler.arcface: need s > 0 and 0 <= m < pi/2, got s={self.s}, m={self.m}")
        self.classes_, yi = np.unique(y, return_inverse=True)
        g = torch.Generator().manual_seed(self.seed)
        X = torch.nn.functional.normalize(torch.tensor(np.asarray(X, np.float32)), dim=1)
        yt = torch.as_tensor(yi)
        W = (torch.randn(len(self.classes_), X.shape[1], generator=g) * 0.01).requires_grad_()
        opt = torch.optim.SGD([W], lr=self.lr, momentum=self.momentum)
        for _ in range(self.epochs):
            for idx in torch.randperm(len(X), generator=g).split(self.batch_size):
                cos = X[idx] @ torch.nn.functional.normalize(W, dim=1).T
                loss = torch.nn.functional.cross_entropy(arcface_logits(cos, yt[idx], self.s, self.m), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.coef_ = torch.nn.functional.normalize(W.detach(), dim=1).numpy().astype(np.float64)
        return self

    def decision_function(self, X):
        return l2_normalize(np.asarray(X, np.float64)) @ self.coef_.T

    def predict(self, X):
        return self.classes_[self.decision_function(X).argmax(axis=1)]

    def save(self, path, provenance: dict | None = None) -> None:
        """Weights as npz (no pickle), written atomically; ``provenance`` (JSON) says which encoder made
        the features it was trained on."""
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, coef=self.coef_, classes=self.classes_, params=json.dumps(self.get_params()),
                     provenance=json.dumps(provenance or {}))

    @classmethod
    def load(cls, path) -> "ArcFace":
        """Inverse of :meth:`save`; the provenance is in ``provenance_``."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path} does not exist; run the train_arcface stage (dvc repro train_arcface)")
        with np.load(path, allow_pickle=False) as z:
            clf = cls(**json.loads(str(z["params"])))
            clf.coef_, clf.classes_, clf.provenance_ = z["coef"], z["classes"], json.loads(str(z["provenance"]))
        return clf


# probes fit on labelled source rows only; DANN also needs the unlabelled target rows
PROBES = {"logreg": logistic_regression, "svm": linear_svm, "softmax": softmax_probe}
ADAPTERS = {"dann": DANN}
