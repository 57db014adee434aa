"""Contrastive losses and retrieval metrics against hand computations (issue 4, seed 001)."""
import math

import numpy as np
import pytest
import torch

from pipeline.contrastive import LogitScale, info_nce, retrieval_topk, triplet_max_violation


def unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def hand_info_nce(I, T, s, labels=None):
    I, T = unit(I), unit(T)
    n = len(I)
    Z = s * I @ T.T
    lab = np.arange(n) if labels is None else np.asarray(labels)
    total = 0.0
    for Zm in (Z, Z.T):
        for i in range(n):
            lse = math.log(sum(math.exp(Zm[i, j]) for j in range(n)))
            pos = [j for j in range(n) if lab[j] == lab[i]]
            total += -sum(Zm[i, j] - lse for j in pos) / len(pos) / n
    return total / 2


def test_info_nce_equals_hand_computation():
    rng = np.random.default_rng(0)
    I, T = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    for s in (1.0, 14.3):
        got = info_nce(torch.tensor(I), torch.tensor(T), s).item()
        assert got == pytest.approx(hand_info_nce(I, T, s), rel=1e-10)
    labels = [0, 1, 0, 2, 1]  # images 0 and 2 share a caption, 1 and 4 too
    got = info_nce(torch.tensor(I), torch.tensor(T), 3.0, torch.tensor(labels)).item()
    assert got == pytest.approx(hand_info_nce(I, T, 3.0, labels), rel=1e-10)


def test_temperature_is_learned_and_clamped():
    ls = LogitScale()
    assert ls().item() == pytest.approx(1 / 0.07)
    rng = np.random.default_rng(1)
    I = torch.tensor(rng.normal(size=(8, 4)))
    loss = info_nce(I, I + 0.01, ls())  # matched pairs: a sharper softmax lowers the loss
    loss.backward()
    assert ls.log_scale.grad.item() < 0
    opt = torch.optim.SGD(ls.parameters(), lr=1.0)
    before = ls().item()
    opt.step()
    assert ls().item() > before
    with torch.no_grad():
        ls.log_scale.fill_(10.0)
    assert ls().item() == pytest.approx(100.0)
    ls.zero_grad()
    info_nce(I, I + 0.01, ls()).backward()
    assert ls.log_scale.grad.item() == 0.0  # clamped: no gradient beyond 100


def test_triplet_picks_the_hardest_negative():
    rng = np.random.default_rng(2)
    I, T = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    m = 0.3
    S = unit(I) @ unit(T).T
    ref = sum(max(0, m + max(S[i, j] for j in range(6) if j != i) - S[i, i])
              + max(0, m + max(S[j, i] for j in range(6) if j != i) - S[i, i]) for i in range(6)) / 6
    assert triplet_max_violation(torch.tensor(I), torch.tensor(T), m).item() == pytest.approx(ref, rel=1e-10)
    # the sum over all violating negatives (VSE0) is a different, larger number: only the max counts
    vse0 = sum(max(0, m + S[i, j] - S[i, i]) + max(0, m + S[j, i] - S[i, i]) for i in range(6) for j in range(6) if j != i) / 6
    assert vse0 > ref + 1e-3
    # shared captions are not negatives
    lab = torch.tensor([0, 0, 1, 2, 3, 4])
    T3 = T.copy()
    T3[1] = I[0] * 10  # caption 1 matches image 0 perfectly, but it is image 0's own caption label
    with_labels = triplet_max_violation(torch.tensor(I), torch.tensor(T3), m, lab).item()
    without = triplet_max_violation(torch.tensor(I), torch.tensor(T3), m).item()
    assert with_labels < without


def test_retrieval_topk_equals_brute_force():
    rng = np.random.default_rng(3)
    I, C = rng.normal(size=(50, 8)), rng.normal(size=(12, 8))
    truth = rng.integers(0, 12, 50)
    got = retrieval_topk(I, C, truth, ks=(1, 3, 12))
    S = unit(I) @ unit(C).T
    for k in (1, 3, 12):
        brute = np.mean([truth[i] in np.argsort(-S[i], kind="stable")[:k] for i in range(50)])
        assert got[k] == pytest.approx(brute)
    assert got[12] == 1.0


def test_training_drives_loss_down_and_retrieval_up():
    torch.manual_seed(0)
    rng = np.random.default_rng(4)
    n_cap, d = 10, 16
    z = rng.normal(size=(n_cap, d))
    cap = rng.integers(0, n_cap, 200)
    img_x = torch.tensor(z[cap] @ rng.normal(size=(d, 24)) + 0.3 * rng.normal(size=(200, 24)), dtype=torch.float32)
    txt_x = torch.tensor(z @ rng.normal(size=(d, 20)), dtype=torch.float32)
    fi, ft, ls = torch.nn.Linear(24, 8), torch.nn.Linear(20, 8), LogitScale()
    opt = torch.optim.Adam([*fi.parameters(), *ft.parameters(), *ls.parameters()], lr=0.01)
    labels = torch.tensor(cap)

    def evaluate():
        with torch.no_grad():
            return retrieval_topk(fi(img_x).numpy(), ft(txt_x).numpy(), cap, ks=(1,))[1]

    before, losses = evaluate(), []
    for _ in range(200):
        loss = info_nce(fi(img_x), ft(txt_x)[labels], ls(), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert evaluate() > max(before + 0.5, 0.9)
