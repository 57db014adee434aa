"""Figures for DVC plots (matplotlib, Agg backend, written atomically)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .store import atomic_path


def save_figure(fig, path: str | Path, dpi: int = 110) -> None:
    """Write a matplotlib figure as PNG atomically, then close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)


def heatmap(table: pd.DataFrame, path: str | Path, title: str = "", fmt: str = "{:.3f}") -> None:
    """Annotated heatmap of a table whose first column labels the rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = table.iloc[:, 1:].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * values.shape[1], 0.9 + 0.45 * values.shape[0]))
    im = ax.imshow(values, cmap="viridis", aspect="auto")
    ax.set_xticks(range(values.shape[1]), table.columns[1:], rotation=20)
    ax.set_yticks(range(values.shape[0]), table.iloc[:, 0])
    mid = np.nanmean(values)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center",
                    color="white" if values[i, j] < mid else "black", fontsize=8)
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)


def scatter_panels(table: pd.DataFrame, xs: list[str], y: str, path: str | Path, label: str = "",
                   titles: dict | None = None) -> None:
    """One scatter panel per column in ``xs`` against ``y`` (points labelled by the column ``label``; each
    panel titled ``titles[x]`` when given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(len(xs), 4)
    rows = -(-len(xs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.9 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(xs):]:
        ax.set_visible(False)
    for ax, x in zip(axes.flat, xs):
        ax.scatter(table[x], table[y], s=18)
        if label:
            for _, r in table.iterrows():
                ax.annotate(r[label], (r[x], r[y]), fontsize=5)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        if titles and x in titles:
            ax.set_title(titles[x], fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def curves(table: pd.DataFrame, x: str, y: str, by: str, path: str | Path) -> None:
    """One line of ``y`` against ``x`` per value of ``by`` (e.g. the loss of each CLIP pairing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for key, g in table.groupby(by, sort=False):
        ax.plot(g[x], g[y], label=str(key), lw=1)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def fewshot_plot(table: pd.DataFrame, summary: pd.DataFrame, metric: str, path: str | Path) -> None:
    """Stage fewshot_gap's figure for one metric: left, each ordered pair's k-sample estimate over its
    full-sample value (mean over draws, with the mean interval as a band) against k; right, the Spearman
    correlation of the k-sample gaps with the full-sample ones and with the accuracy drop against k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = table[table.metric == metric]
    n_all = t.groupby(["source", "target"])["k"].transform("max")
    full = t[t.k == n_all].set_index(["source", "target"])["value"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.8))
    for (s, tg), g in t.groupby(["source", "target"], sort=False):
        f = abs(full[s, tg]) or 1.0
        m = g.groupby("k")[["value", "ci_low", "ci_high"]].mean() / f
        ax.plot(m.index, m.value, lw=1, label=f"{s}→{tg}")
        ax.fill_between(m.index, m.ci_low, m.ci_high, alpha=0.08)
    ax.axhline(1.0 if (full >= 0).all() else 0.0, color="k", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("target images k")
    ax.set_ylabel(f"{metric} (k) / |{metric} (all)|")
    ax.legend(fontsize=5, ncol=2)
    srt = summary[summary.metric == metric]
    ks = [int(k) if k != "all" else int(n_all.max()) for k in srt.k]
    bx.plot(ks, srt.spearman_vs_full, marker="o", label="vs the full-sample ranking")
    bx.axhline(0.9, color="k", lw=0.6, ls=":")
    bx.set_xscale("log")
    bx.set_xlabel("target images k")
    bx.set_ylabel("Spearman over ordered pairs")
    bx.legend(fontsize=7)
    fig.suptitle(f"{metric}: few-shot estimates (mean over draws)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
