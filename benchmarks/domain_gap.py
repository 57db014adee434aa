"""Time the domain-gap matrices (FID/KID/MMD/CMMD with bootstrap CIs) on full-PACS-sized features.

    python benchmarks/domain_gap.py                                  # synthetic 9,991 x 512, PACS domain sizes
    python benchmarks/domain_gap.py --features features/images.parquet   # a real feature store
    python benchmarks/domain_gap.py --metrics fid,kid,coral --dim 768 --layerwise --rounds 2
        # stage layerwise's gaps: the table with intervals and its values only, interleaved
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
         subset_size: int = 500, n_jobs: int = 2, metrics: str = typer.Option(None, help="comma-separated"),
         layerwise: bool = typer.Option(False, help="also the values only (stage layerwise), interleaved"),
         rounds: int = 1) -> None:
    if features:
        df, X, _ = read_table(features)
        dom = df["domain"].to_numpy()
    else:
        rng = np.random.default_rng(0)
        dom = np.concatenate([[d] * n for d, n in PACS_SIZES.items()])
        offsets = {d: rng.normal(0, 0.3, dim) for d in PACS_SIZES}
        X = np.stack([offsets[d] for d in dom]) + rng.normal(size=(len(dom), dim))
    gap = Gap(n_boot=n_boot, n_subsets=n_subsets, subset_size=subset_size, n_jobs=n_jobs,
              **({"metrics": metrics.split(",")} if metrics else {}))
    for r in range(rounds):
        for intervals in ((True, False) if layerwise else (True,)):
            t0 = time.perf_counter()
            table, _ = gap_table(X, dom, PACS_DOMAINS, gap, intervals=intervals)
            seconds = time.perf_counter() - t0
            print(f"round {r}: {len(dom)} x {X.shape[1]} features, {len(table)} rows ({len(gap.metrics)} metrics x 16 "
                  f"ordered pairs), n_boot={n_boot}, n_subsets={n_subsets}x{subset_size}, "
                  f"{'with intervals' if intervals else 'values only'}: {seconds:.1f} s")


if __name__ == "__main__":
    typer.run(main)
