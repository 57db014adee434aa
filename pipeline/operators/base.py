"""The operator contract and shared linear algebra."""
from __future__ import annotations

from typing import ClassVar, Sequence

import numpy as np


def l2_normalize(X: np.ndarray, axis: int = -1) -> np.ndarray:
    n = np.linalg.norm(X, axis=axis, keepdims=True)
    return X / np.maximum(n, 1e-12)


def f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float32)


def sym_power(S: np.ndarray, power: float, eps: float = 1e-10) -> np.ndarray:
    w, V = np.linalg.eigh(S)
    return (V * np.clip(w, eps, None) ** power) @ V.T


def shrunk_cov(X: np.ndarray, shrinkage: float) -> np.ndarray:
    """(1 - s) S + s (tr S / p) I, s in [0, 1]: a convex blend toward a scaled identity (Ledoit-Wolf-style
    shrinkage). Compare CORAL's *added* ridge."""
    S = np.cov(np.asarray(X, np.float64), rowvar=False)
    p = S.shape[0]
    return (1 - shrinkage) * S + shrinkage * np.trace(S) / p * np.eye(p)


class Operator:
    """A feature-space map, fit on unlabelled rows (labels never reach it).

    Class attributes a subclass sets:

    * ``hyper``: {name: default} of its hyper-parameters; ``params.yaml`` gives each a value or a grid
      under ``params_key`` (default ``operators.<name>``);
    * ``scope``: which rows the map of one domain depends on -- ``global`` (none: fit once),
      ``domain`` (that domain's own rows: fit once on every train row), ``sources`` (that domain's and
      the sources': fit once per source set), ``pair`` (fit per source set and target);
    * ``uses``: ``text`` (domain descriptions only) or ``images`` (unlabelled train-split images);
    * ``text_kinds``: the description kinds whose vectors change its output (part of every cell key it is in,
      so that new prompts never serve an old cell).

    Fitted state ends in ``_``. ``text`` maps a description kind (``domain`` / ``domain_avg``) to
    {domain: E_T vector}.
    """

    name: ClassVar[str] = ""
    hyper: ClassVar[dict] = {}
    scope: ClassVar[str] = "pair"
    uses: ClassVar[str] = "images"
    text_kinds: ClassVar[tuple[str, ...]] = ()
    params_key: ClassVar[str | None] = None

    def __init__(self, *, text: dict | None = None, **hyper):
        unknown = set(hyper) - set(self.hyper)
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown hyper-parameters {sorted(unknown)}")
        self.text = text
        for k, default in self.hyper.items():
            setattr(self, k, hyper.get(k, default))

    bounds: ClassVar[dict] = {}  # {hyper: (low, high)}, inclusive

    @classmethod
    def section(cls) -> str:
        return cls.params_key or f"operators.{cls.name}"

    @classmethod
    def check_hyper(cls, section, where: str) -> None:
        """Refuse (ValueError naming the key) a params section with an unknown key, or a value (or grid
        entry) of the wrong type or out of ``bounds``."""
        from ..errors import did_you_mean

        if not isinstance(section, dict):
            raise ValueError(f"{where}: expected a mapping of {sorted(cls.hyper)}, got {section!r}")
        for key, values in section.items():
            if key not in cls.hyper:
                raise ValueError(f"{where}.{key}: unknown key" + did_you_mean(key, cls.hyper, f"{where}.{{}}", cutoff=0.5))
            default = cls.hyper[key]
            grid = values if isinstance(values, list) else [values]
            if not grid or len(set(map(repr, grid))) != len(grid):
                raise ValueError(f"{where}.{key}: a grid needs distinct values, got {values!r}")
            for v in grid:
                ok = isinstance(v, bool) if isinstance(default, bool) else (
                    isinstance(v, int) and not isinstance(v, bool) if isinstance(default, int)
                    else isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v))
                lo, hi = cls.bounds.get(key, (-np.inf, np.inf))
                if not ok or (not isinstance(v, bool) and not lo <= v <= hi):
                    kind = type(default).__name__
                    raise ValueError(f"{where}.{key}: {v!r} must be a {kind} in [{lo}, {hi}] (or a list of them)")

    def fit(self, X: np.ndarray, domains: np.ndarray, sources: Sequence[str]) -> "Operator":
        raise NotImplementedError

    def transform(self, X: np.ndarray, domains) -> np.ndarray:
        raise NotImplementedError


class PerDomain(Operator):
    """Base of the statistics operators: ``fit`` learns per-domain statistics ``stats_``, ``transform``
    maps the rows of each domain with ``_map``. Statistics are fit in float64; maps run in float32."""

    def _check(self, domains):
        missing = set(np.unique(domains)) - set(self.stats_)
        if missing:
            raise KeyError(f"{type(self).__name__} was not fit on domains {sorted(missing)}")

    def transform(self, X: np.ndarray, domains) -> np.ndarray:
        X = np.asarray(X, np.float32)
        domains = np.asarray(domains)
        self._check(domains)
        Z = np.empty_like(X)
        for d in np.unique(domains):
            m = domains == d
            Z[m] = self._map(X[m], d)
        return Z
