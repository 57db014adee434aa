"""Results tables in DomainBed's layout (Gulrajani & Lopez-Paz, ICLR 2021): one table per protocol and
selection method, rows = methods, columns = target domains + Avg, cells "mean ± SE" over trials.

Per trial, a single-source cell is the mean over the sources of that target, and Avg is the mean over
targets; then mean and standard error (SD with n - 1 over sqrt(trials)) across trials.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

SELECTION_TITLES = {"train_val": "training-domain validation", "lodo_val": "leave-one-domain-out validation",
                    "oracle": "oracle (target-domain validation: an upper bound, not a result)", "-": "no selection"}
PROTOCOL_TITLES = {"zeroshot": "Image-free (no training image)", "in_domain": "In-domain",
                   "single_source": "Single source (each cell: mean over the other domains as the source)",
                   "lodo": "Leave-one-domain-out"}


def mean_se(values) -> tuple[float, float]:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")


def summarize(acc: pd.DataFrame) -> pd.DataFrame:
    """Long format: selection, protocol, method, target (a domain or ``Avg``), mean, se, trials."""
    per_trial = acc.groupby(["selection", "protocol", "method", "target", "trial"], sort=False)["accuracy"].mean()
    per_trial = per_trial.reset_index()
    avg = per_trial.groupby(["selection", "protocol", "method", "trial"], sort=False)["accuracy"].mean().reset_index()
    avg["target"] = "Avg"
    rows = []
    for (sel, protocol, method, target), g in pd.concat([per_trial, avg]).groupby(
            ["selection", "protocol", "method", "target"], sort=False):
        m, se = mean_se(g["accuracy"])
        rows.append((sel, protocol, method, target, m, se, len(g)))
    return pd.DataFrame(rows, columns=["selection", "protocol", "method", "target", "mean", "se", "trials"])


def _cell(m: float, se: float) -> str:
    if not np.isfinite(m):
        return "–"
    return f"{100 * m:.1f} ± {100 * se:.1f}" if np.isfinite(se) else f"{100 * m:.1f} ± –"


def _tables(summary: pd.DataFrame, domains: list[str]):
    """(title, caption, DataFrame of formatted cells) per protocol x selection, in DomainBed's order."""
    for protocol in PROTOCOL_TITLES:
        sub = summary[summary.protocol == protocol]
        for sel in [s for s in ("-", "train_val", "lodo_val", "oracle") if s in set(sub.selection)]:
            part = sub[sub.selection == sel]
            table = part.pivot_table(index="method", columns="target", values="mean", sort=False)
            ses = part.pivot_table(index="method", columns="target", values="se", sort=False, dropna=False)
            cols = [d for d in domains if d in table.columns] + ["Avg"]
            cells = pd.DataFrame({c: [_cell(table.at[m, c], ses.at[m, c]) if c in table.columns else "–"
                                      for m in table.index] for c in cols}, index=table.index)
            yield protocol, sel, cells


def markdown(summary: pd.DataFrame, domains: list[str], caption: str) -> str:
    out = ["# Results", "", caption, ""]
    for protocol, sel, cells in _tables(summary, domains):
        out += [f"## {PROTOCOL_TITLES[protocol]} — {SELECTION_TITLES[sel]}", "",
                "| method | " + " | ".join(cells.columns) + " |", "| --- " * (len(cells.columns) + 1) + "|"]
        out += [f"| {m} | " + " | ".join(cells.loc[m]) + " |" for m in cells.index]
        out.append("")
    return "\n".join(out)


def _tex(s: str) -> str:
    return s.replace("_", r"\_").replace("±", r"$\pm$").replace("–", "--").replace("%", r"\%")


def latex(summary: pd.DataFrame, domains: list[str], caption: str) -> str:
    out = [f"% {caption}"]
    for protocol, sel, cells in _tables(summary, domains):
        out += [r"\begin{table}[h]", r"\centering", r"\small",
                r"\begin{tabular}{l" + "c" * len(cells.columns) + "}", r"\toprule",
                r"\textbf{Method} & " + " & ".join(rf"\textbf{{{_tex(c)}}}" for c in cells.columns) + r" \\",
                r"\midrule"]
        out += [_tex(m) + " & " + " & ".join(_tex(v) for v in cells.loc[m]) + r" \\" for m in cells.index]
        out += [r"\bottomrule", r"\end{tabular}",
                rf"\caption{{{_tex(PROTOCOL_TITLES[protocol])}, {_tex(SELECTION_TITLES[sel])}. {_tex(caption)}}}",
                r"\end{table}", ""]
    return "\n".join(out)


def _clean(v) -> float | None:
    return round(float(v), 4) if np.isfinite(v) else None


def all_metrics(summary: pd.DataFrame) -> dict:
    """metrics_all.json: {protocol: {selection: {method: {mean, se}}}} of the Avg column (None for a NaN)."""
    out: dict = {}
    for r in summary[summary.target == "Avg"].itertuples():
        out.setdefault(r.protocol, {}).setdefault(r.selection, {})[r.method] = {"mean": _clean(r.mean), "se": _clean(r.se)}
    return out


def headline(summary: pd.DataFrame, selection: str = "train_val") -> dict:
    """metrics.json, the one DVC metrics file (small enough for `dvc exp show`): {protocol: {method: {mean, se}}}
    of the Avg column under ``selection`` (DomainBed's training-domain validation), image-free methods as
    they are (they select nothing)."""
    out: dict = {}
    avg = summary[(summary.target == "Avg") & summary.selection.isin([selection, "-"])]
    for r in avg.itertuples():
        out.setdefault(r.protocol, {})[r.method] = {"mean": _clean(r.mean), "se": _clean(r.se)}
    return out


def validation_text(share: dict) -> str:
    """The caption's validation clause: the share applied, and the one asked for when they differ (a cut that
    leaves every (domain, class) a training row can hold out less than ``data.val_fraction``)."""
    applied, asked = share["applied"], share["asked"]
    text = f"validation = {applied:.0%} of the non-test rows of each domain"
    if abs(applied - asked) > 0.005:
        text += (f" (data.val_fraction = {asked:.0%} asked; every (domain, class) keeps at least one training row, "
                 "which small classes make smaller)")
    return text + "."


def encoder_text(info: dict) -> str:
    """What the encoder trained on, when the pipeline trained it (MiniCLIP's ``trained_on``): its domains and
    captions, so that a reader knows which targets are unseen by the encoder and whether it read domain words."""
    t = info.get("trained_on") or {}
    if "captions" not in t:
        return ""
    doms = ", ".join(t["domains"]) if t.get("domains") else "every domain"
    caps = "captions naming the domain and the class" if t["captions"] == "domain_and_class" else \
        "class-only captions (no domain word)"
    return f" The encoder (MiniCLIP) was trained on the train split of {doms}, with {caps}."


def features_text(info: dict) -> str:
    """' Probes read the pre-projection features.' when they did (``classifier.features: pooled``)."""
    return " Probes read the image tower's pooled features, before the projection into the joint space." \
        if info.get("features") == "pooled" else ""
