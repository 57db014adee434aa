"""Two diagnostics across source -> target pairs.

1. Direction alignment (Hémadou et al. 2023, §3 question 2: is translation the right operator?):
   cos(mean E_I(target) - mean E_I(source), E_T(t_target) - E_T(t_source)), over all images and
   per class. A cosine near 1 means the text shift points where the images actually moved.
2. Gap vs drop: Pearson and Spearman correlation, across pairs, between each domain-gap measure
   and the accuracy drop of the source-trained probe (in-domain accuracy of the source minus the
   accuracy on the target).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .correlation import correlations, k_labelled, mean_of


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def domain_means(blocks, n_classes: int) -> dict:
    """{domain: (mean feature, {class index: mean feature of its rows})} from ``(domains, features, labels)``
    blocks of any rows (a stage streams the store one row group at a time), from float64 sums and counts."""
    sums: dict = {}
    for dom, Xb, yb in blocks:
        dom, yb = np.asarray(dom), np.asarray(yb)
        for d in np.unique(dom):
            m = dom == d
            Xd, yd = np.asarray(Xb[m], np.float64), yb[m]
            S, Sc = sums.setdefault(d, [np.zeros(Xb.shape[1]), 0, {}])[0], sums[d][2]
            S += Xd.sum(0)
            sums[d][1] += len(Xd)
            for k in np.unique(yd):
                acc = Sc.setdefault(int(k), [np.zeros(Xb.shape[1]), 0])
                acc[0] += Xd[yd == k].sum(0)
                acc[1] += int((yd == k).sum())
    return {d: (S / n, {k: s / c for k, (s, c) in sorted(Sc.items()) if k < n_classes}) for d, (S, n, Sc) in sums.items()}


def direction_alignment(X: np.ndarray, domains, labels, text: dict[str, np.ndarray], domain_list: list[str],
                        classes: list[str]) -> pd.DataFrame:
    """One row per ordered pair (s != t): overall cosine, per-class cosines and their mean (features in memory)."""
    return alignment_from_means(domain_means([(domains, X, labels)], len(classes)), text, domain_list, classes)


def alignment_from_means(means: dict, text: dict[str, np.ndarray], domain_list: list[str],
                         classes: list[str]) -> pd.DataFrame:
    """:func:`direction_alignment` from :func:`domain_means` (a stage streams the store by domain)."""
    rows = []
    for s in domain_list:
        for t in domain_list:
            if s == t:
                continue
            txt = np.asarray(text[t], np.float64) - np.asarray(text[s], np.float64)
            row = {"source": s, "target": t, "alignment_cos": _cos(means[t][0] - means[s][0], txt)}
            per_class = []
            for k, c in enumerate(classes):
                ms, mt = means[s][1].get(k), means[t][1].get(k)
                v = _cos(mt - ms, txt) if ms is not None and mt is not None else np.nan
                row[f"alignment_cos_{c}"] = v
                per_class.append(v)
            present = [v for v in per_class if np.isfinite(v)]  # a class absent from s or t has no direction
            row["alignment_cos_class_mean"] = float(np.mean(present)) if present else np.nan
            row["alignment_n_classes"] = len(present)
            rows.append(row)
    return pd.DataFrame(rows)


def accuracy_drops(acc: pd.DataFrame, method: str | None = None, selection: str = "train_val") -> pd.DataFrame:
    """drop(s -> t) = acc(s -> s, in-domain) - acc(s -> t), for ``method`` (operator none; default ``logreg``,
    or the first probe the grid scored in-domain when it has no logreg) as chosen by ``selection``, each
    accuracy the mean over trials."""
    if method is None:
        scored = list(dict.fromkeys(acc.loc[acc["protocol"] == "in_domain", "method"]))
        method = "logreg" if "logreg" in scored or not scored else scored[0]
    a = acc[(acc["method"] == method) & (acc["selection"] == selection)]
    a = a.groupby(["protocol", "source", "target"], sort=False)["accuracy"].mean().reset_index()
    indom = a[a["protocol"] == "in_domain"].set_index("source")["accuracy"]
    cross = a[a["protocol"] == "single_source"][["source", "target", "accuracy"]].rename(columns={"accuracy": "cross_accuracy"})
    cross["in_domain_accuracy"] = cross["source"].map(indom)
    cross["accuracy_drop"] = cross["in_domain_accuracy"] - cross["cross_accuracy"]
    return cross.reset_index(drop=True)


def gap_vs_drop(gaps: pd.DataFrame, drops: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Join each gap metric onto the drop table (one column per metric) and correlate."""
    wide = gaps.pivot_table(index=["source", "target"], columns="metric", values="value").reset_index()
    table = drops.merge(wide, on=["source", "target"], how="left")
    metrics = [m for m in wide.columns if m not in ("source", "target")]
    return table, {m: correlations(table[m], table["accuracy_drop"]) for m in metrics}


def agreement_with_drops(table: pd.DataFrame, drops: pd.DataFrame) -> pd.DataFrame:
    """Per metric and k, the Spearman correlation between the k-sample gaps and the accuracy drops
    (``drops``: source, target, accuracy_drop), mean over draws (stage diagnostics: it reads the accuracies,
    so that a classifier edit reruns it, not the few-shot study)."""
    drop = drops.set_index(["source", "target"])["accuracy_drop"]
    rows = []
    for (metric, k), g in k_labelled(table).groupby(["metric", "k"], sort=False):
        rho = [correlations(d.value.to_numpy(), drop.reindex(list(zip(d.source, d.target))).to_numpy())["spearman"]
               for _, d in g.groupby("draw")]
        rows.append({"metric": metric, "k": k, "spearman_vs_drop": mean_of(rho)})
    return pd.DataFrame(rows)
