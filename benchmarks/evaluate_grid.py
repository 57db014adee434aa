"""Time the cold evaluation: every operator x probe x protocol, model selection over the default grids,
every selection method and ``evaluation.trials`` trials, on full-PACS-sized features, with an empty
cell cache (what the first `dvc repro` of stage evaluate computes).

    python benchmarks/evaluate_grid.py                       # synthetic 9,991 x 512 PACS-shaped world
    python benchmarks/evaluate_grid.py --dim 128             # MiniCLIP-sized features
    python benchmarks/evaluate_grid.py --set classifier.probes=[logreg] --set evaluation.trials=1
    python benchmarks/evaluate_grid.py --project ../full          # a project's features (after its dvc repro)
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import typer

from pipeline.cellcache import CellCache
from pipeline.evaluation import evaluate
from pipeline.imagefree.zeroshot import ZeroShotClassifier
from pipeline.params import apply_overrides, parse_params
from pipeline.synthetic import pacs_world


def params_with(sets: list[str]):
    """params.yaml's defaults (the schema's) with ``section.key=value`` overrides (YAML values)."""
    return parse_params(apply_overrides({}, sets))


def project_features(project: Path):
    """(images, X, text, class weights, domains, classes, fixed_test) as stage evaluate reads them."""
    from pipeline.prompts import class_text_weights, description_vectors
    from pipeline.store import read_feature_stores, read_metadata

    images, X, txt, T = read_feature_stores(project / "features/images.parquet", project / "features/prompts.parquet")
    classes = sorted(set(images["class"]), key=list(images["class"]).index)
    text = description_vectors(txt, T)
    fixed = bool(read_metadata(project / "features/images.parquet").get("trained_on"))
    return images, X, text, class_text_weights(txt, T, classes), classes, fixed


def main(dim: int = 512, seed: int = 0, set_: list[str] = typer.Option([], "--set"),
         project: Path = typer.Option(None)) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = params_with(set_)
    if project:
        images, X, text, class_w, classes, fixed = project_features(project)
    else:
        images, X, text, class_w = pacs_world(dim=dim, seed=seed)
        images = images.assign(image_id=[f"{i:064x}" for i in range(len(images))], **{"class": images["label"].astype(str)})
        classes, fixed = [str(i) for i in range(class_w.shape[0])], False
    domains = list(dict.fromkeys(images["domain"]))
    t0 = time.perf_counter()
    acc, info = evaluate(images, X, text, domains, classes, p, {"zeroshot": ZeroShotClassifier(class_w).fit()},
                         CellCache(None), fixed_test=fixed)
    seconds = time.perf_counter() - t0
    head = acc[acc.selection.isin(["train_val", "-"])]
    print(head.groupby(["protocol", "method"], sort=False)["accuracy"].mean().to_string(float_format="%.4f"))
    est = info["plan"]["estimated_seconds"]
    print(f"jobs: {info['seconds']:.1f} s measured, {est} s estimated (ratio {info['seconds'] / est if est else float('nan'):.2f}); "
          f"calibration {info['plan']['calibration_seconds']} s")
    print(f"{X.shape[0]} x {X.shape[1]} features, {info['cells']} cells, {len(acc)} accuracy rows, "
          f"{info['trials']} trials, probes {p.classifier.probes}, {len(p.operators.names)} operators, "
          f"n_jobs={p.classifier.n_jobs}: {seconds:.1f} s")


if __name__ == "__main__":
    typer.run(main)
