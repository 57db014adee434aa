"""PromptStyler (issue 5): injection, style learning on small random CLIPs, ArcFace against its formula."""
import math

import numpy as np
import pytest
import torch

from pipeline.arcface import ArcFace, arcface_logits
from pipeline.encoders import load_encoder
from pipeline.promptstyler import PSEUDO_WORD, inject, learn_styles, mean_abs_cos, pseudo_word_positions

CLASSES = ["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"]


def _embedding_outputs(encoder, ids, mask, vector=None, positions=None):
    """What the token-embedding layer hands to the rest of the tower (observed after any injection)."""
    from contextlib import nullcontext

    seen, layer = [], encoder.token_embedding()
    with inject(layer, positions, vector) if vector is not None else nullcontext():
        handle = layer.register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
        try:
            with torch.no_grad():
                encoder.text_features(ids, mask)
        finally:
            handle.remove()
    return seen[0]


@pytest.mark.parametrize("which", ["hf", "mini"])
def test_injection_replaces_only_the_pseudo_word(which, tiny_clip, mini_encoder):
    encoder = load_encoder(f"hf_clip:{tiny_clip}", "cpu") if which == "hf" else mini_encoder
    ids, mask = encoder.tokenize([f"a {PSEUDO_WORD} style of a", f"a {PSEUDO_WORD} style of a horse"])
    pos = pseudo_word_positions(ids, encoder.tokenizer(PSEUDO_WORD, add_special_tokens=False)["input_ids"][0])
    assert pos.tolist() == [2, 2]  # [start] a * ...
    vec = torch.full((encoder.token_embedding().weight.shape[1],), 0.5)
    plain = _embedding_outputs(encoder, ids, mask)
    injected = _embedding_outputs(encoder, ids, mask, vec, pos)
    changed = (plain != injected).any(-1)
    assert changed.tolist() == [[j == 2 for j in range(ids.shape[1])]] * 2
    assert torch.equal(injected[:, 2], vec.expand(2, -1))
    assert torch.equal(_embedding_outputs(encoder, ids, mask), plain)  # and the hook is gone afterwards
    with pytest.raises(ValueError, match="pseudo-word"):
        pseudo_word_positions(ids[:, :2], 999)


def test_learned_styles_are_diverse_and_keep_content(mini_encoder):
    kw = dict(k=5, lr=0.002, momentum=0.9, seed=0, progress=False)  # the paper's optimiser
    init = learn_styles(mini_encoder, CLASSES, iterations=0, **kw)
    learned = learn_styles(mini_encoder, CLASSES, iterations=30, **kw)
    before, after = mean_abs_cos(init.style_features), mean_abs_cos(learned.style_features)
    assert after < 0.3 * before, (before, after)
    assert learned.content_accuracy() >= 0.95
    assert (learned.log["l_style"].iloc[1:] < learned.log["l_style_init"].iloc[1:]).all()
    df, F = learned.table()
    assert list(df.columns) == ["style", "class"] and F.shape == (5 * 7, 32) and len(df) == 35
    np.testing.assert_allclose(np.linalg.norm(F, axis=1), 1, atol=1e-5)
    assert learned.words.shape == (5, 384)  # MiniLM token embeddings


def test_style_learning_on_a_random_hf_clip(tiny_clip):
    """All-random CLIP: style features start nearly parallel; learning spreads them apart."""
    enc = load_encoder(f"hf_clip:{tiny_clip}", "cpu")
    kw = dict(k=4, lr=0.1, seed=0, progress=False)
    before = mean_abs_cos(learn_styles(enc, CLASSES, iterations=0, **kw).style_features)
    after = learn_styles(enc, CLASSES, iterations=30, **kw)
    assert mean_abs_cos(after.style_features) < 0.5 * before
    log = after.log  # SGD lowers the prompt loss L_style + L_content of every style
    assert (log["l_style"] + log["l_content"] < log["l_style_init"] + log["l_content_init"]).iloc[1:].all()
    with pytest.raises(ValueError, match="promptstyler.k"):
        learn_styles(enc, CLASSES, k=0)


def test_arcface_logits_equal_the_formula_on_hand_made_vectors():
    s, m = 5.0, 0.5
    x = np.array([[1.0, 0.0], [0.6, 0.8], [-1.0, 0.05]])
    w = np.array([[1.0, 0.0], [0.0, 2.0]])
    y = np.array([0, 1, 0])
    cos = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=1, keepdims=True)).T
    want = s * cos.copy()
    for i, c in enumerate(y):
        theta = math.acos(cos[i, c])
        # row 2: theta + m > pi, so the authors' monotone fallback cos(theta) - m sin(m)
        want[i, c] = s * (math.cos(theta + m) if theta + m <= math.pi else cos[i, c] - m * math.sin(m))
    assert math.acos(cos[2, 0]) + m > math.pi and math.acos(cos[0, 0]) + m <= math.pi
    got = arcface_logits(torch.tensor(cos), torch.tensor(y), s, m).numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert abs(got[0, 0] - s * math.cos(m)) < 1e-6 and abs(got[1, 1] - s * math.cos(math.acos(0.8) + m)) < 1e-6


def test_arcface_classifier_fits_saves_and_loads(tmp_path):
    rng = np.random.default_rng(0)
    centers = np.eye(7, 16) * 3
    y = np.repeat(np.arange(7), 20)
    X = centers[y] + rng.normal(size=(140, 16))
    clf = ArcFace(epochs=30, lr=0.05).fit(X, np.array(CLASSES)[y])
    assert clf.score(X, np.array(CLASSES)[y]) > 0.9
    clf.save(tmp_path / "arcface.npz")
    back = ArcFace.load(tmp_path / "arcface.npz")
    assert back.get_params() == clf.get_params()
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    np.testing.assert_allclose(back.decision_function(X), clf.decision_function(X))
    with pytest.raises(ValueError, match="arcface"):
        ArcFace(m=2.0).fit(X, y)
