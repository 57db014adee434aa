"""Each candidate description's translation accuracy (stage description_accuracy): an analysis beside the
label-free search of :mod:`pipeline.description_search`, kept apart so that a classifier edit reruns it alone."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .partition import TEST, TRAIN, VAL, partitions
from .selection import SELECTIONS, pick


def translation_accuracy(X: np.ndarray, images: pd.DataFrame, domains: list[str], candidates: pd.DataFrame,
                         T: np.ndarray, default: dict[str, np.ndarray], p, fixed_test: bool = False,
                         progress: bool = True, starts_dir=None) -> np.ndarray:
    """Each candidate's LODO accuracy on its own domain as the target (its description t_x; the sources keep
    their default descriptions), translate's grid (alpha, normalisations) and the first probe of
    ``classifier.probes`` at the C grid, chosen by training-domain validation (ties: the first in the evaluation's
    grid order); mean over the evaluation's trials and partitions (``fixed_test`` as stage evaluate draws them).
    The probe is fit once per (trial, target, translate grid point) on the source rows, which the candidate does
    not move (they are translated toward the mean of the sources' own descriptions); an exact probe starts from
    that matrix's fits of an earlier run in the warm-start store ``starts_dir`` (:mod:`pipeline.starts`), so
    a new C costs this stage warm fits too, and leaves its own there."""
    from .evaluation import cell_accuracy, grid
    from .operators import OPERATORS
    from .probes import PROBES
    from .starts import fit_warm, save

    c = p.classifier
    probe = next(n for n in c.probes if n in PROBES)
    dom, y = images["domain"].to_numpy().astype(str), images["label"].to_numpy()
    parts = partitions(images, p.evaluation.trials, p.data.test_fraction, p.data.val_fraction, p.data.split_seed,
                       fixed_test)
    hypers, sel = grid(p.translate.model_dump()), SELECTIONS["train_val"]
    acc = np.zeros((len(parts), len(candidates)))
    jobs = [(t, d) for t in range(len(parts)) for d in domains]
    for t, target in tqdm(jobs, desc="description accuracy", disable=not progress):
        part, sources = parts[t], [d for d in domains if d != target]
        tr, va, te = (part == TRAIN) & np.isin(dom, sources), (part == VAL) & np.isin(dom, sources), \
            (part == TEST) & (dom == target)
        fits = {}
        for r in np.flatnonzero(candidates["domain"].to_numpy() == target):
            text = {"domain": {**default, target: T[r]}}
            cells = []
            for hyper in hypers:
                op = OPERATORS["translate_single"](text=text, **hyper).fit(sources=sources)
                key = json.dumps(hyper, sort_keys=True)
                if key not in fits:  # source rows' maps do not depend on the target's description: once per point
                    models, started, _ = fit_warm(probe, op.transform(X[tr], dom[tr]), y[tr], c.C_grid(), starts_dir,
                                                  overwrite=True, max_iter=c.max_iter, seed=c.seed,
                                                  standardize=c.standardize)
                    for skey, got in started.items():
                        save(starts_dir, skey, got)
                    Zv = op.transform(X[va], dom[va])
                    fits[key] = {C: (models[probe, C], cell_accuracy(models[probe, C], Zv, y[va])) for C in c.C_grid()}
                Zt = op.transform(X[te], dom[te])
                for C in c.C_grid():
                    clf, val = fits[key][C]
                    cells.append({"source_val": val, "test": cell_accuracy(clf, Zt, y[te])})
            acc[t, r] = pick(cells, sel)[0]["test"]
    with warnings.catch_warnings():  # a candidate scored on no test row in any trial: NaN, said by its row
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(acc, 0)


def defaults(table: pd.DataFrame, T: np.ndarray) -> dict[str, np.ndarray]:
    """Each domain's default description vector: the rows of ``table`` (stage search_descriptions' candidates) with
    ``default`` set, by domain."""
    rows = table.index[table["default"].to_numpy(bool)]
    return {table.at[i, "domain"]: T[i] for i in rows}


def summary(table: pd.DataFrame) -> dict:
    """reports/description_accuracy.json: the translation accuracy of each domain's selected and default
    candidate, and which candidate scores best (it reads the domain's labels: an analysis, not a selection)."""
    acc = table["translation_accuracy"]

    def by_domain(mask) -> dict:
        return {d: round(float(a), 4) for d, a in zip(table["domain"][mask], acc[mask])}

    return {"selected_translation_accuracy": by_domain(table["selected"].to_numpy(bool)),
            "default_translation_accuracy": by_domain(table["default"].to_numpy(bool)),
            "best_by_translation_accuracy (reads the domain's labels: an analysis)": {
                d: g.loc[g["translation_accuracy"].fillna(-1).idxmax(), "text"]
                for d, g in table.groupby("domain", sort=False)}}
