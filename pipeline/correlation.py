"""Correlation coefficients with confidence intervals (gap-vs-drop, the few-shot ranking study)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def correlations(x, y, ci: float = 0.95) -> dict:
    """Pearson r and Spearman rho (Pearson of average ranks), with ``ci`` confidence intervals from Fisher's
    z: tanh(atanh(r) +- z_ci / sqrt(n - 3)), for Spearman with the variance 1.06 / (n - 3) of Fieller,
    Hartley & Pearson (Biometrika, 1957). Intervals need n >= 4."""
    from scipy.special import ndtri

    x, y = pd.Series(np.asarray(x, float)), pd.Series(np.asarray(y, float))
    ok = x.notna() & y.notna()
    x, y = x[ok], y[ok]
    n = int(len(x))
    if n < 3 or x.std() == 0 or y.std() == 0:
        return {"pearson": None, "spearman": None, "n": n, "pearson_ci": None, "spearman_ci": None}
    r, rho = float(np.corrcoef(x, y)[0, 1]), float(np.corrcoef(x.rank(), y.rank())[0, 1])
    z = float(ndtri((1 + ci) / 2))

    def fisher(v, var):
        if n < 4:
            return None
        c = np.arctanh(np.clip(v, -0.999999, 0.999999))
        return [round(float(np.tanh(c - z * np.sqrt(var / (n - 3)))), 4), round(float(np.tanh(c + z * np.sqrt(var / (n - 3)))), 4)]

    return {"pearson": round(r, 4), "spearman": round(rho, 4), "n": n,
            "pearson_ci": fisher(r, 1.0), "spearman_ci": fisher(rho, 1.06)}


def k_labelled(table: pd.DataFrame) -> pd.DataFrame:
    """A few-shot table (stage fewshot_gap) with ``k`` as text and each pair's full sample (its largest k) as
    ``all``."""
    n_all = table.groupby(["source", "target"])["k"].transform("max")
    return table.assign(k=np.where(table.k == n_all, "all", table.k.astype(str)))


def mean_of(values) -> float:
    """The mean of the values that are not None (undefined correlations); NaN when none is."""
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else float("nan")
