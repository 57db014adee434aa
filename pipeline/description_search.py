"""Description search (``translate_searched``): candidate pools, their Sim(t, D) / specificity ranking, the selection,
and each candidate's translation accuracy (formulas: :mod:`pipeline.descriptions`, docs/methods.md)."""
from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .metrics import similarity_table
from .partition import TEST, TRAIN, VAL, partitions
from .selection import SELECTIONS, pick

log = logging.getLogger(__name__)

# candidate pools of the presets' domains, by name (a domain's default description is always a candidate too;
# VLCS's and TerraIncognita's domains are all photos: their pool is their description, said in the log)
POOLS = {
    "photo": ["a photo", "a photograph", "a picture", "a real photo", "a snapshot", "an image"],
    "art_painting": ["an art painting", "a painting", "an oil painting", "a work of art", "a watercolor painting",
                     "an artwork"],
    "cartoon": ["a cartoon", "a comic", "a cartoon drawing", "an animation", "a clipart", "a colorful drawing"],
    "sketch": ["a black and white drawing", "a sketch", "a pencil drawing", "a line drawing", "a doodle",
               "an outline drawing"],
    # DomainNet (its sketch: above)
    "clipart": ["a clipart image", "a clip art", "an icon", "a vector illustration"],
    "infograph": ["an infographic", "an infographic illustration", "a diagram", "a chart with pictures"],
    "painting": ["a painting", "an oil painting", "an artwork", "a watercolor painting"],
    "quickdraw": ["a quick doodle", "a doodle", "a quick drawing", "a crude line drawing"],
    "real": ["a photo", "a photograph", "a real photo", "a picture"],
    # OfficeHome
    "Art": ["an artistic depiction", "a painting", "a sketch", "an artwork"],
    "Clipart": ["a clipart image", "a clip art", "an icon", "a vector illustration"],
    "Product": ["a product photo", "a product image on a white background", "a catalog photo"],
    "Real World": ["a photo", "a real photo", "a photograph", "a picture"],
}


def candidate_pools(descriptions: dict[str, str], override: dict[str, list[str]]) -> pd.DataFrame:
    """(domain, text, default) rows: per domain its default description first, then ``override`` [domain] (params)
    or the built-in pool :data:`POOLS` [domain], repeats dropped. A key of ``override`` that names no domain is
    refused, naming it."""
    unknown = sorted(set(override) - set(descriptions))
    if unknown:
        raise ValueError(f"descriptions.candidates.{unknown[0]}: no such domain; the domains are {sorted(descriptions)}")
    rows = []
    for d, default in descriptions.items():
        if d not in override and d not in POOLS:
            log.warning("search_descriptions: no candidate pool for domain %r (descriptions.candidates.%s): its "
                        "default description %r is the only candidate", d, d, default)
        pool = list(dict.fromkeys([default, *override.get(d, POOLS.get(d, []))]))
        rows += [(d, t, t == default) for t in pool]
    return pd.DataFrame(rows, columns=["domain", "text", "default"])


def search_table(pool: pd.DataFrame, T: np.ndarray, X: np.ndarray, dom: np.ndarray, domains: list[str],
                 select_by: str) -> pd.DataFrame:
    """``pool`` with ``sim`` = Sim(t, D_own) (the similarity table of seed 000, :func:`pipeline.metrics.similarity_table`,
    on the rows ``X`` of domains ``dom``), ``specificity`` = sim minus its mean over the other domains, the rank of each
    within its domain and ``selected`` (by ``select_by``)."""
    S = similarity_table(list(zip(pool["text"], T)), X, dom, domains)[domains].to_numpy()  # [texts, domains]
    own = pool["domain"].map({d: i for i, d in enumerate(domains)}).to_numpy()
    sim = S[np.arange(len(S)), own]
    out = pool.assign(sim=sim, specificity=sim - (S.sum(1) - sim) / max(len(domains) - 1, 1))
    for col in ("sim", "specificity"):
        out[f"rank_{col}"] = out.groupby("domain", sort=False)[col].rank(ascending=False, method="first").astype(int)
    out["selected"] = out.index.isin(select(out, select_by).index)
    return out


def select(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """The best candidate of each domain by ``by`` (``sim`` | ``specificity``); ties: the first in the pool."""
    idx = table.groupby("domain", sort=False)[by].idxmax()
    return table.loc[idx.to_numpy()]


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
