"""CLIP zero-shot (Radford et al., ICML 2021): no training image."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..operators.base import l2_normalize
from ..probes.base import softmax
from . import IMAGE_FREE, ImageFree


class ZeroShotClassifier(ClassifierMixin, BaseEstimator):
    """CLIP zero-shot (Radford et al., 2021): argmax_c cos(E_I(x), w_c), w_c the ensembled class
    text embedding; probabilities softmax(s * cos), s the model's own logit scale. Needs no training images.

    For a sigmoid-trained model (SigLIP: logit s cos + b per pair, each an independent binary decision) the
    softmax over classes is not a calibration the model was trained to; it is the posterior of its
    independent sigmoids *given that exactly one class is present*: p(c) prop. to sigma(z_c) prod_{k != c}
    (1 - sigma(z_k)) = e^{z_c} / sum_k e^{z_k} (the bias b cancels). ``for_model`` uses that, with the
    model's own s, for both objectives (docs/methods.md)."""

    def __init__(self, class_weights: np.ndarray | None = None, logit_scale: float = 100.0):
        self.class_weights = class_weights
        self.logit_scale = logit_scale

    @classmethod
    def for_model(cls, class_weights: np.ndarray, provenance: dict) -> "ZeroShotClassifier":
        """A fitted classifier with the logit scale the store's model recorded (CLIP's 100 if it recorded none)."""
        return cls(class_weights, float(provenance.get("logit_scale") or 100.0)).fit()

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
