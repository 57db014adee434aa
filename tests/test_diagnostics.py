import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline.diagnostics import accuracy_drops, correlations, direction_alignment, gap_vs_drop


def test_alignment_is_one_for_a_pure_text_translation_and_zero_when_orthogonal():
    rng = np.random.default_rng(0)
    d, n = 8, 30
    base = rng.normal(size=(2 * n, d))
    labels = np.repeat([0, 1], n)
    shift = np.eye(d)[0] * 3
    X = np.concatenate([base, base + shift])
    doms = np.array(["s"] * 2 * n + ["t"] * 2 * n)
    lab = np.concatenate([labels, labels])
    text = {"s": np.ones(d), "t": np.ones(d) + 0.5 * np.eye(d)[0]}
    a = direction_alignment(X, doms, lab, text, ["s", "t"], ["cat", "dog"]).set_index(["source", "target"])
    assert a.loc[("s", "t"), "alignment_cos"] == pytest.approx(1.0)
    assert a.loc[("t", "s"), "alignment_cos"] == pytest.approx(1.0)
    assert a.loc[("s", "t"), "alignment_cos_dog"] == pytest.approx(1.0)
    ortho = {"s": np.zeros(d), "t": np.eye(d)[1]}
    b = direction_alignment(X, doms, lab, ortho, ["s", "t"], ["cat", "dog"])
    assert b["alignment_cos"].abs().max() == pytest.approx(0.0, abs=1e-9)


def test_drops_and_gap_correlations():
    acc = pd.DataFrame([  # two trials (drops use their mean), and rows of other selections / methods
        ("logreg", "in_domain", "a", "a", 0.9), ("logreg", "in_domain", "b", "b", 0.8),
        ("logreg", "single_source", "a", "b", 0.5), ("logreg", "single_source", "b", "a", 0.7),
        ("logreg", "single_source", "a", "b", 0.7), ("logreg+translate_single", "single_source", "a", "b", 0.1)],
        columns=["method", "protocol", "source", "target", "accuracy"]).assign(selection="train_val")
    acc = pd.concat([acc, acc.assign(selection="oracle", accuracy=0.0)], ignore_index=True)
    drops = accuracy_drops(acc).set_index(["source", "target"])
    assert drops.loc[("a", "b"), "accuracy_drop"] == pytest.approx(0.3)
    assert drops.loc[("b", "a"), "accuracy_drop"] == pytest.approx(0.1)
    gaps = pd.DataFrame([("fid", "a", "b", 5.0), ("fid", "b", "a", 2.0)], columns=["metric", "source", "target", "value"])
    table, corr = gap_vs_drop(gaps, accuracy_drops(acc))
    assert "fid" in table.columns and corr["fid"]["pearson"] is None  # 2 points: undefined


def test_correlations_match_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=12)
    y = 0.5 * x + rng.normal(size=12)
    y[3] = y[5]  # a tie
    c = correlations(x, y)
    assert c["pearson"] == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-4)
    assert c["spearman"] == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-4)
    assert c["n"] == 12
    lo, hi = stats.pearsonr(x, y).confidence_interval(0.95)  # Fisher's z, as ours
    assert c["pearson_ci"] == pytest.approx([lo, hi], abs=1e-4)
    assert c["spearman_ci"][0] < c["spearman"] < c["spearman_ci"][1]
