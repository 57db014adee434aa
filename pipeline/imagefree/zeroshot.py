"""CLIP zero-shot (Radford et al., ICML 2021): no training image."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..operators.base import l2_normalize
from ..probes.base import softmax
from . import IMAGE_FREE, ImageFree


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



@IMAGE_FREE.register("zeroshot")
class ZeroShot(ImageFree):
    classifier = "zeroshot"

    @classmethod
    def build(cls, context: dict):
        return ZeroShotClassifier(context["class_weights"]).fit()
