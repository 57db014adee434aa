"""``logreg``: scikit-learn's multinomial L2 logistic regression (L-BFGS, its default tolerance) -- the
linear probe C of the translation paper and of CLIP's linear-probe evaluation (Radford et al., 2021,
§3.2). The reference implementation; ``softmax`` reaches the same objective's minimiser more exactly."""
from __future__ import annotations

from sklearn.linear_model import LogisticRegression

from ..errors import ParamsError
from . import PROBES


@PROBES.register("logreg")
class LogReg(LogisticRegression):
    warm_start_path = False

    def __init__(self, *, C: float = 1.0, max_iter: int = 1000, seed: int = 0):
        if C <= 0:
            raise ParamsError(f"classifier.C={C} must be > 0")
        super().__init__(C=C, max_iter=max_iter, random_state=seed)
        self.seed = seed

    def get_params(self, deep=True):
        return {"C": self.C, "max_iter": self.max_iter, "seed": self.seed}
