"""Time the whole accuracy grid (every operator x every classifier x every protocol / pair) on
full-PACS-sized features.

    python benchmarks/evaluate_grid.py                       # synthetic 9,991 x 512 PACS-shaped world
    python benchmarks/evaluate_grid.py --features features/images.parquet --prompts features/prompts.parquet
    python benchmarks/evaluate_grid.py --probes logreg --operators none,coral    # a sub-grid
"""
from __future__ import annotations

import time
from pathlib import Path

import typer

from pipeline.classifiers import ADAPTERS, PROBES
from pipeline.evaluation import OPERATORS, evaluate_grid
from pipeline.params import Classifier, Operators
from pipeline.synthetic import pacs_world


def main(features: Path = typer.Option(None), prompts: Path = typer.Option(None), dim: int = 512,
         probes: str = ",".join([*PROBES, *ADAPTERS]), operators: str = ",".join(OPERATORS), n_jobs: int = 2,
         max_iter: int = 1000) -> None:
    if features:
        from pipeline.data import PACS_CLASSES, PACS_DOMAINS
        from pipeline.prompts import class_text_weights, domain_text_vectors
        from pipeline.store import read_feature_stores

        images, X, txt, T = read_feature_stores(features, prompts)
        text = {k: domain_text_vectors(txt, T, k) for k in ("domain", "domain_avg")}
        class_w, domains = class_text_weights(txt, T, PACS_CLASSES), PACS_DOMAINS
    else:
        images, X, text, class_w = pacs_world(dim=dim)
        domains = sorted(set(images["domain"]), key=list(images["domain"]).index)
    t0 = time.perf_counter()
    acc = evaluate_grid(images, X, text, class_w, domains,
                        Classifier(probes=probes.split(","), n_jobs=n_jobs, max_iter=max_iter),
                        Operators(names=operators.split(",")))
    seconds = time.perf_counter() - t0
    print(acc.groupby(["protocol", "classifier"], sort=False)["accuracy"].mean().to_string(float_format="%.4f"))
    print(f"{X.shape[0]} x {X.shape[1]} features, {len(acc)} accuracy rows "
          f"({len(operators.split(','))} operators x {len(probes.split(','))} probes, n_jobs={n_jobs}): {seconds:.1f} s")


if __name__ == "__main__":
    typer.run(main)
