"""ArcFace (Deng, Guo, Xue, Zafeiriou, CVPR 2019): PromptStyler's classifier on style-content text features."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .operators.base import l2_normalize
from .store import atomic_path


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
        self.history_ = []  # per epoch: mean training loss and training accuracy (the DVC plot of train_arcface)
        for epoch in range(self.epochs):
            total = 0.0
            for idx in torch.randperm(len(X), generator=g).split(self.batch_size):
                cos = X[idx] @ torch.nn.functional.normalize(W, dim=1).T
                loss = torch.nn.functional.cross_entropy(arcface_logits(cos, yt[idx], self.s, self.m), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            with torch.no_grad():
                acc = float(((X @ torch.nn.functional.normalize(W, dim=1).T).argmax(1) == yt).float().mean())
            self.history_.append({"epoch": epoch, "loss": total / len(X), "train_accuracy": acc})
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


