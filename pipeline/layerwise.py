"""Which block of the image tower transfers best: the evaluation's probes, block by block (stage layerwise).

Zeiler & Fergus (ECCV 2014) plug the features of each layer into a linear classifier and ask which layers
transfer; here every block stored by ``embed.layers`` (features/layers.parquet: the class token through the
final LayerNorm of a ViT block, the spatial average of a ResNet stage) and the joint-space projection are scored
with the evaluation itself: the probes of ``layerwise.probes`` on the identity operator, over
``evaluation.trials`` partitions, with ``evaluation.selection``'s model selection and the cell cache (the
projection's cells are the evaluate stage's own). A protocol's accuracy per trial is the mean over its
settings; the curve shows mean ± SE over trials, beside each block's domain gaps (:mod:`pipeline.layer_gaps`,
stage layerwise_gap).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .cellcache import CellCache
from .evaluation import evaluate
from .layer_gaps import features
from .params import Params
from .tables import mean_se

log = logging.getLogger(__name__)
PROTOCOLS = ("in_domain", "single_source", "lodo")


def layer_params(p: Params) -> Params:
    """The evaluation a block is scored by: no operator, ``layerwise.probes``, no image-free method."""
    return p.model_copy(update={
        "operators": p.operators.model_copy(update={"names": ["none"]}),
        "classifier": p.classifier.model_copy(update={"probes": list(p.layerwise.probes), "features": "projected"}),
        "evaluation": p.evaluation.model_copy(update={"image_free": [], "preview": False})})


def score_layers(images: pd.DataFrame, layers: list, domains: list[str], classes: list[str], p: Params,
                 cache: CellCache, fixed_test: bool, progress: bool = True) -> pd.DataFrame:
    """Accuracy rows of every block: the evaluation's columns plus ``layer``, ``name``, ``dim``. ``layers``:
    (index, name, features or their loader) in depth order, read one at a time."""
    q = layer_params(p)
    accs = []
    for i, name, block in layers:
        X = features(block)
        log.info("layerwise: %s (%d-d)", name, X.shape[1])
        acc, _ = evaluate(images, X, {}, domains, classes, q, {}, cache, fixed_test, progress=progress)
        accs.append(acc.assign(layer=i, name=name, dim=X.shape[1]))
    return pd.concat(accs, ignore_index=True)


def curve(acc: pd.DataFrame) -> pd.DataFrame:
    """Per block, selection and protocol: mean ± SE over trials of the protocol's mean accuracy over settings."""
    per_trial = acc.groupby(["layer", "name", "dim", "selection", "protocol", "classifier", "trial"],
                            sort=False)["accuracy"].mean().reset_index()
    rows = []
    for key, g in per_trial.groupby(["layer", "name", "dim", "selection", "protocol", "classifier"], sort=False):
        m, se = mean_se(g["accuracy"])
        rows.append((*key, m, se, len(g)))
    return pd.DataFrame(rows, columns=["layer", "name", "dim", "selection", "protocol", "classifier", "accuracy", "se",
                                       "trials"])


def wide_curve(summary: pd.DataFrame, gaps: pd.DataFrame, selection: str = "train_val") -> pd.DataFrame:
    """One row per block for DVC's line plot: ``layer``, ``name`` and a column per protocol (the first probe,
    ``selection``) and per gap metric."""
    first = summary["classifier"].iloc[0]
    s = summary[(summary.classifier == first) & summary.selection.isin([selection, "-"])]
    wide = s.pivot_table(index=["layer", "name"], columns="protocol", values="accuracy", sort=False).reset_index()
    if len(gaps):
        g = gaps.pivot_table(index=["layer", "name"], columns="metric", values="mean_cross_domain_gap",
                             sort=False).reset_index()
        wide = wide.merge(g, on=["layer", "name"], how="left")
    return wide.sort_values("layer", ignore_index=True)


def headline(summary: pd.DataFrame, selection: str = "train_val") -> dict:
    """reports/layerwise.json: each block's accuracy per protocol (the first probe, ``selection``), and which block
    is best on each -- by test accuracy, so an analysis of the encoder, not a selected model."""
    first = summary["classifier"].iloc[0]
    s = summary[(summary.classifier == first) & (summary.selection == selection)]
    out = {"probe": first, "selection": selection}
    for protocol in [p for p in PROTOCOLS if p in set(s.protocol)]:
        g = s[s.protocol == protocol].sort_values("layer")
        out[protocol] = {n: round(float(a), 4) for n, a in zip(g["name"], g["accuracy"])}
        out[f"best_{protocol}_by_test_accuracy"] = str(g.loc[g["accuracy"].idxmax(), "name"])
    return out


def plot(wide: pd.DataFrame, gap_metrics: list[str], path) -> None:
    """reports/layerwise.png: accuracy per protocol (left) and RMS-scaled mean cross-domain gap per metric, each
    divided by its largest value (right), against the block."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .reports import save_figure

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.8))
    x = np.arange(len(wide))
    for protocol in [p for p in PROTOCOLS if p in wide.columns]:
        ax.plot(x, wide[protocol], marker="o", label=protocol)
    for metric in [m for m in gap_metrics if m in wide.columns]:
        v = wide[metric].to_numpy(float)
        bx.plot(x, v / (np.nanmax(np.abs(v)) or 1.0), marker="o", label=metric)
    for a, title in ((ax, "probe accuracy (training-domain validation)"),
                     (bx, "mean cross-domain gap / its maximum")):
        a.set_xticks(x, wide["name"], rotation=30, ha="right", fontsize=7)
        a.set_title(title, fontsize=9)
        a.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
