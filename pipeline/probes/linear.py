"""The grid's own linear-probe solver (torch, GPU-capable): multinomial logistic regression and
liblinear's one-vs-rest L2-loss SVM, both to the exact minimiser's predictions (docs/methods.md)."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .base import softmax


def _mm(a, b):
    """``a @ b``; on the CPU through numpy's BLAS, which on one thread here ran the float64 skinny products
    (k x p by p x n) 1.3x and the Gram products (as a symmetric rank-k update) 2x faster than torch's
    (float32 skinny products: torch's were faster; docs/benchmarks.md)."""
    import torch

    if a.device.type != "cpu":
        return a @ b
    return torch.from_numpy(np.matmul(a.detach().numpy(), b.detach().numpy()))


def _spd_solve(G, g, single: bool, shared: bool = False, scale: float = 1.0, shift: float = 0.0, rows=None):
    """``H[c]^-1 g[c]`` for the symmetric positive definite ``H[c] = scale G[rows[c]] + shift I`` (``G``: m x q x q,
    ``rows``: which of them, default all; ``g``: one right-hand side per system, c x q or c x q x m) by
    Cholesky, in float32 when ``single`` (falling back to float64 where float32 loses definiteness). On the
    CPU through LAPACK (OpenBLAS's potrf / potrs: 1.8x torch's batched Cholesky here, docs/benchmarks.md),
    one system at a time in a reused scratch matrix: ``G`` is never written and never copied whole.
    ``shared``: every system is the first one (one factorisation solves every right-hand side)."""
    import torch

    idx = list(range(len(G))) if rows is None else [int(i) for i in rows]
    if shared:
        return _spd_solve(G, g.T[None], single, scale=scale, shift=shift, rows=idx[:1])[0].T
    if G.device.type != "cpu":
        H = G[idx] * scale
        H.diagonal(dim1=1, dim2=2).add_(shift)
        Hc = H.float() if single else H
        L, info = torch.linalg.cholesky_ex(Hc)
        if single and bool((info > 0).any()):
            return _spd_solve(G, g, False, scale=scale, shift=shift, rows=idx)
        rhs = g.to(Hc.dtype) if g.dim() == 3 else g.to(Hc.dtype)[..., None]  # (c, q, m) or (c, q)
        out = torch.cholesky_solve(rhs, L)
        return (out if g.dim() == 3 else out[..., 0]).to(g.dtype)
    from scipy.linalg import lapack

    potrf, potrs = (lapack.spotrf, lapack.spotrs) if single else (lapack.dpotrf, lapack.dpotrs)
    dt = np.float32 if single else np.float64
    Gn, gn = G.detach().numpy(), g.detach().numpy().astype(dt)
    q = Gn.shape[1]
    buf, out = np.empty((q, q), dt), np.empty_like(gn)
    for c, i in enumerate(idx):
        np.multiply(Gn[i], scale, out=buf, casting="same_kind")
        buf.flat[:: q + 1] += shift
        L, info = potrf(buf.T, lower=1, clean=0, overwrite_a=1)  # H symmetric: its transpose is its Fortran layout
        if info != 0:
            if single:
                return _spd_solve(G, g, False, scale=scale, shift=shift, rows=idx)
            raise np.linalg.LinAlgError(f"the Newton system of class {i} is not positive definite (LAPACK potrf info {info})")
        out[c], info = potrs(L, gn[c], lower=1)
    return torch.from_numpy(out).to(g.dtype)


def _gram(X):
    """X^T X; on the CPU as numpy's symmetric rank-k update (half the work of a general product)."""
    if X.device.type != "cpu":
        return X.T @ X
    return _mm(X.T, X)

# Where the grid's softmax probe stops (max-abs gradient in the preconditioned basis). At 1e-3, up to
# 1.5% of test predictions on ill-conditioned, near-separable features differed from the exact
# minimiser's; at 1e-5 at least 99.95% agree (tests/test_probes.py, docs/benchmarks.md). The svm
# probe has no tolerance: Newton steps on its active set finish at the exact minimiser.
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

    Speed, log loss: L-BFGS runs in a Kronecker-factored basis of the softmax Hessian
    H = 1/n sum_i (diag p_i - p_i p_i^T) (x) x_i x_i^T  ~  A (x) B  (as K-FAC, Martens & Grosse 2015):
    A = sum_i (diag p_i - p_i p_i^T) / sum_i w_i over the classes, B = X^T diag(w) X / n over the
    features, w_i = (1 - sum_c p_ic^2) / (k - 1) the row's mean curvature. With A = Qa diag(a) Qa^T and
    B = Qb diag(b) Qb^T, W = Qa (U * S) Qb^T, S_cj = (a_c b_j + 1/(C n))^{-1/2}: the Hessian in U is near
    the identity (:meth:`_curvature_basis`). Cold, the first basis is the one at W = 0 (A = I - 11^T / k,
    B = the covariance / k: the shared feature spectrum); a loose solve, a new basis, a loose solve, a
    new basis, then the tight solve; from a C path's last solution, one tight solve in the basis there.
    The change of variables leaves the minimiser unchanged but brings ill-conditioned features (CLIP's
    are) and the class coupling to tens of iterations; ``tol`` bounds the max-abs gradient in U.
    Squared hinge: semismooth Newton from zero (or a C path's last solution) to the exact minimiser
    (:meth:`_newton_hinge`); ``tol`` is unused.
    """

    _LOSSES = ("log", "squared_hinge")

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
        return torch.linalg.eigh(_gram(X) / len(X))

    def fit(self, X, y, spectrum=None, init=None):
        """``spectrum``: :meth:`spectrum` of the (column-centred) features, when already computed
        (:func:`~pipeline.probes.fit_probes` shares one; the log loss's first preconditioner); any
        orthonormal basis leaves the minimiser unchanged. ``init``: (coef, intercept) to start from (a C
        path warm-starts each C from the last C's solution): the squared hinge's Newton steps end at the
        exact minimiser wherever they start; the log loss runs one tight solve from there,
        preconditioned at that point -- the same minimiser, reached to ``tol`` from another start."""
        import torch

        if self.loss not in self._LOSSES:
            raise ValueError(f"LinearProbe: unknown loss {self.loss!r}; choose from {sorted(self._LOSSES)}")
        if self.C <= 0:
            raise ValueError(f"classifier.C={self.C} must be > 0")
        X = torch.as_tensor(np.asarray(X), device=self.device).to(getattr(torch, self.dtype))
        self.classes_, yi = np.unique(y, return_inverse=True)
        yt = torch.as_tensor(yi, device=self.device)
        fit = self._fit_hinge if self.loss == "squared_hinge" else self._fit_log
        W, bias = fit(X, yt, len(self.classes_), 1.0 / (self.C * len(X)), spectrum, init)
        self.coef_ = W.T.cpu().numpy().astype(np.float64)
        self.intercept_ = bias.cpu().numpy().astype(np.float64)
        return self

    def _fit_hinge(self, X, yt, k, r, spectrum, init):
        """liblinear's bias (a regularised constant feature), one column per class (OvR); semismooth
        Newton from ``init`` or from zero (where every row violates its margin, so the first step is the
        ridge least-squares fit to the +-1 targets) to the exact minimiser."""
        import torch

        dt, n = torch.float64, len(X)
        X = torch.cat([X, torch.ones(n, 1, dtype=X.dtype, device=self.device)], 1)
        sign = 2.0 * torch.nn.functional.one_hot(yt, k).T.to(dt) - 1.0  # k x n, as the logits
        self.n_iter_ = 0
        if init is None:
            Wt = torch.zeros(k, X.shape[1], dtype=dt, device=self.device)
        else:
            Wt = torch.as_tensor(np.concatenate([init[0], np.asarray(init[1])[:, None]], 1), dtype=dt, device=self.device)
        Wt, self.newton_steps_ = self._newton_hinge(Wt, X, sign, r, self.max_iter)
        W = Wt.T.to(X.dtype)
        return W[:-1], W[-1]

    def _fit_log(self, X, yt, k, r, spectrum, init):
        """Multinomial log loss by L-BFGS in the Kronecker-factored basis (class docstring): without
        ``init``, a loose solve in the basis at W = 0, a loose solve in the basis at that point, then a
        tight one in the basis re-estimated again; from ``init``, one tight solve in the basis estimated
        there. The unpenalised intercept makes centring X an exact reparametrisation."""
        import torch

        dt = torch.float64
        large = len(X) * k > self.LARGE  # large: logits in row blocks, memory k x block
        if spectrum is not None:  # standardised (centred) rows: no centring, no centred copy
            center, Xc = torch.zeros(X.shape[1], dtype=X.dtype, device=X.device), X
        else:
            center = X.mean(0)
            Xc = X - center
        b = torch.zeros(k, dtype=dt, device=self.device)
        if init is not None:
            Wt = torch.as_tensor(np.asarray(init[0]), dtype=dt, device=self.device)
            b = torch.as_tensor(np.asarray(init[1]), dtype=dt, device=self.device) + Wt @ center.to(dt)
            basis = self._curvature_basis(Wt, b, Xc, large, k, r)
            phases = [True]
        else:
            Wt = torch.zeros(k, X.shape[1], dtype=dt, device=self.device)
            lam, V = self.spectrum(Xc) if spectrum is None else (torch.as_tensor(a, device=self.device) for a in spectrum)
            a, Qa = torch.linalg.eigh(torch.eye(k, dtype=dt, device=self.device) - 1.0 / k)  # A at W = 0
            basis = self._scaled(a.clamp_min(0), Qa, lam.double().clamp_min(0) / k, V.double(), r)
            phases = [False, False, True]  # is the solve the tight one
        self.n_iter_ = 0
        for tight in phases:
            Qa, Qb, S = basis
            U = (Qa.T @ Wt @ Qb) / S  # W^T = Qa (U * S) Qb^T
            opt = torch.optim.LBFGS([U, b], max_iter=self.max_iter,
                                    tolerance_grad=self.tol if tight else max(self.tol, 1e-3),
                                    tolerance_change=1e-12, history_size=50, line_search_fn="strong_wolfe")

            def closure():
                loss, gWt, gb = self._loss_grad(Qa @ (U * S) @ Qb.T, b, Xc, large, yt, r)
                U.grad, b.grad = (Qa.T @ gWt @ Qb) * S, gb
                return loss

            with torch.no_grad():
                opt.step(closure)
                self.n_iter_ += opt.state[opt._params[0]]["n_iter"]
                Wt = Qa @ (U * S) @ Qb.T
                if not tight:
                    basis = self._curvature_basis(Wt, b, Xc, large, k, r)
        W = Wt.T.to(Xc.dtype)
        return W, b.to(Xc.dtype) - center @ W

    @staticmethod
    def _scaled(a, Qa, lb, Qb, r):
        """(Qa, Qb, S) with S_cj = (a_c b_j + r)^{-1/2}; b floored at 1e-4 x its mean."""
        lb = lb.clamp_min(1e-4 * float(lb.mean().clamp_min(1e-12)))
        return Qa, Qb, (a[:, None] * lb[None, :] + r).rsqrt()

    @classmethod
    def _curvature_basis(cls, Wt, b, X, large, k, r):
        """The Kronecker factors of the softmax Hessian at (W, b) (class docstring), eigen-decomposed:
        A (k x k) over the classes, B = X^T diag(w) X / n over the features (the Gram of the rows scaled
        by sqrt(w_i)), w_i = (1 - sum_c p_ic^2) / (k - 1). On near-separable data the curvature sits on
        the rows near a boundary, which a scalar times the plain covariance misses; A carries how the
        classes couple there (docs/benchmarks.md: 1.5x fewer L-BFGS iterations than B alone)."""
        import torch

        B, A, wsum = None, 0.0, 0.0
        for i, j in cls._blocks(X, k, large):
            pr = cls._logits_t(Wt, b, X[i:j]).softmax(0)  # k x rows
            w = ((1 - (pr * pr).sum(0)) / max(k - 1, 1)).clamp_min(0)
            A = A + torch.diag(pr.sum(1)) - pr @ pr.T
            wsum = wsum + float(w.sum())
            part = _gram(X[i:j] * w.sqrt().to(X.dtype)[:, None])  # X^T diag(w) X
            B = part if B is None else B + part
        a, Qa = torch.linalg.eigh(A / max(wsum, 1e-12))
        lb, Qb = torch.linalg.eigh((B / len(X)).float())  # a preconditioner: float32 is enough (and 2x faster)
        return cls._scaled(a.clamp_min(0), Qa, lb.double(), Qb.double(), r)

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
        gram = lambda rows: _gram(X[rows]).to(Wt.dtype)  # noqa: E731

        def move(c, rows, sign):  # G[c] +- X_rows^T X_rows, nothing for no row (the data's dtype, added in float64)
            if bool(rows.any()):
                part = _gram(X[rows])
                G[c].add_(part) if sign > 0 else G[c].sub_(part)
        M = sign * _mm(Wt, X64.T)  # k x n margins
        G = torch.empty(k, q, q, dtype=Wt.dtype, device=Wt.device)  # X_A^T X_A per class
        before, full, rough = None, None, True
        done = torch.zeros(k, dtype=torch.bool, device=Wt.device)
        steps = 0
        for _ in range(min(max_steps, 100)):
            active = M < 1
            for c in torch.nonzero(~done).flatten().tolist():
                if before is None:
                    if int(active[c].sum()) * 2 > n:  # more active rows than not: the whole Gram minus the rest
                        full = gram(slice(None)) if full is None else full
                        G[c] = full - gram(~active[c])
                    else:
                        G[c] = gram(active[c])
                else:
                    move(c, active[c] & ~before[c], 1)
                    move(c, before[c] & ~active[c], -1)
            first, before = before is None, active  # first: from zero every row is active, H the same for all
            live = torch.nonzero(~done).flatten()  # classes still stepping
            Ml, Sl, Wl = M[live], sign[live], Wt[live]
            grad = -2.0 / n * _mm(Sl * (1.0 - Ml).clamp_min(0), X64) + r * Wl  # rows off the active set add 0
            # H = 2/n G + r I; far from the end the direction need not be exact: float32, half the cost
            D = _spd_solve(G, grad, rough, shared=first and bool(active.all()), scale=2.0 / n, shift=r, rows=live)
            U = Sl * _mm(D, X64.T)  # margins move by -t U along W - t D
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
        else:
            import warnings

            from sklearn.exceptions import ConvergenceWarning

            warnings.warn(f"svm: {int((~done).sum())} of {k} classes' Newton steps had not settled their active set "
                          f"after {min(max_steps, 100)} steps (classifier.max_iter); their solution is not exact",
                          ConvergenceWarning, stacklevel=3)
        return Wt, steps

    LARGE = 2**25  # k x n above this: the log loss runs in row blocks of BLOCK_ELEMS / k rows (bounded memory)
    BLOCK_ELEMS = 2**23

    @classmethod
    def _blocks(cls, X, k, large=True):
        """Row blocks of BLOCK_ELEMS / k rows when ``large``, else all rows at once."""
        if not large:
            return [(0, len(X))]
        step = max(cls.BLOCK_ELEMS // max(k, 1), 1024)
        return [(i, min(i + step, len(X))) for i in range(0, len(X), step)]

    @staticmethod
    def _logits_t(Wt, b, X):
        """Logits transposed, (X W + b)^T = W^T X^T + b (k x n): the skinny product in the layout CPU BLAS
        runs fastest; float32 data, float64 parameters."""
        return (Wt.to(X.dtype) @ X.T).to(Wt.dtype) + b[:, None]

    @classmethod
    def _loss_grad(cls, Wt, b, X, large, y, r):
        """Cross-entropy objective and its gradient in W and b, in closed form (no autograd graph), in the
        k x n layout of the transposed logits z: dL/dz = (softmax(z) - onehot(y)) / n, plus the ridge
        r ||W||^2 / 2; gradient in W^T (k x p): dL/dz X + r W^T. ``large``: in row blocks of X (the same
        sums, memory k x block)."""
        import torch

        n, loss, gWt, gb = len(X), 0.0, r * Wt, 0.0
        for i, j in cls._blocks(X, len(Wt), large):
            z = cls._logits_t(Wt, b, X[i:j])
            lse = z.logsumexp(0, keepdim=True)
            loss = loss + (lse.squeeze(0) - z.gather(0, y[None, i:j]).squeeze(0)).sum() / n
            G = (z - lse).exp()
            G[y[i:j], torch.arange(j - i)] -= 1.0
            G /= n
            gWt = gWt + (G.to(X.dtype) @ X[i:j]).to(Wt.dtype)
            gb = gb + G.sum(1)
        return loss + (Wt * Wt).sum() * r / 2, gWt, gb

    def decision_function(self, X):
        return np.asarray(X, np.float64) @ self.coef_.T + self.intercept_

    def predict_proba(self, X):
        return softmax(self.decision_function(X))

    def predict(self, X):
        return self.classes_[self.decision_function(X).argmax(axis=1)]


