"""Time the domain-gap matrices (FID/KID/MMD/CMMD with bootstrap CIs) on full-PACS-sized features.

    python benchmarks/domain_gap.py                                  # synthetic 9,991 x 512, PACS domain sizes
    python benchmarks/domain_gap.py --features features/images.parquet   # a real feature store
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import typer

from pipeline.data import PACS_DOMAINS
from pipeline.gaps import gap_table
from pipeline.params import Gap
from pipeline.store import read_table

PACS_SIZES = {"photo": 1670, "art_painting": 2048, "cartoon": 2344, "sketch": 3929}


def main(features: Path = typer.Option(None), dim: int = 512, n_boot: int = 20, n_subsets: int = 20,
         subset_size: int = 500, n_jobs: int = 2) -> None:
    if features:
        df, X, _ = read_table(features)
        dom = df["domain"].to_numpy()
    else:
        rng = np.random.default_rng(0)
        dom = np.concatenate([[d] * n for d, n in PACS_SIZES.items()])
        offsets = {d: rng.normal(0, 0.3, dim) for d in PACS_SIZES}
        X = np.stack([offsets[d] for d in dom]) + rng.normal(size=(len(dom), dim))
    t0 = time.perf_counter()
    table, _ = gap_table(X, dom, PACS_DOMAINS, Gap(n_boot=n_boot, n_subsets=n_subsets, subset_size=subset_size,
                                                  n_jobs=n_jobs))
    seconds = time.perf_counter() - t0
    print(f"{len(dom)} x {X.shape[1]} features, {len(table)} rows (4 metrics x 16 ordered pairs), "
          f"n_boot={n_boot}, n_subsets={n_subsets}x{subset_size}: {seconds:.1f} s")


if __name__ == "__main__":
    typer.run(main)
