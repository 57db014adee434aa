"""The image tower's stored blocks (features/layers.parquet) and the domain gaps on each (stage layerwise_gap).

Gaps: ``layerwise.gap_metrics`` between every ordered pair of domains on each block's features divided by their
RMS (sqrt of the mean squared centred coordinate over all images), so that blocks of different scales are on one
axis; FID and its Bures term, which sum over coordinates, are also divided by the block's width (per coordinate),
so that blocks of different widths are too. The table keeps the mean over ordered pairs of distinct domains, the
values only (no bootstrap replicate for an interval the curve does not show). A stage of its own, so that a
classifier edit, which reruns stage layerwise's probes, never recomputes them.
"""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import pandas as pd

from .gaps import gap_table
from .params import Params

log = logging.getLogger(__name__)
PROJECTION = "projection"
PER_WIDTH = ("fid", "bures")  # sums over coordinates: divided by the block's width
GAP_TABLE_COLUMNS = ["layer", "name", "metric", "mean_cross_domain_gap"]


def read_layer(path, column: str, images: pd.DataFrame) -> np.ndarray:
    """One block's features from features/layers.parquet, refused unless its rows are ``images``' rows in order."""
    from .store import read_table

    df, X, _ = read_table(path, column)
    if len(df) != len(images) or not (df["image_id"].to_numpy() == images["image_id"].to_numpy()).all():
        raise ValueError(f"{path} and the image store hold different rows; rerun embed_images (`dvc repro`)")
    return X


def read_blocks(images_path, layers_path, stage: str) -> tuple[pd.DataFrame, dict, dict, list, list[str]]:
    """(image rows, the image store's metadata, the layer store's, [(index, name, loader)] in depth order -- every
    stored block, then the joint-space projection --, the domains that have images). A loader reads its block
    when called, so a stage holds one block at a time."""
    from .coverage import present_domains
    from .store import check_same_model, read_metadata, read_table

    meta = read_metadata(layers_path)
    if not meta.get("layers"):
        log.warning("%s: %s holds no block (embed.layers): only the projection is scored; set embed.layers: all or "
                    "a list of block indices", stage, layers_path)
    img, X, img_meta = read_table(images_path)
    check_same_model(images_path, img_meta, layers_path, meta)
    blocks = [(c["index"], c["name"], lambda col=c["column"]: read_layer(layers_path, col, img)) for c in meta["layers"]]
    blocks.append((meta.get("n_blocks", 0), PROJECTION, lambda: X))
    # the manifest's domains (not data/*.json: no rerun on a description edit)
    return img, img_meta, meta, blocks, present_domains(img, img_meta["label_space"]["domains"], stage)


def features(block) -> np.ndarray:
    """A block's features: the array itself, or its loader called."""
    return block() if callable(block) else block


def rms_scaled(X: np.ndarray) -> np.ndarray:
    """X / sqrt(mean_ij (X_ij - mean_j)^2): every block's features on one scale (gaps are not scale-free)."""
    X = np.asarray(X, np.float32)
    scale = float(np.sqrt(np.mean((X - X.mean(0)) ** 2, dtype=np.float64)))
    return X / (scale if scale > 0 else 1.0)


def layer_gaps(domain_of_row: np.ndarray, layers: list[tuple[int, str, np.ndarray | Callable]], domains: list[str],
               p: Params) -> pd.DataFrame:
    """Per block and ``layerwise.gap_metrics``: the mean over ordered pairs of distinct domains of the gap on its
    RMS-scaled features (FID and Bures per coordinate). ``layers``: (index, name, features or their loader)."""
    gap = p.gap.model_copy(update={"metrics": list(p.layerwise.gap_metrics)})
    rows = []
    for i, name, block in layers if gap.metrics else []:
        X = features(block)
        log.info("layerwise_gap: %s (%d-d)", name, X.shape[1])
        table, _ = gap_table(rms_scaled(X), domain_of_row, domains, gap, intervals=False)
        cross = table[table.source != table.target].groupby("metric", sort=False)["value"].mean()
        rows += [(i, name, metric, float(v) / (X.shape[1] if metric in PER_WIDTH else 1)) for metric, v in cross.items()]
    return pd.DataFrame(rows, columns=GAP_TABLE_COLUMNS)
