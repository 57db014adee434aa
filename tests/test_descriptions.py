"""Searched and learned domain descriptions (issue 23 item 4): Sim(t, D) against its formula, the search picks the
planted best description, the learned pseudo-word raises its domain's similarity and changes nothing but its own
token, and the two translation operators read their own description kinds."""
from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.description_accuracy import translation_accuracy
from pipeline.description_search import candidate_pools, search_table
from pipeline.descriptions import LEARNED_PROMPT, domain_means, learn_descriptions
from pipeline.encoders.base import state_dict_hash
from pipeline.operators import OPERATORS
from pipeline.params import Params
from pipeline.promptstyler import inject, pseudo_word, pseudo_word_positions

DOMAINS = ["photo", "art_painting", "cartoon", "sketch"]


def test_sim_equals_the_seed_formula():
    """Sim(t, D) = 1/|D| sum_x cos(E_T(t), E_I(x)) (seed 000), computed the long way."""
    rng = np.random.default_rng(0)
    X, dom = rng.normal(size=(30, 5)), np.repeat(["a", "b", "c"], 10)
    T = rng.normal(size=(2, 5))
    table = search_table(pd.DataFrame({"domain": ["a", "c"], "text": ["t0", "t1"], "default": True}), T, X, dom,
                         ["a", "b", "c"], "sim")
    sim, spec = table["sim"].to_numpy(), table["specificity"].to_numpy()
    cos = lambda t, x: x @ t / np.linalg.norm(x, axis=1) / np.linalg.norm(t)  # noqa: E731
    want = [cos(T[0], X[dom == "a"]).mean(), cos(T[1], X[dom == "c"]).mean()]
    np.testing.assert_allclose(sim, want)
    other = np.mean([cos(T[1], X[dom == "a"]).mean(), cos(T[1], X[dom == "b"]).mean()])
    np.testing.assert_allclose(spec[1], want[1] - other)


def test_search_picks_the_planted_description_on_a_synthetic_text_world():
    """Each domain's images lie around a direction; one candidate per domain points along it, the others (the
    default included) at random: the search selects the planted one by Sim and by specificity."""
    rng = np.random.default_rng(1)
    d = 32
    dirs = np.linalg.qr(rng.normal(size=(d, 4)))[0].T  # orthonormal domain directions
    dom = np.repeat(DOMAINS, 50)
    X = dirs[[DOMAINS.index(k) for k in dom]] * 3 + rng.normal(size=(len(dom), d))
    pool = candidate_pools({k: f"default {k}" for k in DOMAINS}, {k: [f"noise {k} {j}" for j in range(4)] + [f"best {k}"]
                                                                  for k in DOMAINS})
    T = rng.normal(size=(len(pool), d))
    best = pool["text"].str.startswith("best").to_numpy()
    T[best] = dirs[[DOMAINS.index(k) for k in pool["domain"][best]]] * 2 + 0.1 * rng.normal(size=(4, d))
    for by in ("sim", "specificity"):
        table = search_table(pool, T, X, dom, DOMAINS, by)
        assert sorted(table.loc[table.selected, "text"]) == sorted(f"best {k}" for k in DOMAINS)
        assert (table.loc[table.selected, f"rank_{by}"] == 1).all()
    assert pool.groupby("domain")["default"].sum().eq(1).all() and pool["text"].iloc[0] == "default photo"
    with pytest.raises(ValueError, match="descriptions.candidates.sktch: no such domain"):
        candidate_pools({k: k for k in DOMAINS}, {"sktch": ["a sketch"]})


