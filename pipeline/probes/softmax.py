"""``softmax``: logistic regression's objective solved by :class:`LinearProbe` (torch, GPU-capable) to
``GRID_TOL``: >= 99.5 % of its predictions equal the exact minimiser's (tested)."""
from __future__ import annotations

from . import PROBES
from .linear import GRID_TOL, LinearProbe


@PROBES.register("softmax")
class Softmax(LinearProbe):
    warm_start_path = False

    def __init__(self, *, C: float = 1.0, max_iter: int = 1000, seed: int = 0, device: str = "cpu"):
        super().__init__("log", C=C, max_iter=max_iter, tol=GRID_TOL, device=device, dtype="float32")
        self.seed = seed

    def get_params(self, deep=True):
        return {"C": self.C, "max_iter": self.max_iter, "seed": self.seed, "device": self.device}
