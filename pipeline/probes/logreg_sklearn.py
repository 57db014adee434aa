"""``logreg_sklearn``: scikit-learn's multinomial L2 logistic regression run as users run it (L-BFGS at its
default tolerance 1e-4) -- the reference implementation to compare with. At that tolerance it disagrees with
the exact minimiser on up to a few % of cross-domain predictions (docs/benchmarks.md); ``logreg`` is the
exact one."""
from __future__ import annotations

from sklearn.linear_model import LogisticRegression

from ..errors import ParamsError
from . import PROBES


@PROBES.register("logreg_sklearn")
class LogRegSklearn(LogisticRegression):
    warm_start_path = False

    def __init__(self, *, C: float = 1.0, max_iter: int = 1000, seed: int = 0, device: str = "cpu"):  # CPU only
        if C <= 0:
            raise ParamsError(f"classifier.C={C} must be > 0")
        super().__init__(C=C, max_iter=max_iter, random_state=seed)
        self.seed = seed

    def get_params(self, deep=True):
        return {"C": self.C, "max_iter": self.max_iter, "seed": self.seed}
