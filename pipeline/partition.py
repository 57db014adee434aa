"""Train / validation / test partitions, one per trial, drawn from the feature cache (no re-embedding).

Trial t uses the seed ``data.split_seed + t``. In each (domain, class):

* test: the round(f n) images (at least one when n >= 2) with the smallest sha256(``seed:image_id``),
  f = ``data.test_fraction`` -- trial 0 is exactly the manifest's split;
* validation: of the remaining images, the round(v m) (at least one when m >= 2, at most m - 1) with the
  smallest sha256(``val:seed:image_id``), v = ``data.val_fraction`` (a DomainBed-style held-out split of each
  domain's training data);
* train: the rest.

Both cuts are by content (:func:`pipeline.splits.content_split`): every copy of an image is on the same side
in every domain, class and trial.

When the features come from a model trained on this dataset's train split (MiniCLIP), an image it
trained on must never be scored as test: then every trial keeps the manifest's test split and
re-draws only train / validation inside the manifest's train split (``fixed_test``).
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from .splits import assign_split, content_split

TRAIN, VAL, TEST = "train", "val", "test"


def partition(images: pd.DataFrame, trial: int, test_fraction: float, val_fraction: float, split_seed: int,
              fixed_test: bool) -> np.ndarray:
    """'train' / 'val' / 'test' for every row of ``images`` (columns image_id, domain, class, split)."""
    images = images.reset_index(drop=True)
    seed = split_seed + trial
    if fixed_test:
        test = (images["split"] == "test").to_numpy()
    else:
        test = (assign_split(images, test_fraction, seed) == "test").to_numpy()
    val = content_split(images, val_fraction, f"val:{seed}", pool=~test, leave_one=True)
    return np.where(test, TEST, np.where(val, VAL, TRAIN))


def partitions(images: pd.DataFrame, trials: int, test_fraction: float, val_fraction: float, split_seed: int,
               fixed_test: bool) -> list[np.ndarray]:
    return [partition(images, t, test_fraction, val_fraction, split_seed, fixed_test) for t in range(trials)]


def digest(part: np.ndarray) -> str:
    """16 hex digits identifying a partition (part of every cached cell's key)."""
    return hashlib.sha256("".join(p[0] for p in part).encode()).hexdigest()[:16]


def val_share(part: np.ndarray) -> float:
    """The share of the non-test rows a partition holds out for validation (what ``data.val_fraction`` became
    once every (domain, class) kept a training row)."""
    rest = part != TEST
    return float((part[rest] == VAL).mean()) if rest.any() else 0.0
