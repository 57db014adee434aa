"""The grid's own linear-probe solver (torch, GPU-capable): multinomial logistic regression and
liblinear's one-vs-rest L2-loss SVM, both to the exact minimiser's predictions (docs/methods.md)."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .base import softmax

# Where the grid's softmax probe stops (max-abs gradient in the preconditioned basis). At 1e-3, up to
# 1.5% of test predictions on ill-conditioned, near-separable features differed from the exact
# minimiser's; at 1e-5 at least 99.95% agree (tests/test_probes.py, docs/benchmarks.md). The svm
# probe needs no tight tolerance: Newton steps on its active set finish at the exact minimiser.
GRID_TOL = 1e-5


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

    def fit(self, X, y, spectrum=None, init=None):
        """``spectrum``: :meth:`spectrum` of the (column-centred) features, when already computed
        (:func:`~pipeline.probes.fit_probes` shares one); any orthonormal basis leaves the minimiser
        unchanged. ``init``: (coef, intercept) to start from (a C path warm-starts each C from the last
        C's solution): the squared hinge's Newton steps end at the exact minimiser wherever they start;
        the log loss runs one tight solve from there, its curvature estimated at that point -- the same
        minimiser, reached to ``tol`` from another start."""
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
        large = not hinge and n * k > self.LARGE
        if large and spectrum is not None:  # standardised (centred) rows: no centred copy, no transposed copy
            center = torch.zeros_like(center)
        Xc = X - center if not (large and spectrum is not None) else X
        Xct = Xc.T.contiguous() if not large else None  # large: logits in row blocks, memory k x block
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
        warm = hinge and init is not None
        phases = [] if warm else [0, 1, 2]  # loose solves with the curvature re-estimated after each, then a tight one
        if not hinge and init is not None:  # the log loss from a given point (a C path): one tight solve
            W0t = torch.as_tensor(np.asarray(init[0]), dtype=dt, device=self.device)
            b = torch.as_tensor(np.asarray(init[1]), dtype=dt, device=self.device) + W0t @ center.to(dt)
            kappa = min(max(self._softmax_curvature(W0t, b, Xc, Xct, k), 1e-4), kappa)
            U0 = (W0t @ V) * (kappa * lam + r).sqrt()
            phases = [2]
        for phase in phases:
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
                if hinge:  # squared hinge: curvature 2 on the margin-violating rows
                    new = 2.0 * float((sign * self._logits_t((U * scale) @ Vt, b, Xct) < 1).to(dt).mean())
                else:  # softmax: mean eigenvalue of diag(p) - p p^T over its k - 1 free directions
                    new = self._softmax_curvature((U * scale) @ Vt, b, Xc, Xct, k)
            new = min(max(new, 1e-4), self._CURVATURE[self.loss])
            U0 = U * scale * (new * lam + r).sqrt()  # same W in the next basis
            kappa = new
        Wt = (U * scale) @ Vt if not warm else torch.as_tensor(
            np.concatenate([init[0], np.asarray(init[1])[:, None]], 1), dtype=dt, device=self.device)
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

    LARGE = 2**25  # k x n above this: the log loss runs in row blocks of BLOCK_ELEMS / k rows (bounded memory)
    BLOCK_ELEMS = 2**23

    @classmethod
    def _blocks(cls, X, k):
        step = max(cls.BLOCK_ELEMS // max(k, 1), 1024)
        return [(i, min(i + step, len(X))) for i in range(0, len(X), step)]

    @classmethod
    def _softmax_curvature(cls, Wt, b, X, Xt, k) -> float:
        """Mean over rows of (1 - sum_c p_c^2) / (k - 1) at (W, b); in row blocks when ``Xt`` is None."""
        if Xt is not None:
            pr = cls._logits_t(Wt, b, Xt).softmax(0)
            return float((1 - (pr * pr).sum(0)).mean()) / max(k - 1, 1)
        total = 0.0
        for i, j in cls._blocks(X, k):
            pr = cls._logits_t(Wt, b, X[i:j].T).softmax(0)
            total += float((1 - (pr * pr).sum(0)).sum())
        return total / len(X) / max(k - 1, 1)

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

        if Xt is None:  # the log loss in row blocks: the same sums, memory k x block
            n, loss, gWt, gb = len(X), 0.0, r * Wt, 0.0
            for i, j in cls._blocks(X, len(Wt)):
                z = cls._logits_t(Wt, b, X[i:j].T)
                lse = z.logsumexp(0, keepdim=True)
                loss = loss + (lse.squeeze(0) - z.gather(0, target[None, i:j]).squeeze(0)).sum() / n
                G = (z - lse).exp()
                G[target[i:j], torch.arange(j - i)] -= 1.0
                G /= n
                gWt = gWt + (G.to(X.dtype) @ X[i:j]).to(Wt.dtype)
                gb = gb + G.sum(1)
            return loss + (Wt * Wt).sum() * r / 2, gWt, gb
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


