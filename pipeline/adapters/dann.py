"""DANN (Ganin & Lempitsky, ICML 2015; Ganin et al., JMLR 2016) on frozen features."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from . import ADAPTERS


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


@ADAPTERS.register("dann")
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


