"""Description search (``translate_searched``): candidate pools, their Sim(t, D) / specificity ranking and the
selection (formulas: :mod:`pipeline.descriptions`, docs/methods.md). Each candidate's translation accuracy, which
reads labels and the classifier params: :mod:`pipeline.description_accuracy`."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .metrics import similarity_table

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
