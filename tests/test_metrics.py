import numpy as np
import pandas as pd
import pytest

from pipeline.imagefree.zeroshot import ZeroShotClassifier
from pipeline.metrics import mean_cosine, own_description_top1, similarity_table
from pipeline.prompts import add_domain_averages, class_text_weights, noun_frames, prompt_table, with_article


def test_similarity_table_matches_hand_loop():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 5))
    doms = np.array(["p", "s"] * 6)
    descs = [("a photo", rng.normal(size=5)), ("a sketch", rng.normal(size=5))]
    table = similarity_table(descs, X, doms, ["p", "s"])
    assert list(table.columns) == ["description", "p", "s"]
    for i, (_, t) in enumerate(descs):
        for d in ("p", "s"):
            hand = np.mean([x @ t / (np.linalg.norm(x) * np.linalg.norm(t)) for x in X[doms == d]])
            assert table.loc[i, d] == pytest.approx(hand)


def test_mean_cosine_of_aligned_vectors_is_one():
    t = np.array([1.0, 2.0, 3.0])
    assert mean_cosine(t, np.stack([t, 5 * t])) == pytest.approx(1.0)
    assert mean_cosine(t, -t[None]) == pytest.approx(-1.0)


def test_own_description_top1():
    table = pd.DataFrame({"description": ["a photo", "a sketch"], "photo": [0.3, 0.1], "sketch": [0.25, 0.2]})
    assert own_description_top1(table, ["a photo", "a sketch"]) == 0.5


def test_zero_shot_on_constructed_weights():
    W = np.eye(3)
    X = np.array([[5.0, 1.0, 0.0], [0.0, 0.1, 0.2], [0.0, 9.0, 1.0]])
    zs = ZeroShotClassifier(W).fit()
    assert zs.predict(X).tolist() == [0, 2, 1]
    p = zs.predict_proba(X)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    cos = X / np.linalg.norm(X, axis=1, keepdims=True)
    e = np.exp(100 * cos[0]) / np.exp(100 * cos[0]).sum()
    np.testing.assert_allclose(p[0], e, rtol=1e-6)


def test_prompts_and_ensembling():
    desc = {"photo": "a photo", "sketch": "a black and white drawing"}
    templates = ["a photo of a {}.", "a drawing of the {}.", "a cartoon {}."]
    assert noun_frames(templates) == ["a {}", "the {}", "a cartoon {}"]
    assert noun_frames(["a photo of a {}.", "a picture of a {}.", "an image of a {}."]) == ["a {}"]
    table = prompt_table(desc, ["goose", "apple"], ["dog", "alarm_clock"], templates, {"alarm_clock": "alarm clock"})
    assert table["text"].tolist()[:8] == ["a photo", "a black and white drawing", "a photo of a goose",
                                          "a photo of the goose", "a photo of a cartoon goose", "a photo of an apple",
                                          "a photo of the apple", "a photo of a cartoon apple"]
    assert table.loc[table["class"] == "alarm_clock", "text"].tolist() == [
        "a photo of a alarm clock.", "a drawing of the alarm clock.", "a cartoon alarm clock."]
    assert with_article("elephant") == "an elephant"
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(table), 4)).astype(np.float32)
    t2, e2 = add_domain_averages(table, emb, desc)
    avg = t2[t2.kind == "domain_avg"]
    assert avg["text"].tolist() == ["a photo of {noun} (mean of 6)", "a black and white drawing of {noun} (mean of 6)"]
    np.testing.assert_allclose(e2[avg.index[0]], emb[2:8].mean(axis=0), rtol=1e-6)
    W = class_text_weights(t2, e2, ["dog", "alarm_clock"])
    dog = emb[(table["class"] == "dog").to_numpy()]
    m = (dog / np.linalg.norm(dog, axis=1, keepdims=True)).mean(axis=0)
    np.testing.assert_allclose(W[0], m / np.linalg.norm(m), rtol=1e-5)
    with pytest.raises(ValueError, match="prompts.templates"):
        prompt_table(desc, [], ["dog"], ["no placeholder"])
