"""Measures on cached features."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .operators import l2_normalize


def mean_cosine(t: np.ndarray, X: np.ndarray) -> float:
    """Sim(t_D, D) = 1/|D| sum_x cos(E_T(t_D), E_I(x))  (Hémadou et al., ORASIS 2023, §2)."""
    return float((l2_normalize(np.asarray(X, np.float64)) @ l2_normalize(np.asarray(t, np.float64))).mean())


def similarity_table(descriptions: list[tuple[str, np.ndarray]], X: np.ndarray, domains_of_x: np.ndarray,
                     domains: list[str]) -> pd.DataFrame:
    """One row per (description text, E_T vector), one column per image domain: mean cosine
    (the paper's Table 1), from features in memory."""
    return similarity_from_blocks(descriptions, [(np.asarray(domains_of_x), X)], domains)


def similarity_from_blocks(descriptions: list[tuple[str, np.ndarray]], blocks, domains: list[str]) -> pd.DataFrame:
    """:func:`similarity_table` from ``(domains of the rows, features)`` blocks of any rows (a stage streams
    the store one row group at a time: memory is one block): per domain, the sum of cosines over its rows
    (float64) divided by its row count."""
    T = l2_normalize(np.stack([np.asarray(t, np.float64) for _, t in descriptions])) if descriptions else None
    sums = {d: np.zeros(len(descriptions)) for d in domains}
    counts = dict.fromkeys(domains, 0)
    for dom, Xb in blocks:
        dom = np.asarray(dom)
        for d in domains:
            m = dom == d
            if m.any() and T is not None:
                sums[d] += (l2_normalize(np.asarray(Xb[m], np.float64)) @ T.T).sum(0)
                counts[d] += int(m.sum())
    cols = {d: sums[d] / counts[d] if counts[d] else [float("nan")] * len(descriptions) for d in domains}
    return pd.DataFrame({"description": [text for text, _ in descriptions], **cols}, columns=["description", *domains])


def own_description_top1(table: pd.DataFrame, own: list[str]) -> float:
    """Fraction of domains whose own description (``own[i]`` for column i) is the most similar one."""
    domains = list(table.columns[1:])
    hits = [table.loc[table[d].idxmax(), "description"] == own[i] for i, d in enumerate(domains)]
    return float(np.mean(hits))


def accuracy(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else float("nan")
