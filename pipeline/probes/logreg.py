"""``logreg``: multinomial L2 logistic regression solved to its minimiser -- the linear probe of the
translation paper and of CLIP's linear-probe evaluation (Radford et al., 2021, §3.2), scikit-learn's
``LogisticRegression`` objective (same minimiser; tested against it at tolerance 1e-10). Solved by
:class:`LinearProbe` (torch, on ``classifier.device``) to ``EXACT_TOL``, and along the C path: each C
starts from the last C's solution (as scikit-learn's ``logistic_regression_path`` and glmnet do), which
changes the start, not the minimiser."""
from __future__ import annotations

from . import PROBES
from .linear import LinearProbe

EXACT_TOL = 1e-5  # max-abs gradient in the preconditioned basis: >= 99.5 % agreement with the minimiser (tests/test_probes.py)


@PROBES.register("logreg")
class LogReg(LinearProbe):
    warm_start_path = True

    def __init__(self, *, C: float = 1.0, max_iter: int = 1000, seed: int = 0, device: str = "cpu"):
        super().__init__("log", C=C, max_iter=max_iter, tol=EXACT_TOL, device=device, dtype="float32")
        self.seed = seed

    def get_params(self, deep=True):
        return {"C": self.C, "max_iter": self.max_iter, "seed": self.seed, "device": self.device}
