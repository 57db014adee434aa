"""Time the cold evaluation: every operator x probe x protocol, model selection over the default grids,
every selection method and ``evaluation.trials`` trials, on full-PACS-sized features, with an empty
cell cache (what the first `dvc repro` of stage evaluate computes).

    python benchmarks/evaluate_grid.py                       # synthetic 9,991 x 512 PACS-shaped world
    python benchmarks/evaluate_grid.py --dim 128             # MiniCLIP-sized features
    python benchmarks/evaluate_grid.py --set classifier.probes=[logreg] --set evaluation.trials=1
    python benchmarks/evaluate_grid.py --project ../full          # a project's features (after its dvc repro)
    python benchmarks/evaluate_grid.py --edit 'classifier.C=[0.01, 0.1, 0.5]' --rounds 2
        # then a sweep step from the cold run's cell cache, with and without its warm starts (interleaved)
"""
from __future__ import annotations

import logging
import shutil
import tempfile
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


def sweep_step(run, p_sets: list[str], edit: str, rounds: int) -> None:
    """The cold grid into a cell cache on disk, then ``edit`` from a copy of that cache ``rounds`` times, with
    ``evaluation.warm_starts`` true and false in turn (the same new cells each time)."""
    with tempfile.TemporaryDirectory() as tmp:
        cold, saved = Path(tmp) / "cells", Path(tmp) / "cold"
        cache = CellCache(cold)
        run(params_with(p_sets), cache)
        cache.save()
        shutil.copytree(cold, saved)
        for r in range(rounds):
            for warm in (True, False):
                shutil.rmtree(cold)
                shutil.copytree(saved, cold)
                t0 = time.perf_counter()
                _, info = run(params_with([*p_sets, edit, f"evaluation.warm_starts={str(warm).lower()}"]), CellCache(cold))
                print(f"round {r} `{edit}` warm_starts={warm}: {time.perf_counter() - t0:.1f} s; {info['computed']} cells "
                      f"computed, jobs {info['seconds']:.1f} s, {info['warm_started_fits']} fits from stored coefficients",
                      flush=True)


def main(dim: int = 512, seed: int = 0, set_: list[str] = typer.Option([], "--set"),
         project: Path = typer.Option(None), edit: str = typer.Option(None), rounds: int = 1) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = params_with(set_)
    if project:
        images, X, text, class_w, classes, fixed = project_features(project)
    else:
        images, X, text, class_w = pacs_world(dim=dim, seed=seed)
        images = images.assign(image_id=[f"{i:064x}" for i in range(len(images))], **{"class": images["label"].astype(str)})
        classes, fixed = [str(i) for i in range(class_w.shape[0])], False
    domains = list(dict.fromkeys(images["domain"]))
    image_free = {"zeroshot": ZeroShotClassifier(class_w).fit()}
    if edit:
        return sweep_step(lambda q, cache: evaluate(images, X, text, domains, classes, q, image_free, cache,
                                                    fixed_test=fixed), set_, edit, rounds)
    t0 = time.perf_counter()
    acc, info = evaluate(images, X, text, domains, classes, p, image_free, CellCache(None), fixed_test=fixed)
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
