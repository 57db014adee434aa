"""``svm``: one-vs-rest L2-loss linear SVM, liblinear's primal (the frozen-features + SVM probe of
Donahue et al. 2014 / Razavian et al. 2014 in seed 003's table), solved by :class:`LinearProbe`: semismooth
Newton steps on each class's active set, from zero, to the exact minimiser -- which a C path may
therefore warm-start."""
from __future__ import annotations

from . import PROBES
from .linear import LinearProbe


@PROBES.register("svm")
class SVM(LinearProbe):
    warm_start_path = True

    def __init__(self, *, C: float = 1.0, max_iter: int = 1000, seed: int = 0, device: str = "cpu"):
        super().__init__("squared_hinge", C=C, max_iter=max_iter, tol=0.0, device=device, dtype="float32")
        self.seed = seed

    def get_params(self, deep=True):
        return {"C": self.C, "max_iter": self.max_iter, "seed": self.seed, "device": self.device}