def test_candidate_accuracy_rewards_the_description_that_undoes_the_shift():
    """A world where each domain is the class signal plus a known offset: the candidate whose E_T equals that offset
    translates the target back onto the sources and scores higher than one pointing elsewhere."""
    rng = np.random.default_rng(2)
    d, n = 16, 240
    offsets = {k: rng.normal(size=d) * 4 for k in ["a", "b", "c"]}
    dom = np.repeat(["a", "b", "c"], n)
    y = np.tile(np.arange(4), len(dom) // 4)
    X = (np.eye(4, d)[y] * 2 + rng.normal(size=(len(dom), d)) * 0.7 + np.stack([offsets[k] for k in dom])).astype(np.float32)
    images = pd.DataFrame({"image_id": [f"{i:064x}" for i in range(len(dom))], "domain": dom, "label": y,
                           "class": y.astype(str), "split": "train"})
    default = {k: offsets[k] for k in ["a", "b"]} | {"c": rng.normal(size=d) * 4}  # c's default: the wrong offset
    cands = pd.DataFrame({"domain": ["c", "c"], "text": ["wrong", "right"]})
    T = np.stack([default["c"], offsets["c"]])
    p = Params.model_validate({"evaluation": {"trials": 1}, "classifier": {"probes": ["logreg"], "C": [1.0]},
                               "translate": {"alpha": 1.0}})
    acc = translation_accuracy(X, images, ["a", "b", "c"], cands, T, default, p, progress=False)
    assert acc[1] > acc[0] + 0.2, acc


def test_learned_description_raises_its_similarity_and_changes_only_the_pseudo_word(mini_encoder):
    rng = np.random.default_rng(3)
    means = domain_means(rng.normal(size=(40, 32)), np.repeat(["a", "b"], 20), ["a", "b"])
    before = state_dict_hash(mini_encoder.model)
    W, T, log = learn_descriptions(mini_encoder, means, ["a", "b"], steps=30, lr=0.05, progress=False)
    assert state_dict_hash(mini_encoder.model) == before  # the text encoder is frozen
    for d, g in log.groupby("domain"):
        assert g["sim_own"].iloc[-1] > g["sim_own"].iloc[0] + 0.05, (d, g["sim_own"].tolist())
        assert g["objective"].iloc[-1] > g["objective"].iloc[0]
    # what reaches the text tower: the prompt's own token embeddings except at the pseudo-word
    word, pid = pseudo_word(mini_encoder, LEARNED_PROMPT)
    ids, mask = mini_encoder.tokenize([LEARNED_PROMPT.format(word)])
    pos = pseudo_word_positions(ids, pid)
    layer, seen = mini_encoder.token_embedding(), []
    for vec in (None, torch.as_tensor(W[0])):
        with torch.no_grad(), (inject(layer, pos, vec) if vec is not None else contextlib.nullcontext()):
            handle = layer.register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))  # after injection
            try:
                f = mini_encoder.text_features(ids, mask)
            finally:
                handle.remove()
    changed = (seen[0] != seen[1]).any(-1)[0]
    assert changed.tolist() == [j == int(pos[0]) for j in range(ids.shape[1])]
    np.testing.assert_allclose(f[0].numpy(), T[0], atol=1e-5)  # the stored E_T is the injected prompt's


def test_each_translation_operator_reads_its_own_description_kind():
    X, dom = np.zeros((2, 3), np.float32), np.array(["a", "b"])
    text = {kind: {"a": np.full(3, i + 1.0), "b": np.zeros(3)}
            for i, kind in enumerate(["domain", "domain_avg", "domain_searched", "domain_learned"])}
    shifts = {name: OPERATORS[name](text=text, alpha=1.0).fit(sources=["a"]).transform(X, dom)[1, 0]
              for name in ["translate_single", "translate_avg", "translate_searched", "translate_learned"]}
    assert shifts == {"translate_single": 1.0, "translate_avg": 2.0, "translate_searched": 3.0, "translate_learned": 4.0}
    with pytest.raises(KeyError, match="no domain_learned text description"):
        OPERATORS["translate_learned"](text={"domain": text["domain"]}).fit(sources=["a"])


def test_pools_of_the_presets_and_a_domain_without_one_is_logged(caplog):
    pool = candidate_pools({"quickdraw": "a quick drawing", "location_38": "a camera trap photo"}, {})
    assert pool.groupby("domain", sort=False).size().to_dict() == {"quickdraw": 4, "location_38": 1}  # default in pool
    assert pool["text"].iloc[0] == "a quick drawing" and pool["default"].sum() == 2  # the default first, not repeated
    assert "no candidate pool for domain 'location_38' (descriptions.candidates.location_38)" in caplog.text
