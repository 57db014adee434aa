"""Text-guided translation (Hémadou et al., ORASIS 2023) on synthetic worlds with known answers."""
import numpy as np
import pytest

from pipeline.operators import OPERATORS, l2_normalize
from pipeline.probes import make_probe


def TextTranslation(text, **hyper):
    """The registered translate_single operator on ``{domain: E_T vector}``."""
    return OPERATORS["translate_single"](text={"domain": text}, **hyper)


def world(seed=0, n=60, d=16, k=4):
    """Source = class means + noise; target = the *same kind* of samples + a domain shift s along a
    class-discriminative direction. Text features encode the same shift: E_T(t_tgt) - E_T(t_src) = s."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 2.0, (k, d))
    y = np.repeat(np.arange(k), n)
    src = means[y] + rng.normal(0, 1.0, (k * n, d))
    tgt_clean = means[y] + rng.normal(0, 1.0, (k * n, d))
    s = 2.0 * (means[1] - means[0]) + rng.normal(0, 1.0, d)
    t_src = rng.normal(0, 1.0, d)
    text = {"src": t_src, "tgt": t_src + s}
    return src, y, tgt_clean, tgt_clean + s, text


def test_formula_by_hand():
    X = np.array([[1.0, 2.0], [3.0, -1.0]])
    text = {"a": np.array([0.5, 0.0]), "b": np.array([0.0, 2.0])}
    tt = TextTranslation(text, alpha=0.5).fit(None, None, ["a"])
    Z = tt.transform(X, ["b", "a"])
    np.testing.assert_allclose(Z[0], X[0] + 0.5 * (text["a"] - text["b"]))
    np.testing.assert_allclose(Z[1], X[1])  # a source row is untouched


def test_multi_source_uses_mean_description():
    text = {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0]), "c": np.array([4.0, 4.0])}
    tt = TextTranslation(text).fit(None, None, ["a", "b"])
    np.testing.assert_allclose(tt.transform(np.zeros((1, 2)), ["c"])[0], [0.5 - 4.0, 0.5 - 4.0])


def test_normalisation_options():
    rng = np.random.default_rng(1)
    X = rng.normal(0, 5, (10, 8))
    text = {"a": rng.normal(0, 3, 8), "b": rng.normal(0, 3, 8)}
    after = TextTranslation(text, normalize_after=True).fit(None, None, ["a"]).transform(X, ["b"] * 10)
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), 1.0, rtol=1e-6)
    before = TextTranslation(text, normalize_before=True).fit(None, None, ["a"]).transform(X, ["b"] * 10)
    expect = l2_normalize(X) + l2_normalize(text["a"]) - l2_normalize(text["b"])
    np.testing.assert_allclose(before, expect, rtol=1e-5)


def test_translation_restores_source_accuracy():
    src, y, tgt_clean, tgt, text = world()
    clf = make_probe("logreg", C=1.0).fit(src, y)
    acc_src_level = (clf.predict(tgt_clean) == y).mean()
    acc_shifted = (clf.predict(tgt) == y).mean()
    tt = TextTranslation(text).fit(None, None, ["src"])
    acc_translated = (clf.predict(tt.transform(tgt, ["tgt"] * len(tgt))) == y).mean()
    assert acc_src_level > 0.9
    assert acc_shifted < acc_src_level - 0.3          # the shift hurts ...
    assert acc_translated == pytest.approx(acc_src_level)  # ... and translation undoes it exactly


def test_alpha_zero_is_identity_and_partial_alpha_is_partial():
    src, y, _, tgt, text = world(seed=3)
    ident = TextTranslation(text, alpha=0.0).fit(None, None, ["src"]).transform(tgt, ["tgt"] * len(tgt))
    np.testing.assert_allclose(ident, tgt, rtol=1e-6)
    half = TextTranslation(text, alpha=0.5).fit(None, None, ["src"]).transform(tgt, ["tgt"] * len(tgt))
    np.testing.assert_allclose(half, tgt - 0.5 * (text["tgt"] - text["src"]), rtol=1e-5, atol=1e-5)


def test_unknown_domain_is_named():
    tt = TextTranslation({"a": np.ones(2)}).fit(None, None, ["a"])
    with pytest.raises(KeyError, match="mars"):
        tt.transform(np.zeros((1, 2)), ["mars"])
