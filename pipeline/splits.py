"""Splits by content: which rows of a (domain, class) stratum go to one side of a cut, decided by a hash of
the image's content (its image_id) so that a split depends on the images only, never on paths or order,
and every copy of an image lands on the same side (:func:`content_split`)."""
from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd

from .errors import BadInputError


def unit_hash(key: str) -> float:
    """Deterministic uniform number in [0, 1) from a string (first 64 bits of its sha256)."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:16], 16) / 2.0**64


def content_split(df: pd.DataFrame, fraction: float, salt: str, pool: np.ndarray | None = None,
                  leave_one: bool = False) -> np.ndarray:
    """Boolean mask over ``df``'s rows (columns image_id, domain, class): in each (domain, class) stratum, taken
    in the order the rows list them, the round(f n) of its n distinct contents (at least one when n >= 2; at
    most n - 1 with ``leave_one``) with the smallest ``unit_hash(salt:image_id)``, among the ``pool`` rows.

    A content decided in an earlier stratum keeps its side there and counts toward this stratum's quota, so
    every copy of an image -- in one class, in two classes, in two domains -- is on the same side of the cut,
    and no duplicate ever links a training row to a test row. Without duplicates this is the plain
    stratified rank split."""
    out = np.zeros(len(df), bool)
    if fraction <= 0:
        return out
    pool = np.ones(len(df), bool) if pool is None else np.asarray(pool, bool)
    sub = df[pool]
    ids = sub["image_id"].to_numpy()
    u = {h: unit_hash(f"{salt}:{h}") for h in dict.fromkeys(ids)}
    decided: dict[str, bool] = {}
    for positions in sub.groupby(["domain", "class"], sort=False).indices.values():
        uniq = list(dict.fromkeys(ids[positions]))
        n = len(uniq)
        k = max(int(math.floor(fraction * n + 0.5)), 1 if n >= 2 else 0)
        if leave_one:
            k = min(k, n - 1) if n >= 2 else 0
        pinned = sum(decided.get(h, False) for h in uniq)
        free = sorted((h for h in uniq if h not in decided), key=lambda h: (u[h], h))
        need = max(0, k - pinned)
        if leave_one:
            need = max(0, min(need, n - 1 - pinned))
        decided.update((h, i < need) for i, h in enumerate(free))
    out[np.flatnonzero(pool)] = [decided[h] for h in ids]
    return out


def assign_split(df: pd.DataFrame, test_fraction: float, seed: int = 0) -> pd.Series:
    """Deterministic stratified split by content: ``test`` for the rows :func:`content_split` picks with
    fraction ``test_fraction`` and salt ``seed`` (every copy of an image on the same side), else ``train``."""
    if not 0.0 < test_fraction < 1.0:
        raise BadInputError(f"data.test_fraction={test_fraction} must be in (0, 1)")
    test = content_split(df, test_fraction, str(seed))
    return pd.Series(np.where(test, "test", "train"), index=df.index)
