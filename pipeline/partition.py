"""Train / validation / test partitions, one per trial, drawn from the feature cache (no re-embedding).

Trial t uses the seed ``data.split_seed + t``. In each (domain, class):

* test: the round(f n) images (at least one when n >= 2) with the smallest sha256(``seed:image_id``),
  f = ``data.test_fraction`` -- trial 0 is exactly the manifest's split;
* validation: of the remaining images, the round(v m) (at least one when m >= 2) with the smallest
  sha256(``val:seed:image_id``), v = ``data.val_fraction`` (a DomainBed-style held-out split of each
  domain's training data);
* train: the rest.

When the features come from a model trained on this dataset's train split (MiniCLIP), an image it
trained on must never be scored as test: then every trial keeps the manifest's test split and
re-draws only train / validation inside the manifest's train split (``fixed_test``).
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd

from .data import assign_split, unit_hash

TRAIN, VAL, TEST = "train", "val", "test"


def _carve(df: pd.DataFrame, pool: np.ndarray, fraction: float, salt: str) -> np.ndarray:
    """Boolean mask: in each (domain, class), round(fraction * m) of the ``pool`` rows (at least one when
    m >= 2), those with the smallest unit_hash(salt:image_id)."""
    out = np.zeros(len(df), bool)
    if fraction <= 0:
        return out
    sub = df[pool]
    u = sub["image_id"].map(lambda h: unit_hash(f"{salt}:{h}"))
    for _, idx in sub.groupby(["domain", "class"]).groups.items():
        m = len(idx)
        k = int(math.floor(fraction * m + 0.5))
        if m >= 2:
            k = max(k, 1)
        k = min(k, m - 1) if m >= 2 else 0  # never take every row: the train part keeps one
        chosen = u.loc[idx].sort_values(kind="stable").index[:k]
        out[df.index.get_indexer(chosen)] = True
    return out


def partition(images: pd.DataFrame, trial: int, test_fraction: float, val_fraction: float, split_seed: int,
              fixed_test: bool) -> np.ndarray:
    """'train' / 'val' / 'test' for every row of ``images`` (columns image_id, domain, class, split)."""
    images = images.reset_index(drop=True)
    seed = split_seed + trial
    if fixed_test:
        test = (images["split"] == "test").to_numpy()
    else:
        test = (assign_split(images, test_fraction, seed) == "test").to_numpy()
    val = _carve(images, ~test, val_fraction, f"val:{seed}")
    return np.where(test, TEST, np.where(val, VAL, TRAIN))


def partitions(images: pd.DataFrame, trials: int, test_fraction: float, val_fraction: float, split_seed: int,
               fixed_test: bool) -> list[np.ndarray]:
    return [partition(images, t, test_fraction, val_fraction, split_seed, fixed_test) for t in range(trials)]


def digest(part: np.ndarray) -> str:
    """16 hex digits identifying a partition (part of every cached cell's key)."""
    return hashlib.sha256("".join(p[0] for p in part).encode()).hexdigest()[:16]
